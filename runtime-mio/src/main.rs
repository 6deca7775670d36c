fn main() -> std::process::ExitCode {
    napshare_mio::main("napshare")
}
