//! The index server's own work under loadgen's request mix, without sockets: the same
//! clients, files and patterns as `loadgen -c 1000 -f 20` (seed 1), fed to the core
//! [`Server`] 16 requests per client at a time (as `--pipeline 16` writes them), every
//! reply drained. What it measures is the server's CPU per request in user space, the part
//! the runtimes share; the pipelined figures in BENCHMARKS.md add the kernel's socket work
//! and share the machine with the load generator.
//!
//! `cargo bench -p napshare-tests --bench server_mix` (divan: each sample is one round of
//! 16,000 requests; the throughput column is requests per second of one core).

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Instant;

use divan::counter::ItemsCount;
use divan::Bencher;
use napshare_core::server::{Server, ServerConfig};
use napshare_core::ConnId;
use napshare_tests::loadgen::model::Model;
use napshare_tests::loadgen::vocab::Rng;

fn main() {
    divan::main();
}

const CLIENTS: usize = 1000;
const FILES: usize = 20;
/// Spare names per client for CREATEFILE: loadgen's default, a quarter of the files.
const SPARE: usize = FILES / 4;
/// Requests in flight per client, written together.
const PIPELINE: usize = 16;

/// loadgen's mix: percentages of search, create, delete.
const SEARCH: u64 = 90;
const CREATE: u64 = 5;

/// The workload: the model of every client's names and the patterns, which names each
/// client shares now, and the random stream choosing requests.
struct Mix {
    model: Model,
    present: Vec<bool>,
    rng: Rng,
}

impl Mix {
    /// loadgen's default patterns: 1,000, 4% loose (`loose` percent: see `--loose`).
    fn new(loose: u64) -> Self {
        let model = Model::new(1, CLIENTS, FILES, SPARE, 1000, (0, loose));
        let present = vec![false; model.slots.len()];
        Self {
            model,
            present,
            rng: Rng::new(7),
        }
    }

    /// Client `c`'s registration: its first FILES names.
    fn register(&mut self, c: usize) -> Vec<u8> {
        let mut out = format!("JOIN {}\n", 20_000 + c).into_bytes();
        for i in 0..FILES {
            let slot = c * (FILES + SPARE) + i;
            self.push_change(&mut out, slot, true);
        }
        out
    }

    fn push_change(&mut self, out: &mut Vec<u8>, slot: usize, create: bool) {
        self.present[slot] = create;
        let name = self.model.name(slot as u32);
        if create {
            let size = self.model.slots[slot].size ^ self.rng.below(0x1000);
            out.extend_from_slice(format!("CREATEFILE {name} {size}\n").as_bytes());
        } else {
            out.extend_from_slice(format!("DELETEFILE {name}\n").as_bytes());
        }
    }

    /// One round: PIPELINE requests for every client, as loadgen's `send_mix` picks them.
    fn round(&mut self) -> Vec<Vec<u8>> {
        let per = FILES + SPARE;
        (0..CLIENTS)
            .map(|c| {
                let mut out = Vec::with_capacity(PIPELINE * 40);
                for _ in 0..PIPELINE {
                    let roll = self.rng.below(100);
                    if roll >= SEARCH {
                        let create = roll < SEARCH + CREATE;
                        let from = self.rng.index(per);
                        let slot = (0..per)
                            .map(|i| c * per + (from + i) % per)
                            .find(|&s| self.present[s] != create);
                        if let Some(slot) = slot {
                            self.push_change(&mut out, slot, create);
                            continue;
                        }
                    }
                    let p = &self.model.patterns[self.rng.index(self.model.listed)];
                    out.extend_from_slice(b"SEARCH ");
                    out.extend_from_slice(p.text.as_bytes());
                    out.push(b'\n');
                }
                out
            })
            .collect()
    }
}

/// A server with every client joined and registered.
#[allow(clippy::disallowed_methods)] // a bench needs one real instant to start from
fn setup(mix: &mut Mix) -> (Server, Vec<ConnId>, Instant) {
    let now = Instant::now();
    let mut server = Server::new(now, ServerConfig::default());
    let conns = (0..CLIENTS)
        .map(|c| {
            let addr = SocketAddr::from(([127, 0, 0, 1], 40_000 + c as u16));
            let conn = server.handle_accept(now, addr);
            let lines = mix.register(c);
            server.handle_bytes(now, conn, &lines).unwrap();
            drain(&mut server);
            conn
        })
        .collect();
    (server, conns, now)
}

fn drain(server: &mut Server) {
    while let Some(t) = server.poll_transmit() {
        black_box(&t.data);
        server.recycle(t.data);
    }
    while let Some(e) = server.poll_event() {
        black_box(e);
    }
}

/// One round of the mix through the server, replies drained after each client's batch as
/// a runtime does after each read. `loose`: percentage of loose patterns (loadgen's
/// `--loose`: 4 by default, 0 for selective patterns only).
#[divan::bench(args = [4, 0], sample_count = 30)]
fn pipelined_round(bencher: Bencher, loose: u64) {
    let mut mix = Mix::new(loose);
    let (mut server, conns, now) = setup(&mut mix);
    bencher
        .counter(ItemsCount::new(CLIENTS * PIPELINE))
        .with_inputs(|| mix.round())
        .bench_local_values(|round| {
            for (conn, lines) in conns.iter().zip(&round) {
                server.handle_bytes(now, *conn, lines).unwrap();
                drain(&mut server);
            }
        });
}
