#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stateless_dcr::fuzzing::initial_access_token(data));
