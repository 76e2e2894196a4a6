//! The agent's frame reader and writer: the async loop that drives protocol's sans-IO
//! [`FrameDecoder`] from a reply stream.
//!
//! It asks the stream for at most [`FrameDecoder::wanted`] bytes at a time, so the
//! buffer grows as bytes arrive: a gateway (or something posing as one) that
//! announces a long reply and sends little makes the device hold little. Tests that
//! speak the protocol by hand (half a chunk, no client certificate) use it too.

use bytes::BytesMut;
use protocol::frame::{FrameDecoder, encode_frame};
use protocol::message::Versioned;
use serde::Serialize;

use super::ClientError;

/// Reads one message. `Ok(None)` when the stream ends cleanly before a frame starts.
pub async fn read_message<T: Versioned>(
    recv: &mut quinn::RecvStream,
    decoder: FrameDecoder,
) -> Result<Option<T>, ClientError> {
    let mut buf = BytesMut::new();
    loop {
        if let Some(message) = decoder.decode_message(&mut buf)? {
            return Ok(Some(message));
        }
        let wanted = decoder.wanted(&buf)?;
        match recv.read_chunk(wanted, true).await? {
            Some(chunk) => buf.extend_from_slice(&chunk.bytes),
            // The stream ended: cleanly between frames, or inside one (an error).
            None => {
                decoder.finish(&buf)?;
                return Ok(None);
            }
        }
    }
}

/// Writes one message as a frame.
pub async fn write_message<T: Serialize>(
    send: &mut quinn::SendStream,
    message: &T,
    max_frame_bytes: u32,
) -> Result<(), ClientError> {
    send.write_chunk(encode_frame(message, max_frame_bytes)?)
        .await?;
    Ok(())
}
