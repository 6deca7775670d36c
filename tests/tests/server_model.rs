//! The index server against a reference model.
//!
//! Several connections send random request lines (valid, garbage, blank, overlong), cut
//! into random reads, and sometimes drop without `LEAVE`. After every step the bytes the
//! server sent each connection, the connections it closed, its events and the size of its
//! index must equal what a plain model built from PROTOCOL-classic.md predicts. The model
//! shares no code with the server: it formats the classic replies itself and never parses.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use napshare_core::server::{LeaveReason, Server, ServerConfig, ServerEvent};
use napshare_core::ConnId;
use proptest::prelude::*;

/// A small line limit, so overlong lines are cheap to make.
const LIMIT: usize = 48;
/// A small result cap, so searches hit it.
const MAX_RESULTS: usize = 3;

/// `JOIN` texts and the file-server port each one announces.
const JOIN_TEXTS: &[(&str, u16)] = &[
    ("10.0.0.9", 1235),
    ("alice", 1235),
    ("host:4000", 4000),
    ("[::1]:5000", 5000),
    ("1.2.3.4:1235", 1235),
    ("", 1235),
];
/// File names, with spaces where the parser must cope with them.
const NAMES: &[&str] = &["a", "ab", "b c", "abc.txt", "é.ogg", " x", "y ", "c"];
const PATTERNS: &[&str] = &["", "a", "b", " ", "x", "abc", "zz", "é"];
/// Lines that are no valid request.
const GARBAGE: &[&[u8]] = &[
    b"BOGUS",
    b"join 1.2.3.4",
    b"CREATEFILE a",
    b"CREATEFILE a x",
    b"CREATEFILE a -1",
    b"CREATEFILE  5",
    b"DELETEFILE",
    b"DELETEFILE ",
    b"LEAVE now",
    b"LEAVE ",
    b"CONFIRMJOIN",
    b"\0",
    b"\xff\xfe SEARCH a",
];
const BLANKS: &[&str] = &["", " ", "\t", "  \t "];

/// The connections: two from one host (the seed would mix them up), one from an
/// IPv4-mapped IPv6 address (seen as plain IPv4) and one from IPv6.
const SLOTS: &[(&str, &str)] = &[
    ("10.0.0.1", "10.0.0.1"),
    ("10.0.0.1", "10.0.0.1"),
    ("::ffff:10.0.0.2", "10.0.0.2"),
    ("2001:db8::7", "2001:db8::7"),
];

#[derive(Debug, Clone)]
enum Line {
    Join(usize),
    Create(usize, u64),
    Delete(usize),
    Search(usize),
    /// `SEARCH` with no space: the empty pattern.
    BareSearch,
    Leave,
    Garbage(usize),
    /// That many `x`: garbage, too long for the limit from `LIMIT - 1` on.
    Long(usize),
    Blank(usize),
}

impl Line {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Self::Join(j) => format!("JOIN {}", JOIN_TEXTS[*j].0).into_bytes(),
            Self::Create(n, size) => format!("CREATEFILE {} {size}", NAMES[*n]).into_bytes(),
            Self::Delete(n) => format!("DELETEFILE {}", NAMES[*n]).into_bytes(),
            Self::Search(p) => format!("SEARCH {}", PATTERNS[*p]).into_bytes(),
            Self::BareSearch => b"SEARCH".to_vec(),
            Self::Leave => b"LEAVE".to_vec(),
            Self::Garbage(g) => GARBAGE[*g].to_vec(),
            Self::Long(n) => vec![b'x'; *n],
            Self::Blank(b) => BLANKS[*b].as_bytes().to_vec(),
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// Slot `slot` (connecting first if it has no connection) sends `lines`, each ended
    /// by `\r\n` when its flag is set, in reads of the lengths in `reads`.
    Send {
        slot: usize,
        lines: Vec<(Line, bool)>,
        reads: Vec<usize>,
    },
    /// Slot `slot`'s connection drops without `LEAVE`.
    Drop { slot: usize },
}

