//! The napshare extension (`NAPSHARE/1`), spoken only between napshare nodes.
//!
//! A napshare client asks for it by ending its `JOIN` with the token; a napshare server
//! agrees by answering `CONFIRMJOIN NAPSHARE/1`. The seed's server ignores the token (it
//! reads the address from the socket) and answers a plain `CONFIRMJOIN`, and a classic
//! client never sends it, so it never sees a line of the extension. Once agreed, the
//! client may also use the requests below; classic requests keep working.
//!
//! Every name in an extension line is percent-encoded (see [`super::escape()`]), so names
//! hold any UTF-8. Content hashes are 64 lowercase hex digits of BLAKE3.

use std::borrow::Cow;
use std::io::Write as _;

use super::escape::{escape, unescape};
use super::message::{parse_size, ParseError};
use crate::hash::ContentHash;

/// The token that asks for and grants the extension.
pub const EXT_TOKEN: &str = "NAPSHARE/1";

/// Splits a `JOIN` text into the address part and whether it asks for the extension.
pub fn split_join(text: &str) -> (&str, bool) {
    match text.strip_suffix(EXT_TOKEN) {
        Some(rest) if rest.is_empty() || rest.ends_with(' ') => (rest.trim_end(), true),
        _ => (text, false),
    }
}

/// Extension requests from a client to the index server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtRequest<'a> {
    /// `ADDFILE <name> <size> <hash>`: share a file with its content hash.
    AddFile {
        name: Cow<'a, str>,
        size: u64,
        hash: ContentHash,
    },
    /// `DELFILE <name>`: stop sharing it.
    DelFile { name: Cow<'a, str> },
    /// `FIND <pattern>`: like `SEARCH`, answered with `FOUND` lines and `ENDFIND`.
    Find { pattern: Cow<'a, str> },
    /// `PING`: I am still here (answered with `PONG`).
    Ping,
}

/// Extension replies from the index server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtReply<'a> {
    /// `CONFIRMJOIN NAPSHARE/1 [idle]`: the extension is on for this connection; with
    /// `idle`, the server drops the connection after that many seconds without a byte
    /// from it, so the client sends `PING` when it has nothing else to say.
    ConfirmJoin {
        idle: Option<u64>,
    },
    /// `PONG`: the answer to `PING`.
    Pong,
    ConfirmAddFile {
        name: Cow<'a, str>,
    },
    ConfirmDelFile {
        name: Cow<'a, str>,
    },
    /// `FOUND <name> <peer> <size> <hash or ->`: one match; `-` when the file was shared
    /// by a classic client, which gives no hash.
    Found {
        name: Cow<'a, str>,
        peer: &'a str,
        size: u64,
        hash: Option<ContentHash>,
    },
    /// `ENDFIND <count>`: the end of a `FIND` answer, with the number of matches sent.
    EndFind {
        count: u64,
    },
    /// `ERROR <message>`: the request was not understood or not allowed.
    Error {
        message: Cow<'a, str>,
    },
}

fn fields(line: &str) -> impl Iterator<Item = &str> {
    line.split(' ')
}

fn name_field(field: Option<&str>) -> Result<Cow<'_, str>, ParseError> {
    let name = unescape(
        field
            .filter(|f| !f.is_empty())
            .ok_or(ParseError::MissingField)?,
    )?;
    if name.is_empty() {
        return Err(ParseError::MissingField);
    }
    Ok(name)
}

fn hash_field(field: Option<&str>) -> Result<ContentHash, ParseError> {
    field
        .ok_or(ParseError::MissingField)?
        .parse()
        .map_err(|_| ParseError::BadHash)
}

fn size_field(field: Option<&str>) -> Result<u64, ParseError> {
    parse_size(field.ok_or(ParseError::MissingField)?)
}

fn end(mut rest: impl Iterator) -> Result<(), ParseError> {
    match rest.next() {
        None => Ok(()),
        Some(_) => Err(ParseError::TrailingField),
    }
}

impl<'a> ExtRequest<'a> {
    /// Parses one line (without its terminator).
    pub fn parse(line: &'a str) -> Result<Self, ParseError> {
        let mut f = fields(line);
        let msg = match f.next() {
            Some("ADDFILE") => Self::AddFile {
                name: name_field(f.next())?,
                size: size_field(f.next())?,
                hash: hash_field(f.next())?,
            },
            Some("DELFILE") => Self::DelFile {
                name: name_field(f.next())?,
            },
            Some("FIND") => Self::Find {
                pattern: unescape(f.next().unwrap_or(""))?,
            },
            Some("PING") => Self::Ping,
            _ => return Err(ParseError::UnknownCommand),
        };
        end(f)?;
        Ok(msg)
    }

