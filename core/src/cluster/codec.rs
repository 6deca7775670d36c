//! The binary encoding of what a napshare cluster sends over NATS: a session's whole
//! [`ShareList`] (one JetStream KV value), a [`SearchRequest`] to a partition and a
//! partition's [`Answer`].
//!
//! # Format, version 1
//!
//! Every value is `kind: u8`, `version: u8`, then its fields, and nothing after them:
//!
//! ```text
//! ShareList     = 0x01 0x01 peer:str count:u32 (name:str size:u64 hash:opt)*count
//! SearchRequest = 0x02 0x01 pattern:str limit:u32
//! Answer        = 0x03 0x01 more:bool count:u32 (name:str size:u64 peer:str hash:opt)*count
//! str  = len:u16 then len bytes of UTF-8
//! opt  = 0x00 | 0x01 then 32 bytes (a BLAKE3 ContentHash)
//! bool = 0x00 | 0x01
//! ```
//!
//! Integers are fixed-width little-endian, not varints: then every value has exactly one
//! encoding (no overlong varints, flags only 0 or 1, no trailing bytes), so a decoder
//! accepts only canonical bytes and re-encoding what it decoded gives the input back byte
//! for byte. That costs about four bytes a file against a varint size, little next to the
//! name.
//!
//! A decoder meets a kind it does not expect with [`CodecError::BadKind`] and a version it
//! does not know with [`CodecError::BadVersion`]: it never guesses at a newer layout. A
//! change to the layout of a kind bumps that kind's version; the golden tests below pin
//! version 1's bytes.
//!
//! Bounds: a value is at most [`MAX_VALUE`] bytes (NATS's default `max_payload`), a string
//! at most [`MAX_STRING`] bytes (a protocol line), a peer [`MAX_PEER`], a share list or an
//! answer at most [`MAX_FILES`] files. A decoder checks every count against the bytes left
//! before it allocates, never panics, and checks names as the server does
//! (any non-empty text: whatever a client may register, a replica must carry, so that
//! a cluster finds what one server would), peers and patterns as one field of a reply line.

use crate::hash::ContentHash;

use super::{Answer, RemoteHit};

/// The format version this module writes and the only one it reads.
pub const VERSION: u8 = 1;
/// The largest encoded value: NATS's default `max_payload`, 1 MiB.
pub const MAX_VALUE: usize = 1 << 20;
/// The most files in one share list or answer: the server's default `max_files`. At
/// ~100 bytes a file the [`MAX_VALUE`] bound is reached first (near 9,000 files), so a
/// gateway caps a session's files below both.
pub const MAX_FILES: usize = 10_000;
/// The longest name or pattern, in bytes: a protocol line cannot carry a longer one.
pub const MAX_STRING: usize = crate::wire::MAX_LINE;
/// The longest peer address text (`[v6 address]:port` is at most 47 bytes).
pub const MAX_PEER: usize = 64;

/// The fewest bytes one file of a share list takes (empty name, no hash).
const MIN_SHARED: usize = 2 + 8 + 1;
/// The fewest bytes one hit of an answer takes.
const MIN_HIT: usize = 2 + 8 + 2 + 1;

/// What a value is: its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    ShareList = 1,
    SearchRequest = 2,
    Answer = 3,
}

impl Kind {
    /// The kind of an encoded value, from its first byte (its version is not checked).
    pub fn of(buf: &[u8]) -> Result<Self, CodecError> {
        match buf.first() {
            None => Err(CodecError::Truncated),
            Some(1) => Ok(Self::ShareList),
            Some(2) => Ok(Self::SearchRequest),
            Some(3) => Ok(Self::Answer),
            Some(&k) => Err(CodecError::BadKind(k)),
        }
    }
}

/// Why bytes are not a value of the kind asked for, or a value cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("value ends early")]
    Truncated,
    #[error("value is of kind {0}, not the kind expected")]
    BadKind(u8),
    #[error("format version {0} is not known (this build reads version {VERSION})")]
    BadVersion(u8),
    #[error("text is not UTF-8")]
    NotUtf8,
    #[error("bytes after the end of the value")]
    TrailingBytes,
    #[error("value or string over its size limit")]
    TooLong,
    #[error("more than {MAX_FILES} files")]
    TooManyFiles,
    #[error("a flag byte other than 0 or 1")]
    BadFlag,
    #[error("empty file name")]
    BadName,
    #[error("peer address is empty or not one printable field")]
    BadPeer,
    #[error("search pattern holds a control character")]
    BadPattern,
}

