//! napshare on a hand-rolled mio event loop: one thread, one `Poll`, every socket of the
//! process in it. The protocol lives in napshare-core; this crate moves bytes.

use std::io;
use std::process::ExitCode;
use std::time::Instant;

use mio::{Events, Poll, Token};
use napshare_core::host::cli::{ask_mode, Cli, Mode};
use napshare_core::server::ServerConfig;
use napshare_core::ConnId;

pub mod client;
mod conn;
pub mod server;

/// Size of the one read buffer each loop reuses for every socket.
const READ_BUF: usize = 64 * 1024;

/// The mio token of a connection: its core id (ids never reach `usize::MAX - 1`, which the
/// loops keep for their listeners and waker).
fn token(id: ConnId) -> Token {
    Token(id.0 as usize)
}

/// Waits for readiness or the core's deadline, whichever comes first.
fn poll_until(poll: &mut Poll, events: &mut Events, deadline: Option<Instant>) -> io::Result<()> {
    let timeout = deadline.map(|d| d.saturating_duration_since(Instant::now()));
    match poll.poll(events, timeout) {
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {
            events.clear();
            Ok(())
        }
        other => other,
    }
}

/// The `napshare` command; `bin` is the name it was installed under.
pub fn main(bin: &'static str) -> ExitCode {
    let cli = Cli::from_env(bin);
    let mode = match cli.mode {
        Some(mode) => mode,
        None => match ask_mode(&mut io::stdin().lock(), &mut io::stdout()) {
            Ok(mode) => mode,
            Err(e) => {
                eprintln!("napshare: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let result = match mode {
        Mode::Server(args) => run_server(&args),
        Mode::Client(args) => client::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("napshare: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_server(args: &napshare_core::host::cli::ServerArgs) -> Result<ExitCode, String> {
    let listener = std::net::TcpListener::bind(args.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("napshare server listening on {addr}");
    let config = ServerConfig {
        max_results: args.max_results,
        ..ServerConfig::default()
    };
    server::run(listener, config).map_err(|e| format!("server stopped: {e}"))?;
    Ok(ExitCode::SUCCESS)
}
