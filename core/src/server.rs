//! The index server state machine.
//!
//! One [`Server`] holds every client connection and the index. The driver reports sockets
//! with [`Server::handle_accept`], [`Server::handle_bytes`] and [`Server::handle_closed`] and
//! then drains [`Server::poll_transmit`], [`Server::poll_close`] and [`Server::poll_event`].
//!
//! Towards a classic client it sends exactly the seed's bytes (PROTOCOL.md) and nothing
//! unsolicited: a line it cannot parse gets no reply and the connection stays open.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::index::{Index, OwnerId};
use crate::wire::{
    encode_file, has_control, split_join, ExtReply, ExtRequest, LineBuf, LineError, ParseError,
    PeerAddr, Reply, Request, MAX_LINE,
};
use crate::{ConnId, Transmit};

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
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_line: MAX_LINE,
            max_results: 1000,
            max_files: 10_000,
            join_timeout: Duration::from_secs(10),
            idle_timeout: Some(Duration::from_secs(60)),
            max_connections: 16_384,
            max_queued: 1 << 20,
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

#[derive(Debug)]
enum State {
    AwaitingJoin,
    /// `ext`: the client asked for the napshare extension and got it.
    Joined {
        peer: PeerAddr,
        ext: bool,
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
    /// When an unterminated line in `rx` is taken as whole (see [`QUIET`]).
    partial_due: Option<Instant>,
    /// When the connection is closed for silence: before `JOIN`, the join timeout; on an
    /// extension connection, the idle timeout after its last byte.
    silent_due: Option<Instant>,
    /// The earlier of the two: this connection's key in [`Server`]'s timer set.
    due: Option<Instant>,
}

impl Conn {
    /// Restarts the silence clock after bytes arrived at `now`: an extension client may
    /// stay silent for the idle timeout; a joined classic client is never timed out.
    fn heard_from(&mut self, now: Instant, config: &ServerConfig) {
        match self.state {
            State::Joined { ext: true, .. } => {
                self.silent_due = config.idle_timeout.map(|idle| now + idle);
            }
            State::Joined { ext: false, .. } => self.silent_due = None,
            State::AwaitingJoin | State::Closing => {}
        }
    }

    /// Files `timers` under the connection's next deadline.
    fn reschedule(&mut self, conn: ConnId, timers: &mut BTreeSet<(Instant, ConnId)>) {
        if let Some(old) = self.due.take() {
            timers.remove(&(old, conn));
        }
        if matches!(self.state, State::Closing) {
            return;
        }
        self.due = self.partial_due.into_iter().chain(self.silent_due).min();
        if let Some(due) = self.due {
            timers.insert((due, conn));
        }
    }
}

/// Linux's largest default socket send buffer (`tcp_wmem`). A read of requests whose
/// replies pass [`ServerConfig::max_queued`] by more than this would leave more than the
/// limit queued whatever the socket took, so its connection is dropped as too slow before
/// the remaining replies are built: otherwise 64 KiB of pipelined `SEARCH`es for a common
/// word could make the server spend a second and hundreds of megabytes on one client.
pub const SOCKET_BUFFER_MAX: usize = 4 << 20;

/// How long an unterminated request may sit before it is taken as a whole line: some
/// classic clients send no line ending and wait for the reply.
pub const QUIET: std::time::Duration = crate::client::QUIET;

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
    /// Connections with a deadline (an unterminated line, or a silence limit), by when.
    timers: BTreeSet<(Instant, ConnId)>,
    /// Emptied reply buffers the driver gave back ([`Server::recycle`]), for the next
    /// connection that has something to say: no allocation per reply.
    spare: Vec<Vec<u8>>,
}

/// Most buffers [`Server::recycle`] keeps.
const SPARE_BUFFERS: usize = 64;
/// A buffer bigger than this (a long search reply) is freed rather than kept.
const SPARE_CAPACITY: usize = 64 * 1024;

