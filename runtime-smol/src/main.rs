fn main() -> std::process::ExitCode {
    napshare_smol::main("napshare-smol")
}
