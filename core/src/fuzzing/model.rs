//! One reference model of the index server, for the fuzz `server` target and for the
//! proptest in `tests/tests/server_model.rs`.
//!
//! It is written as plainly as possible, from PROTOCOL-classic.md and PROTOCOL.md: it frames
//! bytes one at a time, keeps the shared files in one ordered list, and says what the
//! server must reply to each connection, byte for byte, when it must ask for a close, what
//! events it reports and what its index holds. It shares no code with [`crate::server`]:
//! it formats every reply, peer address and error message itself. It reads request lines
//! with the wire parsers, which the `codec` target and the codec property tests check on
//! their own.
//!
//! Only the line limit and the result cap of a [`ServerConfig`] are modelled (and the idle
//! timeout that `CONFIRMJOIN` announces): a harness stays below the other limits, and
//! never calls `handle_timeout`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use crate::hash::ContentHash;
use crate::server::{LeaveReason, ServerConfig, ServerEvent};
use crate::wire::{ExtRequest, ParseError, Request};
use crate::ConnId;

/// The classic file-server port: a peer on it is written as a bare IP.
const CLASSIC_PEER_PORT: u16 = 1235;

/// What the server reports, in terms the model can predict: the peer as replies write it,
/// a bad line by its error alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Joined(ConnId, String),
    Left(ConnId, usize, LeaveReason),
    Bad(ConnId, ParseError),
    /// A limit the model does not model: it never predicts one.
    Refused(ConnId, &'static str),
}

impl Event {
    /// A server event in the model's terms.
    pub fn of(e: &ServerEvent) -> Self {
        match *e {
            ServerEvent::Joined { conn, peer } => Self::Joined(conn, peer.to_string()),
            ServerEvent::Left {
                conn,
                files,
                reason,
            } => Self::Left(conn, files, reason),
            ServerEvent::BadLine { conn, error } => Self::Bad(conn, error),
            ServerEvent::Refused { conn, limit } => Self::Refused(conn, limit),
        }
    }
}

/// The index server as the protocol documents describe it. See the module docs.
#[derive(Debug)]
pub struct Model {
    max_line: usize,
    max_results: usize,
    /// The idle timeout `CONFIRMJOIN NAPSHARE/1` announces, in seconds.
    idle: Option<u64>,
    conns: BTreeMap<ConnId, Conn>,
    /// Every shared file by registration number: the search order.
    files: BTreeMap<u64, File>,
    next_seq: u64,
    events: Vec<Event>,
}

#[derive(Debug)]
struct Conn {
    /// The address it was seen from, IPv4-mapped IPv6 as plain IPv4.
    ip: IpAddr,
    state: State,
    line: Vec<u8>,
    /// Dropping the rest of an overlong line.
    skipping: bool,
    /// Replies due and not yet taken.
    replies: Vec<u8>,
    /// The server must have asked to close the connection.
    close: bool,
    /// Lines dropped as too long: one request each (the extension answers them).
    overlong: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitingJoin,
    /// `ext`: joined with `NAPSHARE/1`.
    Joined {
        peer: SocketAddr,
        ext: bool,
    },
    /// Refused or left: bytes are ignored until the driver closes it.
    Closing,
    /// The driver closed it.
    Closed,
}

#[derive(Debug)]
struct File {
    conn: ConnId,
    name: String,
    size: u64,
    peer: SocketAddr,
    hash: Option<ContentHash>,
}

