//! The device protocol's frame decoder, fed a byte stream as a transport would.

use bytes::BytesMut;
use protocol::frame::FrameDecoder;
use protocol::message::{Request, Response};

use crate::Outcome;

/// The frame limit the target decodes with: small, so the fuzzer reaches the limit.
pub const MAX_FRAME_BYTES: u32 = 64 * 1024;

/// Reads `data` as a stream of request frames, then as a stream of response frames,
/// the way each endpoint's reader drives the decoder: decode; when a frame is
/// incomplete, `wanted` must ask for more. Accepted when the whole stream is complete
/// request frames.
pub fn frame_decoder(data: &[u8]) -> Outcome {
    let requests = read_stream::<Request>(data);
    read_stream::<Response>(data);
    requests
}

fn read_stream<T: protocol::message::Versioned>(data: &[u8]) -> Outcome {
    let decoder = FrameDecoder::new(MAX_FRAME_BYTES);
    let mut buf = BytesMut::from(data);
    loop {
        let before = buf.len();
        match decoder.decode_message::<T>(&mut buf) {
            Ok(Some(_)) => assert!(buf.len() < before, "a decoded frame consumes bytes"),
            Ok(None) => {
                assert_eq!(buf.len(), before, "an incomplete frame stays in the buffer");
                let wanted = decoder
                    .wanted(&buf)
                    .expect("a prefix the decoder waits on is a valid prefix");
                assert!(wanted > 0, "an incomplete frame wants more bytes");
                return Outcome::of(&decoder.finish(&buf));
            }
            Err(e) => {
                let _ = e.code();
                assert!(!e.to_string().is_empty());
                return Outcome::Refused;
            }
        }
    }
}