/// The parts of the server a request line may change, borrowed apart from the connections.
struct Ctx<'a> {
    index: &'a mut Index,
    config: &'a ServerConfig,
    events: &'a mut VecDeque<ServerEvent>,
    closes: &'a mut VecDeque<ConnId>,
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
            timers: BTreeSet::new(),
            spare: Vec::new(),
        }
    }

    /// A client connected from `peer`; returns the id its bytes go by.
    pub fn handle_accept(&mut self, now: Instant, peer: SocketAddr) -> ConnId {
        let conn = ConnId(self.next_owner);
        let owner = OwnerId(self.next_owner);
        self.next_owner += 1;
        let fresh = Conn {
            ip: peer.ip().to_canonical(),
            owner,
            state: State::AwaitingJoin,
            rx: LineBuf::new(self.config.max_line),
            tx: Vec::new(),
            partial_due: None,
            silent_due: Some(now + self.config.join_timeout),
            due: None,
        };
        let c = self.conns.entry(conn).or_insert(fresh);
        c.reschedule(conn, &mut self.timers);
        conn
    }

    /// Bytes arrived on `conn`.
    pub fn handle_bytes(
        &mut self,
        now: Instant,
        conn: ConnId,
        data: &[u8],
    ) -> Result<(), UnknownConn> {
        let Self {
            conns,
            index,
            config,
            events,
            closes,
            ready,
            timers,
            spare,
            ..
        } = self;
        let c = conns.get_mut(&conn).ok_or(UnknownConn(conn))?;
        if matches!(c.state, State::Closing) {
            return Ok(());
        }
        let mut ctx = Ctx {
            index,
            config,
            events,
            closes,
        };
        if c.tx.capacity() == 0 {
            if let Some(buf) = spare.pop() {
                c.tx = buf;
            }
        }
        let had_output = !c.tx.is_empty();
        let (ip, owner) = (c.ip, c.owner);
        let burst = config.max_queued.saturating_add(SOCKET_BUFFER_MAX);
        c.rx.feed(data, |line| {
            let at = At {
                ip,
                owner,
                state: &mut c.state,
                tx: &mut c.tx,
            };
            if !ctx.serve(conn, at, line) {
                return false;
            }
            if c.tx.len() > burst {
                // It would be dropped for this backlog anyway, once it was built.
                c.tx = Vec::new();
                ctx.close(conn, owner, &mut c.state, LeaveReason::TooSlow);
                return false;
            }
            true
        });
        // An unterminated line is due after a quiet time, counted from its last byte; an
        // extension client's silence is counted from it too.
        c.partial_due = (!c.rx.partial().is_empty()).then_some(now + QUIET);
        c.heard_from(now, config);
        c.reschedule(conn, timers);
        if !had_output && !c.tx.is_empty() {
            ready.push_back(conn);
        }
        Ok(())
    }

    /// Acts on the deadlines that have passed: takes unterminated lines that waited
    /// [`QUIET`] as whole lines, and closes connections silent past their limit. Safe to
    /// call at any time.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&(due, conn)) = self.timers.first() {
            if due > now {
                return;
            }
            self.timers.pop_first();
            let Self {
                conns,
                index,
                config,
                events,
                closes,
                ready,
                timers,
                ..
            } = self;
            let Some(c) = conns.get_mut(&conn) else {
                continue;
            };
            c.due = None;
            let mut ctx = Ctx {
                index,
                config,
                events,
                closes,
            };
            let had_output = !c.tx.is_empty();
            if c.silent_due.is_some_and(|d| d <= now) {
                let reason = match c.state {
                    State::AwaitingJoin => LeaveReason::JoinTimeout,
                    _ => LeaveReason::Silent,
                };
                ctx.close(conn, c.owner, &mut c.state, reason);
                continue;
            }
            if c.partial_due.is_some_and(|d| d <= now) {
                c.partial_due = None;
                if let Some(line) = c.rx.take_partial() {
                    let at = At {
                        ip: c.ip,
                        owner: c.owner,
                        state: &mut c.state,
                        tx: &mut c.tx,
                    };
                    ctx.serve(conn, at, Ok(&line));
                    c.heard_from(now, config);
                }
            }
            if !had_output && !c.tx.is_empty() {
                ready.push_back(conn);
            }
            c.reschedule(conn, timers);
        }
    }

    /// `conn` closed (EOF, error, or the driver closed it after [`Server::poll_close`]).
    /// Its files leave the index at once. Closing an unknown connection does nothing.
    pub fn handle_closed(&mut self, _now: Instant, conn: ConnId) {
        self.forget(conn, LeaveReason::Closed);
    }

    /// Forgets `conn`: its timer, and its files unless it already left; says why.
    fn forget(&mut self, conn: ConnId, reason: LeaveReason) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        if let Some(due) = c.due {
            self.timers.remove(&(due, conn));
        }
        if !matches!(c.state, State::Closing) {
            let files = self.index.remove_owner(c.owner);
            self.events.push_back(ServerEvent::Left {
                conn,
                files,
                reason,
            });
        }
    }

    /// The most reply bytes a driver holds for one connection (`--max-queued`): past it,
    /// it stops reading from the connection and tells [`Server::handle_backlog`].
    pub fn max_queued(&self) -> usize {
        self.config.max_queued
    }

    /// Whether another connection may be accepted; the driver closes one that comes when
    /// not.
    pub fn has_room(&self) -> bool {
        self.conns.len() < self.config.max_connections
    }

    /// The driver holds `queued` bytes not yet written to `conn`. Past the limit the
    /// connection is dropped (its files leave at once) and this returns `true`: the driver
    /// closes the socket without writing the rest.
    pub fn handle_backlog(&mut self, _now: Instant, conn: ConnId, queued: usize) -> bool {
        if queued <= self.config.max_queued {
            return false;
        }
        self.forget(conn, LeaveReason::TooSlow);
        true
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

    /// Gives back the buffer of a [`Transmit`] once its bytes are written (or copied), so
    /// that a later reply is built in it instead of a new allocation. Optional: a driver
    /// that keeps its buffers loses only that.
    pub fn recycle(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() <= SPARE_CAPACITY && self.spare.len() < SPARE_BUFFERS {
            buf.clear();
            self.spare.push(buf);
        }
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

    /// When to call [`Server::handle_timeout`] next: the earliest deadline of any
    /// connection.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first().map(|(due, _)| *due)
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Connections currently open.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }
}

