//! The async side of framing: read and write whole messages over any
//! `AsyncRead`/`AsyncWrite` (a QUIC stream in production, a duplex pipe in tests).
//!
//! The length prefix is read and checked before the body buffer is allocated.

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::frame::{FrameError, LENGTH_PREFIX, check_length, encode_frame};
use crate::message::{Versioned, decode_body};

/// Reads one frame body. `Ok(None)` when the stream ends cleanly before a frame starts.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_frame_bytes: u32,
) -> Result<Option<Vec<u8>>, FrameError> {
    let mut prefix = [0u8; LENGTH_PREFIX];
    let mut got = 0;
    while got < LENGTH_PREFIX {
        let n = reader.read(&mut prefix[got..]).await?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            return Err(FrameError::Truncated {
                got,
                expected: LENGTH_PREFIX,
            });
        }
        got += n;
    }
    let length = check_length(u32::from_be_bytes(prefix), max_frame_bytes)?;
    let mut body = vec![0u8; length];
    let mut filled = 0;
    while filled < length {
        let n = reader.read(&mut body[filled..]).await?;
        if n == 0 {
            return Err(FrameError::Truncated {
                got: LENGTH_PREFIX + filled,
                expected: LENGTH_PREFIX + length,
            });
        }
        filled += n;
    }
    Ok(Some(body))
}

/// Reads one message. `Ok(None)` when the stream ends cleanly before a frame starts.
pub async fn read_message<T: Versioned, R: AsyncRead + Unpin>(
    reader: &mut R,
    max_frame_bytes: u32,
) -> Result<Option<T>, FrameError> {
    match read_frame(reader, max_frame_bytes).await? {
        Some(body) => Ok(Some(decode_body(&body)?)),
        None => Ok(None),
    }
}

/// Writes one message as a frame.
pub async fn write_message<T: Serialize, W: AsyncWrite + Unpin>(
    writer: &mut W,
    message: &T,
    max_frame_bytes: u32,
) -> Result<(), FrameError> {
    let frame = encode_frame(message, max_frame_bytes)?;
    writer.write_all(&frame).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Hello, Request, RequestBody};

    #[tokio::test]
    async fn round_trip_over_a_pipe() {
        let (mut a, mut b) = tokio::io::duplex(64);
        let msg = Request::new(RequestBody::Hello(Hello {
            device_time: 1,
            agent_version: "x".into(),
        }));
        let sent = msg.clone();
        let writer = tokio::spawn(async move {
            write_message(&mut a, &sent, 1024).await.unwrap();
            write_message(&mut a, &sent, 1024).await.unwrap();
        });
        assert_eq!(
            read_message::<Request, _>(&mut b, 1024).await.unwrap(),
            Some(msg.clone())
        );
        assert_eq!(
            read_message::<Request, _>(&mut b, 1024).await.unwrap(),
            Some(msg)
        );
        writer.await.unwrap();
        assert_eq!(
            read_message::<Request, _>(&mut b, 1024).await.unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn oversized_prefix_is_refused_unread() {
        let mut input: &[u8] = &[0xff, 0xff, 0xff, 0xff, 1, 2, 3];
        let err = read_frame(&mut input, 1024).await.unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { .. }));
        assert_eq!(input, &[1, 2, 3], "the body was not read");
    }

    #[tokio::test]
    async fn truncated_body_is_an_error() {
        let mut input: &[u8] = &[0, 0, 0, 10, 1, 2];
        assert!(matches!(
            read_frame(&mut input, 1024).await,
            Err(FrameError::Truncated {
                got: 6,
                expected: 14
            })
        ));
    }
}
