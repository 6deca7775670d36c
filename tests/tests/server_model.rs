//! The index server against a reference model.
//!
//! Several connections send random request lines (valid, garbage, blank, overlong), cut
//! into random reads, and sometimes drop without `LEAVE`. After every step the bytes the
//! server sent each connection, the connections it closed, its events and the size of its
//! index must equal what the reference model predicts: the one the fuzz `server` target
//! uses too (`napshare_core::fuzzing::model`). The model shares no code with the server: it
//! formats every reply itself. It reads lines with the wire parser, so
//! `lines_read_as_meant` pins what each line this test sends means, and
//! `every_slot_joins_under_its_printed_address` how each peer is written.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use napshare_core::fuzzing::model::{join_port, Event, Model};
use napshare_core::server::{Server, ServerConfig};
use napshare_core::wire::Request;
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

    /// The request the line is built as; `None` for one that is none.
    fn meant(&self) -> Option<Request<'static>> {
        match *self {
            Self::Join(j) => Some(Request::Join {
                addr: JOIN_TEXTS[j].0,
            }),
            Self::Create(n, size) => Some(Request::CreateFile {
                name: NAMES[n],
                size,
            }),
            Self::Delete(n) => Some(Request::DeleteFile { name: NAMES[n] }),
            Self::Search(p) => Some(Request::Search {
                pattern: PATTERNS[p],
            }),
            Self::BareSearch => Some(Request::Search { pattern: "" }),
            Self::Leave => Some(Request::Leave),
            Self::Garbage(_) | Self::Long(_) | Self::Blank(_) => None,
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
            model: Model::new(&config),
            server: Server::new(now, config),
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
            self.model.closed(conn);
        }
        while let Some(e) = self.server.poll_event() {
            self.actual_events.push(Event::of(&e));
        }
    }

    fn connect(&mut self, slot: usize) -> ConnId {
        if let Some(conn) = self.slots[slot] {
            return conn;
        }
        let ip: IpAddr = SLOTS[slot].0.parse().unwrap();
        self.next_port += 1;
        let conn = self
            .server
            .handle_accept(self.now, SocketAddr::new(ip, self.next_port));
        self.model.accept(conn, ip);
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
        for (line, crlf) in lines {
            stream.extend(line.bytes());
            stream.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
        }
        self.model.bytes(conn, &stream);
        let expected = self.model.take_replies(conn);
        let open = !self.model.close_asked(conn);
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
        self.model.closed(conn);
        let mut out = Output::default();
        self.drain(&mut out);
        assert!(out.bytes.is_empty() && out.closed.is_empty());
    }

    fn check(&self) -> Result<(), TestCaseError> {
        self.server.index().check_invariants();
        prop_assert_eq!(self.server.index().len(), self.model.files().count());
        prop_assert_eq!(self.server.connections(), self.model.open());
        prop_assert_eq!(&self.actual_events[..], self.model.events());
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

/// Every line this test sends reads as the request it is built as, and every `JOIN` text
/// names the port the table says: the model reads lines with the wire parser, so this pins
/// what they mean.
#[test]
fn lines_read_as_meant() {
    let mut lines: Vec<Line> = (0..JOIN_TEXTS.len()).map(Line::Join).collect();
    for n in 0..NAMES.len() {
        lines.extend([Line::Create(n, 7), Line::Delete(n)]);
    }
    lines.extend((0..PATTERNS.len()).map(Line::Search));
    lines.extend([Line::BareSearch, Line::Leave]);
    lines.extend((0..GARBAGE.len()).map(Line::Garbage));
    lines.extend((LIMIT - 4..LIMIT * 3).map(Line::Long));
    lines.extend((0..BLANKS.len()).map(Line::Blank));
    for line in &lines {
        let bytes = line.bytes();
        let text = std::str::from_utf8(&bytes).ok();
        let read = text.and_then(|t| Request::parse(t).ok());
        assert_eq!(read, line.meant(), "{line:?}");
    }
    for (text, port) in JOIN_TEXTS {
        assert_eq!(join_port(text), *port, "JOIN {text}");
    }
}

/// How a peer is printed: a bare IP for the classic port, else `ip:port`.
fn printed_peer(ip: &str, port: u16) -> String {
    match (port, ip.contains(':')) {
        (1235, _) => ip.to_owned(),
        (_, false) => format!("{ip}:{port}"),
        (_, true) => format!("[{ip}]:{port}"),
    }
}

/// A `JOIN` from every slot with every `JOIN` text: the server and the model name the peer
/// as the table prints it (an IPv4-mapped address as IPv4, a port off the classic one).
#[test]
fn every_slot_joins_under_its_printed_address() {
    let mut h = Harness::new();
    for (slot, (_, printed)) in SLOTS.iter().enumerate() {
        for (j, (_, port)) in JOIN_TEXTS.iter().enumerate() {
            h.send(slot, &[(Line::Join(j), false)], &[64]).unwrap();
            h.check().unwrap();
            let conn = h.slots[slot].expect("joined");
            let joined = Event::Joined(conn, printed_peer(printed, *port));
            assert_eq!(h.actual_events.last(), Some(&joined));
        }
    }
}
