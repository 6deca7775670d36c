//! Choosing where a download comes from: its peers and its strategy, from search results.

use std::collections::{BTreeSet, VecDeque};
use std::time::Instant;

use super::State;
use crate::client::session::Pending;
use crate::client::{
    Client, ClientError, ClientEvent, Command, DownloadFailure, DownloadId, SearchHit,
};
use crate::hash::ContentHash;
use crate::names::check_file_name;
use crate::wire::PeerAddr;

/// Where to fetch from, decided from the search results.
#[derive(Debug)]
pub(super) enum Plan {
    Classic(VecDeque<PeerAddr>),
    Pieces {
        hash: ContentHash,
        peers: Vec<PeerAddr>,
    },
}

impl Client {
    /// The result `DOWNLOAD name` means, if `name` is a number from 1 to the count of the
    /// latest search's results (see [`Client::command`]).
    pub(crate) fn result_number(&self, name: &str) -> Option<usize> {
        if !crate::client::is_number(name) {
            return None;
        }
        let n: usize = name.parse().ok()?;
        (1..=self.last_hits.len()).contains(&n).then_some(n)
    }

    /// Checks a name to download into; tells the user and returns `false` when it cannot.
    fn can_download(&mut self, name: &str) -> bool {
        if let Err(why) = check_file_name(name) {
            let name = name.to_owned();
            self.error(ClientError::BadName { name, why });
            return false;
        }
        if self.downloads.values().any(|d| d.name == name) {
            let name = name.to_owned();
            self.error(ClientError::AlreadyDownloading { name });
            return false;
        }
        true
    }

    /// `DOWNLOAD N`: result `n` (from 1) of the latest search, from every peer of that
    /// search holding the same content, result `n`'s peer first.
    pub(crate) fn download_result(&mut self, now: Instant, n: usize) {
        let Some(hit) = self.last_hits.get(n - 1).cloned() else {
            return;
        };
        if !self.can_download(&hit.name) {
            return;
        }
        // The same content: by hash where there is one (whatever name another peer gives
        // it), else the same name and size.
        let same = |h: &SearchHit| match hit.hash {
            Some(hash) => h.hash == Some(hash),
            None => h.name == hit.name && h.size == hit.size,
        };
        let mut seen = BTreeSet::new();
        let peers: VecDeque<PeerAddr> = std::iter::once(&hit)
            .chain(self.last_hits.iter().filter(|h| same(h)))
            .filter_map(|h| h.peer.parse().ok())
            .filter(|p: &PeerAddr| seen.insert(p.0))
            .collect();
        let plan = match hit.hash {
            Some(hash) => Plan::Pieces {
                hash,
                peers: peers.into(),
            },
            None => Plan::Classic(peers),
        };
        let id = self.new_download(now, hit.name, Some(hit.size), State::Committing);
        self.open_with(id, plan);
    }

    /// `DOWNLOAD [peer] name`: from `peer` only, or from every peer that has it.
    pub(crate) fn start_download(&mut self, now: Instant, peer: Option<PeerAddr>, name: String) {
        if !self.can_download(&name) {
            return;
        }
        let numeric = !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit());
        let listed = (numeric && peer.is_none()).then_some(self.last_hits.len());
        let known = self.last_hits.iter().any(|h| h.name == name);
        let id = self.new_download(now, name.clone(), None, State::Lookup { peer, listed });
        if known || self.session_is_down() {
            let hits = std::mem::take(&mut self.last_hits);
            self.plan_download(id, &hits);
            self.last_hits = hits;
        } else {
            // Ask the server who has it, and how big it is: only the listed size tells a
            // whole classic transfer from a cut one.
            self.session.queue.push_back(Pending::Search {
                pattern: name,
                hits: Vec::new(),
                answered: false,
                lookup: Some(id),
            });
        }
    }

    /// Chooses the peers and the way to fetch from search results, then opens the part.
    pub(crate) fn plan_download(&mut self, id: DownloadId, hits: &[SearchHit]) {
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        let State::Lookup { peer, listed } = d.state else {
            return;
        };
        let matches = |h: &&SearchHit| {
            h.name == d.name && peer.is_none_or(|p| h.peer.parse::<PeerAddr>() == Ok(p))
        };
        let candidates: Vec<&SearchHit> = hits.iter().filter(matches).collect();
        // The content most peers hold wins; its peers are every hit with that hash.
        let best_hash = candidates
            .iter()
            .filter_map(|h| h.hash)
            .max_by_key(|hash| hits.iter().filter(|h| h.hash == Some(*hash)).count());
        let plan = match (best_hash, candidates.first()) {
            (Some(hash), _) => {
                let holders = hits.iter().filter(|h| h.hash == Some(hash));
                let holders = holders.filter(|h| peer.is_none() || matches(h));
                d.size = holders.clone().map(|h| h.size).next();
                Plan::Pieces {
                    hash,
                    peers: holders.filter_map(|h| h.peer.parse().ok()).collect(),
                }
            }
            (None, Some(first)) => {
                d.size = Some(first.size);
                let same = candidates.iter().filter(|h| h.size == first.size);
                Plan::Classic(same.filter_map(|h| h.peer.parse().ok()).collect())
            }
            (None, None) => match peer {
                // Not listed at that peer. If the network knows the content by its hash,
                // ask the peer for it by hash (checked piece by piece); otherwise try the
                // classic way, unchecked.
                Some(p) => match hits.iter().find(|h| h.name == d.name && h.hash.is_some()) {
                    Some(listed) => {
                        d.size = Some(listed.size);
                        Plan::Pieces {
                            hash: listed.hash.expect("found with a hash"),
                            peers: vec![p],
                        }
                    }
                    None => Plan::Classic(VecDeque::from([p])),
                },
                None => {
                    let reason = match listed {
                        Some(results) => DownloadFailure::NoResultOrFile { results },
                        None => DownloadFailure::NobodyHasIt,
                    };
                    return self.fail_download(id, reason);
                }
            },
        };
        self.open_with(id, plan);
    }

    /// Tells the user where a download comes from and opens its partial file.
    fn open_with(&mut self, id: DownloadId, plan: Plan) {
        let Some(d) = self.downloads.get_mut(&id) else {
            return;
        };
        let sources = match &plan {
            Plan::Classic(peers) => peers.len(),
            Plan::Pieces { peers, .. } => peers.len(),
        };
        let (name, size) = (d.name.clone(), d.size);
        d.state = State::Opening(plan);
        let path = self.part_path(&name);
        self.events.push_back(ClientEvent::DownloadStarted {
            name,
            sources,
            size,
        });
        self.commands
            .push_back(Command::OpenPart { download: id, path });
    }
}
