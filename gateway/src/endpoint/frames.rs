//! The device endpoint's frame reader and writer: the async loop that drives
//! protocol's sans-IO [`FrameDecoder`] from a request stream.
//!
//! It asks the stream for at most [`FrameDecoder::wanted`] bytes at a time, so the
//! buffer grows as bytes arrive (a declared length reserves nothing) and no byte past
//! the frame is taken: an upload chunk's raw bytes stay on the stream for the staging
//! writer.

use bytes::BytesMut;
use protocol::frame::{FrameDecoder, FrameError, encode_frame};
use protocol::message::Versioned;
use serde::Serialize;

use media::ChunkSource;

/// Why a request frame could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// The bytes are not a valid frame (the device can be told why).
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The stream failed (reset, connection lost): nobody is left to answer.
    #[error("stream: {0}")]
    Stream(#[from] std::io::Error),
}

/// Reads one message. `Ok(None)` when the stream ends cleanly before a frame starts.
pub(crate) async fn read_message<T: Versioned, R: ChunkSource>(
    reader: &mut R,
    decoder: FrameDecoder,
) -> Result<Option<T>, ReadError> {
    let mut buf = BytesMut::new();
    loop {
        if let Some(message) = decoder.decode_message(&mut buf)? {
            return Ok(Some(message));
        }
        let wanted = decoder.wanted(&buf)?;
        match reader.next_piece(wanted).await? {
            Some(piece) => buf.extend_from_slice(&piece),
            // The stream ended: cleanly between frames, or inside one (an error).
            None => {
                decoder.finish(&buf)?;
                return Ok(None);
            }
        }
    }
}

/// Writes one message as a frame.
pub(crate) async fn write_message<T: Serialize>(
    send: &mut quinn::SendStream,
    message: &T,
    max_frame_bytes: u32,
) -> Result<(), WriteError> {
    let frame = encode_frame(message, max_frame_bytes)?;
    send.write_chunk(frame).await?;
    Ok(())
}

/// Why a reply could not be written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError {
    /// The reply is over the frame limit.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The stream failed.
    #[error("stream: {0}")]
    Stream(#[from] quinn::WriteError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::message::{Hello, Request, RequestBody};

    fn hello() -> Request {
        Request::new(RequestBody::Hello(Hello {
            device_time: 1,
            agent_version: "t".into(),
            rules_digest: None,
        }))
    }

    #[tokio::test]
    async fn reads_a_frame_and_leaves_what_follows() {
        let mut stream = encode_frame(&hello(), 1024).unwrap().to_vec();
        stream.extend_from_slice(b"media");
        let mut reader = &stream[..];
        let got = read_message::<Request, _>(&mut reader, FrameDecoder::new(1024))
            .await
            .unwrap();
        assert_eq!(got, Some(hello()));
        assert_eq!(reader, b"media");
        let mut empty: &[u8] = &[];
        assert_eq!(
            read_message::<Request, _>(&mut empty, FrameDecoder::new(1024))
                .await
                .unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn oversized_and_truncated_frames_are_frame_errors() {
        let mut oversized: &[u8] = &[0xff, 0xff, 0xff, 0xff, 1, 2, 3];
        let err = read_message::<Request, _>(&mut oversized, FrameDecoder::new(1024))
            .await
            .unwrap_err();
        assert!(matches!(err, ReadError::Frame(FrameError::TooLarge { .. })));
        assert_eq!(oversized, &[1, 2, 3], "the body was not read");
        let mut truncated: &[u8] = &[0, 0, 0, 10, 1, 2];
        let err = read_message::<Request, _>(&mut truncated, FrameDecoder::new(1024))
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            ReadError::Frame(FrameError::Truncated {
                got: 6,
                expected: 14
            })
        ));
    }
}
