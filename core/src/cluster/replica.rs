//! One index replica's state: the share lists of one partition, as the KV bucket holds
//! them, in today's [`Index`], answering the partition's searches.
//!
//! The NATS adapter hands it every KV operation of the partition's bucket in order
//! ([`Replica::put`], [`Replica::delete`]), every search request
//! ([`Replica::answer`]), and once a second the gateways whose lease is alive
//! ([`Replica::expire`]). Bad input (a malformed key, value or request) is refused with
//! an error and changes nothing.

use std::collections::{BTreeMap, BTreeSet};

use super::codec::{CodecError, SearchRequest, ShareList, MAX_FILES};
use super::keys::gateway_of;
use super::{Answer, RemoteHit};
use crate::index::{Index, OwnerId};
use crate::wire::PeerAddr;

/// Why a KV value was not taken in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplicaError {
    #[error("key is not <gateway>.<session>")]
    BadKey,
    #[error("share list: {0}")]
    BadValue(#[from] CodecError),
    #[error("share list's peer is not an address")]
    BadPeer,
}

/// One partition's index.
#[derive(Default)]
pub struct Replica {
    index: Index,
    /// Every session in the index (by KV key), with the owner id its files go by.
    sessions: BTreeMap<String, OwnerId>,
    next_owner: u64,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("sessions", &self.sessions.len())
            .field("files", &self.index.len())
            .finish()
    }
}

impl Replica {
    pub fn new() -> Self {
        Self::default()
    }

    /// A KV put of `key`: `value` (an encoded [`ShareList`]) becomes the session's whole
    /// list, replacing what it had. Returns how many files it shares now.
    pub fn put(&mut self, key: &str, value: &[u8]) -> Result<usize, ReplicaError> {
        gateway_of(key).ok_or(ReplicaError::BadKey)?;
        let list = ShareList::decode(value)?;
        let peer: PeerAddr = list.peer.parse().map_err(|_| ReplicaError::BadPeer)?;
        // A fresh owner id each time: the old files leave, the new ones keep the list's
        // order, which makes the partition's answers deterministic.
        self.delete(key);
        let owner = OwnerId(self.next_owner);
        self.next_owner += 1;
        for f in &list.files {
            self.index.register(owner, peer, &f.name, f.size, f.hash);
        }
        if !list.files.is_empty() {
            self.sessions.insert(key.to_owned(), owner);
        }
        Ok(self.index.owner_len(owner))
    }

    /// A KV delete or purge of `key`: the session's files leave. Returns how many.
    pub fn delete(&mut self, key: &str) -> usize {
        match self.sessions.remove(key) {
            Some(owner) => self.index.remove_owner(owner),
            None => 0,
        }
    }

    /// Answers an encoded [`SearchRequest`]: appends the encoded [`Answer`] to `out`, at
    /// most the request's limit of hits (and at most [`MAX_FILES`]) in the index's order,
    /// with `more` set when the partition had further matches.
    pub fn answer(&self, request: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
        let request = SearchRequest::decode(request)?;
        self.search(&request).encode(out)
    }

    /// The partition's answer to `request`.
    pub fn search(&self, request: &SearchRequest) -> Answer {
        let limit = (request.limit as usize).min(MAX_FILES);
        let mut hits = Vec::new();
        // One more than the limit tells whether there were more.
        self.index.search(&request.pattern, limit + 1, |hit| {
            hits.push(RemoteHit {
                name: hit.name.to_owned(),
                size: hit.size,
                peer: hit.peer_text.to_owned(),
                hash: hit.hash,
            });
            true
        });
        let more = hits.len() > limit;
        hits.truncate(limit);
        Answer { hits, more }
    }

    /// Drops every session whose gateway is not in `alive` (its lease ended: the gateway
    /// died or froze); returns their keys, for the adapter to purge from the bucket.
    pub fn expire(&mut self, alive: &BTreeSet<String>) -> Vec<String> {
        let dead: Vec<String> = self
            .sessions
            .keys()
            .filter(|k| gateway_of(k).is_none_or(|g| !alive.contains(g)))
            .cloned()
            .collect();
        for key in &dead {
            self.delete(key);
        }
        dead
    }

    /// The gateways holding at least one of the sessions, each once: whose leases to
    /// check.
    pub fn gateways(&self) -> Vec<String> {
        let mut gateways: Vec<String> = Vec::new();
        for key in self.sessions.keys() {
            let Some(g) = gateway_of(key) else { continue };
            // Keys are sorted, so one gateway's sessions are next to each other.
            if gateways.last().is_none_or(|last| last != g) {
                gateways.push(g.to_owned());
            }
        }
        gateways
    }

