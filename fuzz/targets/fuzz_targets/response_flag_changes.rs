#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fuzz::message::response_flag_changes(data);
});
