//! Micro-benchmarks of the index server's hot paths (issue 5).
//!
//! `cargo bench -p napshare-tests --bench micro`; with `NAPSHARE_BENCH_10M=1` the search and
//! removal benchmarks also run at 10,000,000 names (about 1.5 GB of memory, a minute to
//! build). `cargo bench -p napshare-tests --bench index_report` prints memory per file,
//! build times and latency percentiles over many patterns.

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use common::{build, owner_peer, sizes, Names, FILES_PER_OWNER};
use divan::Bencher;
use napshare_core::index::{Index, OwnerId};
use napshare_core::server::{Server, ServerConfig};
use napshare_core::wire::Request;

fn main() {
    divan::main();
}

/// The most results a search returns: the server's default.
const CAP: usize = 1000;

/// One index per size, built once and shared by every search benchmark.
fn index(n: usize) -> &'static Index {
    static CACHE: OnceLock<Mutex<BTreeMap<usize, &'static Index>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().expect("no panics while held");
    cache
        .entry(n)
        .or_insert_with(|| Box::leak(Box::new(build(n, false))))
}

fn names() -> &'static Names {
    static NAMES: OnceLock<Names> = OnceLock::new();
    NAMES.get_or_init(|| Names::new(1))
}

fn search(ix: &Index, pattern: &str) -> usize {
    ix.search(pattern, CAP, |hit| {
        black_box(hit);
        true
    })
}

#[divan::bench]
fn parse_createfile(bencher: Bencher) {
    let line = "CREATEFILE Kalori Mushi - tanevo shiba 03.mp3 4812034";
    bencher.bench(|| Request::parse(black_box(line)).map(black_box).is_ok());
}

#[divan::bench]
fn parse_search(bencher: Bencher) {
    bencher.bench(|| {
        Request::parse(black_box("SEARCH tanevo shiba"))
            .map(black_box)
            .is_ok()
    });
}

/// One `CREATEFILE` line through a server with a joined client, reply drained. The
/// server starts empty or with `preloaded` files from other clients; every line shares a new
/// name, so the index grows by the benchmark's iterations too.
#[divan::bench(args = [0, 1_000_000], sample_count = 50)]
#[allow(clippy::disallowed_methods)] // a bench needs one real instant to start from
fn createfile(bencher: Bencher, preloaded: usize) {
    let now = Instant::now();
    let mut server = Server::new(now, ServerConfig::default());
    let join = |server: &mut Server, port: u16| {
        let conn = server.handle_accept(now, SocketAddr::from(([10, 0, 0, 1], port)));
        server.handle_bytes(now, conn, b"JOIN 10.0.0.1\n").unwrap();
        drain(server);
        conn
    };
    let mut gen = Names::new(7);
    let mut line = Vec::new();
    for chunk in 0..preloaded.div_ceil(FILES_PER_OWNER) {
        let conn = join(&mut server, 2000 + (chunk % 60_000) as u16);
        for _ in 0..FILES_PER_OWNER {
            line.clear();
            line.extend_from_slice(
                format!("CREATEFILE {} {}\n", gen.next_name(), gen.size()).as_bytes(),
            );
            server.handle_bytes(now, conn, &line).unwrap();
        }
        drain(&mut server);
    }
    let conn = join(&mut server, 1);
    let mut i = 0u64;
    bencher
        .with_inputs(|| {
            i += 1;
            format!("CREATEFILE {} #{i} {}\n", gen.next_name(), gen.size()).into_bytes()
        })
        .bench_local_values(|line| {
            server.handle_bytes(now, conn, &line).unwrap();
            drain(&mut server);
        });
}

fn drain(server: &mut Server) {
    while let Some(t) = server.poll_transmit() {
        black_box(t);
    }
    while let Some(e) = server.poll_event() {
        black_box(e);
    }
}

/// Searches with at most `CAP` results, at each index size.
mod search {
    use super::*;

    /// One rare word (about 0.03% of names).
    #[divan::bench(args = sizes())]
    fn rare_word(bencher: Bencher, n: usize) {
        let ix = index(n);
        let pattern = common::rare_patterns(names(), 64)[40].clone();
        bencher.bench(|| search(ix, black_box(&pattern)));
    }

    /// 256 different rare words in turn.
    #[divan::bench(args = sizes())]
    fn rare_words_mix(bencher: Bencher, n: usize) {
        let ix = index(n);
        let patterns = common::rare_patterns(names(), 256);
        let mut i = 0;
        bencher
            .with_inputs(|| {
                i += 1;
                &patterns[i % patterns.len()]
            })
            .bench_local_values(|p| search(ix, p));
    }

    /// Two common words next to each other: long lists, few names with both in a row.
    #[divan::bench(args = sizes())]
    fn two_common_words(bencher: Bencher, n: usize) {
        let ix = index(n);
        let pattern = format!("{} {}", names().rank(3), names().rank(5));
        bencher.bench(|| search(ix, black_box(&pattern)));
    }

    /// The most common word: the cap is reached at once.
    #[divan::bench(args = sizes())]
    fn common_word(bencher: Bencher, n: usize) {
        let ix = index(n);
        let pattern = names().rank(0).to_owned();
        bencher.bench(|| search(ix, black_box(&pattern)));
    }

    /// An extension most names have.
    #[divan::bench(args = sizes())]
    fn extension(bencher: Bencher, n: usize) {
        let ix = index(n);
        bencher.bench(|| search(ix, black_box(".mp3")));
    }

    /// A pattern with a trigram no name has: answered without reading a list.
    #[divan::bench(args = sizes())]
    fn absent(bencher: Bencher, n: usize) {
        let ix = index(n);
        bencher.bench(|| search(ix, black_box("zzyzx")));
    }

    /// A two-byte pattern in no name: the 512 trigrams that could hold it, looked up (it
    /// was a scan of every name once).
    #[divan::bench(args = sizes(), sample_count = 20)]
    fn short_absent(bencher: Bencher, n: usize) {
        let ix = index(n);
        bencher.bench(|| search(ix, black_box("Q!")));
    }

    /// A one-byte pattern in no name: a pass over the trigram table.
    #[divan::bench(args = sizes(), sample_count = 20)]
    fn byte_absent(bencher: Bencher, n: usize) {
        let ix = index(n);
        bencher.bench(|| search(ix, black_box("~")));
    }
}

/// A client with 5,000 files leaves an index of `n` names. Each sample first registers the
/// 5,000 files (untimed), then times their removal. The tombstones pile up across samples:
/// at 1M and 10M they stay fewer than the live files, so no compaction runs; at 100k one
/// does every 20 or so samples (it shows in the slowest time, not the median; its cost alone
/// is in `index_report`).
#[divan::bench(args = sizes(), sample_count = 100, sample_size = 1)]
fn remove_owner_5000(bencher: Bencher, n: usize) {
    let ix = RefCell::new(common::build(n, false));
    let mut gen = Names::new(99);
    let mut owner = 1u64 << 40;
    bencher
        .with_inputs(|| {
            owner += 1;
            let mut ix = ix.borrow_mut();
            for _ in 0..5000 {
                let name = gen.next_name();
                ix.register(OwnerId(owner), owner_peer(owner), &name, 1, None);
            }
            OwnerId(owner)
        })
        .bench_local_values(|owner| ix.borrow_mut().remove_owner(owner));
}
