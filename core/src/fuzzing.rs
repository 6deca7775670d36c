//! Entry points for the fuzz targets in `fuzz/` and for the corpus replay test that runs
//! them on stable (`tests/tests/fuzz_corpus.rs`).
//!
//! Each function takes arbitrary bytes, must never panic on any of them, and asserts the
//! properties the rest of the crate promises: a panic here is a bug in the core (or in the
//! property written here), never bad input.
//!
//! - [`codec`]: the line framing and message parsers agree with themselves however the
//!   bytes are split, and everything that decodes re-encodes to the same message.
//! - [`server`]: the index server, driven by several connections, replies byte for byte
//!   as a plain reference model says, keeps its index consistent and equal to the model's,
//!   only ever sends well-formed replies that were asked for, and forgets every file once
//!   every connection is closed.
//! - [`get_request`]: `GET` lines parse without panicking and their ranges clamp inside the
//!   file.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use arbitrary::{Arbitrary, Unstructured};

use crate::hash::ContentHash;
use crate::server::{LeaveReason, Server, ServerConfig, ServerEvent};
use crate::wire::{
    escape, split_join, unescape, ByteRange, ExtReply, ExtRequest, Get, GetLine, LineBuf,
    LineError, ParseError, PeerAddr, PeerReply, PeerRequest, Reply, Request, EXT_TOKEN, MAX_LINE,
};
use crate::ConnId;

// ---------------------------------------------------------------------------------------
// codec
// ---------------------------------------------------------------------------------------

/// Feeds `data` to every parser of the wire format and checks that they agree.
///
/// - `Request::decode` and `Reply::decode` give the same messages whether the buffer comes
///   whole or in chunks, and the same as [`LineBuf`] followed by `parse`;
/// - every decoded message re-encodes to bytes that decode to the same message;
/// - [`LineBuf`] yields the same lines (and the same unterminated rest) however its input
///   is split, for the default and for a small limit;
/// - every line that parses as a `GET` re-encodes to a line with the same reading.
pub fn codec(data: &[u8]) {
    let mut rng = Rng::new(data);
    let chunks = rng.chunks(data);
    let whole = [data];

    // Line framing, at the protocol's limit and at a small one that long lines exceed.
    let small = 1 + (rng.next() % 64) as usize;
    for limit in [MAX_LINE, small] {
        let a = frame(&whole, limit);
        let b = frame(&chunks, limit);
        assert_eq!(
            a, b,
            "LineBuf(limit {limit}) depends on how its input is split"
        );
        for line in a.lines.iter().flatten() {
            assert!(line.len() < limit, "LineBuf yielded a line over its limit");
            assert!(
                !line.contains(&b'\n'),
                "LineBuf yielded a line holding a newline"
            );
        }
    }
    let framed = frame(&whole, MAX_LINE);

    // Requests and replies.
    let a = decode_stream(&whole, decode_request);
    assert_eq!(
        a,
        decode_stream(&chunks, decode_request),
        "Request::decode depends on how its input is split"
    );
    assert_eq!(
        a,
        parse_lines(&framed.lines, parse_request),
        "Request::decode and LineBuf + Request::parse disagree"
    );
    round_trip!(Request, data);

    let a = decode_stream(&whole, decode_reply);
    assert_eq!(
        a,
        decode_stream(&chunks, decode_reply),
        "Reply::decode depends on how its input is split"
    );
    assert_eq!(
        a,
        parse_lines(&framed.lines, parse_reply),
        "Reply::decode and LineBuf + Reply::parse disagree"
    );
    round_trip!(Reply, data);

    for line in framed.lines.iter().flatten() {
        let Ok(text) = std::str::from_utf8(line) else {
            continue;
        };
        // GET lines, as the file server reads them.
        check_get_line(text, &[0, 1, 100, u64::MAX]);
        // The extension's lines, and its escaping of names.
        line_round_trip!(ExtRequest, text);
        line_round_trip!(ExtReply, text);
        line_round_trip!(PeerRequest, text);
        line_round_trip!(PeerReply, text);
        let escaped = escape(text);
        assert!(
            !escaped.contains([' ', '\n', '\r']),
            "escape({text:?}) = {escaped:?} is not one field"
        );
        assert_eq!(unescape(&escaped).as_deref(), Ok(text), "escape round trip");
    }
}

