//! The classic messages between a client and the index server, parsed from one line each.
//!
//! Names may contain spaces: in `CREATEFILE` the name is the text between the first and the
//! last space, in `FILE` it is the text before the last two fields. A name can never hold
//! `\n` (it would end the line); senders refuse such names before they reach the wire.

use std::fmt;
use std::io::Write as _;

use super::line::{decode_line, LineError};

/// A request from a client to the index server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Request<'a> {
    /// `JOIN <addr>`: `addr` is free text (an IP, a host name, `ip:port`); the server only
    /// looks at it for a file-server port (see PROTOCOL.md).
    Join {
        addr: &'a str,
    },
    CreateFile {
        name: &'a str,
        size: u64,
    },
    DeleteFile {
        name: &'a str,
    },
    Search {
        pattern: &'a str,
    },
    Leave,
}

/// A reply from the index server to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Reply<'a> {
    ConfirmJoin,
    ConfirmCreateFile {
        name: &'a str,
    },
    ConfirmDeleteFile {
        name: &'a str,
    },
    /// One search match: `peer` is `ip` or `ip:port` (see PROTOCOL.md).
    File {
        name: &'a str,
        peer: &'a str,
        size: u64,
    },
    NoResult,
    EndSearch,
    ConfirmLeave,
}

/// Why a line is not a valid message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// Over the line limit.
    TooLong,
    /// Not UTF-8.
    NotUtf8,
    /// The first word is not a known command.
    UnknownCommand,
    /// A required field is missing or empty.
    MissingField,
    /// A size that is not a plain decimal number fitting in 64 bits.
    BadSize,
    /// A `%` not followed by two hexadecimal digits.
    BadEscape,
    /// A classic name with a control character in it.
    ControlChar,
    /// A content hash that is not 64 hexadecimal digits.
    BadHash,
    /// More fields than the message has.
    TrailingField,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TooLong => "line too long",
            Self::NotUtf8 => "line is not UTF-8",
            Self::UnknownCommand => "unknown command",
            Self::MissingField => "missing field",
            Self::BadSize => "size is not a number",
            Self::BadEscape => "bad %-escape",
            Self::ControlChar => "control character in a name",
            Self::BadHash => "bad content hash",
            Self::TrailingField => "unexpected extra field",
        })
    }
}

impl std::error::Error for ParseError {}

impl From<LineError> for ParseError {
    fn from(e: LineError) -> Self {
        match e {
            LineError::TooLong => Self::TooLong,
        }
    }
}

/// Parses a plain decimal size: digits only, no sign, no spaces, fits in a `u64`.
pub fn parse_size(s: &str) -> Result<u64, ParseError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::BadSize);
    }
    s.parse().map_err(|_| ParseError::BadSize)
}

/// Splits `line` into its command word and the rest (after the first space).
fn split_command(line: &str) -> (&str, Option<&str>) {
    match line.split_once(' ') {
        Some((cmd, rest)) => (cmd, Some(rest)),
        None => (line, None),
    }
}

/// A classic line cannot carry a name with control characters faithfully (a `\r` would
/// read back as part of the line end); only the extension's encoded names can.
fn plain_name(name: &str) -> Result<&str, ParseError> {
    if has_control(name) {
        return Err(ParseError::ControlChar);
    }
    Ok(name)
}

/// Whether `text` holds a control character (`char::is_control`: U+0000 to U+001F and
/// U+007F to U+009F), checked on its bytes: the last 32 are `C2 80` to `C2 9F` in UTF-8.
pub fn has_control(text: &str) -> bool {
    let b = text.as_bytes();
    // Almost no name has one: a branch-free pass over every byte (which vectorizes) rules
    // a name out at a few cycles for 32 bytes, and only a name with a suspect byte gets
    // the exact check. Every result line of a search goes through here.
    let suspect = b.iter().fold(false, |acc, &x| {
        acc | (x < 0x20) | (x == 0x7f) | (x == 0xc2)
    });
    suspect
        && b.iter().enumerate().any(|(i, &x)| {
            x < 0x20 || x == 0x7f || (x == 0xc2 && b.get(i + 1).is_some_and(|&next| next < 0xa0))
        })
}