/// One file of a session's share list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedFile {
    pub name: String,
    pub size: u64,
    pub hash: Option<ContentHash>,
}

/// One client session's whole share list: one KV value in bucket `shares-p{k}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShareList {
    /// The session's peer address as replies print it: `ip`, or `ip:port`.
    pub peer: String,
    pub files: Vec<SharedFile>,
}

/// A search sent to one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchRequest {
    pub pattern: String,
    /// The most hits the partition sends.
    pub limit: u32,
}

impl ShareList {
    /// Appends the encoding to `out`; on an error `out` is left as it was.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        encode_with(out, |w| {
            w.header(Kind::ShareList);
            w.peer(&self.peer)?;
            w.count(self.files.len())?;
            for f in &self.files {
                w.name(&f.name)?;
                w.u64(f.size);
                w.hash(f.hash);
            }
            Ok(())
        })
    }

    /// Decodes exactly one share list, all of `buf`.
    pub fn decode(buf: &[u8]) -> Result<Self, CodecError> {
        decode_with(buf, Kind::ShareList, |r| {
            let peer = r.peer()?;
            let n = r.count(MIN_SHARED)?;
            let mut files = Vec::with_capacity(n);
            for _ in 0..n {
                files.push(SharedFile {
                    name: r.name()?,
                    size: r.u64()?,
                    hash: r.hash()?,
                });
            }
            Ok(Self { peer, files })
        })
    }
}

impl SearchRequest {
    /// Appends the encoding to `out`; on an error `out` is left as it was.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        encode_with(out, |w| {
            w.header(Kind::SearchRequest);
            check_pattern(&self.pattern)?;
            w.str(&self.pattern, MAX_STRING)?;
            w.u32(self.limit);
            Ok(())
        })
    }

    /// Decodes exactly one search request, all of `buf`.
    pub fn decode(buf: &[u8]) -> Result<Self, CodecError> {
        decode_with(buf, Kind::SearchRequest, |r| {
            let pattern = r.str(MAX_STRING)?;
            check_pattern(&pattern)?;
            Ok(Self {
                pattern,
                limit: r.u32()?,
            })
        })
    }
}

impl Answer {
    /// Appends the encoding to `out`; on an error `out` is left as it was.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        encode_with(out, |w| {
            w.header(Kind::Answer);
            w.out.push(u8::from(self.more));
            w.count(self.hits.len())?;
            for h in &self.hits {
                w.name(&h.name)?;
                w.u64(h.size);
                w.peer(&h.peer)?;
                w.hash(h.hash);
            }
            Ok(())
        })
    }

    /// Decodes exactly one answer, all of `buf`.
    pub fn decode(buf: &[u8]) -> Result<Self, CodecError> {
        decode_with(buf, Kind::Answer, |r| {
            let more = r.flag()?;
            let n = r.count(MIN_HIT)?;
            let mut hits = Vec::with_capacity(n);
            for _ in 0..n {
                hits.push(RemoteHit {
                    name: r.name()?,
                    size: r.u64()?,
                    peer: r.peer()?,
                    hash: r.hash()?,
                });
            }
            Ok(Self { hits, more })
        })
    }
}

/// Names are what the server accepts: anything but empty (a classic reply leaves out
/// names with control characters; the client refuses unsafe ones when it downloads).
fn check_name(name: &str) -> Result<(), CodecError> {
    match name.is_empty() {
        true => Err(CodecError::BadName),
        false => Ok(()),
    }
}

fn check_pattern(p: &str) -> Result<(), CodecError> {
    match p.chars().any(char::is_control) {
        true => Err(CodecError::BadPattern),
        false => Ok(()),
    }
}

fn check_peer(p: &str) -> Result<(), CodecError> {
    match !p.is_empty() && p.bytes().all(|b| b.is_ascii_graphic()) {
        true => Ok(()),
        false => Err(CodecError::BadPeer),
    }
}

