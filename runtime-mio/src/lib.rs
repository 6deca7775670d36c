//! napshare on a hand-rolled mio event loop: one thread, one `Poll`, every socket of the
//! process in it, for the index server and a client alike (see `event_loop`). The protocol
//! is napshare-core's and the rest napshare-host's; this crate moves bytes. One thread on
//! purpose: with `loadgen` the server and the load generator fill both cores, and index
//! search is most of the server's time (BENCHMARKS.md, "The index server under load").

use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Instant;

use mio::net::TcpListener;
use napshare_host::{ClientSetup, Runtime, ServerSetup};

mod conn;
mod event_loop;

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

    fn run_server(listener: TcpListener, setup: ServerSetup) -> io::Result<()> {
        event_loop::run(listener, |feed| {
            setup.start(Instant::now(), move |input| feed(input))
        })
        .map(drop)
    }

    fn run_client(listener: TcpListener, setup: ClientSetup) -> io::Result<i32> {
        event_loop::run(listener, |feed| {
            setup.start(Instant::now(), move |input| feed(input))
        })
    }
}

/// The `napshare` command; `bin` is the name it was installed under.
pub fn main(bin: &'static str) -> ExitCode {
    napshare_host::main::<Mio>(bin)
}
