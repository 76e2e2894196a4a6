#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fuzz::csv_rows::roster_csv(data);
});
