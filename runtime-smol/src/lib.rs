//! napshare on smol: one task owns the core; every connection has one task that reads and
//! writes it, fed from a queue the core's task fills (see `conn` for why one task, not a
//! reader and a writer); one `Timer` is re-armed from the core's `poll_timeout`. All tasks
//! run on one thread (a `LocalExecutor`), so nothing is shared across threads but the input
//! channel that standard input feeds.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;
use std::time::Instant;

use napshare_core::server::ServerConfig;
use napshare_host::{ClientSetup, Runtime};
use smol::{future, Async, Timer};

mod client;
mod conn;
mod server;

/// The smol runtime.
pub struct Smol;

impl Runtime for Smol {
    type Listener = Async<TcpListener>;

    fn bind(addr: SocketAddr) -> io::Result<Self::Listener> {
        Async::<TcpListener>::bind(addr)
    }

    fn local_addr(listener: &Self::Listener) -> io::Result<SocketAddr> {
        listener.get_ref().local_addr()
    }

    fn run_server(listener: Self::Listener, config: ServerConfig) -> io::Result<()> {
        server::run(listener, config)
    }

    fn run_client(listener: Self::Listener, setup: ClientSetup) -> io::Result<i32> {
        client::run(listener, setup)
    }
}

/// The `napshare-smol` command; `bin` is the name it was installed under.
pub fn main(bin: &'static str) -> ExitCode {
    napshare_host::main::<Smol>(bin)
}

/// Waits for the next input, or `None` once `deadline` passes. `timer` is the one timer
/// of the loop, re-armed here from the core's deadline on every call.
async fn next_input<T>(
    inputs: &smol::channel::Receiver<T>,
    timer: &mut Timer,
    deadline: Option<Instant>,
) -> Option<T> {
    match deadline {
        Some(at) => timer.set_at(at),
        None => *timer = Timer::never(),
    }
    future::or(async { inputs.recv().await.ok() }, async {
        timer.await;
        None
    })
    .await
}