fn non_empty(s: Option<&str>) -> Result<&str, ParseError> {
    s.filter(|s| !s.is_empty()).ok_or(ParseError::MissingField)
}

/// Splits `rest` at its last space: `(before, last_field)`.
fn split_last(rest: &str) -> Result<(&str, &str), ParseError> {
    let (head, last) = rest.rsplit_once(' ').ok_or(ParseError::MissingField)?;
    if head.is_empty() || last.is_empty() {
        return Err(ParseError::MissingField);
    }
    Ok((head, last))
}

/// Decodes the first line of `buf` with `parse`, skipping blank lines before it.
///
/// `Ok(None)` means more bytes are needed. On success the count includes skipped blank
/// lines and the terminator. On error the count is that of the offending line, so a caller
/// can skip it and go on.
fn decode_with<'a, T>(
    buf: &'a [u8],
    parse: impl Fn(&'a str) -> Result<T, ParseError>,
) -> Result<Option<(T, usize)>, (ParseError, usize)> {
    let mut at = 0;
    loop {
        let (line, used) = match decode_line(&buf[at..], super::MAX_LINE) {
            Ok(Some(found)) => found,
            Ok(None) => return Ok(None),
            Err(e) => {
                // Skip the overlong line up to its `\n` if it is here, else all we hold.
                let end = buf[at..].iter().position(|&b| b == b'\n');
                return Err((e.into(), end.map_or(buf.len(), |end| at + end + 1)));
            }
        };
        at += used;
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let text = std::str::from_utf8(line).map_err(|_| (ParseError::NotUtf8, at))?;
        return parse(text).map(|m| Some((m, at))).map_err(|e| (e, at));
    }
}

impl<'a> Request<'a> {
    /// Parses one line (without its terminator).
    pub fn parse(line: &'a str) -> Result<Self, ParseError> {
        let (cmd, rest) = split_command(line);
        match cmd {
            "JOIN" => Ok(Self::Join {
                addr: rest.unwrap_or(""),
            }),
            "CREATEFILE" => {
                let (name, size) = split_last(non_empty(rest)?)?;
                Ok(Self::CreateFile {
                    name: plain_name(name)?,
                    size: parse_size(size)?,
                })
            }
            "DELETEFILE" => Ok(Self::DeleteFile {
                name: plain_name(non_empty(rest)?)?,
            }),
            // A bare `SEARCH` searches for the empty pattern, which matches every name.
            "SEARCH" => Ok(Self::Search {
                pattern: rest.unwrap_or(""),
            }),
            "LEAVE" if rest.is_none() => Ok(Self::Leave),
            _ => Err(ParseError::UnknownCommand),
        }
    }

    /// Decodes the first request in `buf`; see the crate docs for the contract.
    pub fn decode(buf: &'a [u8]) -> Result<Option<(Self, usize)>, (ParseError, usize)> {
        decode_with(buf, Self::parse)
    }

    /// Appends the request, with its `\n`, to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        // Writing to a Vec cannot fail.
        let _ = match self {
            Self::Join { addr } => writeln!(out, "JOIN {addr}"),
            Self::CreateFile { name, size } => writeln!(out, "CREATEFILE {name} {size}"),
            Self::DeleteFile { name } => writeln!(out, "DELETEFILE {name}"),
            Self::Search { pattern } => writeln!(out, "SEARCH {pattern}"),
            Self::Leave => writeln!(out, "LEAVE"),
        };
    }
}

