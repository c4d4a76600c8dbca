#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stateless_dcr::fuzzing::distinguished_name(data));