/// A line that parses as `$ty` re-encodes to one line that parses to the same message.
macro_rules! line_round_trip {
    ($ty:ident, $text:expr) => {{
        let text: &str = $text;
        if let Ok(m) = $ty::parse(text) {
            let mut out = Vec::new();
            m.encode(&mut out);
            let again = std::str::from_utf8(&out)
                .ok()
                .and_then(|l| l.strip_suffix('\n'))
                .filter(|l| !l.contains('\n'))
                .map($ty::parse);
            assert!(
                again == Some(Ok(m.clone())),
                "{text:?} parsed as {m:?}, re-encoded as {:?}, which parses as {again:?}",
                String::from_utf8_lossy(&out)
            );
        }
    }};
}
use line_round_trip;

/// What a [`LineBuf`] made of a byte stream.
#[derive(Debug, PartialEq, Eq)]
struct Framed {
    lines: Vec<Result<Vec<u8>, LineError>>,
    partial: Vec<u8>,
    taken: Option<Vec<u8>>,
}

fn frame(chunks: &[&[u8]], limit: usize) -> Framed {
    let mut buf = LineBuf::new(limit);
    let mut lines = Vec::new();
    for chunk in chunks {
        buf.extend(chunk);
        while let Some(line) = buf.next_line() {
            lines.push(line.map(<[u8]>::to_vec));
        }
        assert!(
            buf.partial().len() < limit,
            "LineBuf holds a partial line over its limit"
        );
        assert!(buf.buffered() >= buf.partial().len());
    }
    let partial = buf.partial().to_vec();
    let taken = buf.take_partial();
    assert_eq!(buf.partial(), b"", "take_partial left bytes behind");
    assert_eq!(buf.next_line(), None, "take_partial left a line behind");
    Framed {
        lines,
        partial,
        taken,
    }
}

/// A decoded message, compared by its `Debug` text so that messages borrowing different
/// buffers can be compared.
type Decoded = Result<Option<(String, usize)>, (ParseError, usize)>;

fn decode_request(buf: &[u8]) -> Decoded {
    Request::decode(buf).map(|o| o.map(|(m, n)| (format!("{m:?}"), n)))
}

fn decode_reply(buf: &[u8]) -> Decoded {
    Reply::decode(buf).map(|o| o.map(|(m, n)| (format!("{m:?}"), n)))
}

fn parse_request(line: &str) -> Result<String, ParseError> {
    Request::parse(line).map(|m| format!("{m:?}"))
}

fn parse_reply(line: &str) -> Result<String, ParseError> {
    Reply::parse(line).map(|m| format!("{m:?}"))
}

/// Decodes a stream that arrives in `chunks` the way a careful caller of `decode` would:
/// append, decode until `Ok(None)`, drop what was used; after an overlong line whose end
/// has not arrived, drop bytes up to its `\n` as they come.
fn decode_stream(
    chunks: &[&[u8]],
    decode: fn(&[u8]) -> Decoded,
) -> Vec<Result<String, ParseError>> {
    let mut out = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut skipping = false;
    for chunk in chunks {
        let mut chunk = *chunk;
        if skipping {
            match chunk.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    skipping = false;
                    chunk = &chunk[end + 1..];
                }
                None => continue,
            }
        }
        buf.extend_from_slice(chunk);
        loop {
            let (used, skip) = match decode(&buf) {
                Ok(None) => break,
                Ok(Some((m, used))) => {
                    assert!(used > 0 && used <= buf.len(), "decode used {used} bytes");
                    assert_eq!(buf[used - 1], b'\n', "a message ends at its newline");
                    out.push(Ok(m));
                    (used, false)
                }
                Err((e, used)) => {
                    assert!(used > 0 && used <= buf.len(), "decode skipped {used} bytes");
                    let ended = buf[used - 1] == b'\n';
                    assert!(
                        ended || (e == ParseError::TooLong && used == buf.len()),
                        "an error skips exactly the offending line"
                    );
                    out.push(Err(e));
                    (used, !ended)
                }
            };
            buf.drain(..used);
            if skip {
                skipping = true;
                break;
            }
        }
    }
    out
}

