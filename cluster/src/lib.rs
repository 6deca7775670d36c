//! napshare on a NATS JetStream cluster (the team's SCALE-OUT.md): the gateway's side
//! ([`Gateway`]: share lists published to KV, searches scattered to the partitions and
//! gathered) and the index replica's ([`run_replica`]: one partition's index built from
//! its KV bucket, read in order with direct gets (see `tail`), answering its queue group).
//!
//! The only crate with tokio and async-nats. Its API is synchronous: the gateway runs its
//! own runtime on its own thread and talks to the host through a bounded channel one way
//! and a callback the other, so the host's drivers (mio, smol) never see tokio.

mod buckets;
mod connect;
mod error;
pub mod gateway;
pub mod replica;
mod tail;

pub use error::Error;
pub use gateway::{Busy, Delivery, Gateway, GatewayOptions, ShareUpdate};
pub use replica::{run_replica, spawn_replica, Loaded, ReplicaOptions, ReplicaThread};

/// Bucket of the cluster's settings; key [`PARTITIONS_KEY`] holds P as decimal text.
pub const CONFIG_BUCKET: &str = "napshare";
/// Key of the number of partitions in [`CONFIG_BUCKET`].
pub const PARTITIONS_KEY: &str = "partitions";
/// Bucket of the leases: key = a gateway's id (or a replica's, written to tell whether the
/// bucket takes writes), expired by the bucket's `max_age`.
pub const MEMBERS_BUCKET: &str = "members";

/// The KV bucket of partition `k`'s share lists.
pub fn shares_bucket(k: u32) -> String {
    format!("shares-p{k}")
}

/// The subject a search to partition `k` is sent on.
pub fn search_subject(k: u32) -> String {
    format!("search.p{k}")
}

/// The queue group of partition `k`'s replicas: one of them answers each search.
pub fn search_group(k: u32) -> String {
    format!("p{k}")
}

/// P from the value of key `partitions`: decimal text, at least 1.
pub(crate) fn parse_partitions(value: &[u8]) -> Option<u32> {
    let p: u32 = std::str::from_utf8(value).ok()?.trim().parse().ok()?;
    (p >= 1).then_some(p)
}
