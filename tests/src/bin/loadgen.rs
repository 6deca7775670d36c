//! `loadgen`: a load generator for classic-protocol index servers. See
//! `napshare_tests::loadgen` (`src/loadgen/mod.rs`) and `loadgen --help`.

fn main() -> std::process::ExitCode {
    napshare_tests::loadgen::main()
}
