//! The index against a brute-force model.
//!
//! Random sequences of register, re-register, unregister, remove-owner, set-peer and
//! compaction from several owners, over a small vocabulary of names (so substrings and
//! trigrams collide; with multi-byte UTF-8, names shorter than three bytes and the empty
//! name). After every step, searches for random patterns with random caps and a callback
//! that rejects some hits must see exactly the hits a linear scan of a `Vec` in registration
//! order sees, in the same order, and the index must pass its own invariant check.
//!
//! Each test also runs on an index tuned down (`Index::for_tests`): segments of a few ids,
//! sweeps of the posting lists that start after a few removals and read a few postings a
//! call (so they run across many operations, interleaved with removals, registrations and
//! searches), and ids that run out after a hundred registrations (so it renumbers).

use std::net::SocketAddr;

use napshare_core::hash::ContentHash;
use napshare_core::index::{Hit, Index, OwnerId};
use napshare_core::wire::PeerAddr;
use proptest::prelude::*;

const OWNERS: u64 = 4;
const NAMES: &[&str] = &[
    "",
    "a",
    "ab",
    "abc",
    "abcd",
    "bcab",
    "abcabc",
    "ab cd",
    "é",
    "éé",
    "café.ogg",
    "fé",
    "日本",
    "日本語.mp3",
    "語日本",
    "song - abc 01.mp3",
    "song - bcd 02.mp3",
    "xyz.mp3",
    "aaaa",
    "aaa",
];
/// Characters patterns are built from: those of the names and some that are in none.
const CHARS: &[&str] = &[
    "a", "b", "c", "d", " ", ".", "é", "日", "本", "語", "3", "q", "ü",
];
const PEERS: &[([u8; 4], u16)] = &[
    ([10, 0, 0, 1], 1235),
    ([10, 0, 0, 1], 4000),
    ([10, 0, 0, 2], 1235),
];

fn peer(i: usize) -> PeerAddr {
    let (ip, port) = PEERS[i];
    PeerAddr(SocketAddr::from((ip, port)))
}

fn hash(i: u8) -> Option<ContentHash> {
    (i > 0).then_some(ContentHash([i; 32]))
}

#[derive(Debug, Clone)]
enum Op {
    Register {
        owner: u64,
        peer: usize,
        name: usize,
        size: u64,
        hash: u8,
    },
    Unregister {
        owner: u64,
        name: usize,
    },
    RemoveOwner(u64),
    SetPeer {
        owner: u64,
        peer: usize,
    },
    Compact,
}

fn op(names: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..OWNERS, 0..PEERS.len(), 0..names, 0..4u64, 0..3u8).prop_map(
            |(owner, peer, name, size, hash)| Op::Register { owner, peer, name, size, hash }
        ),
        3 => (0..OWNERS, 0..names).prop_map(|(owner, name)| Op::Unregister { owner, name }),
        1 => (0..OWNERS).prop_map(Op::RemoveOwner),
        1 => (0..OWNERS, 0..PEERS.len()).prop_map(|(owner, peer)| Op::SetPeer { owner, peer }),
        1 => Just(Op::Compact),
    ]
}

/// A search: the pattern, the cap, and which sizes the callback accepts (bit `size` set).
#[derive(Debug, Clone)]
struct Query {
    pattern: String,
    cap: usize,
    accept: u8,
}

fn pattern() -> impl Strategy<Value = String> {
    prop_oneof![
        // Built from characters: often absent, sometimes present.
        prop::collection::vec(prop::sample::select(CHARS), 0..6).prop_map(|cs| cs.concat()),
        // A piece of a name: always present while that name is shared.
        (0..NAMES.len(), 0..6usize, 0..6usize)
            .prop_map(|(n, from, len)| { NAMES[n].chars().skip(from).take(len).collect() }),
    ]
}

fn query() -> impl Strategy<Value = Query> {
    (
        pattern(),
        prop_oneof![0..5usize, Just(usize::MAX)],
        prop_oneof![Just(0xffu8), any::<u8>()],
    )
        .prop_map(|(pattern, cap, accept)| Query {
            pattern,
            cap,
            accept,
        })
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    name: String,
    peer: PeerAddr,
    size: u64,
    hash: Option<ContentHash>,
}

impl From<Hit<'_>> for Seen {
    fn from(h: Hit<'_>) -> Self {
        Self {
            name: h.name.to_owned(),
            peer: h.peer,
            size: h.size,
            hash: h.hash,
        }
    }
}

/// The reference: every shared file in registration order.
#[derive(Default)]
struct Model {
    files: Vec<(u64, Seen)>,
}

impl Model {
    fn apply(&mut self, op: &Op, names: &[String]) {
        match *op {
            Op::Register {
                owner,
                peer: p,
                name,
                size,
                hash: h,
            } => {
                let seen = Seen {
                    name: names[name].clone(),
                    peer: peer(p),
                    size,
                    hash: hash(h),
                };
                match self
                    .files
                    .iter_mut()
                    .find(|(o, s)| *o == owner && s.name == names[name])
                {
                    Some((_, s)) => *s = seen,
                    None => self.files.push((owner, seen)),
                }
            }
            Op::Unregister { owner, name } => {
                self.files
                    .retain(|(o, s)| !(*o == owner && s.name == names[name]));
            }
            Op::RemoveOwner(owner) => self.files.retain(|(o, _)| *o != owner),
            Op::SetPeer { owner, peer: p } => {
                for (_, s) in self.files.iter_mut().filter(|(o, _)| *o == owner) {
                    s.peer = peer(p);
                }
            }
            Op::Compact => {}
        }
    }

