//! Properties of the wire codec: every message survives encode then decode, and how a byte
//! stream is cut into reads never changes the messages read from it.

use napshare_core::wire::{
    parse_size, ByteRange, Get, GetLine, LineBuf, LineError, ParseError, Reply, Request, MAX_LINE,
};
use proptest::prelude::*;

// ---- owned mirrors of the borrowed messages, so proptest can generate them ----

#[derive(Debug, Clone, PartialEq, Eq)]
enum Req {
    Join(String),
    Create(String, u64),
    Delete(String),
    Search(String),
    Leave,
}

impl Req {
    fn wire(&self) -> Request<'_> {
        match self {
            Self::Join(addr) => Request::Join { addr },
            Self::Create(name, size) => Request::CreateFile { name, size: *size },
            Self::Delete(name) => Request::DeleteFile { name },
            Self::Search(pattern) => Request::Search { pattern },
            Self::Leave => Request::Leave,
        }
    }

    fn owned(r: Request<'_>) -> Self {
        match r {
            Request::Join { addr } => Self::Join(addr.into()),
            Request::CreateFile { name, size } => Self::Create(name.into(), size),
            Request::DeleteFile { name } => Self::Delete(name.into()),
            Request::Search { pattern } => Self::Search(pattern.into()),
            Request::Leave => Self::Leave,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Rep {
    ConfirmJoin,
    ConfirmCreate(String),
    ConfirmDelete(String),
    File(String, String, u64),
    NoResult,
    EndSearch,
    ConfirmLeave,
}

impl Rep {
    fn wire(&self) -> Reply<'_> {
        match self {
            Self::ConfirmJoin => Reply::ConfirmJoin,
            Self::ConfirmCreate(name) => Reply::ConfirmCreateFile { name },
            Self::ConfirmDelete(name) => Reply::ConfirmDeleteFile { name },
            Self::File(name, peer, size) => Reply::File {
                name,
                peer,
                size: *size,
            },
            Self::NoResult => Reply::NoResult,
            Self::EndSearch => Reply::EndSearch,
            Self::ConfirmLeave => Reply::ConfirmLeave,
        }
    }

    fn owned(r: Reply<'_>) -> Self {
        match r {
            Reply::ConfirmJoin => Self::ConfirmJoin,
            Reply::ConfirmCreateFile { name } => Self::ConfirmCreate(name.into()),
            Reply::ConfirmDeleteFile { name } => Self::ConfirmDelete(name.into()),
            Reply::File { name, peer, size } => Self::File(name.into(), peer.into(), size),
            Reply::NoResult => Self::NoResult,
            Reply::EndSearch => Self::EndSearch,
            Reply::ConfirmLeave => Self::ConfirmLeave,
        }
    }
}

// ---- strategies ----

/// Free text on one line: anything but a line terminator, often with spaces.
fn text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z .]{0,12}", "[^\r\n]{0,12}"]
}

/// A name field: free text, never empty (the parsers require a name) and without control
/// characters (a classic line cannot carry them; the extension encodes them).
fn name() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z .]{1,12}", "[^\\p{Cc}]{1,12}", "[a-z]{1,4} [0-9]{1,3}"]
}

/// A `FILE` peer field: the last word before the size, so it holds no space.
fn peer() -> impl Strategy<Value = String> {
    prop_oneof![
        "10\\.0\\.0\\.[0-9]{1,3}(:[0-9]{1,5})?",
        "\\[::1\\]:[0-9]{1,5}",
        "[^\r\n ]{1,12}"
    ]
}

fn size() -> impl Strategy<Value = u64> {
    prop_oneof![0..1000u64, any::<u64>()]
}

fn request() -> impl Strategy<Value = Req> {
    prop_oneof![
        text().prop_map(Req::Join),
        (name(), size()).prop_map(|(n, s)| Req::Create(n, s)),
        name().prop_map(Req::Delete),
        text().prop_map(Req::Search),
        Just(Req::Leave),
    ]
}

fn reply() -> impl Strategy<Value = Rep> {
    prop_oneof![
        Just(Rep::ConfirmJoin),
        name().prop_map(Rep::ConfirmCreate),
        name().prop_map(Rep::ConfirmDelete),
        (name(), peer(), size()).prop_map(|(n, p, s)| Rep::File(n, p, s)),
        Just(Rep::NoResult),
        Just(Rep::EndSearch),
        Just(Rep::ConfirmLeave),
    ]
}

