//! Content hashes: the BLAKE3 hash of a whole file (what `b3sum` prints), checkable one
//! piece at a time.
//!
//! A file is cut into pieces of [`PIECE`] bytes. Because a piece is a power-of-two number
//! of BLAKE3 chunks, each piece is a whole subtree of BLAKE3's hash tree, and its chaining
//! value can be computed alone. The list of piece chaining values ([`PieceHashes`]) is
//! checked once against the file's hash by merging it up the tree; after that every piece
//! that arrives, from any peer, is checked on its own. A bad piece is known at once and
//! fetched again elsewhere.

use std::fmt;
use std::str::FromStr;

use blake3::hazmat::{
    merge_subtrees_non_root, merge_subtrees_root, ChainingValue, HasherExt, Mode,
};

/// Size of one piece: 1 MiB, 1024 BLAKE3 chunks.
pub const PIECE: u64 = 1 << 20;

/// The BLAKE3 hash of a file's content.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash(pub [u8; 32]);

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({self})")
    }
}

/// The text is not 64 hexadecimal digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a 64-digit hexadecimal hash")]
pub struct BadHash;

impl FromStr for ContentHash {
    type Err = BadHash;

    fn from_str(s: &str) -> Result<Self, BadHash> {
        let s = s.as_bytes();
        if s.len() != 64 {
            return Err(BadHash);
        }
        let mut out = [0; 32];
        for (i, pair) in s.chunks(2).enumerate() {
            let hex = |c: u8| (c as char).to_digit(16).ok_or(BadHash);
            out[i] = (hex(pair[0])? * 16 + hex(pair[1])?) as u8;
        }
        Ok(Self(out))
    }
}

/// How many pieces a file of `size` bytes has (an empty file has one, empty, piece).
pub fn piece_count(size: u64) -> u64 {
    size.div_ceil(PIECE).max(1)
}

/// The byte span `[start, end)` of piece `index` in a file of `size` bytes.
pub fn piece_span(index: u64, size: u64) -> (u64, u64) {
    let start = index * PIECE;
    (start, (start + PIECE).min(size))
}

/// The hash of piece `index` of a file of `size` bytes, given the piece's bytes. For a
/// one-piece file this is the file's hash itself.
pub fn piece_hash(index: u64, size: u64, data: &[u8]) -> [u8; 32] {
    if piece_count(size) == 1 {
        return *blake3::hash(data).as_bytes();
    }
    blake3::Hasher::new()
        .set_input_offset(index * PIECE)
        .update(data)
        .finalize_non_root()
}

/// The hashes of every piece of a file, which together give its [`ContentHash`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceHashes {
    size: u64,
    pieces: Vec<[u8; 32]>,
}

/// The piece list does not fit the size, or does not merge to the expected hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the piece hashes do not match the file's hash")]
pub struct BadPieces;

impl PieceHashes {
    /// Takes a piece list received from a peer, checking it against the file's hash.
    pub fn checked(size: u64, pieces: Vec<[u8; 32]>, hash: ContentHash) -> Result<Self, BadPieces> {
        if pieces.len() as u64 != piece_count(size) {
            return Err(BadPieces);
        }
        let this = Self { size, pieces };
        if this.root() != hash {
            return Err(BadPieces);
        }
        Ok(this)
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn pieces(&self) -> &[[u8; 32]] {
        &self.pieces
    }

    /// The file's hash: the pieces merged up BLAKE3's tree.
    pub fn root(&self) -> ContentHash {
        match self.pieces.as_slice() {
            [one] => ContentHash(*one),
            many => ContentHash(*merge(many, true).as_bytes()),
        }
    }

    /// Whether `data` is piece `index` of this file.
    pub fn verify(&self, index: u64, data: &[u8]) -> bool {
        let (start, end) = piece_span(index, self.size);
        let Some(want) = self.pieces.get(index as usize) else {
            return false;
        };
        data.len() as u64 == end - start && piece_hash(index, self.size, data) == *want
    }
}

/// Merges the chaining values of whole pieces into their parent: the left subtree holds
/// the largest power of two of pieces that leaves at least one for the right, as in BLAKE3.
fn merge(cvs: &[ChainingValue], root: bool) -> blake3::Hash {
    debug_assert!(cvs.len() >= 2, "a merge needs two subtrees");
    let left = cvs.len().next_power_of_two() / 2;
    let side = |part: &[ChainingValue]| match part {
        [one] => *one,
        many => *merge(many, false).as_bytes(),
    };
    let (l, r) = (side(&cvs[..left]), side(&cvs[left..]));
    if root {
        merge_subtrees_root(&l, &r, Mode::Hash)
    } else {
        blake3::Hash::from_bytes(merge_subtrees_non_root(&l, &r, Mode::Hash))
    }
}

/// Hashes a file fed in order, in any slices, giving its [`PieceHashes`] at the end.
#[derive(Debug, Clone)]
pub struct FileHasher {
    size: u64,
    done: u64,
    piece: Vec<u8>,
    pieces: Vec<[u8; 32]>,
}

impl FileHasher {
    /// A hasher for a file of `size` bytes.
    pub fn new(size: u64) -> Self {
        Self {
            size,
            done: 0,
            piece: Vec::new(),
            pieces: Vec::new(),
        }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = (PIECE as usize) - self.piece.len();
            let (now, rest) = data.split_at(room.min(data.len()));
            self.piece.extend_from_slice(now);
            data = rest;
            if self.piece.len() == PIECE as usize {
                self.end_piece();
            }
        }
    }

