#![no_main]
// The properties are in napshare_core::fuzzing::cluster (core/src/fuzzing/cluster.rs).
libfuzzer_sys::fuzz_target!(|data: &[u8]| napshare_core::fuzzing::cluster(data));
