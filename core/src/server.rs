//! The index server state machine.
//!
//! One [`Server`] holds every client connection and the index. The driver reports sockets
//! with [`Server::handle_accept`], [`Server::handle_bytes`] and [`Server::handle_closed`] and
//! then drains [`Server::poll_transmit`], [`Server::poll_close`] and [`Server::poll_event`].
//!
//! Towards a classic client it sends exactly the seed's bytes (PROTOCOL.md) and nothing
//! unsolicited: a line it cannot parse gets no reply and the connection stays open.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use crate::index::{Index, OwnerId};
use crate::wire::{LineBuf, LineError, ParseError, PeerAddr, Reply, Request, MAX_LINE};
use crate::{ConnId, Transmit};

/// Limits of the index server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Longest accepted request line, terminator included.
    pub max_line: usize,
    /// Most `FILE` lines one search returns.
    pub max_results: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_line: MAX_LINE,
            max_results: 1000,
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
}

/// The driver gave an id the server does not know (never accepted, or already closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown connection {0:?}")]
pub struct UnknownConn(pub ConnId);

#[derive(Debug)]
enum State {
    AwaitingJoin,
    Joined {
        peer: PeerAddr,
    },
    /// Replied to `LEAVE` (or refused the connection); waiting for the driver to close it.
    Closing,
}

#[derive(Debug)]
struct Conn {
    ip: IpAddr,
    owner: OwnerId,
    state: State,
    rx: LineBuf,
    tx: Vec<u8>,
}

/// The index server.
#[derive(Debug)]
pub struct Server {
    config: ServerConfig,
    index: Index,
    conns: BTreeMap<ConnId, Conn>,
    /// Connections with bytes in `tx`, in the order they got them.
    ready: VecDeque<ConnId>,
    closes: VecDeque<ConnId>,
    events: VecDeque<ServerEvent>,
    next_owner: u64,
}

impl Server {
    pub fn new(_now: Instant, config: ServerConfig) -> Self {
        Self {
            config,
            index: Index::new(),
            conns: BTreeMap::new(),
            ready: VecDeque::new(),
            closes: VecDeque::new(),
            events: VecDeque::new(),
            next_owner: 0,
        }
    }

    /// A client connected from `peer`; returns the id its bytes go by.
    pub fn handle_accept(&mut self, _now: Instant, peer: SocketAddr) -> ConnId {
        let conn = ConnId(self.next_owner);
        let owner = OwnerId(self.next_owner);
        self.next_owner += 1;
        let fresh = Conn {
            ip: peer.ip().to_canonical(),
            owner,
            state: State::AwaitingJoin,
            rx: LineBuf::new(self.config.max_line),
            tx: Vec::new(),
        };
        self.conns.insert(conn, fresh);
        conn
    }

    /// Bytes arrived on `conn`.
    pub fn handle_bytes(
        &mut self,
        _now: Instant,
        conn: ConnId,
        data: &[u8],
    ) -> Result<(), UnknownConn> {
        let c = self.conns.get_mut(&conn).ok_or(UnknownConn(conn))?;
        if matches!(c.state, State::Closing) {
            return Ok(());
        }
        c.rx.extend(data);
        let had_output = !c.tx.is_empty();
        while let Some(line) = c.rx.next_line() {
            let request = match line {
                Err(LineError::TooLong) => Err(ParseError::TooLong),
                Ok(l) if l.iter().all(u8::is_ascii_whitespace) => continue,
                Ok(l) => std::str::from_utf8(l)
                    .map_err(|_| ParseError::NotUtf8)
                    .and_then(Request::parse),
            };
            let mut at = At {
                ip: c.ip,
                owner: c.owner,
                state: &mut c.state,
                tx: &mut c.tx,
            };
            let outcome = Self::apply(&mut self.index, &self.config, &mut at, request);
            match outcome {
                Outcome::Ok => {}
                Outcome::Joined(peer) => self.events.push_back(ServerEvent::Joined { conn, peer }),
                Outcome::Bad(error) => self.events.push_back(ServerEvent::BadLine { conn, error }),
                Outcome::Close(reason) => {
                    let files = self.index.remove_owner(c.owner);
                    c.state = State::Closing;
                    self.closes.push_back(conn);
                    self.events.push_back(ServerEvent::Left {
                        conn,
                        files,
                        reason,
                    });
                    break;
                }
            }
        }
        if !had_output && !c.tx.is_empty() {
            self.ready.push_back(conn);
        }
        Ok(())
    }