fn line() -> impl Strategy<Value = Line> {
    prop_oneof![
        2 => (0..JOIN_TEXTS.len()).prop_map(Line::Join),
        4 => (0..NAMES.len(), 0..20u64).prop_map(|(n, s)| Line::Create(n, s)),
        2 => (0..NAMES.len()).prop_map(Line::Delete),
        3 => (0..PATTERNS.len()).prop_map(Line::Search),
        1 => Just(Line::BareSearch),
        1 => Just(Line::Leave),
        1 => (0..GARBAGE.len()).prop_map(Line::Garbage),
        1 => (LIMIT - 4..LIMIT * 3).prop_map(Line::Long),
        1 => (0..BLANKS.len()).prop_map(Line::Blank),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let send = (
        0..SLOTS.len(),
        proptest::collection::vec((line(), any::<bool>()), 1..5),
        proptest::collection::vec(1..24usize, 1..6),
    )
        .prop_map(|(slot, lines, reads)| Op::Send { slot, lines, reads });
    prop_oneof![10 => send, 1 => (0..SLOTS.len()).prop_map(|slot| Op::Drop { slot })]
}

// ---- the reference model ----

#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Joined(ConnId, String),
    Left(ConnId, usize, LeaveReason),
    Bad(ConnId),
}

#[derive(Debug)]
struct Entry {
    owner: ConnId,
    name: String,
    size: u64,
    peer: String,
}

#[derive(Debug)]
enum ConnState {
    AwaitingJoin,
    Joined { peer: String },
}

/// The classic server as PROTOCOL-classic.md describes it, minus the seed's bugs.
#[derive(Debug, Default)]
struct Model {
    /// Shared files by registration number: search results come in this order.
    entries: BTreeMap<u64, Entry>,
    next_seq: u64,
    /// Open connections and the IP each was seen from (as the server prints it).
    conns: BTreeMap<ConnId, (String, ConnState)>,
    events: Vec<Event>,
}

impl Model {
    fn seq_of(&self, owner: ConnId, name: &str) -> Option<u64> {
        self.entries
            .iter()
            .find(|(_, e)| e.owner == owner && e.name == name)
            .map(|(seq, _)| *seq)
    }

    fn remove_owner(&mut self, owner: ConnId) -> usize {
        let before = self.entries.len();
        self.entries.retain(|_, e| e.owner != owner);
        before - self.entries.len()
    }

    /// Removes `conn` for `reason`, recording the event.
    fn close(&mut self, conn: ConnId, reason: LeaveReason) {
        self.conns.remove(&conn);
        let files = self.remove_owner(conn);
        self.events.push(Event::Left(conn, files, reason));
    }

    /// How the server prints a peer: a bare IP for the classic port, else `ip:port`.
    fn peer(ip: &str, port: u16) -> String {
        match (port, ip.contains(':')) {
            (1235, _) => ip.to_owned(),
            (_, false) => format!("{ip}:{port}"),
            (_, true) => format!("[{ip}]:{port}"),
        }
    }

