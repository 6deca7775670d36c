#![no_main]
// The properties are in napshare_core::fuzzing::server (core/src/fuzzing/server.rs).
use std::time::Instant;
libfuzzer_sys::fuzz_target!(|data: &[u8]| napshare_core::fuzzing::server(Instant::now(), data));
