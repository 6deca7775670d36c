//! Where the server keeps what its clients share: its own [`Index`], or, when the index
//! lives elsewhere ([`IndexAt::Driver`](super::IndexAt::Driver): a cluster gateway), each
//! session's list, handed to the driver as [`ShareUpdate`]s.
//!
//! A gateway's list changes are batched: the first change of a quiet session starts a
//! [`ServerConfig::share_batch`](super::ServerConfig::share_batch) wait, and everything that
//! changed by then goes out as one whole list per session, so a client registering 5,000
//! files costs a few KV writes, not 5,000. A session that ends goes out at once: its files
//! must stop matching everywhere now.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use crate::cluster::codec::{MAX_FILES, MAX_PEER, MAX_VALUE};
use crate::cluster::{ShareList, SharedFile};
use crate::hash::ContentHash;
use crate::index::{Index, OwnerId};
use crate::wire::PeerAddr;

/// A session's share list changed: its whole new list, or `None` when the session ended
/// or has nothing left (the driver deletes its key). `session` is the server's id for it
/// (its connection's number), unique for the server's life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareUpdate {
    pub session: u64,
    pub list: Option<ShareList>,
}

#[derive(Debug)]
pub(super) struct Store {
    /// The local index; always empty when lists are published.
    pub(super) index: Index,
    published: Option<Published>,
}

#[derive(Debug)]
struct Published {
    sessions: BTreeMap<OwnerId, Session>,
    /// Sessions changed since their list last went out.
    dirty: BTreeSet<OwnerId>,
    updates: VecDeque<ShareUpdate>,
    /// When the dirty sessions' lists go out.
    due: Option<Instant>,
    batch: Duration,
}

#[derive(Debug)]
struct Session {
    peer: PeerAddr,
    files: BTreeMap<String, (u64, Option<ContentHash>)>,
    /// The list's encoded size, kept under the KV value limit.
    bytes: usize,
    /// Whether the driver holds a list for it (and must be told when it goes).
    published: bool,
}

/// A share list's encoded size before its files (kind, version, peer, count).
const LIST_HEADER: usize = 2 + 2 + MAX_PEER + 4;

/// What one file adds to an encoded share list.
fn file_bytes(name: &str, hash: Option<ContentHash>) -> usize {
    2 + name.len() + 8 + 1 + if hash.is_some() { 32 } else { 0 }
}

impl Store {
    pub(super) fn new(publish: Option<Duration>) -> Self {
        Self {
            index: Index::new(),
            published: publish.map(|batch| Published {
                sessions: BTreeMap::new(),
                dirty: BTreeSet::new(),
                updates: VecDeque::new(),
                due: None,
                batch,
            }),
        }
    }