    /// Appends the request, with its `\n`, to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        // Writing to a Vec cannot fail.
        let _ = match self {
            Self::AddFile { name, size, hash } => {
                writeln!(out, "ADDFILE {} {size} {hash}", escape(name))
            }
            Self::DelFile { name } => writeln!(out, "DELFILE {}", escape(name)),
            Self::Find { pattern } => writeln!(out, "FIND {}", escape(pattern)),
            Self::Ping => writeln!(out, "PING"),
        };
    }
}

impl<'a> ExtReply<'a> {
    /// Parses one line (without its terminator).
    pub fn parse(line: &'a str) -> Result<Self, ParseError> {
        let mut f = fields(line);
        let msg = match f.next() {
            Some("CONFIRMJOIN") => match f.next() {
                Some(EXT_TOKEN) => Self::ConfirmJoin {
                    idle: f.next().map(parse_size).transpose()?,
                },
                _ => return Err(ParseError::UnknownCommand),
            },
            Some("PONG") => Self::Pong,
            Some("CONFIRMADDFILE") => Self::ConfirmAddFile {
                name: name_field(f.next())?,
            },
            Some("CONFIRMDELFILE") => Self::ConfirmDelFile {
                name: name_field(f.next())?,
            },
            Some("FOUND") => Self::Found {
                name: name_field(f.next())?,
                peer: f
                    .next()
                    .filter(|p| !p.is_empty())
                    .ok_or(ParseError::MissingField)?,
                size: size_field(f.next())?,
                hash: match f.next() {
                    Some("-") => None,
                    other => Some(hash_field(other)?),
                },
            },
            Some("ENDFIND") => Self::EndFind {
                count: size_field(f.next())?,
            },
            Some("ERROR") => Self::Error {
                message: unescape(f.next().unwrap_or(""))?,
            },
            _ => return Err(ParseError::UnknownCommand),
        };
        end(f)?;
        Ok(msg)
    }

    /// Appends the reply, with its `\n`, to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        // Writing to a Vec cannot fail.
        let _ = match self {
            Self::ConfirmJoin { idle: None } => writeln!(out, "CONFIRMJOIN {EXT_TOKEN}"),
            Self::ConfirmJoin { idle: Some(s) } => writeln!(out, "CONFIRMJOIN {EXT_TOKEN} {s}"),
            Self::Pong => writeln!(out, "PONG"),
            Self::ConfirmAddFile { name } => writeln!(out, "CONFIRMADDFILE {}", escape(name)),
            Self::ConfirmDelFile { name } => writeln!(out, "CONFIRMDELFILE {}", escape(name)),
            Self::Found {
                name,
                peer,
                size,
                hash,
            } => match hash {
                Some(h) => writeln!(out, "FOUND {} {peer} {size} {h}", escape(name)),
                None => writeln!(out, "FOUND {} {peer} {size} -", escape(name)),
            },
            Self::EndFind { count } => writeln!(out, "ENDFIND {count}"),
            Self::Error { message } => writeln!(out, "ERROR {}", escape(message)),
        };
    }
}

/// Extension requests from a peer to a client's file server. Several may follow each
/// other on one connection; each gets its reply in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRequest {
    /// `XGET <hash> <start> <len>`: `len` bytes from `start` of the file with that hash.
    Get {
        hash: ContentHash,
        start: u64,
        len: u64,
    },
    /// `XPIECES <hash>`: the piece hashes of that file (see [`crate::hash`]).
    Pieces { hash: ContentHash },
}

/// Why a peer could not serve a request; the first word of an `ERROR` reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerError {
    /// This peer does not share a file with that hash.
    NotFound,
    /// The range does not lie inside the file.
    BadRange,
    /// The file is shared but cannot be read now (gone, or changed since it was hashed).
    Unavailable,
    /// The request was not understood.
    BadRequest,
}

impl PeerError {
    fn word(self) -> &'static str {
        match self {
            Self::NotFound => "notfound",
            Self::BadRange => "badrange",
            Self::Unavailable => "unavailable",
            Self::BadRequest => "badrequest",
        }
    }

    fn from_word(w: &str) -> Option<Self> {
        [
            Self::NotFound,
            Self::BadRange,
            Self::Unavailable,
            Self::BadRequest,
        ]
        .into_iter()
        .find(|e| e.word() == w)
    }
}

/// The header line of a file server's reply to a [`PeerRequest`]; raw bytes follow
/// `DATA` (`len` of them) and `PIECES` (`count` times 32).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerReply<'a> {
    /// `DATA <hash> <start> <len>`: the bytes of the file with that hash.
    Data {
        hash: ContentHash,
        start: u64,
        len: u64,
    },
    /// `PIECES <size> <count>`.
    Pieces { size: u64, count: u64 },
    /// `ERROR <code> <message>`.
    Error {
        code: PeerError,
        message: Cow<'a, str>,
    },
}