fn range() -> impl Strategy<Value = ByteRange> {
    (size(), proptest::option::of(size())).prop_map(|(start, end)| ByteRange { start, end })
}

/// How a message line ends, and which blank line (if any) comes before it.
#[derive(Debug, Clone)]
struct Framing {
    crlf: bool,
    blank_before: Option<&'static str>,
}

fn framing() -> impl Strategy<Value = Framing> {
    let blank = proptest::option::of(prop_oneof![
        Just("\n"),
        Just("\r\n"),
        Just(" \n"),
        Just("\t \r\n")
    ]);
    (any::<bool>(), blank).prop_map(|(crlf, blank_before)| Framing { crlf, blank_before })
}

/// Lengths of successive reads; the last one repeats until the stream is used up.
fn reads() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(1..40usize, 1..12)
}

// ---- helpers ----

/// Encodes one message with `encode`, then frames it as `f` says.
fn framed(out: &mut Vec<u8>, f: &Framing, encode: impl FnOnce(&mut Vec<u8>)) {
    if let Some(blank) = f.blank_before {
        out.extend_from_slice(blank.as_bytes());
    }
    encode(out);
    if f.crlf {
        let lf = out.pop();
        assert_eq!(lf, Some(b'\n'), "every encoder ends its line");
        out.extend_from_slice(b"\r\n");
    }
}

/// Cuts `stream` into reads of the given lengths.
fn chunks<'a>(stream: &'a [u8], reads: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = stream;
    let mut lens = reads
        .iter()
        .copied()
        .chain(std::iter::repeat(reads[reads.len() - 1]));
    while !rest.is_empty() {
        let n = lens.next().unwrap_or(1).clamp(1, rest.len());
        let (head, tail) = rest.split_at(n);
        out.push(head);
        rest = tail;
    }
    out
}

/// The non-blank lines a `LineBuf` yields when fed `reads`.
fn lines_via_linebuf(reads: &[&[u8]]) -> Vec<Vec<u8>> {
    let mut buf = LineBuf::new(MAX_LINE);
    let mut out = Vec::new();
    for r in reads {
        buf.extend(r);
        while let Some(line) = buf.next_line() {
            let line = line.expect("no line is over the limit");
            if !line.iter().all(u8::is_ascii_whitespace) {
                out.push(line.to_vec());
            }
        }
    }
    assert_eq!(buf.buffered(), 0, "every line was terminated");
    out
}

type Decoded<T> = Result<Option<(T, usize)>, (ParseError, usize)>;

/// Runs a `decode` function over a buffer that grows by `reads`, as a driver would,
/// dropping what each decoded message used.
fn messages_via_decode<T>(reads: &[&[u8]], decode: impl Fn(&[u8]) -> Decoded<T>) -> Vec<T> {
    let mut held = Vec::new();
    let mut out = Vec::new();
    for r in reads {
        held.extend_from_slice(r);
        loop {
            match decode(&held) {
                Ok(Some((m, used))) => {
                    out.push(m);
                    held.drain(..used);
                }
                Ok(None) => break,
                Err(e) => panic!("a valid stream failed to decode: {e:?}"),
            }
        }
    }
    assert!(
        held.iter().all(u8::is_ascii_whitespace),
        "only blank lines may stay behind: {held:?}"
    );
    out
}