/// A request as the model reads it.
enum Line<'a> {
    Classic(Request<'a>),
    Ext(ExtRequest<'a>),
}

impl Model {
    pub fn new(config: &ServerConfig) -> Self {
        Self {
            max_line: config.max_line,
            max_results: config.max_results,
            // Whole seconds, at least one.
            idle: config.idle_timeout.map(|d| d.as_secs().max(1)),
            conns: BTreeMap::new(),
            files: BTreeMap::new(),
            next_seq: 0,
            events: Vec::new(),
        }
    }

    /// The server accepted `conn` from `ip`.
    pub fn accept(&mut self, conn: ConnId, ip: IpAddr) {
        let c = Conn {
            ip: ip.to_canonical(),
            state: State::AwaitingJoin,
            line: Vec::new(),
            skipping: false,
            replies: Vec::new(),
            close: false,
            overlong: 0,
        };
        assert!(
            self.conns.insert(conn, c).is_none(),
            "{conn:?} accepted twice"
        );
    }

    /// `data` arrived on `conn`.
    pub fn bytes(&mut self, conn: ConnId, data: &[u8]) {
        let max_line = self.max_line;
        for &b in data {
            let c = self.conn(conn);
            if matches!(c.state, State::Closing | State::Closed) {
                return;
            }
            if c.skipping {
                c.skipping = b != b'\n';
            } else if b == b'\n' {
                let line = std::mem::take(&mut c.line);
                self.line(conn, Ok(&line));
            } else {
                c.line.push(b);
                // A line and its `\n` must fit in `max_line`.
                if c.line.len() >= max_line {
                    c.line.clear();
                    c.skipping = true;
                    c.overlong += 1;
                    self.line(conn, Err(ParseError::TooLong));
                }
            }
        }
    }

    /// The driver closed `conn` (EOF, an error, or after the server asked): unless the
    /// server had already let it go, its files leave with it.
    pub fn closed(&mut self, conn: ConnId) {
        match self.conn(conn).state {
            State::AwaitingJoin | State::Joined { .. } => {
                self.leave(conn, LeaveReason::Closed);
            }
            State::Closing | State::Closed => {}
        }
        self.conn(conn).state = State::Closed;
    }

    /// The replies due to `conn` since the last call.
    pub fn take_replies(&mut self, conn: ConnId) -> Vec<u8> {
        std::mem::take(&mut self.conn(conn).replies)
    }

    /// Whether the server must have asked to close `conn`.
    pub fn close_asked(&self, conn: ConnId) -> bool {
        self.conns[&conn].close
    }

    /// Lines of `conn` dropped as too long, each a request of its own.
    pub fn overlong(&self, conn: ConnId) -> usize {
        self.conns[&conn].overlong
    }

    /// Connections the driver has not closed.
    pub fn open(&self) -> usize {
        let open = self.conns.values().filter(|c| c.state != State::Closed);
        open.count()
    }

    /// Every shared file in search order: name, size, peer and hash.
    pub fn files(&self) -> impl Iterator<Item = (&str, u64, SocketAddr, Option<ContentHash>)> {
        let files = self.files.values();
        files.map(|f| (f.name.as_str(), f.size, f.peer, f.hash))
    }

    /// Everything the server must have reported, oldest first.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    fn conn(&mut self, conn: ConnId) -> &mut Conn {
        let c = self.conns.get_mut(&conn);
        c.unwrap_or_else(|| panic!("{conn:?} was never accepted"))
    }

    fn line(&mut self, conn: ConnId, line: Result<&[u8], ParseError>) {
        let c = &self.conns[&conn];
        let ext = matches!(c.state, State::Joined { ext: true, .. });
        let request = match line {
            Err(e) => Err(e),
            Ok(mut line) => {
                while let [rest @ .., b'\r'] = line {
                    line = rest;
                }
                if line.iter().all(u8::is_ascii_whitespace) {
                    return;
                }
                std::str::from_utf8(line)
                    .map_err(|_| ParseError::NotUtf8)
                    .and_then(|text| match Request::parse(text) {
                        // Only a connection that joined with the extension speaks it.
                        Err(ParseError::UnknownCommand) if ext => {
                            ExtRequest::parse(text).map(Line::Ext)
                        }
                        other => other.map(Line::Classic),
                    })
            }
        };
        let (ip, state) = (c.ip, c.state);
        let mut out = String::new();
        match (state, request) {
            (
                State::AwaitingJoin | State::Joined { .. },
                Ok(Line::Classic(Request::Join { addr })),
            ) => {
                let (addr, ext) = split_ext(addr);
                let peer = SocketAddr::new(ip, join_port(addr));
                self.conn(conn).state = State::Joined { peer, ext };
                // A repeated JOIN moves the files already shared to the new address.
                for f in self.files.values_mut().filter(|f| f.conn == conn) {
                    f.peer = peer;
                }
                self.events.push(Event::Joined(conn, peer_text(peer)));
                out.push_str("CONFIRMJOIN");
                if ext {
                    out.push_str(" NAPSHARE/1");
                    if let Some(idle) = self.idle {
                        out.push_str(&format!(" {idle}"));
                    }
                }
                out.push('\n');
            }
            (State::AwaitingJoin, _) => {
                self.conn(conn).close = true;
                self.leave(conn, LeaveReason::NoJoin);
            }
            (State::Joined { ext, .. }, Err(e)) => {
                if ext {
                    out = format!("ERROR {}\n", escaped(error_text(e)));
                }
                self.events.push(Event::Bad(conn, e));
            }
            (State::Joined { peer, .. }, Ok(Line::Classic(r))) => match r {
                Request::Join { .. } => unreachable!("handled above"),
                Request::CreateFile { name, size } => {
                    self.register(conn, peer, name, size, None);
                    out = format!("CONFIRMCREATEFILE {name}\n");
                }
                Request::DeleteFile { name } => {
                    self.files
                        .retain(|_, f| !(f.conn == conn && f.name == name));
                    out = format!("CONFIRMDELETEFILE {name}\n");
                }
                Request::Search { pattern } => {
                    // A classic line cannot carry a name with a control character.
                    let hits = self.files.values().filter(|f| {
                        f.name.contains(pattern) && !f.name.chars().any(char::is_control)
                    });
                    for f in hits.take(self.max_results) {
                        out += &format!("FILE {} {} {}\n", f.name, peer_text(f.peer), f.size);
                    }
                    if out.is_empty() {
                        out.push_str("NORESULT\n");
                    }
                    out.push_str("ENDSEARCH\n");
                }
                Request::Leave => {
                    out.push_str("CONFIRMLEAVE\n");
                    self.conn(conn).close = true;
                    self.leave(conn, LeaveReason::Leave);
                }
            },
            (State::Joined { peer, .. }, Ok(Line::Ext(r))) => match r {
                ExtRequest::AddFile { name, size, hash } => {
                    self.register(conn, peer, &name, size, Some(hash));
                    out = format!("CONFIRMADDFILE {}\n", escaped(&name));
                }
                ExtRequest::DelFile { name } => {
                    self.files
                        .retain(|_, f| !(f.conn == conn && *f.name == *name));
                    out = format!("CONFIRMDELFILE {}\n", escaped(&name));
                }
                ExtRequest::Find { pattern } => {
                    let hits = self.files.values().filter(|f| f.name.contains(&*pattern));
                    let mut count = 0;
                    for f in hits.take(self.max_results) {
                        let hash = f.hash.map_or("-".to_owned(), |h| hex(&h.0));
                        let (name, peer) = (escaped(&f.name), peer_text(f.peer));
                        out += &format!("FOUND {name} {peer} {} {hash}\n", f.size);
                        count += 1;
                    }
                    out += &format!("ENDFIND {count}\n");
                }
                ExtRequest::Ping => out.push_str("PONG\n"),
            },
            (State::Closing | State::Closed, _) => {}
        }
        self.conn(conn).replies.extend_from_slice(out.as_bytes());
    }

    /// Shares `name` from `conn`; a name it already shares keeps its place.
    fn register(
        &mut self,
        conn: ConnId,
        peer: SocketAddr,
        name: &str,
        size: u64,
        hash: Option<ContentHash>,
    ) {
        let mine = self
            .files
            .values_mut()
            .find(|f| f.conn == conn && f.name == name);
        match mine {
            Some(f) => {
                f.size = size;
                f.peer = peer;
                f.hash = hash;
            }
            None => {
                let file = File {
                    conn,
                    name: name.to_owned(),
                    size,
                    peer,
                    hash,
                };
                self.files.insert(self.next_seq, file);
                self.next_seq += 1;
            }
        }
    }

    /// The server lets `conn` go for `reason`: its files leave the index at once.
    fn leave(&mut self, conn: ConnId, reason: LeaveReason) {
        let before = self.files.len();
        self.files.retain(|_, f| f.conn != conn);
        let files = before - self.files.len();
        self.conn(conn).state = State::Closing;
        self.events.push(Event::Left(conn, files, reason));
    }
}