impl PeerRequest {
    /// Parses one line (without its terminator).
    pub fn parse(line: &str) -> Result<Self, ParseError> {
        let mut f = fields(line);
        let msg = match f.next() {
            Some("XGET") => Self::Get {
                hash: hash_field(f.next())?,
                start: size_field(f.next())?,
                len: size_field(f.next())?,
            },
            Some("XPIECES") => Self::Pieces {
                hash: hash_field(f.next())?,
            },
            _ => return Err(ParseError::UnknownCommand),
        };
        end(f)?;
        Ok(msg)
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        // Writing to a Vec cannot fail.
        let _ = match self {
            Self::Get { hash, start, len } => writeln!(out, "XGET {hash} {start} {len}"),
            Self::Pieces { hash } => writeln!(out, "XPIECES {hash}"),
        };
    }
}

impl<'a> PeerReply<'a> {
    /// Parses one header line (without its terminator).
    pub fn parse(line: &'a str) -> Result<Self, ParseError> {
        let mut f = fields(line);
        let msg = match f.next() {
            Some("DATA") => Self::Data {
                hash: hash_field(f.next())?,
                start: size_field(f.next())?,
                len: size_field(f.next())?,
            },
            Some("PIECES") => Self::Pieces {
                size: size_field(f.next())?,
                count: size_field(f.next())?,
            },
            Some("ERROR") => Self::Error {
                code: f
                    .next()
                    .and_then(PeerError::from_word)
                    .ok_or(ParseError::MissingField)?,
                message: unescape(f.next().unwrap_or(""))?,
            },
            _ => return Err(ParseError::UnknownCommand),
        };
        end(f)?;
        Ok(msg)
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        // Writing to a Vec cannot fail.
        let _ = match self {
            Self::Data { hash, start, len } => writeln!(out, "DATA {hash} {start} {len}"),
            Self::Pieces { size, count } => writeln!(out, "PIECES {size} {count}"),
            Self::Error { code, message } => {
                writeln!(out, "ERROR {} {}", code.word(), escape(message))
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip_req(m: ExtRequest<'_>) {
        let mut out = Vec::new();
        m.encode(&mut out);
        let line = std::str::from_utf8(&out)
            .unwrap()
            .strip_suffix('\n')
            .unwrap();
        assert_eq!(ExtRequest::parse(line).unwrap(), m, "{line}");
    }

    #[test]
    fn join_token() {
        assert_eq!(
            split_join("10.0.0.1:4000 NAPSHARE/1"),
            ("10.0.0.1:4000", true)
        );
        assert_eq!(split_join("NAPSHARE/1"), ("", true));
        assert_eq!(split_join("10.0.0.1"), ("10.0.0.1", false));
        assert_eq!(split_join("xNAPSHARE/1"), ("xNAPSHARE/1", false));
    }

    #[test]
    fn names_with_anything_round_trip() {
        let hash = ContentHash([7; 32]);
        for name in ["plain.txt", "my song.mp3", "ação 100%.ogg", "new\nline"] {
            round_trip_req(ExtRequest::AddFile {
                name: name.into(),
                size: 5,
                hash,
            });
            round_trip_req(ExtRequest::DelFile { name: name.into() });
            round_trip_req(ExtRequest::Find {
                pattern: name.into(),
            });
        }
        round_trip_req(ExtRequest::Find { pattern: "".into() });
    }

    #[test]
    fn found_lines() {
        let line = format!("FOUND a%20b 10.0.0.1:4000 12 {}", ContentHash([1; 32]));
        assert_eq!(
            ExtReply::parse(&line).unwrap(),
            ExtReply::Found {
                name: "a b".into(),
                peer: "10.0.0.1:4000",
                size: 12,
                hash: Some(ContentHash([1; 32]))
            }
        );
        assert!(matches!(
            ExtReply::parse("FOUND a 10.0.0.1 12 -"),
            Ok(ExtReply::Found { hash: None, .. })
        ));
        assert!(ExtReply::parse("FOUND a b 10.0.0.1 12 -").is_err());
        assert_eq!(
            ExtReply::parse("CONFIRMJOIN NAPSHARE/1"),
            Ok(ExtReply::ConfirmJoin { idle: None })
        );
    }

    #[test]
    fn peer_messages() {
        let hash = ContentHash([9; 32]);
        for m in [
            PeerRequest::Get {
                hash,
                start: 5,
                len: 10,
            },
            PeerRequest::Pieces { hash },
        ] {
            let mut out = Vec::new();
            m.encode(&mut out);
            let line = std::str::from_utf8(&out).unwrap().trim_end();
            assert_eq!(PeerRequest::parse(line), Ok(m));
        }
        let e = PeerReply::Error {
            code: PeerError::BadRange,
            message: "past the end".into(),
        };
        let mut out = Vec::new();
        e.encode(&mut out);
        assert_eq!(out, b"ERROR badrange past%20the%20end\n");
        assert_eq!(PeerReply::parse("ERROR badrange past%20the%20end"), Ok(e));
        assert!(PeerRequest::parse("XGET zz 0 1").is_err());
    }
}