/// What `decode` gives for the lines [`LineBuf`] framed: blank lines skipped, the rest
/// checked for UTF-8 and parsed.
fn parse_lines(
    lines: &[Result<Vec<u8>, LineError>],
    parse: fn(&str) -> Result<String, ParseError>,
) -> Vec<Result<String, ParseError>> {
    let mut out = Vec::new();
    for line in lines {
        let parsed = match line {
            Err(LineError::TooLong) => Err(ParseError::TooLong),
            Ok(l) if l.iter().all(u8::is_ascii_whitespace) => continue,
            Ok(l) => std::str::from_utf8(l)
                .map_err(|_| ParseError::NotUtf8)
                .and_then(parse),
        };
        out.push(parsed);
    }
    out
}

/// Every message `$ty::decode` finds in `$data` re-encodes to one line that decodes, whole
/// and alone, to the same message.
macro_rules! round_trip {
    ($ty:ident, $data:expr) => {{
        let mut rest: &[u8] = $data;
        loop {
            match $ty::decode(rest) {
                Ok(None) => break,
                Err((_, used)) => rest = &rest[used..],
                Ok(Some((m, used))) => {
                    rest = &rest[used..];
                    let mut out = Vec::new();
                    m.encode(&mut out);
                    match $ty::decode(&out) {
                        Ok(Some((again, n))) if n == out.len() => assert_eq!(
                            again,
                            m,
                            "re-encoded as {:?}",
                            String::from_utf8_lossy(&out)
                        ),
                        other => panic!(
                            "{m:?} re-encoded as {:?}, which decodes to {other:?}",
                            String::from_utf8_lossy(&out)
                        ),
                    }
                }
            }
        }
    }};
}
use round_trip;

// ---------------------------------------------------------------------------------------
// get_request
// ---------------------------------------------------------------------------------------

/// Reads `data` as `GET` lines (lossily as UTF-8, one a line, each also with `GET `
/// put in front) and clamps every reading to file lengths around its own numbers; reads
/// the same bytes with [`Unstructured`] as byte ranges and lengths and clamps those too.
/// A clamped span always lies within the file, and a range is refused only when it starts
/// past the end or ends before it starts.
pub fn get_request(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let lens: [u64; 2] = u.arbitrary().unwrap_or_default();
    let lens = [lens[0], lens[1], lens[0] % 4096, 0, 1, u64::MAX];
    for _ in 0..4 {
        let Ok(r) = u.arbitrary::<ByteRange>() else {
            break;
        };
        for len in lens {
            check_clamp(&r, len);
        }
    }
    let text = String::from_utf8_lossy(data);
    for line in text.split('\n').take(1024) {
        let line = line.strip_suffix('\r').unwrap_or(line);
        check_get_line(line, &lens);
        // The same line with the `GET ` a peer may have left out.
        if !line.starts_with("GET ") {
            check_get_line(&format!("GET {line}"), &lens);
        }
    }
}

fn check_get_line(line: &str, lens: &[u64]) {
    let Ok(get) = GetLine::parse(line) else {
        return;
    };
    let readings: Vec<Get<'_>> = get.readings().collect();
    assert!(!readings.is_empty() && readings.len() <= 2);
    for r in &readings {
        assert!(
            !r.name.is_empty(),
            "a GET reading with an empty name: {line:?}"
        );
        assert!(!r.name.contains('\n'));
        assert!(line.contains(r.name));
        // Lengths at the edges of this range, and the caller's.
        let ByteRange { start, end } = r.range;
        let mut edges = vec![start.saturating_sub(1), start, start.saturating_add(1)];
        if let Some(end) = end {
            edges.extend([end.saturating_sub(1), end, end.saturating_add(1)]);
            edges.push(end.saturating_add(2));
        }
        for &len in lens.iter().chain(&edges) {
            check_clamp(&r.range, len);
        }
        // What we would send for this reading is read back with the same reading.
        let mut out = Vec::new();
        r.encode(&mut out);
        assert_eq!(out.last(), Some(&b'\n'));
        let text = std::str::from_utf8(&out[..out.len() - 1]).expect("encoded from a str");
        let again = GetLine::parse(text)
            .unwrap_or_else(|e| panic!("{r:?} encoded as {text:?} does not parse: {e}"));
        assert!(
            again.readings().any(|a| a == *r),
            "{r:?} encoded as {text:?} reads back as {again:?}"
        );
    }
}