/// Whether `GET name start` also reads as `GET name' start' start`: a range of `name'`
/// (only when that range does not end before it starts).
fn get_is_ambiguous(name: &str, range: ByteRange) -> bool {
    range.end.is_none()
        && name.rsplit_once(' ').is_some_and(|(head, tail)| {
            !head.is_empty() && parse_size(tail).is_ok_and(|start| start <= range.start)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_request_round_trips(req in request()) {
        let mut wire = Vec::new();
        req.wire().encode(&mut wire);
        prop_assert_eq!(wire.iter().filter(|&&b| b == b'\n').count(), 1);
        prop_assert_eq!(wire.last(), Some(&b'\n'));
        let decoded = Request::decode(&wire).map(|o| o.map(|(m, n)| (Req::owned(m), n)));
        prop_assert_eq!(decoded, Ok(Some((req, wire.len()))));
    }

    #[test]
    fn every_reply_round_trips(rep in reply()) {
        let mut wire = Vec::new();
        rep.wire().encode(&mut wire);
        prop_assert_eq!(wire.iter().filter(|&&b| b == b'\n').count(), 1);
        let decoded = Reply::decode(&wire).map(|o| o.map(|(m, n)| (Rep::owned(m), n)));
        prop_assert_eq!(decoded, Ok(Some((rep, wire.len()))));
    }

    /// A `GET` always reads back as itself; only a name ending in ` <number>` with an
    /// open range has a second reading, and then the original is that second reading.
    #[test]
    fn every_get_round_trips(name in name(), range in range()) {
        let get = Get { name: &name, range };
        let mut wire = Vec::new();
        get.encode(&mut wire);
        let line = std::str::from_utf8(&wire).unwrap().strip_suffix('\n').unwrap();
        let parsed = GetLine::parse(line).unwrap();
        if get_is_ambiguous(&name, range) {
            prop_assert_eq!(parsed.second, Some(get));
            prop_assert_ne!(parsed.first, get);
        } else {
            prop_assert_eq!(parsed, GetLine { first: get, second: None });
        }
    }

    #[test]
    fn split_request_streams_decode_like_whole_ones(
        msgs in proptest::collection::vec((request(), framing()), 0..20),
        trailing_blank in any::<bool>(),
        reads in reads(),
    ) {
        let mut stream = Vec::new();
        for (m, f) in &msgs {
            framed(&mut stream, f, |out| m.wire().encode(out));
        }
        if trailing_blank {
            stream.extend_from_slice(b"\r\n\n");
        }
        let expected: Vec<Req> = msgs.into_iter().map(|(m, _)| m).collect();
        let parse = |lines: Vec<Vec<u8>>| -> Vec<Req> {
            lines
                .iter()
                .map(|l| Req::owned(Request::parse(std::str::from_utf8(l).unwrap()).unwrap()))
                .collect()
        };
        let decode = |b: &[u8]| Request::decode(b).map(|o| o.map(|(m, n)| (Req::owned(m), n)));

        let whole = [&stream[..]];
        let split = chunks(&stream, &reads);
        prop_assert_eq!(&parse(lines_via_linebuf(&whole)), &expected);
        prop_assert_eq!(&parse(lines_via_linebuf(&split)), &expected);
        prop_assert_eq!(&messages_via_decode(&whole, decode), &expected);
        prop_assert_eq!(&messages_via_decode(&split, decode), &expected);
    }

    #[test]
    fn split_reply_streams_decode_like_whole_ones(
        msgs in proptest::collection::vec((reply(), framing()), 0..20),
        reads in reads(),
    ) {
        let mut stream = Vec::new();
        for (m, f) in &msgs {
            framed(&mut stream, f, |out| m.wire().encode(out));
        }
        let expected: Vec<Rep> = msgs.into_iter().map(|(m, _)| m).collect();
        let parse = |lines: Vec<Vec<u8>>| -> Vec<Rep> {
            lines
                .iter()
                .map(|l| Rep::owned(Reply::parse(std::str::from_utf8(l).unwrap()).unwrap()))
                .collect()
        };
        let decode = |b: &[u8]| Reply::decode(b).map(|o| o.map(|(m, n)| (Rep::owned(m), n)));

        let split = chunks(&stream, &reads);
        prop_assert_eq!(&parse(lines_via_linebuf(&[&stream[..]])), &expected);
        prop_assert_eq!(&parse(lines_via_linebuf(&split)), &expected);
        prop_assert_eq!(&messages_via_decode(&split, decode), &expected);
    }

    /// With a small limit some lines are too long: each is reported once, in its place,
    /// and the lines around it come through untouched however the stream is cut.
    #[test]
    fn overlong_lines_are_reported_in_place_however_the_stream_is_cut(
        lines in proptest::collection::vec(("[a-z ]{0,24}", any::<bool>()), 0..16),
        reads in reads(),
    ) {
        const LIMIT: usize = 12;
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for (text, crlf) in &lines {
            let mut line = text.clone().into_bytes();
            if *crlf {
                line.push(b'\r');
            }
            // The limit counts the terminator: a line fits if its `\n` is within it.
            expected.push(if line.len() < LIMIT { Ok(text.clone()) } else { Err(LineError::TooLong) });
            stream.extend_from_slice(&line);
            stream.push(b'\n');
        }
        let mut buf = LineBuf::new(LIMIT);
        let mut got = Vec::new();
        for r in chunks(&stream, &reads) {
            buf.extend(r);
            while let Some(line) = buf.next_line() {
                got.push(line.map(|l| String::from_utf8(l.to_vec()).unwrap()));
            }
            prop_assert!(buf.buffered() < LIMIT, "only a short partial line stays behind");
        }
        prop_assert_eq!(got, expected);
        prop_assert_eq!(buf.buffered(), 0);
    }
}
