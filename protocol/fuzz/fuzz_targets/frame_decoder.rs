//! Feeds arbitrary bytes to the frame decoder as a stream of frames: it must return
//! frames or errors, never panic or allocate past the frame limit.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use protocol::frame::FrameDecoder;
use protocol::message::{Request, Response};

fuzz_target!(|data: &[u8]| {
    let decoder = FrameDecoder::new(64 * 1024);
    let mut requests = BytesMut::from(data);
    while let Ok(Some(_)) = decoder.decode_message::<Request>(&mut requests) {}
    let mut responses = BytesMut::from(data);
    while let Ok(Some(_)) = decoder.decode_message::<Response>(&mut responses) {}
});
