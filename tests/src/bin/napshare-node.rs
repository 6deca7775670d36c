//! `napshare-node`: the `napshare` command on the runtime named by the environment variable
//! `NAPSHARE_RUNTIME` (`mio`, the default when it is unset or empty, or `smol`).
//!
//! Integration tests start this one binary for every process and pick the runtime per
//! process, so that a server on one runtime can be tested against clients on another.

use std::env::{self, VarError};
use std::process::ExitCode;

/// Runtimes this binary can run, for the error message.
const KNOWN: &str = "mio, smol";

fn main() -> ExitCode {
    match env::var("NAPSHARE_RUNTIME") {
        Err(VarError::NotPresent) => napshare_mio::main("napshare"),
        Ok(name) => match name.as_str() {
            "" | "mio" => napshare_mio::main("napshare"),
            "smol" => napshare_smol::main("napshare-smol"),
            other => unknown(other),
        },
        Err(VarError::NotUnicode(name)) => unknown(&name.to_string_lossy()),
    }
}

fn unknown(name: &str) -> ExitCode {
    eprintln!("napshare-node: unknown NAPSHARE_RUNTIME `{name}` (known runtimes: {KNOWN})");
    ExitCode::from(2)
}
