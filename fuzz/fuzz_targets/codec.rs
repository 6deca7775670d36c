#![no_main]
// The properties are in napshare_core::fuzzing::codec (core/src/fuzzing/codec.rs).
libfuzzer_sys::fuzz_target!(|data: &[u8]| napshare_core::fuzzing::codec(data));
