//! napshare's test support: the in-memory simulation of a network ([`sim`]), helpers that
//! run real `napshare-node` processes on loopback ([`node`]) and a stand-in for the seed's
//! Python index server ([`classic_server`]), and a real three-node NATS JetStream cluster
//! ([`nats`]).
//!
//! The tests themselves are under `tests/`: property tests of the codec and the server, the
//! simulated seed scenarios, the fuzz corpus replay, and the end-to-end tests over real
//! sockets (`seed_scenarios.rs`, `classic_compat.rs`), which need the `napshare-node`
//! binary of this package.

pub mod classic_server;
pub mod loadgen;
pub mod nats;
pub mod node;
pub mod proxy;
pub mod pty;
pub mod sim;