impl<'a> Reply<'a> {
    /// Parses one line (without its terminator).
    pub fn parse(line: &'a str) -> Result<Self, ParseError> {
        let (cmd, rest) = split_command(line);
        match (cmd, rest) {
            ("CONFIRMJOIN", None) => Ok(Self::ConfirmJoin),
            ("CONFIRMCREATEFILE", rest) => Ok(Self::ConfirmCreateFile {
                name: non_empty(rest)?,
            }),
            ("CONFIRMDELETEFILE", rest) => Ok(Self::ConfirmDeleteFile {
                name: non_empty(rest)?,
            }),
            ("FILE", rest) => {
                let (head, size) = split_last(non_empty(rest)?)?;
                let (name, peer) = split_last(head)?;
                Ok(Self::File {
                    name,
                    peer,
                    size: parse_size(size)?,
                })
            }
            ("NORESULT", None) => Ok(Self::NoResult),
            ("ENDSEARCH", None) => Ok(Self::EndSearch),
            ("CONFIRMLEAVE", None) => Ok(Self::ConfirmLeave),
            _ => Err(ParseError::UnknownCommand),
        }
    }

    /// Decodes the first reply in `buf`; see the crate docs for the contract.
    pub fn decode(buf: &'a [u8]) -> Result<Option<(Self, usize)>, (ParseError, usize)> {
        decode_with(buf, Self::parse)
    }

    /// Appends the reply, with its `\n`, to `out`.
    ///
    /// Built from byte slices, not `write!`: the index server writes one of these for
    /// every search result, and the formatting machinery cost more than the copying.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::ConfirmJoin => out.extend_from_slice(b"CONFIRMJOIN\n"),
            Self::ConfirmCreateFile { name } => {
                put_line(out, &[b"CONFIRMCREATEFILE ", name.as_bytes()]);
            }
            Self::ConfirmDeleteFile { name } => {
                put_line(out, &[b"CONFIRMDELETEFILE ", name.as_bytes()]);
            }
            Self::File { name, peer, size } => {
                encode_file(
                    out,
                    name,
                    |out| out.extend_from_slice(peer.as_bytes()),
                    *size,
                );
            }
            Self::NoResult => out.extend_from_slice(b"NORESULT\n"),
            Self::EndSearch => out.extend_from_slice(b"ENDSEARCH\n"),
            Self::ConfirmLeave => out.extend_from_slice(b"CONFIRMLEAVE\n"),
        }
    }
}

/// Appends the `FILE <name> <peer> <size>` line, the peer written by `peer` (so that a
/// caller holding the peer in another form need not make a string of it first).
pub fn encode_file(out: &mut Vec<u8>, name: &str, peer: impl FnOnce(&mut Vec<u8>), size: u64) {
    out.reserve(name.len() + 48);
    out.extend_from_slice(b"FILE ");
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    peer(out);
    out.push(b' ');
    put_u64(out, size);
    out.push(b'\n');
}

/// Appends `parts` and a `\n`.
fn put_line(out: &mut Vec<u8>, parts: &[&[u8]]) {
    out.reserve(parts.iter().map(|p| p.len()).sum::<usize>() + 1);
    for part in parts {
        out.extend_from_slice(part);
    }
    out.push(b'\n');
}