    /// `conn` closed (EOF, error, or the driver closed it after [`Server::poll_close`]).
    /// Its files leave the index at once. Closing an unknown connection does nothing.
    pub fn handle_closed(&mut self, _now: Instant, conn: ConnId) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        if !matches!(c.state, State::Closing) {
            let files = self.index.remove_owner(c.owner);
            self.events.push_back(ServerEvent::Left {
                conn,
                files,
                reason: LeaveReason::Closed,
            });
        }
    }

    /// The next bytes to write; all of one connection's pending bytes come at once.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        while let Some(conn) = self.ready.pop_front() {
            let Some(c) = self.conns.get_mut(&conn) else {
                continue;
            };
            if !c.tx.is_empty() {
                let data = std::mem::take(&mut c.tx);
                return Some(Transmit { conn, data });
            }
        }
        None
    }

    /// A connection to close once the bytes already handed out for it are written.
    #[must_use]
    pub fn poll_close(&mut self) -> Option<ConnId> {
        self.closes.pop_front()
    }

    #[must_use]
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// The server has no timers yet: it never asks to be woken.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Connections currently open.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    fn apply(
        index: &mut Index,
        config: &ServerConfig,
        c: &mut At<'_>,
        request: Result<Request<'_>, ParseError>,
    ) -> Outcome {
        match (&*c.state, request) {
            (State::AwaitingJoin, Ok(Request::Join { addr })) => {
                let peer = PeerAddr::from_join(c.ip, addr);
                *c.state = State::Joined { peer };
                Reply::ConfirmJoin.encode(c.tx);
                Outcome::Joined(peer)
            }
            (State::AwaitingJoin, _) => Outcome::Close(LeaveReason::NoJoin),
            (State::Joined { .. }, Err(error)) => Outcome::Bad(error),
            (State::Joined { .. }, Ok(Request::Join { addr })) => {
                // A repeated JOIN may move the client's file server; its files follow.
                let peer = PeerAddr::from_join(c.ip, addr);
                index.set_peer(c.owner, peer);
                *c.state = State::Joined { peer };
                Reply::ConfirmJoin.encode(c.tx);
                Outcome::Joined(peer)
            }
            (State::Joined { peer }, Ok(Request::CreateFile { name, size })) => {
                index.register(c.owner, *peer, name, size);
                Reply::ConfirmCreateFile { name }.encode(c.tx);
                Outcome::Ok
            }
            (State::Joined { .. }, Ok(Request::DeleteFile { name })) => {
                index.unregister(c.owner, name);
                Reply::ConfirmDeleteFile { name }.encode(c.tx);
                Outcome::Ok
            }
            (State::Joined { .. }, Ok(Request::Search { pattern })) => {
                let tx = &mut *c.tx;
                let found = index.search(pattern, config.max_results, |hit| {
                    let peer = hit.peer.to_string();
                    Reply::File {
                        name: hit.name,
                        peer: &peer,
                        size: hit.size,
                    }
                    .encode(tx);
                });
                if found == 0 {
                    Reply::NoResult.encode(tx);
                }
                Reply::EndSearch.encode(tx);
                Outcome::Ok
            }
            (State::Joined { .. }, Ok(Request::Leave)) => {
                Reply::ConfirmLeave.encode(c.tx);
                Outcome::Close(LeaveReason::Leave)
            }
            (State::Closing, _) => Outcome::Ok,
        }
    }
}

/// The parts of a connection a request may change, borrowed apart from its receive buffer.
struct At<'a> {
    ip: IpAddr,
    owner: OwnerId,
    state: &'a mut State,
    tx: &'a mut Vec<u8>,
}

enum Outcome {
    Ok,
    Joined(PeerAddr),
    Bad(ParseError),
    Close(LeaveReason),
}
