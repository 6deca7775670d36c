#![no_main]
// The properties are in napshare_core::fuzzing::get_request (core/src/fuzzing/get_request.rs).
libfuzzer_sys::fuzz_target!(|data: &[u8]| napshare_core::fuzzing::get_request(data));