/// Appends `n` in decimal, as `write!(out, "{n}")` would.
pub fn put_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_transcript_requests_parse() {
        assert_eq!(
            Request::parse("JOIN 127.0.0.1"),
            Ok(Request::Join { addr: "127.0.0.1" })
        );
        assert_eq!(
            Request::parse("CREATEFILE alpha.txt 100"),
            Ok(Request::CreateFile {
                name: "alpha.txt",
                size: 100
            })
        );
        assert_eq!(
            Request::parse("CREATEFILE my holiday.jpg 7"),
            Ok(Request::CreateFile {
                name: "my holiday.jpg",
                size: 7
            })
        );
        assert_eq!(Request::parse("LEAVE"), Ok(Request::Leave));
    }

    #[test]
    fn bad_sizes_are_errors_not_panics() {
        for line in [
            "CREATEFILE a -1",
            "CREATEFILE a x",
            "CREATEFILE a 99999999999999999999999",
            "CREATEFILE a +1",
            "CREATEFILE a",
            "CREATEFILE",
            "CREATEFILE  5",
            "CREATEFILE z\r\r 5",
            "CREATEFILE a\tb 5",
        ] {
            assert!(Request::parse(line).is_err(), "{line}");
        }
    }

    #[test]
    fn control_characters_are_found_on_bytes() {
        for c in [
            '\0',
            '\n',
            '\r',
            '\x1f',
            '\x7f',
            '\u{80}',
            '\u{9f}',
            'a',
            ' ',
            '\u{a0}',
            '\u{ff}',
            '~',
            'é',
            '\u{2028}',
            '\u{10ffff}',
        ] {
            let text = format!("a{c}b");
            assert_eq!(has_control(&text), c.is_control(), "{c:?}");
        }
        // Every character of the first two UTF-8 lengths, anywhere in a long name (the
        // vectorized pass works on blocks of bytes).
        let pad = "x".repeat(40);
        for c in (0..0x800).filter_map(char::from_u32) {
            for at in [0, 7, 31, 32, 40] {
                let text = format!("{}{c}{}", &pad[..at], &pad[at..]);
                assert_eq!(has_control(&text), c.is_control(), "{c:?} at {at}");
            }
        }
    }

    #[test]
    fn numbers_are_written_as_display_writes_them() {
        let mut out = Vec::new();
        let powers = (0..20).flat_map(|e| {
            let p = 10u64.pow(e);
            [p - 1, p, p + 1]
        });
        for n in (0..20_000).chain(powers).chain([u64::MAX - 1, u64::MAX]) {
            out.clear();
            put_u64(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }

    #[test]
    fn replies_encode_as_write_would() {
        for size in [
            0,
            7,
            10,
            99,
            100,
            101,
            999,
            1000,
            12_345,
            1_000_000,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            Reply::File {
                name: "a b.txt",
                peer: "10.0.0.1:4000",
                size,
            }
            .encode(&mut out);
            assert_eq!(
                out,
                format!("FILE a b.txt 10.0.0.1:4000 {size}\n").as_bytes()
            );
        }
        let mut out = Vec::new();
        for reply in [
            Reply::ConfirmJoin,
            Reply::ConfirmCreateFile { name: "x y" },
            Reply::ConfirmDeleteFile { name: "z" },
            Reply::NoResult,
            Reply::EndSearch,
            Reply::ConfirmLeave,
        ] {
            reply.encode(&mut out);
        }
        assert_eq!(
            out,
            b"CONFIRMJOIN\nCONFIRMCREATEFILE x y\nCONFIRMDELETEFILE z\nNORESULT\nENDSEARCH\nCONFIRMLEAVE\n"
        );
    }

    #[test]
    fn file_reply_with_spaces_in_name() {
        assert_eq!(
            Reply::parse("FILE a b c.txt 10.0.0.1:4000 12"),
            Ok(Reply::File {
                name: "a b c.txt",
                peer: "10.0.0.1:4000",
                size: 12
            })
        );
    }

    #[test]
    fn decode_skips_blank_lines_and_reports_bad_line_length() {
        let buf = b"\r\n\nSEARCH x\r\nBOGUS\nLEAVE\n";
        let (m, used) = Request::decode(buf).unwrap().unwrap();
        assert_eq!(m, Request::Search { pattern: "x" });
        assert_eq!(used, 13);
        let err = Request::decode(&buf[used..]).unwrap_err();
        assert_eq!(err, (ParseError::UnknownCommand, 6));
        assert_eq!(Request::decode(b"LEA"), Ok(None));
    }

    #[test]
    fn an_overlong_line_is_skipped_alone() {
        let mut buf = vec![b'x'; super::super::MAX_LINE + 10];
        buf.extend_from_slice(b"\nLEAVE\n");
        let err = Request::decode(&buf).unwrap_err();
        assert_eq!(err, (ParseError::TooLong, super::super::MAX_LINE + 11));
        assert_eq!(
            Request::decode(&buf[err.1..]),
            Ok(Some((Request::Leave, 6)))
        );
    }
}
