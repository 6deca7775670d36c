//! Shared by the index benchmarks: a seeded generator of realistic file names and the
//! indexes built from it.
//!
//! Names look like a campus music share: `Artist Name - some song title 03.mp3`, with words
//! from a vocabulary of 6,000 made-up words (English-like letter frequencies) picked with a
//! heavy skew (a few words are in a large part of all names, most are rare), titles in title
//! case half the time, a track number and a weighted extension.

#![allow(dead_code)] // each bench binary uses part of this

use std::net::SocketAddr;

use fastrand::Rng;
use napshare_core::hash::ContentHash;
use napshare_core::index::{Index, OwnerId};
use napshare_core::wire::PeerAddr;

/// Words in the vocabulary.
pub const WORDS: usize = 6_000;
/// Files each owner shares when an index is built.
pub const FILES_PER_OWNER: usize = 1_000;

/// Word pieces with weights roughly like English: onsets and codas (consonants and
/// clusters) and nuclei (vowels and vowel pairs).
const CONSONANTS: &[(&str, u32)] = &[
    ("t", 90),
    ("n", 67),
    ("s", 63),
    ("r", 60),
    ("h", 30),
    ("l", 40),
    ("d", 43),
    ("c", 28),
    ("m", 24),
    ("w", 20),
    ("f", 22),
    ("g", 20),
    ("p", 19),
    ("b", 15),
    ("v", 10),
    ("k", 8),
    ("j", 2),
    ("x", 2),
    ("qu", 1),
    ("z", 1),
    ("th", 30),
    ("st", 15),
    ("ch", 10),
    ("sh", 10),
    ("br", 5),
    ("tr", 6),
    ("nd", 10),
    ("ng", 10),
    ("ck", 5),
    ("pl", 3),
    ("gr", 4),
    ("ll", 6),
    ("rt", 4),
    ("nt", 8),
    ("ss", 4),
    ("wh", 3),
    ("fr", 3),
    ("cr", 3),
    ("dr", 3),
    ("sl", 2),
];
const VOWELS: &[(&str, u32)] = &[
    ("e", 127),
    ("a", 82),
    ("o", 75),
    ("i", 70),
    ("u", 28),
    ("y", 10),
    ("ee", 8),
    ("ou", 10),
    ("ea", 8),
    ("ai", 5),
    ("oo", 6),
    ("ie", 4),
];

fn weighted<'a>(rng: &mut Rng, table: &[(&'a str, u32)]) -> &'a str {
    let total: u32 = table.iter().map(|e| e.1).sum();
    let mut pick = rng.u32(..total);
    for &(s, w) in table {
        if pick < w {
            return s;
        }
        pick -= w;
    }
    unreachable!("a pick below the total")
}

/// A made-up word of one to four syllables with English-like letter frequencies.
fn word(rng: &mut Rng) -> String {
    let mut w = String::new();
    if rng.usize(..10) < 7 {
        w.push_str(weighted(rng, CONSONANTS));
    }
    for _ in 0..1 + rng.usize(..3) + rng.usize(..2) {
        w.push_str(weighted(rng, VOWELS));
        if rng.usize(..10) < 8 {
            w.push_str(weighted(rng, CONSONANTS));
        }
    }
    w
}

const EXTENSIONS: &[(&str, u32)] = &[
    ("mp3", 60),
    ("ogg", 8),
    ("flac", 6),
    ("m4a", 6),
    ("avi", 5),
    ("mkv", 5),
    ("jpg", 4),
    ("txt", 3),
    ("pdf", 3),
];

/// The vocabulary and a name generator over it.
#[derive(Debug, Clone)]
pub struct Names {
    pub words: Vec<String>,
    rng: Rng,
}

impl Names {
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng::with_seed(seed);
        let words = (0..WORDS).map(|_| word(&mut rng)).collect();
        Self {
            words,
            rng: Rng::with_seed(seed ^ 0x5EED),
        }
    }

    /// A word, skewed: rank `r` of `WORDS` is picked with density about `(r/WORDS)^(-2/3)`.
    fn word(&mut self) -> &str {
        let u = self.rng.f64();
        &self.words[(u * u * u * WORDS as f64) as usize]
    }

    pub fn next_name(&mut self) -> String {
        let mut name = String::with_capacity(64);
        for i in 0..1 + self.rng.usize(..2) {
            if i > 0 {
                name.push(' ');
            }
            let w = self.word().to_owned();
            let mut cs = w.chars();
            if let Some(c) = cs.next() {
                name.extend(c.to_uppercase());
                name.push_str(cs.as_str());
            }
        }
        name.push_str(" -");
        // Titles are in title case about half the time.
        let title_case = self.rng.bool();
        for _ in 0..1 + self.rng.usize(..4) {
            name.push(' ');
            let w = self.word().to_owned();
            let mut cs = w.chars();
            match cs.next() {
                Some(c) if title_case => {
                    name.extend(c.to_uppercase());
                    name.push_str(cs.as_str());
                }
                _ => name.push_str(&w),
            }
        }
        let track = self.rng.usize(1..=20);
        let total: u32 = EXTENSIONS.iter().map(|e| e.1).sum();
        let mut pick = self.rng.u32(..total);
        let ext = EXTENSIONS
            .iter()
            .find(|e| {
                if pick < e.1 {
                    true
                } else {
                    pick -= e.1;
                    false
                }
            })
            .expect("a weighted pick");
        name.push_str(&format!(" {track:02}.{}", ext.0));
        name
    }

    pub fn size(&mut self) -> u64 {
        self.rng.u64(1_000_000..10_000_000)
    }

    /// A word of the given rank (0 is the most common).
    pub fn rank(&self, r: usize) -> &str {
        &self.words[r]
    }
}

pub fn owner_peer(owner: u64) -> PeerAddr {
    let b = owner.to_be_bytes();
    PeerAddr(SocketAddr::from(([10, b[5], b[6], b[7]], 1235)))
}

/// An index of `n` generated names, `FILES_PER_OWNER` to an owner, with a content hash on
/// every file when `hashed`. Owner ids start at 0 and go up.
pub fn build(n: usize, hashed: bool) -> Index {
    let mut names = Names::new(1);
    let mut ix = Index::new();
    for i in 0..n {
        let owner = (i / FILES_PER_OWNER) as u64;
        let name = names.next_name();
        let size = names.size();
        let hash = hashed.then(|| {
            let mut h = [0u8; 32];
            h[..8].copy_from_slice(&(i as u64).to_le_bytes());
            ContentHash(h)
        });
        ix.register(OwnerId(owner), owner_peer(owner), &name, size, hash);
    }
    ix
}

/// The index sizes to benchmark: 100k and 1M, and 10M when `NAPSHARE_BENCH_10M=1` (it takes
/// about 1.5 GB of memory and tens of seconds to build).
pub fn sizes() -> Vec<usize> {
    let mut v = vec![100_000, 1_000_000];
    if std::env::var("NAPSHARE_BENCH_10M").is_ok_and(|v| v == "1") {
        v.push(10_000_000);
    }
    v
}

/// Selective patterns: words from the rare half of the vocabulary, each with a space on
/// one side so it is a word and not a piece of one.
pub fn rare_patterns(names: &Names, count: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            let r = WORDS / 2 + i * (WORDS / 2) / count;
            format!(" {}", names.rank(r))
        })
        .collect()
}
