//! What a napshare cluster adds to the protocol (the team's SCALE-OUT.md): where a
//! session's share list lives (`keys`), one partition's index ([`Replica`]), partitions'
//! answers to a search as data and their merge; share lists, searches and answers in a
//! versioned binary encoding ([`codec`]). The NATS adapter (crate `napshare-cluster`)
//! moves these between gateways and index replicas; nothing here does I/O.

pub mod codec;
mod keys;
mod merge;
mod replica;

pub use codec::{CodecError, Kind, SearchRequest, ShareList, SharedFile};
pub use keys::{gateway_of, partition_of, session_key};
pub use merge::{merge, Merged};
pub use replica::{Replica, ReplicaError};

use crate::hash::ContentHash;

/// One file of a partition's answer: what a `FILE` line needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteHit {
    pub name: String,
    pub size: u64,
    /// The sharing peer as replies write it: `ip`, or `ip:port` off the classic port.
    pub peer: String,
    pub hash: Option<ContentHash>,
}

/// A partition's answer to a search, its hits in the partition's own (deterministic)
/// order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    pub hits: Vec<RemoteHit>,
    /// The partition had more matches than it sent (it stopped at the limit asked).
    pub more: bool,
}