impl Ctx<'_> {
    /// Serves one line of `conn`; returns `false` once the connection is closing.
    fn serve(&mut self, conn: ConnId, mut at: At<'_>, line: Result<&[u8], LineError>) -> bool {
        let ext = matches!(at.state, State::Joined { ext: true, .. });
        let request = match line {
            Err(LineError::TooLong) => Err(ParseError::TooLong),
            Ok(l) if l.iter().all(u8::is_ascii_whitespace) => return true,
            Ok(l) => std::str::from_utf8(l)
                .map_err(|_| ParseError::NotUtf8)
                .and_then(|text| parse_line(text, ext)),
        };
        match Server::apply(self.index, self.config, &mut at, request) {
            Outcome::Ok => {}
            Outcome::Joined(peer) => self.events.push_back(ServerEvent::Joined { conn, peer }),
            Outcome::Bad(error) => self.events.push_back(ServerEvent::BadLine { conn, error }),
            Outcome::Refused(limit) => self.events.push_back(ServerEvent::Refused { conn, limit }),
            Outcome::Close(reason) => {
                self.close(conn, at.owner, at.state, reason);
                return false;
            }
        }
        true
    }

    /// Ends a connection on the server's side: its files leave at once, and the driver
    /// closes it after the bytes already queued.
    fn close(&mut self, conn: ConnId, owner: OwnerId, state: &mut State, reason: LeaveReason) {
        let files = self.index.remove_owner(owner);
        *state = State::Closing;
        self.closes.push_back(conn);
        self.events.push_back(ServerEvent::Left {
            conn,
            files,
            reason,
        });
    }
}