fn check_clamp(r: &ByteRange, len: u64) {
    match r.clamp(len) {
        Some((start, stop)) => {
            assert_eq!(start, r.start, "{r:?} clamped to {len}");
            assert!(
                start <= stop && stop <= len,
                "{r:?} clamped to {len}: {start}..{stop}"
            );
            match r.end {
                Some(end) => {
                    assert!(end >= r.start);
                    assert_eq!(stop, end.saturating_add(1).min(len), "{r:?} / {len}");
                }
                None => assert_eq!(stop, len, "{r:?} / {len}"),
            }
        }
        None => assert!(
            r.start > len || r.end.is_some_and(|e| e < r.start),
            "{r:?} refused for a file of {len} bytes"
        ),
    }
}

// ---------------------------------------------------------------------------------------
// server
// ---------------------------------------------------------------------------------------

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
pub fn server(data: &[u8]) {
    run_server(data);
}

fn run_server(data: &[u8]) -> Harness {
    if let Some(script) = data.strip_prefix(SESSION_MAGIC) {
        let mut h = Harness::new(ServerConfig::default());
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
    let mut h = Harness::new(ServerConfig {
        max_line,
        max_results,
        ..ServerConfig::default()
    });
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
    fn new(config: ServerConfig) -> Self {
        let config_copy = config.clone();
        // The server ignores time; one reading serves the whole run.
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        Self {
            now,
            max_results: config.max_results,
            server: Server::new(now, config_copy),
            peers: Vec::new(),
            ids: Vec::new(),
            ips: BTreeSet::new(),
            to_close: Vec::new(),
            creates: 0,
            model: Model::new(config.max_line, config.max_results),
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
        self.model.accept(addr.ip());
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
        self.model.bytes(k, data);
        self.drain();
    }

    fn close(&mut self, k: usize) {
        let id = self.ids[k];
        self.server.handle_closed(self.now, id);
        self.peers[k].closed = true;
        self.to_close.retain(|&c| c != id);
        self.model.closed(k);
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
            let asked = p.newlines + self.model.conns[k].overlong;
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
        for (k, p) in self.peers.iter_mut().enumerate() {
            let want = std::mem::take(&mut self.model.conns[k].expect);
            let got = std::mem::take(&mut p.got);
            assert!(
                got == want,
                "{:?} got {:?}, the model says {:?}",
                self.ids[k],
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want)
            );
            assert_eq!(
                p.close_asked, self.model.conns[k].close,
                "{:?}: close asked by the server / by the model",
                self.ids[k]
            );
        }
        // The index holds the model's files, in the model's order.
        let mut files = Vec::new();
        self.server.index().search("", usize::MAX, |hit| {
            files.push((hit.name.to_owned(), hit.size, hit.peer, hit.hash));
            true
        });
        let want: Vec<_> = self
            .model
            .files
            .values()
            .map(|f| (f.name.clone(), f.size, f.peer, f.hash))
            .collect();
        assert_eq!(files, want, "the index and the model disagree");
        self.server.index().check_invariants();
        assert!(self.server.index().len() <= self.creates);
        let open = self.peers.iter().filter(|p| !p.closed).count();
        assert_eq!(self.server.connections(), open);
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

/// A reference model of the index server, written as plainly as possible: it frames bytes
/// one at a time and keeps the shared files in one ordered list. It says what the server
/// must reply, byte for byte, when it must ask for a close, and what its index holds.
/// Extension replies are written with the core's own encoders (their format is checked by
/// `codec`); which replies, with what in them, is the model's.
struct Model {
    max_line: usize,
    max_results: usize,
    conns: Vec<ModelConn>,
    /// Every shared file by registration number: the search order.
    files: BTreeMap<u64, ModelFile>,
    next_seq: u64,
}

struct ModelConn {
    ip: IpAddr,
    state: ModelState,
    line: Vec<u8>,
    /// Dropping the rest of an overlong line.
    skipping: bool,
    /// Replies due and not yet compared.
    expect: Vec<u8>,
    /// The server must have asked to close the connection.
    close: bool,
    /// Lines dropped as too long: one request each (the extension answers them).
    overlong: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ModelState {
    AwaitingJoin,
    /// `ext`: joined with `NAPSHARE/1`.
    Joined {
        peer: PeerAddr,
        ext: bool,
    },
    /// Refused or left: bytes are ignored until the driver closes it.
    Closing,
    Closed,
}

struct ModelFile {
    conn: usize,
    name: String,
    size: u64,
    peer: PeerAddr,
    hash: Option<ContentHash>,
}

/// A request as the model reads it.
enum ModelRequest<'a> {
    Classic(Request<'a>),
    Ext(ExtRequest<'a>),
}

impl Model {
    fn new(max_line: usize, max_results: usize) -> Self {
        Self {
            max_line,
            max_results,
            conns: Vec::new(),
            files: BTreeMap::new(),
            next_seq: 0,
        }
    }

    fn accept(&mut self, ip: IpAddr) {
        self.conns.push(ModelConn {
            ip: ip.to_canonical(),
            state: ModelState::AwaitingJoin,
            line: Vec::new(),
            skipping: false,
            expect: Vec::new(),
            close: false,
            overlong: 0,
        });
    }

    fn bytes(&mut self, k: usize, data: &[u8]) {
        for &b in data {
            let c = &mut self.conns[k];
            if matches!(c.state, ModelState::Closing | ModelState::Closed) {
                return;
            }
            if c.skipping {
                c.skipping = b != b'\n';
            } else if b == b'\n' {
                let line = std::mem::take(&mut c.line);
                self.line(k, Ok(&line));
            } else {
                c.line.push(b);
                // A line and its `\n` must fit in `max_line`.
                if c.line.len() >= self.max_line {
                    c.line.clear();
                    c.skipping = true;
                    c.overlong += 1;
                    self.line(k, Err(ParseError::TooLong));
                }
            }
        }
    }

    fn line(&mut self, k: usize, line: Result<&[u8], ParseError>) {
        let ext = matches!(self.conns[k].state, ModelState::Joined { ext: true, .. });
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
                            ExtRequest::parse(text).map(ModelRequest::Ext)
                        }
                        other => other.map(ModelRequest::Classic),
                    })
            }
        };
        let state = self.conns[k].state;
        let mut out = Vec::new();
        match (state, request) {
            (ModelState::AwaitingJoin, Ok(ModelRequest::Classic(Request::Join { addr })))
            | (ModelState::Joined { .. }, Ok(ModelRequest::Classic(Request::Join { addr }))) => {
                let (addr, ext) = split_join(addr);
                let peer = PeerAddr::from_join(self.conns[k].ip, addr);
                self.conns[k].state = ModelState::Joined { peer, ext };
                // A repeated JOIN moves the files already shared to the new address.
                for f in self.files.values_mut().filter(|f| f.conn == k) {
                    f.peer = peer;
                }
                if ext {
                    let idle = ServerConfig::default().idle_timeout.map(|d| d.as_secs());
                    let idle = idle.map(|s| format!(" {s}")).unwrap_or_default();
                    out.extend_from_slice(format!("CONFIRMJOIN {EXT_TOKEN}{idle}\n").as_bytes());
                } else {
                    out.extend_from_slice(b"CONFIRMJOIN\n");
                }
            }
            (ModelState::AwaitingJoin, _) => {
                self.conns[k].state = ModelState::Closing;
                self.conns[k].close = true;
            }
            (ModelState::Joined { ext, .. }, Err(e)) => {
                if ext {
                    let message = e.to_string().into();
                    ExtReply::Error { message }.encode(&mut out);
                }
            }
            (ModelState::Joined { peer, .. }, Ok(ModelRequest::Classic(r))) => match r {
                Request::Join { .. } => unreachable!("handled above"),
                Request::CreateFile { name, size } => {
                    self.register(k, peer, name, size, None);
                    out = format!("CONFIRMCREATEFILE {name}\n").into_bytes();
                }
                Request::DeleteFile { name } => {
                    self.files.retain(|_, f| !(f.conn == k && f.name == name));
                    out = format!("CONFIRMDELETEFILE {name}\n").into_bytes();
                }
                Request::Search { pattern } => {
                    // A classic line cannot carry a name with a control character.
                    let hits = self.files.values().filter(|f| {
                        f.name.contains(pattern) && !f.name.chars().any(char::is_control)
                    });
                    for f in hits.take(self.max_results) {
                        let line = format!("FILE {} {} {}\n", f.name, f.peer, f.size);
                        out.extend_from_slice(line.as_bytes());
                    }
                    if out.is_empty() {
                        out.extend_from_slice(b"NORESULT\n");
                    }
                    out.extend_from_slice(b"ENDSEARCH\n");
                }
                Request::Leave => {
                    out.extend_from_slice(b"CONFIRMLEAVE\n");
                    self.files.retain(|_, f| f.conn != k);
                    self.conns[k].state = ModelState::Closing;
                    self.conns[k].close = true;
                }
            },
            (ModelState::Joined { peer, .. }, Ok(ModelRequest::Ext(r))) => match r {
                ExtRequest::AddFile { name, size, hash } => {
                    self.register(k, peer, &name, size, Some(hash));
                    ExtReply::ConfirmAddFile { name }.encode(&mut out);
                }
                ExtRequest::DelFile { name } => {
                    self.files.retain(|_, f| !(f.conn == k && *f.name == *name));
                    ExtReply::ConfirmDelFile { name }.encode(&mut out);
                }
                ExtRequest::Find { pattern } => {
                    let hits = self.files.values().filter(|f| f.name.contains(&*pattern));
                    let mut count = 0;
                    for f in hits.take(self.max_results) {
                        let peer = f.peer.to_string();
                        ExtReply::Found {
                            name: f.name.as_str().into(),
                            peer: &peer,
                            size: f.size,
                            hash: f.hash,
                        }
                        .encode(&mut out);
                        count += 1;
                    }
                    ExtReply::EndFind { count }.encode(&mut out);
                }
                ExtRequest::Ping => ExtReply::Pong.encode(&mut out),
            },
            (ModelState::Closing | ModelState::Closed, _) => {}
        }
        self.conns[k].expect.extend_from_slice(&out);
    }

    /// Shares `name` from connection `k`; a name it already shares keeps its place.
    fn register(
        &mut self,
        k: usize,
        peer: PeerAddr,
        name: &str,
        size: u64,
        hash: Option<ContentHash>,
    ) {
        let mine = self
            .files
            .values_mut()
            .find(|f| f.conn == k && f.name == name);
        match mine {
            Some(f) => {
                f.size = size;
                f.peer = peer;
                f.hash = hash;
            }
            None => {
                let file = ModelFile {
                    conn: k,
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

    fn closed(&mut self, k: usize) {
        self.files.retain(|_, f| f.conn != k);
        self.conns[k].state = ModelState::Closed;
    }
}

// ---------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------

/// A small deterministic generator seeded from the input, for choices the input should
/// not spend bytes on (where to split it).
struct Rng(u64);

impl Rng {
    fn new(data: &[u8]) -> Self {
        // FNV-1a.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in data {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        Self(h | 1)
    }

    /// xorshift64*.
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Splits `data` into chunks of mostly small, sometimes empty, sometimes large sizes.
    fn chunks<'a>(&mut self, mut data: &'a [u8]) -> Vec<&'a [u8]> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let r = self.next();
            let n = match r % 8 {
                0 => 0,
                1..=5 => 1 + (r >> 8) as usize % 8,
                _ => (r >> 8) as usize % 5000,
            };
            let n = n.min(data.len());
            out.push(&data[..n]);
            data = &data[n..];
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRANSCRIPT: &[u8] = b"JOIN 127.0.0.1\nCREATEFILE alpha.txt 100\nSEARCH alpha\n\
        SEARCH nomatch\nDELETEFILE never.txt\nLEAVE\n";

    #[test]
    fn codec_takes_the_transcript_and_oddities() {
        codec(TRANSCRIPT);
        codec(b"CONFIRMJOIN\nFILE alpha.txt 127.0.0.1 100\nENDSEARCH\nNORESULT\r\n");
        codec(b"GET ../../etc/passwd 0\nGET my file.txt 1 20\r\nGET a 5-\n");
        codec(b"DELETEFILE a\r\r\nSEARCH \r\nJOIN\n");
        let mut long = vec![b'x'; MAX_LINE + 10];
        long.extend_from_slice(b"\nLEAVE\n");
        codec(&long);
    }

    #[test]
    fn get_request_takes_every_range_form() {
        get_request(b"GET a.txt 3-9\nGET b 1 2\nGET c 5-\nGET d 7\nGET e 9-1\n");
        get_request(&[0xff; 40]);
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
        let h = run_server(&script);
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
        let h = run_server(&script);
        assert_eq!(h.creates, 1);
        assert_eq!(h.peers[0].answers, 5);
    }

    #[test]
    fn server_takes_unstructured_bytes() {
        server(&[]);
        server(TRANSCRIPT);
        server(&[0xff; 300]);
    }
}