/// Runs `f` on a writer over `out`; undoes its appends if it fails or the value is over
/// [`MAX_VALUE`].
fn encode_with(
    out: &mut Vec<u8>,
    f: impl FnOnce(&mut Writer<'_>) -> Result<(), CodecError>,
) -> Result<(), CodecError> {
    let start = out.len();
    let mut w = Writer { out };
    let done = f(&mut w).and_then(|()| match w.out.len() - start > MAX_VALUE {
        true => Err(CodecError::TooLong),
        false => Ok(()),
    });
    if done.is_err() {
        out.truncate(start);
    }
    done
}

/// Checks the size, kind and version, runs `f` on the fields, and checks that nothing is
/// left after them.
fn decode_with<T>(
    buf: &[u8],
    kind: Kind,
    f: impl FnOnce(&mut Reader<'_>) -> Result<T, CodecError>,
) -> Result<T, CodecError> {
    if buf.len() > MAX_VALUE {
        return Err(CodecError::TooLong);
    }
    let mut r = Reader { buf };
    let k = r.u8()?;
    if k != kind as u8 {
        return Err(CodecError::BadKind(k));
    }
    let v = r.u8()?;
    if v != VERSION {
        return Err(CodecError::BadVersion(v));
    }
    let value = f(&mut r)?;
    match r.buf.is_empty() {
        true => Ok(value),
        false => Err(CodecError::TrailingBytes),
    }
}

struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

impl Writer<'_> {
    fn header(&mut self, kind: Kind) {
        self.out.extend_from_slice(&[kind as u8, VERSION]);
    }

    fn u32(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }

    fn count(&mut self, n: usize) -> Result<(), CodecError> {
        if n > MAX_FILES {
            return Err(CodecError::TooManyFiles);
        }
        // MAX_FILES fits in a u32.
        self.u32(n as u32);
        Ok(())
    }

    fn str(&mut self, s: &str, max: usize) -> Result<(), CodecError> {
        if s.len() > max {
            return Err(CodecError::TooLong);
        }
        // MAX_STRING and MAX_PEER fit in a u16.
        self.out.extend_from_slice(&(s.len() as u16).to_le_bytes());
        self.out.extend_from_slice(s.as_bytes());
        Ok(())
    }

    fn name(&mut self, name: &str) -> Result<(), CodecError> {
        check_name(name)?;
        self.str(name, MAX_STRING)
    }

    fn peer(&mut self, peer: &str) -> Result<(), CodecError> {
        check_peer(peer)?;
        self.str(peer, MAX_PEER)
    }

    fn hash(&mut self, hash: Option<ContentHash>) {
        match hash {
            None => self.out.push(0),
            Some(h) => {
                self.out.push(1);
                self.out.extend_from_slice(&h.0);
            }
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.buf.len() < n {
            return Err(CodecError::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, CodecError> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, CodecError> {
        self.array().map(u64::from_le_bytes)
    }

    fn flag(&mut self) -> Result<bool, CodecError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(CodecError::BadFlag),
        }
    }

    /// A count of items of at least `min` bytes each: at most [`MAX_FILES`], and no more
    /// than the bytes left could hold, so that the caller may allocate that many.
    fn count(&mut self, min: usize) -> Result<usize, CodecError> {
        let n = self.u32()? as usize;
        if n > MAX_FILES {
            return Err(CodecError::TooManyFiles);
        }
        if n * min > self.buf.len() {
            return Err(CodecError::Truncated);
        }
        Ok(n)
    }

    fn str(&mut self, max: usize) -> Result<String, CodecError> {
        let len = usize::from(u16::from_le_bytes(self.array()?));
        if len > max {
            return Err(CodecError::TooLong);
        }
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| CodecError::NotUtf8)
    }

    fn name(&mut self) -> Result<String, CodecError> {
        let name = self.str(MAX_STRING)?;
        check_name(&name)?;
        Ok(name)
    }

    fn peer(&mut self) -> Result<String, CodecError> {
        let peer = self.str(MAX_PEER)?;
        check_peer(&peer)?;
        Ok(peer)
    }

    fn hash(&mut self) -> Result<Option<ContentHash>, CodecError> {
        match self.flag()? {
            false => Ok(None),
            true => self.array().map(|h| Some(ContentHash(h))),
        }
    }
}

#[cfg(test)]
mod tests;
