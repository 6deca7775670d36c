//! napshare's protocol core: pure state machines for the index server, the client node and
//! its transfers, plus the wire codec they speak.
//!
//! Nothing here opens a socket, reads a clock, starts a thread or draws OS randomness.
//! A runtime (napshare-mio, napshare-smol) owns the sockets and files, feeds what happened
//! into a state machine, and carries out what the state machine asks for.
//!
//! # Run loop
//!
//! Inputs are `handle_*` methods (and user commands); outputs are `poll_*` methods that
//! return `None` when there is nothing more. The contract, for every state machine here:
//!
//! 1. feed exactly one input, passing the time the driver woke up as `now`;
//! 2. drain every `poll_*` output until it returns `None`, carrying each out;
//! 3. read `poll_timeout()` again and wait for I/O or that deadline, whichever is first;
//! 4. on the deadline, call `handle_timeout(now)` (safe to call early or twice).
//!
//! ```no_run
//! # use std::time::Instant;
//! # use napshare_core::server::{Server, ServerConfig};
//! # fn wait(_: Option<Instant>) -> (std::net::SocketAddr, Vec<u8>) { unimplemented!() }
//! let mut server = Server::new(Instant::now(), ServerConfig::default());
//! let conn = server.handle_accept(Instant::now(), "127.0.0.1:5000".parse().unwrap());
//! loop {
//!     let (_from, bytes) = wait(server.poll_timeout());
//!     server.handle_bytes(Instant::now(), conn, &bytes).unwrap();
//!     while let Some(t) = server.poll_transmit() { /* write t.data to t.conn */ }
//!     while let Some(c) = server.poll_close() { /* close c after its writes */ }
//!     while let Some(e) = server.poll_event() { /* log e */ }
//! }
//! ```
//!
//! A server configured with [`IndexAt::Driver`](server::IndexAt::Driver) (a cluster
//! gateway) adds two outputs to drain, `poll_search` (a search for the driver to answer,
//! say from a whole cluster) and `poll_share` (a session's whole share list to publish, or
//! its end), and one input, `handle_search_answer(now, token, merged)`, fed after the
//! drain like any other; the asking connection's later requests wait for it, in order.
//!
//! The client's loop is the same, with more kinds of output and of input. Two rules keep
//! its bytes in order:
//!
//! - **Bytes before the next command.** Drain `poll_transmit` before each `poll_command`,
//!   and again after it: a framed upload reply queues its header as bytes and then asks for
//!   the file range with [`Command::SendFile`](client::Command::SendFile); the header must
//!   reach the socket before the file does.
//! - **Facts after the drain.** What the driver learns while carrying out a command (a
//!   partial file opened, a piece hashed, a connect that failed at once, a file that
//!   cannot be opened for an upload, a connection that closed while being written) is
//!   kept and handed back through the matching `handle_*` input only once every `poll_*`
//!   returned `None`, then the drain starts again. Never call into a state machine from
//!   inside its drain: the client may be halfway through queuing a reply.
//!
//! ```no_run
//! # use std::collections::VecDeque;
//! # use std::time::Instant;
//! # use napshare_core::client::{Client, ClientConfig, Command};
//! # fn config() -> ClientConfig { unimplemented!() }
//! # fn write(_: napshare_core::Transmit) {}
//! # fn open_part(_: &std::path::Path) -> Result<u64, String> { unimplemented!() }
//! let mut client = Client::new(Instant::now(), config(), Vec::new());
//! let mut facts = VecDeque::new();
//! loop {
//!     let now = Instant::now();
//!     while let Some(t) = client.poll_transmit() {
//!         write(t); // bytes first, and again after every command
//!     }
//!     if let Some(cmd) = client.poll_command() {
//!         if let Command::OpenPart { download, path } = cmd {
//!             facts.push_back((download, open_part(&path))); // not handed over yet
//!         }
//!         continue;
//!     }
//!     if let Some(_event) = client.poll_event() {
//!         continue; // show it to the user
//!     }
//!     match facts.pop_front() {
//!         Some((download, opened)) => client.handle_part_opened(now, download, opened),
//!         None => break, // drained: read `poll_timeout` and wait for I/O
//!     }
//! }
//! ```
//!
//! napshare-host's `ClientNode` is this loop for both runtimes.
//!
//! # Errors and panics
//!
//! Bad bytes from a peer are that peer's problem: the line gets no reply, or the
//! connection is closed, and an event says why. Misuse of the API returns a `Result`. A
//! panic means a broken invariant of this crate, never bad input.

pub mod client;
pub mod cluster;
pub mod command;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod hash;
pub mod index;
pub mod names;
pub mod server;
pub mod wire;

/// One connection of a state machine. The state machine picks the ids (for connections it
/// accepts and for ones it asks to open) and never reuses one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// Bytes for the driver to write to one connection, in order after earlier ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub conn: ConnId,
    pub data: Vec<u8>,
}
