//! What the driver sets and what it is told: the server's limits, its events, its errors.

use std::time::Duration;

use crate::wire::{ParseError, PeerAddr, MAX_LINE};
use crate::ConnId;

/// Limits of the index server. Each one, when exceeded, affects only the connection that
/// exceeded it.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Longest accepted request line, terminator included.
    pub max_line: usize,
    /// Most `FILE` lines one search returns.
    pub max_results: usize,
    /// Most files one connection may share; more are refused.
    pub max_files: usize,
    /// How long a new connection may take to send `JOIN` before it is closed.
    pub join_timeout: Duration,
    /// How long a connection that agreed to the extension may stay silent before it is
    /// taken for gone (its files leave the index); its client pings well within this.
    /// Classic clients are never timed out: they have no way to show they are alive.
    /// `None`: nobody is.
    pub idle_timeout: Option<Duration>,
    /// Most connections open at once; the driver closes any more at once.
    pub max_connections: usize,
    /// Most reply bytes waiting to be written to one connection: a client that stops
    /// reading is dropped, not buffered without bound. Replies to one read of requests
    /// that pass this by more than [`SOCKET_BUFFER_MAX`] (more than any socket could have
    /// taken) drop the connection before the rest are built.
    pub max_queued: usize,
    /// Where the index lives: in the server, which answers `SEARCH` and `FIND` at once, or
    /// with the driver (a cluster gateway, whose index is the whole network's).
    pub index: IndexAt,
    /// With [`IndexAt::Driver`], how long share-list changes gather before the changed
    /// sessions' lists go to the driver, one whole list per session.
    pub share_batch: Duration,
}

/// How long an extension connection may stay silent by default (`--idle-timeout`).
///
/// A napshare client pings when it has sent nothing for a third of the idle timeout the
/// server names in `CONFIRMJOIN NAPSHARE/1 <secs>` (6.7 s here), so a live client is never
/// silent for more than a third of it; a frozen one (SIGSTOP, power lost, cable pulled:
/// no FIN) sends its last byte at the latest when it freezes, and is dropped, its files
/// leaving the index, at most this long after ([`FROZEN_BOUND`]). Twenty seconds keeps
/// that well within the bound while a live client must miss two pings in a row (13 s
/// late) before it is taken for gone. The cost is one `PING`/`PONG` (5 bytes each way)
/// per idle client every 6.7 s: 15,000 idle clients make about 2,250 pings a second.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(20);

/// With the defaults, a frozen napshare client has left the index this long after it froze
/// at the latest.
pub const FROZEN_BOUND: Duration = Duration::from_secs(30);

/// Where the server's index is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IndexAt {
    /// The server's own index: searches are answered at once.
    #[default]
    Local,
    /// The driver's. Each search becomes a [`SearchRequest`](super::SearchRequest) from
    /// [`Server::poll_search`](super::Server::poll_search), answered later with
    /// [`Server::handle_search_answer`](super::Server::handle_search_answer); meanwhile
    /// the asking connection's further requests wait, in order. What each session shares
    /// goes to the driver as whole lists from
    /// [`Server::poll_share`](super::Server::poll_share); the server keeps no index.
    Driver,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_line: MAX_LINE,
            max_results: 1000,
            max_files: 10_000,
            join_timeout: Duration::from_secs(10),
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            max_connections: 16_384,
            max_queued: 1 << 20,
            index: IndexAt::Local,
            share_batch: Duration::from_millis(100),
        }
    }
}

/// Something that happened, for logs and tests; nothing needs to act on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    Joined {
        conn: ConnId,
        peer: PeerAddr,
    },
    /// The connection is gone and its files with it.
    Left {
        conn: ConnId,
        files: usize,
        reason: LeaveReason,
    },
    /// A line was not understood; it got no reply.
    BadLine {
        conn: ConnId,
        error: ParseError,
    },
    /// A request was refused because it would pass a limit.
    Refused {
        conn: ConnId,
        limit: &'static str,
    },
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaveReason {
    /// The client sent `LEAVE`.
    Leave,
    /// The socket closed or failed.
    Closed,
    /// The first line was not `JOIN` (the seed closes in that case too).
    NoJoin,
    /// No `JOIN` within the join timeout.
    JoinTimeout,
    /// An extension client stayed silent past the idle timeout (no `PING` either): it
    /// vanished without closing.
    Silent,
    /// It stopped reading: more than the queued-bytes limit waited for it (or it asked,
    /// in one read, for more replies than could wait for it: see [`SOCKET_BUFFER_MAX`]).
    TooSlow,
}

/// The driver gave an id the server does not know (never accepted, or already closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown connection {0:?}")]
pub struct UnknownConn(pub ConnId);

/// Linux's largest default socket send buffer (`tcp_wmem`). A read of requests whose
/// replies pass [`ServerConfig::max_queued`] by more than this would leave more than the
/// limit queued whatever the socket took, so its connection is dropped as too slow before
/// the remaining replies are built: otherwise 64 KiB of pipelined `SEARCH`es for a common
/// word could make the server spend a second and hundreds of megabytes on one client.
pub const SOCKET_BUFFER_MAX: usize = 4 << 20;

/// How long an unterminated request may sit before it is taken as a whole line: some
/// classic clients send no line ending and wait for the reply.
pub const QUIET: std::time::Duration = crate::client::QUIET;