impl Server {
    fn apply(
        index: &mut Index,
        config: &ServerConfig,
        c: &mut At<'_>,
        request: Result<Parsed<'_>, ParseError>,
    ) -> Outcome {
        use Parsed::{Classic, Ext};
        match (&*c.state, request) {
            (State::AwaitingJoin, Ok(Classic(Request::Join { addr }))) => {
                let (addr, ext) = split_join(addr);
                let peer = PeerAddr::from_join(c.ip, addr);
                *c.state = State::Joined { peer, ext };
                confirm_join(ext, config, c.tx);
                Outcome::Joined(peer)
            }
            (State::AwaitingJoin, _) => Outcome::Close(LeaveReason::NoJoin),
            (State::Joined { ext, .. }, Err(error)) => {
                if *ext {
                    let message = error.to_string().into();
                    ExtReply::Error { message }.encode(c.tx);
                }
                Outcome::Bad(error)
            }
            (State::Joined { .. }, Ok(Classic(Request::Join { addr }))) => {
                // A repeated JOIN may move the client's file server; its files follow.
                let (addr, ext) = split_join(addr);
                let peer = PeerAddr::from_join(c.ip, addr);
                index.set_peer(c.owner, peer);
                *c.state = State::Joined { peer, ext };
                confirm_join(ext, config, c.tx);
                Outcome::Joined(peer)
            }
            (
                State::Joined { ext, .. },
                Ok(Classic(Request::CreateFile { .. }) | Ext(ExtRequest::AddFile { .. })),
            ) if index.owner_len(c.owner) >= config.max_files => {
                if *ext {
                    let message = format!("too many files (at most {})", config.max_files).into();
                    ExtReply::Error { message }.encode(c.tx);
                }
                Outcome::Refused("files per client")
            }
            (State::Joined { peer, .. }, Ok(Classic(Request::CreateFile { name, size }))) => {
                index.register(c.owner, *peer, name, size, None);
                Reply::ConfirmCreateFile { name }.encode(c.tx);
                Outcome::Ok
            }
            (State::Joined { .. }, Ok(Classic(Request::DeleteFile { name }))) => {
                index.unregister(c.owner, name);
                Reply::ConfirmDeleteFile { name }.encode(c.tx);
                Outcome::Ok
            }
            (State::Joined { .. }, Ok(Classic(Request::Search { pattern }))) => {
                let tx = &mut *c.tx;
                let found = index.search(pattern, config.max_results, |hit| {
                    // A classic line cannot carry a name with a line break or other control
                    // character (only the extension can): such names are left out.
                    if has_control(hit.name) {
                        return false;
                    }
                    let peer = hit.peer_text.as_bytes();
                    encode_file(tx, hit.name, |out| out.extend_from_slice(peer), hit.size);
                    true
                });
                if found == 0 {
                    Reply::NoResult.encode(tx);
                }
                Reply::EndSearch.encode(tx);
                Outcome::Ok
            }
            (State::Joined { .. }, Ok(Classic(Request::Leave))) => {
                Reply::ConfirmLeave.encode(c.tx);
                Outcome::Close(LeaveReason::Leave)
            }
            (State::Joined { peer, .. }, Ok(Ext(ExtRequest::AddFile { name, size, hash }))) => {
                index.register(c.owner, *peer, &name, size, Some(hash));
                ExtReply::ConfirmAddFile { name }.encode(c.tx);
                Outcome::Ok
            }
            (State::Joined { .. }, Ok(Ext(ExtRequest::Ping))) => {
                ExtReply::Pong.encode(c.tx);
                Outcome::Ok
            }
            (State::Joined { .. }, Ok(Ext(ExtRequest::DelFile { name }))) => {
                index.unregister(c.owner, &name);
                ExtReply::ConfirmDelFile { name }.encode(c.tx);
                Outcome::Ok
            }
            (State::Joined { .. }, Ok(Ext(ExtRequest::Find { pattern }))) => {
                let tx = &mut *c.tx;
                let count = index.search(&pattern, config.max_results, |hit| {
                    ExtReply::Found {
                        name: hit.name.into(),
                        peer: hit.peer_text,
                        size: hit.size,
                        hash: hit.hash,
                    }
                    .encode(tx);
                    true
                });
                ExtReply::EndFind {
                    count: count as u64,
                }
                .encode(tx);
                Outcome::Ok
            }
            (State::Closing, _) => Outcome::Ok,
        }
    }
}

