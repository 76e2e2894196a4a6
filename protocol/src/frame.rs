//! Framing: a u32 big-endian length, then that many bytes of CBOR body.
//!
//! Check-then-parse (as mini-redis does): an incomplete frame is not an error, an
//! invalid one is; the length is checked against the limit before any buffer is
//! allocated, so a hostile prefix of 4 GiB costs four bytes of reading.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::Serialize;

use crate::codes::ErrorCode;
use crate::message::{DecodeError, Versioned, decode_body, encode_body};

/// Bytes in the length prefix.
pub const LENGTH_PREFIX: usize = 4;

/// Why a byte stream does not hold a valid frame.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The length prefix is over the limit; the body was not read.
    #[error("frame of {length} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The announced length.
        length: u32,
        /// The limit.
        max: u32,
    },
    /// A zero-length frame: no message is empty.
    #[error("empty frame")]
    Empty,
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame ({got} of {expected} bytes)")]
    Truncated {
        /// Bytes received.
        got: usize,
        /// Bytes the prefix announced (including the prefix).
        expected: usize,
    },
    /// The body is not a valid message.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The transport failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl FrameError {
    /// The error code to reply with, when a reply is still possible.
    pub fn code(&self) -> ErrorCode {
        match self {
            FrameError::TooLarge { .. } => ErrorCode::FrameTooLarge,
            FrameError::Decode(e) => e.code(),
            FrameError::Empty | FrameError::Truncated { .. } | FrameError::Io(_) => {
                ErrorCode::MalformedMessage
            }
        }
    }
}

/// Checks a length prefix against the limit.
pub fn check_length(length: u32, max_frame_bytes: u32) -> Result<usize, FrameError> {
    if length == 0 {
        return Err(FrameError::Empty);
    }
    if length > max_frame_bytes {
        return Err(FrameError::TooLarge {
            length,
            max: max_frame_bytes,
        });
    }
    Ok(length as usize)
}

/// A sans-IO frame decoder over a byte buffer.
#[derive(Clone, Copy, Debug)]
pub struct FrameDecoder {
    max_frame_bytes: u32,
}

impl FrameDecoder {
    /// A decoder that refuses frames over `max_frame_bytes`.
    pub fn new(max_frame_bytes: u32) -> Self {
        Self { max_frame_bytes }
    }

    /// Takes one frame body off the front of `buf`.
    ///
    /// `Ok(None)` means "not enough bytes yet" and leaves `buf` untouched. An error
    /// means the stream is unusable and should be dropped.
    pub fn decode_frame(&self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        if buf.len() < LENGTH_PREFIX {
            return Ok(None);
        }
        let length = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let length = check_length(length, self.max_frame_bytes)?;
        if buf.len() < LENGTH_PREFIX + length {
            buf.reserve(LENGTH_PREFIX + length - buf.len());
            return Ok(None);
        }
        buf.advance(LENGTH_PREFIX);
        Ok(Some(buf.split_to(length).freeze()))
    }

    /// Takes one whole message off the front of `buf`.
    pub fn decode_message<T: Versioned>(
        &self,
        buf: &mut BytesMut,
    ) -> Result<Option<T>, FrameError> {
        match self.decode_frame(buf)? {
            Some(body) => Ok(Some(decode_body(&body)?)),
            None => Ok(None),
        }
    }

    /// Call at the end of the stream: leftover bytes mean a truncated frame.
    pub fn finish(&self, buf: &BytesMut) -> Result<(), FrameError> {
        if buf.is_empty() {
            return Ok(());
        }
        let expected = if buf.len() >= LENGTH_PREFIX {
            LENGTH_PREFIX + u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize
        } else {
            LENGTH_PREFIX
        };
        Err(FrameError::Truncated {
            got: buf.len(),
            expected,
        })
    }
}

/// Encodes a message as a whole frame (prefix and body), refusing one over the limit.
pub fn encode_frame<T: Serialize>(message: &T, max_frame_bytes: u32) -> Result<Bytes, FrameError> {
    let body = encode_body(message);
    let length = u32::try_from(body.len()).unwrap_or(u32::MAX);
    check_length(length, max_frame_bytes)?;
    let mut out = BytesMut::with_capacity(LENGTH_PREFIX + body.len());
    out.put_u32(length);
    out.extend_from_slice(&body);
    Ok(out.freeze())
}

impl tokio_util::codec::Decoder for FrameDecoder {
    type Item = Bytes;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        self.decode_frame(src)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        match self.decode_frame(src)? {
            Some(frame) => Ok(Some(frame)),
            None => self.finish(src).map(|()| None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Hello, Request, RequestBody};

    fn hello() -> Request {
        Request::new(RequestBody::Hello(Hello {
            device_time: 5,
            agent_version: "t".into(),
        }))
    }

    #[test]
    fn incomplete_is_not_an_error() {
        let frame = encode_frame(&hello(), 1024).unwrap();
        let decoder = FrameDecoder::new(1024);
        for cut in 0..frame.len() {
            let mut buf = BytesMut::from(&frame[..cut]);
            assert!(
                decoder
                    .decode_message::<Request>(&mut buf)
                    .unwrap()
                    .is_none()
            );
            assert_eq!(buf.len(), cut, "an incomplete frame is left in the buffer");
        }
        let mut buf = BytesMut::from(&frame[..]);
        assert_eq!(
            decoder.decode_message::<Request>(&mut buf).unwrap(),
            Some(hello())
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn oversized_prefix_is_refused_before_the_body() {
        let mut buf = BytesMut::from(&u32::MAX.to_be_bytes()[..]);
        let err = FrameDecoder::new(1024).decode_frame(&mut buf).unwrap_err();
        assert!(matches!(
            err,
            FrameError::TooLarge {
                length: u32::MAX,
                max: 1024
            }
        ));
        assert_eq!(err.code(), ErrorCode::FrameTooLarge);
        assert!(buf.capacity() < 1024, "no buffer was grown for the body");
    }

    #[test]
    fn encode_refuses_over_limit_and_empty_frames_are_invalid() {
        assert!(matches!(
            encode_frame(&hello(), 4),
            Err(FrameError::TooLarge { .. })
        ));
        let mut buf = BytesMut::from(&[0u8, 0, 0, 0][..]);
        assert!(matches!(
            FrameDecoder::new(16).decode_frame(&mut buf),
            Err(FrameError::Empty)
        ));
    }

    #[test]
    fn truncated_stream_is_reported_at_the_end() {
        let frame = encode_frame(&hello(), 1024).unwrap();
        let buf = BytesMut::from(&frame[..frame.len() - 1]);
        let err = FrameDecoder::new(1024).finish(&buf).unwrap_err();
        assert!(matches!(err, FrameError::Truncated { .. }));
    }
}
