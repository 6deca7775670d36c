//! The `server` target: the index server, driven from several connections, against the
//! reference model in [`super::model`].

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use arbitrary::{Arbitrary, Unstructured};

use super::model::{Event, Model};
use crate::hash::ContentHash;
use crate::server::{LeaveReason, Server, ServerConfig, ServerEvent};
use crate::wire::{ExtReply, ExtRequest, PeerAddr, Reply, Request, MAX_LINE};
use crate::ConnId;

/// Names the structured requests use, so that searches and deletes hit registered files.
const NAMES: &[&str] = &[
    "alpha.txt",
    "alpha.txt.bak",
    "my holiday.jpg",
    "a",
    "b b",
    "ação.ogg",
    "../../etc/passwd",
    " lead",
    "trail ",
    "x\ry",
    "FILE 1.2.3.4 5",
    "new\nline",
    "100% ok",
    "tab\there",
];
const PATTERNS: &[&str] = &[
    "", "alpha", "ALPHA", "a", " ", ".txt", "nomatch", "ç", "b b",
];
const JOIN_TEXTS: &[&str] = &[
    "127.0.0.1",
    "10.0.0.1:4000",
    "alice",
    "my-host:4000",
    "[::1]:4000",
    "::1",
    "x:99999",
    "",
    " 127.0.0.1:1 ",
    "10.0.0.1:4000 NAPSHARE/1",
    "NAPSHARE/1",
];
const IPS: &[&str] = &["127.0.0.1", "10.0.0.1", "::1", "::ffff:10.0.0.2", "fe80::1"];

#[derive(Debug, Arbitrary)]
enum Op<'a> {
    Accept {
        ip: u8,
        port: u16,
    },
    /// Raw bytes on the `conn`-th connection ever accepted (it may be closed).
    Bytes {
        conn: u8,
        data: &'a [u8],
    },
    /// A well-formed request, sent in two writes split at `split`.
    Request {
        conn: u8,
        req: Req,
        ending: Ending,
        split: u8,
    },
    /// The peer closed, or the socket failed.
    Close {
        conn: u8,
    },
    /// The driver closes what the server asked it to close.
    Flush,
}

#[derive(Debug, Arbitrary)]
enum Req {
    Join(u8),
    Create {
        name: u8,
        size: u64,
    },
    Delete(u8),
    Search(u8),
    Leave,
    /// Extension requests (answered only on a connection that joined with `NAPSHARE/1`).
    AddFile {
        name: u8,
        size: u64,
        hash: u8,
    },
    DelFile(u8),
    Find(u8),
}

#[derive(Debug, Arbitrary)]
enum Ending {
    Lf,
    CrLf,
    None,
}