    /// Applies one line from `conn`; appends the reply to `out`. Returns false once the
    /// connection is closed.
    fn line(&mut self, conn: ConnId, line: &Line, out: &mut Vec<u8>) -> bool {
        if let Line::Blank(_) = line {
            return true;
        }
        let (ip, state) = self.conns.get(&conn).expect("only open connections send");
        let ip = ip.clone();
        let peer = match (state, line) {
            (ConnState::AwaitingJoin, Line::Join(j))
            | (ConnState::Joined { .. }, Line::Join(j)) => {
                let peer = Self::peer(&ip, JOIN_TEXTS[*j].1);
                // A repeated JOIN moves the files already shared to the new address.
                for e in self.entries.values_mut().filter(|e| e.owner == conn) {
                    e.peer = peer.clone();
                }
                self.conns
                    .insert(conn, (ip, ConnState::Joined { peer: peer.clone() }));
                self.events.push(Event::Joined(conn, peer));
                out.extend_from_slice(b"CONFIRMJOIN\n");
                return true;
            }
            (ConnState::AwaitingJoin, _) => {
                self.close(conn, LeaveReason::NoJoin);
                return false;
            }
            (ConnState::Joined { peer }, _) => peer.clone(),
        };
        match line {
            Line::Create(n, size) => {
                let name = NAMES[*n];
                if let Some(seq) = self.seq_of(conn, name) {
                    let e = self.entries.get_mut(&seq).expect("found above");
                    e.size = *size;
                    e.peer = peer;
                } else {
                    let entry = Entry {
                        owner: conn,
                        name: name.to_owned(),
                        size: *size,
                        peer,
                    };
                    self.entries.insert(self.next_seq, entry);
                    self.next_seq += 1;
                }
                out.extend_from_slice(format!("CONFIRMCREATEFILE {name}\n").as_bytes());
            }
            Line::Delete(n) => {
                let name = NAMES[*n];
                if let Some(seq) = self.seq_of(conn, name) {
                    self.entries.remove(&seq);
                }
                out.extend_from_slice(format!("CONFIRMDELETEFILE {name}\n").as_bytes());
            }
            Line::Search(p) => self.search(PATTERNS[*p], out),
            Line::BareSearch => self.search("", out),
            Line::Leave => {
                out.extend_from_slice(b"CONFIRMLEAVE\n");
                self.close(conn, LeaveReason::Leave);
                return false;
            }
            Line::Garbage(_) | Line::Long(_) => self.events.push(Event::Bad(conn)),
            Line::Join(_) | Line::Blank(_) => unreachable!("handled above"),
        }
        true
    }

    fn search(&self, pattern: &str, out: &mut Vec<u8>) {
        let hits: Vec<&Entry> = self
            .entries
            .values()
            .filter(|e| e.name.contains(pattern))
            .take(MAX_RESULTS)
            .collect();
        for e in &hits {
            out.extend_from_slice(format!("FILE {} {} {}\n", e.name, e.peer, e.size).as_bytes());
        }
        if hits.is_empty() {
            out.extend_from_slice(b"NORESULT\n");
        }
        out.extend_from_slice(b"ENDSEARCH\n");
    }
}

// ---- driving the real server ----

struct Harness {
    now: Instant,
    server: Server,
    model: Model,
    /// Each slot's open connection.
    slots: Vec<Option<ConnId>>,
    next_port: u16,
    /// The server's events, in the model's terms.
    actual_events: Vec<Event>,
}

/// What the server did while being drained.
#[derive(Default)]
struct Output {
    bytes: BTreeMap<ConnId, Vec<u8>>,
    closed: Vec<ConnId>,
}

impl Harness {
    fn new() -> Self {
        // The model has no clock: no timeouts (the harness never calls handle_timeout).
        let config = ServerConfig {
            max_line: LIMIT,
            max_results: MAX_RESULTS,
            idle_timeout: None,
            ..ServerConfig::default()
        };
        let now = Instant::now();
        Self {
            now,
            server: Server::new(now, config),
            model: Model::default(),
            slots: vec![None; SLOTS.len()],
            next_port: 40000,
            actual_events: Vec::new(),
        }
    }

    /// Drains the server as a driver would, closing what it asks to close.
    fn drain(&mut self, out: &mut Output) {
        while let Some(t) = self.server.poll_transmit() {
            out.bytes.entry(t.conn).or_default().extend(t.data);
        }
        while let Some(conn) = self.server.poll_close() {
            out.closed.push(conn);
            self.server.handle_closed(self.now, conn);
        }
        while let Some(e) = self.server.poll_event() {
            let e = match e {
                ServerEvent::Joined { conn, peer } => Event::Joined(conn, peer.to_string()),
                ServerEvent::Left {
                    conn,
                    files,
                    reason,
                } => Event::Left(conn, files, reason),
                ServerEvent::BadLine { conn, .. } => Event::Bad(conn),
                ServerEvent::Refused { conn, limit } => panic!("{conn:?} hit the {limit} limit"),
            };
            self.actual_events.push(e);
        }
    }