    /// The piece hashes, or `None` if the bytes fed were not `size` long.
    pub fn finish(mut self) -> Option<PieceHashes> {
        if !self.piece.is_empty() || self.pieces.is_empty() {
            self.end_piece();
        }
        (self.done == self.size).then_some(PieceHashes {
            size: self.size,
            pieces: self.pieces,
        })
    }

    fn end_piece(&mut self) {
        let index = self.pieces.len() as u64;
        self.pieces.push(piece_hash(index, self.size, &self.piece));
        self.done += self.piece.len() as u64;
        self.piece.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 4093) as u8).collect()
    }

    fn pieces_of(d: &[u8], slice: usize) -> PieceHashes {
        let mut h = FileHasher::new(d.len() as u64);
        for part in d.chunks(slice.max(1)) {
            h.update(part);
        }
        h.finish().unwrap()
    }

    #[test]
    fn the_root_is_the_blake3_of_the_file() {
        let p = PIECE as usize;
        for len in [
            0,
            1,
            1024,
            p - 1,
            p,
            p + 1,
            2 * p,
            3 * p + 5,
            4 * p,
            5 * p - 1,
        ] {
            let d = data(len);
            let pieces = pieces_of(&d, 65_537);
            assert_eq!(pieces.root().0, *blake3::hash(&d).as_bytes(), "len {len}");
            assert_eq!(pieces.pieces().len() as u64, piece_count(len as u64));
        }
    }

    #[test]
    fn each_piece_checks_alone_and_a_flipped_byte_fails() {
        let d = data(3 * PIECE as usize + 10);
        let pieces = pieces_of(&d, 1 << 20);
        let hash = ContentHash(*blake3::hash(&d).as_bytes());
        let pieces = PieceHashes::checked(d.len() as u64, pieces.pieces().to_vec(), hash).unwrap();
        for i in 0..piece_count(d.len() as u64) {
            let (s, e) = piece_span(i, d.len() as u64);
            let mut piece = d[s as usize..e as usize].to_vec();
            assert!(pieces.verify(i, &piece));
            piece[0] ^= 1;
            assert!(!pieces.verify(i, &piece));
        }
    }

    #[test]
    fn a_forged_piece_list_is_refused() {
        let d = data(2 * PIECE as usize);
        let good = pieces_of(&d, 4096);
        let mut forged = good.pieces().to_vec();
        forged[1][0] ^= 1;
        assert_eq!(
            PieceHashes::checked(d.len() as u64, forged, good.root()),
            Err(BadPieces)
        );
        assert!(PieceHashes::checked(d.len() as u64, vec![[0; 32]], good.root()).is_err());
    }

    #[test]
    fn hex_round_trip() {
        let h = ContentHash(*blake3::hash(b"x").as_bytes());
        assert_eq!(h.to_string().parse::<ContentHash>(), Ok(h));
        assert!("zz".parse::<ContentHash>().is_err());
    }
}
