//! napshare on a hand-rolled mio event loop: one thread, one `Poll`, every socket of the
//! process in it. The protocol lives in napshare-core; this crate moves bytes.

use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Instant;

use mio::net::TcpListener;
use mio::{Events, Poll, Token};
use napshare_core::server::ServerConfig;
use napshare_core::ConnId;
use napshare_host::{ClientSetup, Runtime};

mod client;
mod conn;
pub mod send;
mod server;

/// The mio runtime.
pub struct Mio;

impl Runtime for Mio {
    type Listener = TcpListener;

    fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
        TcpListener::bind(addr)
    }

    fn local_addr(listener: &TcpListener) -> io::Result<SocketAddr> {
        listener.local_addr()
    }

    fn run_server(listener: TcpListener, config: ServerConfig) -> io::Result<()> {
        server::run(listener, config)
    }

    fn run_client(listener: TcpListener, setup: ClientSetup) -> io::Result<i32> {
        client::run(listener, setup)
    }
}

/// The `napshare` command; `bin` is the name it was installed under.
pub fn main(bin: &'static str) -> ExitCode {
    napshare_host::main::<Mio>(bin)
}

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