    /// Sessions with at least one file.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Files in the index.
    pub fn files(&self) -> usize {
        self.index.len()
    }

    /// The index, for its size and its benchmarks.
    pub fn index(&self) -> &Index {
        &self.index
    }
}

#[cfg(test)]
mod tests {
    use super::super::codec::SharedFile;
    use super::*;

    fn list(peer: &str, names: &[&str]) -> Vec<u8> {
        let list = ShareList {
            peer: peer.into(),
            files: names
                .iter()
                .map(|n| SharedFile {
                    name: (*n).into(),
                    size: n.len() as u64,
                    hash: None,
                })
                .collect(),
        };
        let mut out = Vec::new();
        list.encode(&mut out).unwrap();
        out
    }

    fn find(r: &Replica, pattern: &str, limit: u32) -> Answer {
        let mut req = Vec::new();
        let request = SearchRequest {
            pattern: pattern.into(),
            limit,
        };
        request.encode(&mut req).unwrap();
        let mut out = Vec::new();
        r.answer(&req, &mut out).unwrap();
        Answer::decode(&out).unwrap()
    }

    fn names(a: &Answer) -> Vec<&str> {
        a.hits.iter().map(|h| h.name.as_str()).collect()
    }

    #[test]
    fn a_put_replaces_the_sessions_list_and_a_delete_empties_it() {
        let mut r = Replica::new();
        assert_eq!(
            r.put("ga.1", &list("10.0.0.1", &["song.mp3", "talk.ogg"])),
            Ok(2)
        );
        assert_eq!(r.put("gb.7", &list("10.0.0.2:4000", &["song2.mp3"])), Ok(1));
        let a = find(&r, "song", 10);
        assert_eq!(names(&a), ["song.mp3", "song2.mp3"]);
        assert_eq!(a.hits[1].peer, "10.0.0.2:4000");
        assert!(!a.more);
        assert_eq!(r.put("ga.1", &list("10.0.0.1", &["other.txt"])), Ok(1));
        assert_eq!(names(&find(&r, "song", 10)), ["song2.mp3"]);
        assert_eq!(r.delete("gb.7"), 1);
        assert_eq!(r.delete("gb.7"), 0);
        assert!(find(&r, "song", 10).hits.is_empty());
        assert_eq!((r.sessions(), r.files()), (1, 1));
        // An empty list is a session with nothing to find.
        assert_eq!(r.put("ga.1", &list("10.0.0.1", &[])), Ok(0));
        assert_eq!((r.sessions(), r.files()), (0, 0));
    }

    #[test]
    fn the_limit_cuts_and_says_there_is_more() {
        let mut r = Replica::new();
        r.put("g.1", &list("10.0.0.1", &["a1", "a2", "a3"]))
            .unwrap();
        let a = find(&r, "a", 2);
        assert_eq!(names(&a), ["a1", "a2"]);
        assert!(a.more);
        assert!(!find(&r, "a", 3).more);
    }

    #[test]
    fn sessions_of_a_gateway_without_a_lease_expire() {
        let mut r = Replica::new();
        r.put("ga.1", &list("10.0.0.1", &["x1"])).unwrap();
        r.put("ga.2", &list("10.0.0.1", &["x2"])).unwrap();
        r.put("gb.1", &list("10.0.0.2", &["x3"])).unwrap();
        assert_eq!(r.gateways(), ["ga", "gb"]);
        let alive: BTreeSet<String> = ["gb".to_owned()].into();
        assert_eq!(r.expire(&alive), ["ga.1", "ga.2"]);
        assert_eq!(names(&find(&r, "x", 10)), ["x3"]);
        assert!(r.expire(&alive).is_empty());
    }

    #[test]
    fn bad_input_changes_nothing() {
        let mut r = Replica::new();
        r.put("g.1", &list("10.0.0.1", &["keep"])).unwrap();
        assert_eq!(
            r.put("nodot", &list("10.0.0.1", &["x"])),
            Err(ReplicaError::BadKey)
        );
        assert!(matches!(
            r.put("g.1", b"\x01\x09junk"),
            Err(ReplicaError::BadValue(_))
        ));
        assert_eq!(
            r.put("g.1", &list("not-an-ip", &["x"])),
            Err(ReplicaError::BadPeer)
        );
        assert_eq!(names(&find(&r, "keep", 10)), ["keep"]);
        assert!(r.answer(b"\x02", &mut Vec::new()).is_err());
    }
}
