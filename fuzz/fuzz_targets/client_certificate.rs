#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stateless_dcr::fuzzing::client_certificate(data));