    /// What `search` calls back with and returns: a linear scan.
    fn search(&self, q: &Query) -> (Vec<Seen>, usize) {
        let mut seen = Vec::new();
        let mut found = 0;
        for (_, s) in &self.files {
            if found == q.cap {
                break;
            }
            if s.name.contains(&q.pattern) {
                seen.push(s.clone());
                if q.accept & (1 << s.size) != 0 {
                    found += 1;
                }
            }
        }
        (seen, found)
    }
}

fn apply(ix: &mut Index, op: &Op, names: &[String]) {
    match *op {
        Op::Register {
            owner,
            peer: p,
            name,
            size,
            hash: h,
        } => ix.register(OwnerId(owner), peer(p), &names[name], size, hash(h)),
        Op::Unregister { owner, name } => {
            ix.unregister(OwnerId(owner), &names[name]);
        }
        Op::RemoveOwner(owner) => {
            ix.remove_owner(OwnerId(owner));
        }
        Op::SetPeer { owner, peer: p } => ix.set_peer(OwnerId(owner), peer(p)),
        Op::Compact => ix.compact(),
    }
}

fn search(ix: &Index, q: &Query) -> (Vec<Seen>, usize) {
    let mut seen = Vec::new();
    let found = ix.search(&q.pattern, q.cap, |h| {
        assert_eq!(h.peer_text, h.peer.to_string(), "the peer's cached text");
        let accept = q.accept & (1 << h.size) != 0;
        seen.push(h.into());
        accept
    });
    (seen, found)
}

fn check(
    ix: &Index,
    model: &Model,
    queries: &[Query],
    check_all: bool,
) -> Result<(), TestCaseError> {
    if check_all {
        ix.check_invariants();
    }
    prop_assert_eq!(ix.len(), model.files.len());
    prop_assert_eq!(ix.is_empty(), model.files.is_empty());
    for owner in 0..OWNERS {
        let n = model.files.iter().filter(|(o, _)| *o == owner).count();
        prop_assert_eq!(ix.owner_len(OwnerId(owner)), n);
    }
    for q in queries {
        prop_assert_eq!(search(ix, q), model.search(q), "query {:?}", q);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Small vocabulary, many steps: collisions, re-registrations, tombstones, compaction.
    #[test]
    fn index_agrees_with_a_linear_scan(
        ops in prop::collection::vec(op(NAMES.len()), 1..200),
        queries in prop::collection::vec(query(), 1..8),
        tuned in any::<bool>(),
    ) {
        let names: Vec<String> = NAMES.iter().map(|&n| n.to_owned()).collect();
        // At most 4 owners x 20 names live: 84 ids always leave room.
        let mut ix = if tuned { Index::for_tests(2, 2, 7, 84) } else { Index::new() };
        let mut model = Model::default();
        for op in &ops {
            apply(&mut ix, op, &names);
            model.apply(op, &names);
            check(&ix, &model, &queries, true)?;
        }
    }
}

/// Names made of a few short tokens: thousands of them give posting lists long enough for
/// the search to narrow one with another (see `FILTER_FROM` in the index).
fn token_names() -> impl Strategy<Value = Vec<String>> {
    const TOKENS: &[&str] = &["ab", "bc", "ca", "a", "b", "c", "é", " ", "d"];
    prop::collection::vec(
        prop::collection::vec(prop::sample::select(TOKENS), 2..12).prop_map(|t| t.concat()),
        900..1200,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Many distinct names with long, overlapping posting lists.
    #[test]
    fn large_index_agrees_with_a_linear_scan(
        names in token_names(),
        ops in prop::collection::vec(op(1200), 1000..2000),
        queries in prop::collection::vec(query(), 16..32),
        pieces in prop::collection::vec(
            (any::<prop::sample::Index>(), 0..8usize, 3..8usize, query()), 16..32),
        tuned in any::<bool>(),
    ) {
        // Add pieces of the names themselves, which are present and hit long lists.
        let mut queries = queries;
        queries.extend(pieces.into_iter().map(|(n, from, len, q)| Query {
            pattern: n.get(&names).chars().skip(from).take(len).collect(),
            ..q
        }));
        let ops: Vec<Op> = ops
            .into_iter()
            .map(|op| match op {
                Op::Register { owner, peer, name, size, hash } =>
                    Op::Register { owner, peer, name: name % names.len(), size, hash },
                Op::Unregister { owner, name } =>
                    Op::Unregister { owner, name: name % names.len() },
                other => other,
            })
            .collect();
        let mut ix = if tuned { Index::for_tests(5, 16, 300, u32::MAX) } else { Index::new() };
        let mut model = Model::default();
        // Every owner shares every name first (with some names skipped), so lists are long.
        let start = (0..names.len()).flat_map(|name| {
            (0..OWNERS).filter(move |o| !(name as u64 + o).is_multiple_of(5)).map(move |owner| {
                Op::Register { owner, peer: 0, name, size: name as u64 % 4, hash: 0 }
            })
        });
        for op in start {
            apply(&mut ix, &op, &names);
            model.apply(&op, &names);
        }
        check(&ix, &model, &queries, true)?;
        for (i, op) in ops.iter().enumerate() {
            apply(&mut ix, op, &names);
            model.apply(op, &names);
            if i % 250 == 249 {
                check(&ix, &model, &queries, i % 1000 == 999)?;
            }
        }
        check(&ix, &model, &queries, true)?;
    }
}