    /// Why `owner` may not share one more file `name` (the limit's name), if it may not.
    pub(super) fn refuses(
        &self,
        owner: OwnerId,
        name: &str,
        hash: Option<ContentHash>,
        max_files: usize,
    ) -> Option<&'static str> {
        let Some(p) = &self.published else {
            return (self.index.owner_len(owner) >= max_files).then_some("files per client");
        };
        let s = p.sessions.get(&owner);
        let (len, bytes) = s.map_or((0, LIST_HEADER), |s| (s.files.len(), s.bytes));
        if s.is_some_and(|s| s.files.contains_key(name)) {
            return None; // an update, which the list holds already
        }
        if len >= max_files.min(MAX_FILES) {
            return Some("files per client");
        }
        (bytes + file_bytes(name, hash) > MAX_VALUE).then_some("share list size")
    }

    pub(super) fn register(
        &mut self,
        owner: OwnerId,
        peer: PeerAddr,
        name: &str,
        size: u64,
        hash: Option<ContentHash>,
    ) {
        let Some(p) = &mut self.published else {
            return self.index.register(owner, peer, name, size, hash);
        };
        let s = p.sessions.entry(owner).or_insert_with(|| Session {
            peer,
            files: BTreeMap::new(),
            bytes: LIST_HEADER,
            published: false,
        });
        s.peer = peer;
        if let Some((_, old)) = s.files.insert(name.to_owned(), (size, hash)) {
            s.bytes -= file_bytes(name, old);
        }
        s.bytes += file_bytes(name, hash);
        p.dirty.insert(owner);
    }

    pub(super) fn unregister(&mut self, owner: OwnerId, name: &str) {
        let Some(p) = &mut self.published else {
            self.index.unregister(owner, name);
            return;
        };
        let Some(s) = p.sessions.get_mut(&owner) else {
            return;
        };
        if let Some((_, hash)) = s.files.remove(name) {
            s.bytes -= file_bytes(name, hash);
            p.dirty.insert(owner);
        }
    }

    /// Moves every file of `owner` to `peer`.
    pub(super) fn set_peer(&mut self, owner: OwnerId, peer: PeerAddr) {
        let Some(p) = &mut self.published else {
            return self.index.set_peer(owner, peer);
        };
        if let Some(s) = p.sessions.get_mut(&owner) {
            if s.peer != peer {
                s.peer = peer;
                p.dirty.insert(owner);
            }
        }
    }

    /// Removes every file of `owner` (its session ended); returns how many there were.
    pub(super) fn remove_owner(&mut self, owner: OwnerId) -> usize {
        let Some(p) = &mut self.published else {
            return self.index.remove_owner(owner);
        };
        p.dirty.remove(&owner);
        let Some(s) = p.sessions.remove(&owner) else {
            return 0;
        };
        if s.published {
            p.updates.push_back(ShareUpdate {
                session: owner.0,
                list: None,
            });
        }
        s.files.len()
    }

    /// Starts the batch wait if something changed; call after any request was served.
    pub(super) fn schedule(&mut self, now: Instant) {
        if let Some(p) = &mut self.published {
            if p.due.is_none() && !p.dirty.is_empty() {
                p.due = Some(now + p.batch);
            }
        }
    }

    /// When the batched lists go out.
    pub(super) fn due(&self) -> Option<Instant> {
        self.published.as_ref().and_then(|p| p.due)
    }

    /// Sends the changed sessions' lists once their batch wait is over.
    pub(super) fn handle_timeout(&mut self, now: Instant) {
        let Some(p) = &mut self.published else {
            return;
        };
        if p.due.is_none_or(|due| due > now) {
            return;
        }
        p.due = None;
        for owner in std::mem::take(&mut p.dirty) {
            if let Some(s) = p.sessions.get_mut(&owner) {
                if let Some(update) = s.update(owner) {
                    p.updates.push_back(update);
                }
            }
        }
    }

    /// Every session's list again, at once (the cluster lost them).
    pub(super) fn republish(&mut self) {
        let Some(p) = &mut self.published else {
            return;
        };
        p.dirty.clear();
        p.due = None;
        for (&owner, s) in &mut p.sessions {
            s.published = false;
            if let Some(update) = s.update(owner) {
                p.updates.push_back(update);
            }
        }
    }

    pub(super) fn poll_share(&mut self) -> Option<ShareUpdate> {
        self.published.as_mut()?.updates.pop_front()
    }
}

impl Session {
    /// The update that makes the driver's copy of this list current, if one is needed.
    fn update(&mut self, owner: OwnerId) -> Option<ShareUpdate> {
        let was = std::mem::replace(&mut self.published, !self.files.is_empty());
        if !was && !self.published {
            return None;
        }
        let list = self.published.then(|| ShareList {
            peer: self.peer.to_string(),
            files: self
                .files
                .iter()
                .map(|(name, &(size, hash))| SharedFile {
                    name: name.clone(),
                    size,
                    hash,
                })
                .collect(),
        });
        Some(ShareUpdate {
            session: owner.0,
            list,
        })
    }
}