/// A `JOIN` text without a trailing `NAPSHARE/1` (a word of its own), and whether it had one.
fn split_ext(text: &str) -> (&str, bool) {
    match text.strip_suffix("NAPSHARE/1") {
        Some(rest) if rest.is_empty() || rest.ends_with(' ') => (rest.trim_end(), true),
        _ => (text, false),
    }
}

/// The file-server port a `JOIN` text names (`ip:port`, `host:port`, `[v6]:port`); the
/// classic port when it names none (a bare IP, a user name) or port 0.
pub fn join_port(text: &str) -> u16 {
    let text = text.trim();
    let port = match text.parse::<SocketAddr>() {
        Ok(addr) => Some(addr.port()),
        Err(_) => text
            .rsplit_once(':')
            .filter(|(host, _)| !host.is_empty() && !host.contains(':'))
            .and_then(|(_, port)| port.parse().ok()),
    };
    port.filter(|&p| p != 0).unwrap_or(CLASSIC_PEER_PORT)
}

/// A peer as replies write it: the bare IP on the classic port, else `ip:port` (`[ip]:port`
/// for IPv6).
fn peer_text(peer: SocketAddr) -> String {
    match peer {
        _ if peer.port() == CLASSIC_PEER_PORT => peer.ip().to_string(),
        SocketAddr::V4(a) => format!("{}:{}", a.ip(), a.port()),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

/// A name as an extension field: `%XX` for `%`, space and control characters.
fn escaped(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '%' | ' ' | '\0'..='\x1f' | '\x7f' => out += &format!("%{:02X}", c as u32),
            c => out.push(c),
        }
    }
    out
}

/// A content hash as 64 lowercase hexadecimal digits.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What an extension `ERROR` line says about a line it could not read.
fn error_text(e: ParseError) -> &'static str {
    match e {
        ParseError::TooLong => "line too long",
        ParseError::NotUtf8 => "line is not UTF-8",
        ParseError::UnknownCommand => "unknown command",
        ParseError::MissingField => "missing field",
        ParseError::BadSize => "size is not a number",
        ParseError::BadEscape => "bad %-escape",
        ParseError::ControlChar => "control character in a name",
        ParseError::BadHash => "bad content hash",
        ParseError::TrailingField => "unexpected extra field",
    }
}
