//! Prints what the micro-benchmarks cannot: the index's memory per file, how long building
//! it takes, search latency percentiles over many different patterns, the cost of removing
//! a 5,000-file client, and of a compaction.
//!
//! `cargo bench -p napshare-tests --bench index_report` (100k and 1M names; set
//! `NAPSHARE_BENCH_10M=1` for 10M as well, which needs about 1.5 GB and a minute or two).

// A benchmark reads the clock; the core itself never does.
#![allow(clippy::disallowed_methods)]

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::{build, owner_peer, rare_patterns, sizes, Names, FILES_PER_OWNER, WORDS};
use napshare_core::index::{Index, OwnerId};

/// The most results a search returns: the server's default.
const CAP: usize = 1000;

fn main() {
    // `cargo bench` passes `--bench`; any other argument filters nothing here.
    for n in sizes() {
        report(n, false);
        if n == 1_000_000 {
            report(n, true);
        }
    }
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn report(n: usize, hashed: bool) {
    let start = Instant::now();
    let mut ix = build(n, hashed);
    let built = start.elapsed();
    let heap = ix.heap_bytes();
    let names = ix.name_bytes();
    println!(
        "== {n} names{}: built in {:.2?} ({:.0} ns a name); heap {:.1} MiB, of which names \
         {:.1} MiB ({:.1} bytes a name); {:.1} bytes a file beyond its name",
        if hashed {
            ", every file with a content hash"
        } else {
            ""
        },
        built,
        built.as_nanos() as f64 / n as f64,
        mib(heap),
        mib(names),
        names as f64 / n as f64,
        (heap - names) as f64 / n as f64,
    );
    let parts: Vec<String> = ix
        .heap_parts()
        .iter()
        .map(|(what, bytes)| format!("{what} {:.1}", *bytes as f64 / n as f64))
        .collect();
    println!("  bytes a file: {}", parts.join(", "));
    if hashed {
        return;
    }
    let words = Names::new(1);
    let rare = rare_patterns(&words, 1000);
    latency(&ix, "rare word (1000 patterns)", &rare);
    // Two words of the 50 most common, side by side: long posting lists, few such names.
    let pairs: Vec<String> = (0..1000)
        .map(|i| {
            format!(
                "{} {}",
                words.rank(i % 50),
                words.rank((i / 50 + 7 * i) % 50)
            )
        })
        .collect();
    latency(&ix, "two common words (1000 pairs)", &pairs);
    let common: Vec<String> = (0..200).map(|i| words.rank(i).to_owned()).collect();
    latency(&ix, "one of the 200 most common words", &common);
    let rarest: Vec<String> = (0..200)
        .map(|i| words.rank(WORDS - 1 - i).to_owned())
        .collect();
    latency(&ix, "one of the 200 rarest words (no space)", &rarest);
    // Common ones scan to the cap; a rare or absent one walks its trigrams' lists.
    let short: Vec<String> = ["Q!", "~", "Qu", "a", "ka", "03", " -"]
        .map(str::to_owned)
        .to_vec();
    latency(&ix, "short patterns (1-2 bytes) incl. absent ones", &short);

    // A 5,000-file client joins and leaves, 50 times.
    let mut gen = Names::new(99);
    let mut times = Vec::new();
    for k in 0..50u64 {
        let owner = (1u64 << 40) + k;
        for _ in 0..5000 {
            let name = gen.next_name();
            ix.register(OwnerId(owner), owner_peer(owner), &name, 1, None);
        }
        let t = Instant::now();
        black_box(ix.remove_owner(OwnerId(owner)));
        times.push(t.elapsed());
    }
    print_times(
        "remove a client with 5,000 files (50 runs)",
        &mut times,
        None,
    );

    // Half of all clients leave, every call timed: the sweep of the posting lists runs
    // during these removals, a share in each call. Then one explicit compaction.
    let owners = n.div_ceil(FILES_PER_OWNER) as u64;
    let mut calls = Vec::new();
    let t = Instant::now();
    for owner in (0..owners).step_by(2) {
        let c = Instant::now();
        ix.remove_owner(OwnerId(owner));
        calls.push(c.elapsed());
    }
    let removed = t.elapsed();
    print_times(
        &format!("half the clients leave ({removed:.2?} in all), each remove_owner of 1,000"),
        &mut calls,
        None,
    );
    // Churn: clients of 1,000 files join (every register timed) and older ones leave.
    let mut registers = Vec::new();
    let mut removes = Vec::new();
    let mut gen = Names::new(7);
    for k in 0..owners / 4 {
        let owner = (1u64 << 41) + k;
        for _ in 0..FILES_PER_OWNER {
            let name = gen.next_name();
            let c = Instant::now();
            ix.register(OwnerId(owner), owner_peer(owner), &name, 1, None);
            registers.push(c.elapsed());
        }
        let c = Instant::now();
        ix.remove_owner(OwnerId(1 + 2 * k));
        removes.push(c.elapsed());
    }
    print_times("churn: each register", &mut registers, None);
    print_times("churn: each remove_owner of 1,000", &mut removes, None);
    let before = ix.heap_bytes();
    let t = Instant::now();
    ix.compact();
    let compacted = t.elapsed();
    println!(
        "  then compact() by hand down to {} live files: {:.2?}; heap {:.1} -> {:.1} MiB",
        ix.len(),
        compacted,
        mib(before),
        mib(ix.heap_bytes()),
    );
    ix.check_invariants_if_small();
}

fn latency(ix: &Index, what: &str, patterns: &[String]) {
    let mut times = Vec::with_capacity(patterns.len());
    let mut hits = 0;
    // One untimed pass to warm caches the way a busy server's would be.
    for p in patterns {
        black_box(ix.search(p, CAP, |h| black_box(h).size > 0));
    }
    for p in patterns {
        let t = Instant::now();
        hits += ix.search(p, CAP, |h| black_box(h).size > 0);
        times.push(t.elapsed());
    }
    print_times(what, &mut times, Some(hits as f64 / patterns.len() as f64));
}

fn print_times(what: &str, times: &mut [Duration], hits: Option<f64>) {
    times.sort_unstable();
    let pick = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    let hits = hits.map_or(String::new(), |h| format!(", {h:.0} hits on average"));
    println!(
        "  {what}: p50 {:.1?}, p99 {:.1?}, max {:.1?}{hits}",
        pick(0.5),
        pick(0.99),
        times[times.len() - 1],
    );
}

trait CheckSmall {
    fn check_invariants_if_small(&self);
}

impl CheckSmall for Index {
    fn check_invariants_if_small(&self) {
        if self.len() <= 100_000 {
            self.check_invariants();
        }
    }
}