/// A request line: classic, or (on a connection that agreed to it) the extension.
enum Parsed<'a> {
    Classic(Request<'a>),
    Ext(ExtRequest<'a>),
}

/// Parses a line as a classic request, or as an extension request where the extension is on.
fn parse_line(text: &str, ext: bool) -> Result<Parsed<'_>, ParseError> {
    match Request::parse(text) {
        Err(ParseError::UnknownCommand) if ext => ExtRequest::parse(text).map(Parsed::Ext),
        other => other.map(Parsed::Classic),
    }
}

fn confirm_join(ext: bool, config: &ServerConfig, tx: &mut Vec<u8>) {
    if ext {
        let idle = config.idle_timeout.map(|d| d.as_secs().max(1));
        ExtReply::ConfirmJoin { idle }.encode(tx);
    } else {
        Reply::ConfirmJoin.encode(tx);
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
    /// Refused by the named limit.
    Refused(&'static str),
    Close(LeaveReason),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::ContentHash;

    struct Fixture {
        server: Server,
        now: Instant,
    }

    impl Fixture {
        #[allow(clippy::disallowed_methods)] // the one real instant a test starts from
        fn new() -> Self {
            let now = Instant::now();
            Self {
                server: Server::new(now, ServerConfig::default()),
                now,
            }
        }

        fn connect(&mut self, port: u16) -> ConnId {
            let addr = SocketAddr::from(([10, 0, 0, 1], port));
            self.server.handle_accept(self.now, addr)
        }

        /// Sends `lines` on `conn` and returns everything the server answered.
        fn say(&mut self, conn: ConnId, lines: &str) -> String {
            self.server
                .handle_bytes(self.now, conn, lines.as_bytes())
                .unwrap();
            let mut out = Vec::new();
            while let Some(t) = self.server.poll_transmit() {
                assert_eq!(t.conn, conn);
                out.extend(t.data);
            }
            String::from_utf8(out).unwrap()
        }
    }

    #[test]
    fn a_line_without_an_end_is_answered_after_the_quiet_time() {
        let mut f = Fixture::new();
        let c = f.connect(1);
        assert_eq!(f.say(c, "JOIN x"), "");
        let due = f
            .server
            .poll_timeout()
            .expect("a deadline for the partial line");
        f.server
            .handle_timeout(due - std::time::Duration::from_millis(1));
        assert!(f.server.poll_transmit().is_none(), "not before it is due");
        f.server.handle_timeout(due);
        let t = f.server.poll_transmit().expect("the reply");
        assert_eq!(t.data, b"CONFIRMJOIN\n");
        assert_eq!(f.server.poll_timeout(), None);
        // More bytes before the deadline push it back and complete the line normally.
        assert_eq!(f.say(c, "SEARCH "), "");
        assert_eq!(f.say(c, "x\n"), "NORESULT\nENDSEARCH\n");
        assert_eq!(f.server.poll_timeout(), None);
    }

    #[test]
    fn a_connection_that_never_joins_is_closed_after_the_join_timeout() {
        let mut f = Fixture::new();
        let c = f.connect(1);
        let due = f.server.poll_timeout().expect("the join deadline");
        assert_eq!(due, f.now + ServerConfig::default().join_timeout);
        f.server.handle_timeout(due);
        assert_eq!(f.server.poll_close(), Some(c));
        let left = std::iter::from_fn(|| f.server.poll_event()).any(|e| {
            matches!(
                e,
                ServerEvent::Left {
                    reason: LeaveReason::JoinTimeout,
                    ..
                }
            )
        });
        assert!(left);
        // A classic client that joined is never timed out.
        let d = f.connect(2);
        assert_eq!(f.say(d, "JOIN x\n"), "CONFIRMJOIN\n");
        assert_eq!(f.server.poll_timeout(), None);
    }

    #[test]
    fn a_silent_extension_client_is_taken_for_gone_and_a_pinging_one_is_not() {
        let mut f = Fixture::new();
        let idle = ServerConfig::default().idle_timeout.unwrap();
        let quiet = f.connect(1);
        let alive = f.connect(2);
        let hash = ContentHash([3; 32]);
        assert_eq!(
            f.say(
                quiet,
                &format!("JOIN x NAPSHARE/1\nADDFILE gone.txt 1 {hash}\n")
            ),
            format!(
                "CONFIRMJOIN NAPSHARE/1 {}\nCONFIRMADDFILE gone.txt\n",
                idle.as_secs()
            )
        );
        f.say(
            alive,
            &format!("JOIN y NAPSHARE/1\nADDFILE here.txt 1 {hash}\n"),
        );
        // Half-way, the live client pings; the quiet one says nothing.
        f.now += idle / 2;
        assert_eq!(f.say(alive, "PING\n"), "PONG\n");
        f.now += idle / 2;
        f.server.handle_timeout(f.now);
        assert_eq!(f.server.poll_close(), Some(quiet));
        assert_eq!(f.server.poll_close(), None);
        let mut names = Vec::new();
        f.server.index().search("", 10, |h| {
            names.push(h.name.to_owned());
            true
        });
        assert_eq!(names, ["here.txt"]);
    }

    #[test]
    fn files_beyond_the_limit_are_refused_and_the_session_goes_on() {
        let mut f = Fixture::new();
        let config = ServerConfig {
            max_files: 2,
            ..ServerConfig::default()
        };
        f.server = Server::new(f.now, config);
        let c = f.connect(1);
        f.say(c, "JOIN x\nCREATEFILE a 1\nCREATEFILE b 1\n");
        assert_eq!(f.say(c, "CREATEFILE c 1\n"), "", "classic: no reply");
        assert_eq!(
            f.say(c, "SEARCH \n"),
            "FILE a 10.0.0.1 1\nFILE b 10.0.0.1 1\nENDSEARCH\n"
        );
        let e = f.connect(2);
        let hash = ContentHash([1; 32]);
        f.say(
            e,
            &format!("JOIN y NAPSHARE/1\nADDFILE a 1 {hash}\nADDFILE b 1 {hash}\n"),
        );
        assert_eq!(
            f.say(e, &format!("ADDFILE c 1 {hash}\n")),
            "ERROR too%20many%20files%20(at%20most%202)\n"
        );
    }

    /// One read of pipelined searches whose replies could never all wait for the client is
    /// cut short: the client is dropped as too slow before the rest are built, and the
    /// others are served as before. A burst just under the limit is served whole.
    #[test]
    fn a_burst_of_requests_no_socket_could_take_is_cut_short() {
        let mut f = Fixture::new();
        let config = ServerConfig {
            max_queued: 64 << 10,
            ..ServerConfig::default()
        };
        f.server = Server::new(f.now, config);
        let sharer = f.connect(1);
        let mut files = String::from("JOIN x\n");
        for i in 0..1000 {
            files += &format!("CREATEFILE song number {i:04}.mp3 123456\n");
        }
        f.say(sharer, &files);
        let reply = f.say(sharer, "SEARCH song\n");
        let per_search = reply.len();
        assert!(per_search > 30_000, "{per_search} bytes a search");
        let limit = (64 << 10) + SOCKET_BUFFER_MAX;
        // Just under the limit: every reply, and the client stays.
        let fits = limit / per_search;
        let polite = f.connect(2);
        f.say(polite, "JOIN y\n");
        let out = f.say(polite, &"SEARCH song\n".repeat(fits));
        assert_eq!(out.len(), fits * per_search);
        assert_eq!(f.server.poll_close(), None);
        // Ten times more: dropped, with nothing built for it beyond the limit.
        let greedy = f.connect(3);
        f.say(greedy, "JOIN z\n");
        f.server
            .handle_bytes(f.now, greedy, "SEARCH song\n".repeat(10 * fits).as_bytes())
            .unwrap();
        let mut sent = 0;
        while let Some(t) = f.server.poll_transmit() {
            assert_eq!(t.conn, greedy);
            sent += t.data.len();
        }
        assert_eq!(sent, 0, "its replies were dropped with it");
        assert_eq!(f.server.poll_close(), Some(greedy));
        let left = std::iter::from_fn(|| f.server.poll_event()).any(|e| {
            matches!(
                e,
                ServerEvent::Left {
                    conn,
                    reason: LeaveReason::TooSlow,
                    ..
                } if conn == greedy
            )
        });
        assert!(left);
        assert_eq!(f.say(polite, "SEARCH song\n").len(), per_search);
    }

    #[test]
    fn the_extension_is_granted_only_when_asked() {
        let mut f = Fixture::new();
        let classic = f.connect(1);
        let modern = f.connect(2);
        assert_eq!(f.say(classic, "JOIN 10.0.0.1\n"), "CONFIRMJOIN\n");
        assert_eq!(
            f.say(modern, "JOIN 10.0.0.1:4000 NAPSHARE/1\n"),
            "CONFIRMJOIN NAPSHARE/1 60\n"
        );
        // A classic client that says extension words is not answered at all.
        let hash = ContentHash([1; 32]);
        assert_eq!(f.say(classic, &format!("ADDFILE x 1 {hash}\n")), "");
        assert_eq!(f.say(classic, "FIND x\n"), "");
    }

    #[test]
    fn hashes_and_any_names_go_through_the_extension() {
        let mut f = Fixture::new();
        let modern = f.connect(2);
        let classic = f.connect(3);
        f.say(modern, "JOIN 10.0.0.1:4000 NAPSHARE/1\n");
        f.say(classic, "JOIN 10.0.0.1\n");
        let hash = ContentHash([0xab; 32]);
        assert_eq!(
            f.say(
                modern,
                &format!("ADDFILE a%20b%0Ac 7 {hash}\nADDFILE song.mp3 9 {hash}\n")
            ),
            "CONFIRMADDFILE a%20b%0Ac\nCONFIRMADDFILE song.mp3\n"
        );
        f.say(classic, "CREATEFILE song 2.mp3 3\n");
        assert_eq!(
            f.say(modern, "FIND \n"),
            format!(
                "FOUND a%20b%0Ac 10.0.0.1:4000 7 {hash}\nFOUND song.mp3 10.0.0.1:4000 9 {hash}\n\
                 FOUND song%202.mp3 10.0.0.1 3 -\nENDFIND 3\n"
            )
        );
        // The name with a line break cannot be written on a classic line: it is left out.
        assert_eq!(
            f.say(classic, "SEARCH \n"),
            "FILE song.mp3 10.0.0.1:4000 9\nFILE song 2.mp3 10.0.0.1 3\nENDSEARCH\n"
        );
        assert_eq!(
            f.say(modern, "DELFILE a%20b%0Ac\n"),
            "CONFIRMDELFILE a%20b%0Ac\n"
        );
        assert_eq!(f.server.index().len(), 2);
    }

    #[test]
    fn a_bad_extension_line_gets_an_error_reply_and_the_session_goes_on() {
        let mut f = Fixture::new();
        let modern = f.connect(2);
        f.say(modern, "JOIN x NAPSHARE/1\n");
        assert_eq!(
            f.say(modern, "ADDFILE a 1 nothex\n"),
            "ERROR bad%20content%20hash\n"
        );
        assert_eq!(f.say(modern, "FIND a\n"), "ENDFIND 0\n");
    }
}