    fn connect(&mut self, slot: usize) -> ConnId {
        if let Some(conn) = self.slots[slot] {
            return conn;
        }
        let (seen, printed) = SLOTS[slot];
        let ip: IpAddr = seen.parse().unwrap();
        self.next_port += 1;
        let conn = self
            .server
            .handle_accept(self.now, SocketAddr::new(ip, self.next_port));
        let state = (printed.to_owned(), ConnState::AwaitingJoin);
        self.model.conns.insert(conn, state);
        self.slots[slot] = Some(conn);
        conn
    }

    fn send(
        &mut self,
        slot: usize,
        lines: &[(Line, bool)],
        reads: &[usize],
    ) -> Result<(), TestCaseError> {
        let conn = self.connect(slot);
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        let mut open = true;
        for (line, crlf) in lines {
            stream.extend(line.bytes());
            stream.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
            if open {
                open = self.model.line(conn, line, &mut expected);
            }
        }
        let mut out = Output::default();
        let mut rest = &stream[..];
        let mut lens = reads.iter().cycle();
        while !rest.is_empty() && out.closed.is_empty() {
            let n = (*lens.next().unwrap()).min(rest.len());
            self.server
                .handle_bytes(self.now, conn, &rest[..n])
                .unwrap();
            rest = &rest[n..];
            self.drain(&mut out);
        }
        let sent = out.bytes.remove(&conn).unwrap_or_default();
        prop_assert_eq!(
            String::from_utf8_lossy(&sent),
            String::from_utf8_lossy(&expected),
            "replies to {:?}",
            conn
        );
        prop_assert!(out.bytes.is_empty(), "nothing goes to other connections");
        let closed = if open { vec![] } else { vec![conn] };
        prop_assert_eq!(out.closed, closed);
        if !open {
            self.slots[slot] = None;
        }
        Ok(())
    }

    fn drop_conn(&mut self, slot: usize) {
        let Some(conn) = self.slots[slot].take() else {
            return;
        };
        self.server.handle_closed(self.now, conn);
        self.model.close(conn, LeaveReason::Closed);
        let mut out = Output::default();
        self.drain(&mut out);
        assert!(out.bytes.is_empty() && out.closed.is_empty());
    }

    fn check(&self) -> Result<(), TestCaseError> {
        self.server.index().check_invariants();
        prop_assert_eq!(self.server.index().len(), self.model.entries.len());
        prop_assert_eq!(self.server.connections(), self.model.conns.len());
        prop_assert_eq!(&self.actual_events, &self.model.events);
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn server_matches_the_reference_model(ops in proptest::collection::vec(op(), 1..40)) {
        let mut h = Harness::new();
        for op in &ops {
            match op {
                Op::Send { slot, lines, reads } => h.send(*slot, lines, reads)?,
                Op::Drop { slot } => h.drop_conn(*slot),
            }
            h.check()?;
        }
    }
}

/// The seed transcript of PROTOCOL-classic.md, byte for byte, sent in one read.
#[test]
fn seed_transcript_in_one_read() {
    let mut h = Harness::new();
    let lines = [
        Line::Join(0),
        Line::Create(3, 100),
        Line::Search(5),
        Line::Search(6),
        Line::Delete(0),
        Line::Leave,
    ]
    .map(|l| (l, false));
    h.send(0, &lines, &[4096]).unwrap();
    h.check().unwrap();
    assert!(h.server.index().is_empty());
}
