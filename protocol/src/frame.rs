//! Framing: a u32 big-endian length, then that many bytes of CBOR body.
//!
//! Check-then-parse (as mini-redis does): an incomplete frame is not an error, an
//! invalid one is; the length is checked against the limit before any byte of the body
//! is read, so a hostile prefix of 4 GiB costs four bytes of reading.
//!
//! Sans-IO: the decoder sees only the bytes its caller hands it. Each end drives it
//! from its own transport (the gateway's device endpoint, the agent's transport) with
//! a loop of a few lines: decode; if incomplete, read at most [`FrameDecoder::wanted`]
//! bytes and append them. So the buffer grows as bytes arrive, never to a length a
//! peer declared and then did not send, and a reader never takes bytes past the frame
//! (an upload chunk's raw bytes follow its header frame on the same stream).

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
}

impl FrameError {
    /// The error code to reply with, when a reply is still possible.
    pub fn code(&self) -> ErrorCode {
        match self {
            FrameError::TooLarge { .. } => ErrorCode::FrameTooLarge,
            FrameError::Decode(e) => e.code(),
            FrameError::Empty | FrameError::Truncated { .. } => ErrorCode::MalformedMessage,
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
    /// `Ok(None)` means "not enough bytes yet" and leaves `buf` untouched (nothing is
    /// reserved for the announced length: a peer that announces a megabyte and sends
    /// ten bytes holds ten bytes). An error means the stream is unusable and should be
    /// dropped.
    pub fn decode_frame(&self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        let Some(length) = self.frame_length(buf)? else {
            return Ok(None);
        };
        if buf.len() < LENGTH_PREFIX + length {
            return Ok(None);
        }
        buf.advance(LENGTH_PREFIX);
        Ok(Some(buf.split_to(length).freeze()))
    }

    /// How many more bytes the frame at the front of `buf` needs before it can be
    /// decoded: 0 once it is complete. A reader asks for at most this many, so it
    /// never takes bytes that follow the frame. An invalid length prefix is an error
    /// as soon as its four bytes are in.
    pub fn wanted(&self, buf: &[u8]) -> Result<usize, FrameError> {
        match self.frame_length(buf)? {
            None => Ok(LENGTH_PREFIX - buf.len()),
            Some(length) => Ok((LENGTH_PREFIX + length).saturating_sub(buf.len())),
        }
    }

    /// The checked body length, once the prefix is in.
    fn frame_length(&self, buf: &[u8]) -> Result<Option<usize>, FrameError> {
        let Some(prefix) = buf.first_chunk::<LENGTH_PREFIX>() else {
            return Ok(None);
        };
        check_length(u32::from_be_bytes(*prefix), self.max_frame_bytes).map(Some)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Hello, Request, RequestBody};

    fn hello() -> Request {
        Request::new(RequestBody::Hello(Hello {
            device_time: 5,
            agent_version: "t".into(),
            rules_digest: None,
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
    fn an_announced_length_reserves_nothing() {
        let frame = encode_frame(&hello(), 1 << 20).unwrap();
        let decoder = FrameDecoder::new(1 << 20);
        // A prefix announcing a megabyte, and ten bytes of body.
        let mut buf = BytesMut::from(&(1u32 << 20).to_be_bytes()[..]);
        buf.extend_from_slice(&[0; 10]);
        let before = buf.capacity();
        assert!(decoder.decode_frame(&mut buf).unwrap().is_none());
        assert_eq!(
            buf.capacity(),
            before,
            "nothing reserved for the announced length"
        );
        assert_eq!(decoder.wanted(&buf).unwrap(), (1 << 20) - 10);
        // A reader that asks for `wanted` bytes at a time stops exactly at the frame's end.
        let mut stream = frame.to_vec();
        stream.extend_from_slice(b"raw bytes after the frame");
        let mut buf = BytesMut::new();
        let mut at = 0;
        let got = loop {
            if let Some(message) = decoder.decode_message::<Request>(&mut buf).unwrap() {
                break message;
            }
            let want = decoder.wanted(&buf).unwrap();
            assert!(want > 0);
            let take = want.min(3);
            buf.extend_from_slice(&stream[at..at + take]);
            at += take;
        };
        assert_eq!(got, hello());
        assert_eq!(&stream[at..], b"raw bytes after the frame");
        assert_eq!(decoder.wanted(&[]).unwrap(), LENGTH_PREFIX);
        assert!(decoder.wanted(&u32::MAX.to_be_bytes()).is_err());
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
