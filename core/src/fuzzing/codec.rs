//! The `codec` target: every parser of the wire format agrees with itself however the
//! bytes are split, and what decodes re-encodes to the same message.

use fastrand::Rng;

use super::get_request::check_get_line;
use crate::wire::{
    escape, unescape, ExtReply, ExtRequest, LineBuf, LineError, ParseError, PeerReply, PeerRequest,
    Reply, Request, MAX_LINE,
};

/// Feeds `data` to every parser of the wire format and checks that they agree.
///
/// - `Request::decode` and `Reply::decode` give the same messages whether the buffer comes
///   whole or in chunks, and the same as [`LineBuf`] followed by `parse`;
/// - every decoded message re-encodes to bytes that decode to the same message;
/// - [`LineBuf`] yields the same lines (and the same unterminated rest) however its input
///   is split, for the default and for a small limit;
/// - every line that parses as a `GET` re-encodes to a line with the same reading.
pub fn codec(data: &[u8]) {
    let mut rng = Rng::with_seed(seed_of(data));
    let chunks = chunks(&mut rng, data);
    let whole = [data];

    // Line framing, at the protocol's limit and at a small one that long lines exceed.
    let small = rng.usize(1..=64);
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

/// A seed from the input (FNV-1a), for choices the input should not spend bytes on (where
/// to split it): the same input always splits the same way.
fn seed_of(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Splits `data` into chunks of mostly small, sometimes empty, sometimes large sizes.
fn chunks<'a>(rng: &mut Rng, mut data: &'a [u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let n = match rng.u8(..8) {
            0 => 0,
            1..=5 => rng.usize(1..=8),
            _ => rng.usize(..5000),
        };
        let n = n.min(data.len());
        out.push(&data[..n]);
        data = &data[n..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzzing::TRANSCRIPT;

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
}