/// What the harness knows about one connection, as its client saw it.
#[derive(Debug, Default)]
struct Peer {
    /// The driver closed it (EOF, error, or after `poll_close`).
    closed: bool,
    /// The server asked for it to be closed.
    close_asked: bool,
    /// Newlines sent: with the overlong lines, no more answers than this may come back.
    newlines: usize,
    /// Replies that answer one request each (`ENDSEARCH` for a search).
    answers: usize,
    joined: bool,
    left: bool,
    /// Inside a search reply: what came so far.
    in_reply: Option<InReply>,
    rx: Vec<u8>,
    left_events: usize,
    /// Bytes received since the last comparison with the model.
    got: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InReply {
    Files,
    NoResult,
    /// Inside a `FIND` reply, after this many `FOUND` lines.
    Found(u64),
}

/// A reply line, classic or extension.
#[derive(Debug)]
enum Line<'a> {
    Classic(Reply<'a>),
    Ext(ExtReply<'a>),
}

struct Harness {
    now: Instant,
    server: Server,
    peers: Vec<Peer>,
    ids: Vec<ConnId>,
    ips: BTreeSet<IpAddr>,
    /// Conns the server asked to close that the driver has not closed yet.
    to_close: Vec<ConnId>,
    creates: usize,
    max_results: usize,
    model: Model,
    /// The server's events, in the model's terms.
    events: Vec<Event>,
}

/// The first line of a server input written as a readable session script (see [`server`]).
pub const SESSION_MAGIC: &[u8] = b"#!napshare-session\n";

/// Drives an index server with operations from several connections and checks it after
/// every step; then closes everything and checks that the index is empty.
///
/// The input is read with [`Unstructured`] as a configuration and a list of operations,
/// unless it starts with [`SESSION_MAGIC`]: then it is a readable script, one operation a
/// line (hand-written seeds use it; the fuzzer mutates it like any input):
///
/// ```text
/// #!napshare-session
/// + 127.0.0.1:5000        accept a connection from that address (ids count from 0)
/// 0:JOIN 127.0.0.1        bytes on connection 0: the rest of the line and a `\n`
/// 0|CREATEFILE a          bytes on connection 0 with no `\n` added
/// 0>SEARCH a\nSEARCH b\n  bytes on connection 0 in one write, `\n` and `\r` unescaped
/// 0.                      connection 0 closes (EOF or an error)
/// !                       the driver closes the connections the server asked to close
/// # anything else is a comment
/// ```
///
/// A line ending in `\r` keeps it (`0:LEAVE\r` sends `LEAVE\r\n`); connection numbers
/// wrap around the connections accepted so far.
///
/// `now` is the time of the whole run: the harness never calls `handle_timeout`, so the
/// server ignores it, and the core reads no clock (the fuzz target passes its own).
pub fn server(now: Instant, data: &[u8]) {
    run_server(now, data);
}

fn run_server(now: Instant, data: &[u8]) -> Harness {
    if let Some(script) = data.strip_prefix(SESSION_MAGIC) {
        let mut h = Harness::new(now, ServerConfig::default());
        for line in script.split(|&b| b == b'\n').take(4096) {
            h.script_line(line);
        }
        h.close_all();
        return h;
    }
    let mut u = Unstructured::new(data);
    let max_line = match u.int_in_range(0..=3u8).unwrap_or(0) {
        0 => MAX_LINE,
        _ => u.int_in_range(1..=300usize).unwrap_or(MAX_LINE),
    };
    let max_results = match u.int_in_range(0..=3u8).unwrap_or(0) {
        0 => 1000,
        _ => u.int_in_range(0..=4usize).unwrap_or(1000),
    };
    let mut h = Harness::new(
        now,
        ServerConfig {
            max_line,
            max_results,
            ..ServerConfig::default()
        },
    );
    let mut steps = 0;
    while !u.is_empty() && steps < 512 {
        let Ok(op) = Op::arbitrary(&mut u) else {
            break;
        };
        h.apply(op);
        steps += 1;
    }
    h.close_all();
    h
}

impl Harness {
    fn new(now: Instant, config: ServerConfig) -> Self {
        Self {
            now,
            max_results: config.max_results,
            model: Model::new(&config),
            server: Server::new(now, config),
            peers: Vec::new(),
            ids: Vec::new(),
            ips: BTreeSet::new(),
            to_close: Vec::new(),
            creates: 0,
            events: Vec::new(),
        }
    }

    fn script_line(&mut self, line: &[u8]) {
        let digits = line.iter().take_while(|b| b.is_ascii_digit()).count();
        let (num, rest) = line.split_at(digits);
        let conn = std::str::from_utf8(num)
            .ok()
            .and_then(|n| n.parse::<usize>().ok());
        match (conn, rest.split_first()) {
            (None, Some((b'+', addr))) => {
                let port = 5000u16.wrapping_add(self.ids.len() as u16);
                let addr = std::str::from_utf8(addr)
                    .ok()
                    .and_then(|a| a.trim().parse().ok())
                    .unwrap_or(SocketAddr::from(([127, 0, 0, 1], port)));
                self.accept(addr);
            }
            (None, Some((b'!', _))) => self.flush(),
            (Some(k), Some((b':', data))) => {
                let mut bytes = data.to_vec();
                bytes.push(b'\n');
                self.send(k, &bytes);
            }
            (Some(k), Some((b'|', data))) => self.send(k, data),
            (Some(k), Some((b'>', data))) => {
                let mut bytes = Vec::with_capacity(data.len());
                let mut rest = data;
                while let Some((&b, tail)) = rest.split_first() {
                    match (b, tail.first()) {
                        (b'\\', Some(b'n')) => bytes.push(b'\n'),
                        (b'\\', Some(b'r')) => bytes.push(b'\r'),
                        _ => {
                            bytes.push(b);
                            rest = tail;
                            continue;
                        }
                    }
                    rest = &tail[1..];
                }
                self.send(k, &bytes);
            }
            (Some(k), Some((b'.', _))) => {
                if let Some(k) = self.pick(k) {
                    self.close(k);
                }
            }
            _ => return,
        }
        self.check();
    }

    fn accept(&mut self, addr: SocketAddr) {
        let id = self.server.handle_accept(self.now, addr);
        assert!(!self.ids.contains(&id), "connection id {id:?} reused");
        self.ips.insert(addr.ip().to_canonical());
        self.ids.push(id);
        self.peers.push(Peer::default());
        self.model.accept(id, addr.ip());
    }

    fn flush(&mut self) {
        for id in std::mem::take(&mut self.to_close) {
            let k = self.slot(id);
            self.close(k);
        }
    }

    fn apply(&mut self, op: Op<'_>) {
        match op {
            Op::Accept { ip, port } => {
                let ip: IpAddr = IPS[usize::from(ip) % IPS.len()].parse().expect("valid IP");
                self.accept(SocketAddr::new(ip, port));
            }
            Op::Bytes { conn, data } => self.send(conn.into(), data),
            Op::Request {
                conn,
                req,
                ending,
                split,
            } => {
                let pick = |list: &[&'static str], i: u8| list[usize::from(i) % list.len()];
                let mut bytes = Vec::new();
                match req {
                    Req::AddFile { name, size, hash } => ExtRequest::AddFile {
                        name: pick(NAMES, name).into(),
                        size,
                        hash: ContentHash([hash; 32]),
                    }
                    .encode(&mut bytes),
                    Req::DelFile(n) => ExtRequest::DelFile {
                        name: pick(NAMES, n).into(),
                    }
                    .encode(&mut bytes),
                    Req::Find(p) => ExtRequest::Find {
                        pattern: pick(PATTERNS, p).into(),
                    }
                    .encode(&mut bytes),
                    Req::Join(a) => Request::Join {
                        addr: pick(JOIN_TEXTS, a),
                    }
                    .encode(&mut bytes),
                    Req::Create { name, size } => Request::CreateFile {
                        name: pick(NAMES, name),
                        size,
                    }
                    .encode(&mut bytes),
                    Req::Delete(n) => Request::DeleteFile {
                        name: pick(NAMES, n),
                    }
                    .encode(&mut bytes),
                    Req::Search(p) => Request::Search {
                        pattern: pick(PATTERNS, p),
                    }
                    .encode(&mut bytes),
                    Req::Leave => Request::Leave.encode(&mut bytes),
                }
                bytes.pop();
                match ending {
                    Ending::Lf => bytes.push(b'\n'),
                    Ending::CrLf => bytes.extend_from_slice(b"\r\n"),
                    Ending::None => {}
                }
                let at = usize::from(split) % (bytes.len() + 1);
                self.send(conn.into(), &bytes[..at]);
                self.send(conn.into(), &bytes[at..]);
            }
            Op::Close { conn } => {
                if let Some(k) = self.pick(conn.into()) {
                    self.close(k);
                }
            }
            Op::Flush => self.flush(),
        }
        self.check();
    }

    fn pick(&self, conn: usize) -> Option<usize> {
        (!self.ids.is_empty()).then(|| conn % self.ids.len())
    }

    fn slot(&self, id: ConnId) -> usize {
        self.ids
            .iter()
            .position(|&c| c == id)
            .unwrap_or_else(|| panic!("the server named {id:?}, which it never gave out"))
    }

    fn send(&mut self, conn: usize, data: &[u8]) {
        let Some(k) = self.pick(conn) else {
            return;
        };
        let id = self.ids[k];
        let result = self.server.handle_bytes(self.now, id, data);
        let p = &mut self.peers[k];
        if p.closed {
            assert!(result.is_err(), "bytes on closed {id:?} accepted");
            return;
        }
        assert_eq!(result, Ok(()), "bytes on open {id:?} refused");
        p.newlines += data.iter().filter(|&&b| b == b'\n').count();
        self.model.bytes(id, data);
        self.drain();
    }

    fn close(&mut self, k: usize) {
        let id = self.ids[k];
        self.server.handle_closed(self.now, id);
        self.peers[k].closed = true;
        self.to_close.retain(|&c| c != id);
        self.model.closed(id);
        self.drain();
    }

    fn close_all(&mut self) {
        for k in 0..self.ids.len() {
            if !self.peers[k].closed {
                self.close(k);
            }
        }
        self.check();
        assert_eq!(self.server.connections(), 0);
        assert!(
            self.server.index().is_empty(),
            "files left in the index after every connection closed"
        );
        for (id, p) in self.ids.iter().zip(&self.peers) {
            assert_eq!(p.left_events, 1, "{id:?} did not leave exactly once");
            assert!(p.rx.is_empty(), "{id:?} got an unterminated reply");
        }
    }

    /// Drains every output, as the drain contract says, checking each one.
    fn drain(&mut self) {
        while let Some(t) = self.server.poll_transmit() {
            let k = self.slot(t.conn);
            assert!(!self.peers[k].closed, "bytes for closed {:?}", t.conn);
            assert!(!t.data.is_empty(), "an empty transmit");
            assert_eq!(t.data.last(), Some(&b'\n'), "a transmit ends mid-line");
            self.peers[k].rx.extend_from_slice(&t.data);
            self.peers[k].got.extend_from_slice(&t.data);
            self.read_replies(k);
        }
        while let Some(id) = self.server.poll_close() {
            let k = self.slot(id);
            let p = &mut self.peers[k];
            assert!(!p.closed, "asked to close closed {id:?}");
            assert!(!p.close_asked, "asked twice to close {id:?}");
            p.close_asked = true;
            self.to_close.push(id);
        }
        while let Some(e) = self.server.poll_event() {
            self.events.push(Event::of(&e));
            match e {
                ServerEvent::Joined { conn, peer } => {
                    let k = self.slot(conn);
                    assert!(self.ips.contains(&peer.0.ip()));
                    assert!(!self.peers[k].closed, "Joined event for closed {conn:?}");
                }
                ServerEvent::Left {
                    conn,
                    files,
                    reason,
                } => {
                    let k = self.slot(conn);
                    let p = &mut self.peers[k];
                    p.left_events += 1;
                    assert!(files <= self.creates);
                    match reason {
                        LeaveReason::Leave => assert!(p.left, "Left(Leave) without CONFIRMLEAVE"),
                        LeaveReason::NoJoin => {
                            assert!(!p.joined && p.rx.is_empty(), "refused after a reply");
                        }
                        LeaveReason::Closed => assert!(p.closed, "Left(Closed) while open"),
                        // The harness never calls `handle_timeout`.
                        LeaveReason::JoinTimeout | LeaveReason::Silent | LeaveReason::TooSlow => {
                            panic!("{conn:?} timed out without a timeout")
                        }
                    }
                    if reason != LeaveReason::Closed {
                        assert!(p.close_asked, "{conn:?} left without a close");
                    }
                }
                ServerEvent::BadLine { conn, .. } | ServerEvent::Refused { conn, .. } => {
                    let k = self.slot(conn);
                    assert!(self.peers[k].joined, "a BadLine event before JOIN");
                }
            }
        }
    }

    /// Checks the replies `k` received: each is a valid `Reply` (or, for the extension,
    /// `ExtReply`), in an order a client can follow, and none that was not asked for.
    fn read_replies(&mut self, k: usize) {
        let p = &mut self.peers[k];
        let mut at = 0;
        while let Some(end) = p.rx[at..].iter().position(|&b| b == b'\n') {
            let line = &p.rx[at..at + end];
            at += end + 1;
            let text = std::str::from_utf8(line).expect("the server sends UTF-8");
            let reply = match Reply::parse(text) {
                Ok(r) => Line::Classic(r),
                Err(e) => Line::Ext(
                    ExtReply::parse(text)
                        .unwrap_or_else(|_| panic!("the server sent {text:?}, not a reply: {e}")),
                ),
            };
            assert!(!p.left, "{reply:?} after CONFIRMLEAVE");
            if !p.joined {
                assert!(
                    matches!(
                        reply,
                        Line::Classic(Reply::ConfirmJoin) | Line::Ext(ExtReply::ConfirmJoin { .. })
                    ),
                    "the first reply must be CONFIRMJOIN, not {reply:?}"
                );
            }
            let peer = match &reply {
                Line::Classic(Reply::File { peer, .. }) => Some(*peer),
                Line::Ext(ExtReply::Found { peer, .. }) => Some(*peer),
                _ => None,
            };
            if let Some(peer) = peer {
                let peer: PeerAddr = peer
                    .parse()
                    .unwrap_or_else(|_| panic!("a search result with peer {peer:?}"));
                assert!(
                    self.ips.contains(&peer.0.ip()),
                    "a result from unknown {peer}"
                );
            }
            p.in_reply = match (p.in_reply, reply) {
                (None | Some(InReply::Files), Line::Classic(Reply::File { .. })) => {
                    Some(InReply::Files)
                }
                (None, Line::Classic(Reply::NoResult)) => Some(InReply::NoResult),
                (Some(InReply::Files | InReply::NoResult), Line::Classic(Reply::EndSearch)) => {
                    p.answers += 1;
                    None
                }
                (None, Line::Ext(ExtReply::Found { .. })) => Some(InReply::Found(1)),
                (Some(InReply::Found(n)), Line::Ext(ExtReply::Found { .. })) => {
                    Some(InReply::Found(n + 1))
                }
                (None, Line::Ext(ExtReply::EndFind { count })) => {
                    assert_eq!(count, 0, "ENDFIND {count} after no FOUND line");
                    p.answers += 1;
                    None
                }
                (Some(InReply::Found(n)), Line::Ext(ExtReply::EndFind { count })) => {
                    assert_eq!(count, n, "ENDFIND {count} after {n} FOUND lines");
                    p.answers += 1;
                    None
                }
                (Some(s), r) => panic!("{r:?} inside a search reply ({s:?})"),
                (None, Line::Classic(Reply::EndSearch)) => {
                    panic!("ENDSEARCH without FILE or NORESULT")
                }
                (None, r) => {
                    match r {
                        Line::Classic(Reply::ConfirmJoin)
                        | Line::Ext(ExtReply::ConfirmJoin { .. }) => {
                            p.joined = true;
                        }
                        Line::Classic(Reply::ConfirmLeave) => p.left = true,
                        Line::Classic(Reply::ConfirmCreateFile { .. })
                        | Line::Ext(ExtReply::ConfirmAddFile { .. }) => self.creates += 1,
                        _ => {}
                    }
                    p.answers += 1;
                    None
                }
            };
            let asked = p.newlines + self.model.overlong(self.ids[k]);
            assert!(
                p.answers <= asked,
                "{} answers to {asked} requests",
                p.answers
            );
        }
        p.rx.drain(..at);
        // A search reply comes in one transmit: no partial search is left hanging.
        assert_eq!(p.in_reply, None, "a search reply split across transmits");
    }

    fn check(&mut self) {
        // The replies and closes are those of the reference model, byte for byte.
        for (&id, p) in self.ids.iter().zip(&mut self.peers) {
            let want = self.model.take_replies(id);
            let got = std::mem::take(&mut p.got);
            assert!(
                got == want,
                "{id:?} got {:?}, the model says {:?}",
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want)
            );
            assert_eq!(
                p.close_asked,
                self.model.close_asked(id),
                "{id:?}: close asked by the server / by the model"
            );
        }
        assert_eq!(self.events, self.model.events(), "events / the model's");
        // The index holds the model's files, in the model's order.
        let mut files = Vec::new();
        self.server.index().search("", usize::MAX, |hit| {
            files.push((hit.name.to_owned(), hit.size, hit.peer.0, hit.hash));
            true
        });
        let want: Vec<_> = self
            .model
            .files()
            .map(|(n, s, p, h)| (n.to_owned(), s, p, h))
            .collect();
        assert_eq!(files, want, "the index and the model disagree");
        self.server.index().check_invariants();
        assert!(self.server.index().len() <= self.creates);
        let open = self.peers.iter().filter(|p| !p.closed).count();
        assert_eq!(self.server.connections(), open);
        assert_eq!(self.model.open(), open);
        // A search never returns more than the configured number of files.
        let mut all = 0;
        self.server.index().search("", usize::MAX, |_| {
            all += 1;
            true
        });
        assert_eq!(all, self.server.index().len());
        let mut capped = 0;
        self.server.index().search("", self.max_results, |_| {
            capped += 1;
            true
        });
        assert_eq!(capped, all.min(self.max_results));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzzing::TRANSCRIPT;

    /// The one real clock reading: the harness's time, which the server ignores.
    #[allow(clippy::disallowed_methods)]
    fn now() -> Instant {
        Instant::now()
    }

    #[test]
    fn server_scripts_run_the_session() {
        let mut script = SESSION_MAGIC.to_vec();
        script.extend_from_slice(b"+ 10.0.0.1:5000\n+\n");
        for line in TRANSCRIPT.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            script.extend_from_slice(b"0:");
            script.extend_from_slice(line);
            script.push(b'\n');
        }
        script.extend_from_slice(b"1>JOIN x\\r\\nCREATEFILE b 1\\nSEAR\n1:CH b\n1.\n!\n");
        let h = run_server(now(), &script);
        assert_eq!(h.ids.len(), 2);
        assert_eq!(h.creates, 2);
        assert!(h.peers[0].joined && h.peers[0].left && h.peers[0].close_asked);
        assert!(h.peers[1].joined && !h.peers[1].left);
        assert_eq!(h.peers[1].answers, 3);
    }

    #[test]
    fn server_scripts_speak_the_extension() {
        let hash = ContentHash([0xab; 32]);
        let mut script = SESSION_MAGIC.to_vec();
        script.extend_from_slice(
            format!(
                "+\n0:JOIN x:4000 NAPSHARE/1\n0:ADDFILE a%20b 5 {hash}\n0:FIND a\n\
                 0:BOGUS\n0:SEARCH b\n"
            )
            .as_bytes(),
        );
        let h = run_server(now(), &script);
        assert_eq!(h.creates, 1);
        assert_eq!(h.peers[0].answers, 5);
    }

    #[test]
    fn server_takes_unstructured_bytes() {
        server(now(), &[]);
        server(now(), TRANSCRIPT);
        server(now(), &[0xff; 300]);
    }
}
