#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fuzz::message::request_flags_since(data);
});
