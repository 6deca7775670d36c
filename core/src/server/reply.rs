//! What a request does: its change to the index and the reply bytes it gets.

use super::conn::{At, Parsed, State};
use super::store::Store;
use super::{IndexAt, LeaveReason, ReplyKind, Server, ServerConfig};
use crate::cluster::RemoteHit;
use crate::hash::ContentHash;
use crate::index::Index;
use crate::wire::{
    encode_file, has_control, split_join, ExtReply, ExtRequest, ParseError, PeerAddr, Reply,
    Request,
};

impl Server {
    pub(super) fn apply(
        store: &mut Store,
        config: &ServerConfig,
        c: &mut At<'_>,
        request: Result<Parsed<'_>, ParseError>,
    ) -> Outcome {
        use Parsed::{Classic, Ext};
        let refused = match (&*c.state, &request) {
            (State::Joined { .. }, Ok(Classic(Request::CreateFile { name, .. }))) => {
                store.refuses(c.owner, name, None, config.max_files)
            }
            (State::Joined { .. }, Ok(Ext(ExtRequest::AddFile { name, hash, .. }))) => {
                store.refuses(c.owner, name, Some(*hash), config.max_files)
            }
            _ => None,
        };
        if let Some(limit) = refused {
            if matches!(c.state, State::Joined { ext: true, .. }) {
                let message = match limit {
                    "files per client" => format!("too many files (at most {})", config.max_files),
                    _ => format!("{limit} over its limit"),
                };
                ExtReply::Error {
                    message: message.into(),
                }
                .encode(c.tx);
            }
            return Outcome::Refused(limit);
        }
        match (&*c.state, request) {
            (State::AwaitingJoin, Ok(Classic(Request::Join { addr }))) => {
                let (addr, ext) = split_join(addr);
                let peer = PeerAddr::from_join(c.ip, addr);
                *c.state = State::Joined { peer, ext };
                confirm_join(ext, config, c.tx);
                Outcome::Joined(peer)
            }
            (State::AwaitingJoin, _) => Outcome::Close(LeaveReason::NoJoin),
            (State::Joined { ext, .. }, Err(error)) => {
                if *ext {
                    let message = error.to_string().into();
                    ExtReply::Error { message }.encode(c.tx);
                }
                Outcome::Bad(error)
            }
            (State::Joined { .. }, Ok(Classic(Request::Join { addr }))) => {
                // A repeated JOIN may move the client's file server; its files follow.
                let (addr, ext) = split_join(addr);
                let peer = PeerAddr::from_join(c.ip, addr);
                store.set_peer(c.owner, peer);
                *c.state = State::Joined { peer, ext };
                confirm_join(ext, config, c.tx);
                Outcome::Joined(peer)
            }
            (State::Joined { peer, .. }, Ok(Classic(Request::CreateFile { name, size }))) => {
                store.register(c.owner, *peer, name, size, None);
                Reply::ConfirmCreateFile { name }.encode(c.tx);
                Outcome::Ok
            }
            (State::Joined { .. }, Ok(Classic(Request::DeleteFile { name }))) => {
                store.unregister(c.owner, name);
                Reply::ConfirmDeleteFile { name }.encode(c.tx);
                Outcome::Ok
            }
            (State::Joined { .. }, Ok(Classic(Request::Search { pattern }))) => {
                if config.index == IndexAt::Driver {
                    return Outcome::Ask(pattern.to_owned(), ReplyKind::Classic);
                }
                classic_reply(c.tx, config.max_results, Local(&store.index, pattern));
                Outcome::Ok
            }
            (State::Joined { .. }, Ok(Classic(Request::Leave))) => {
                Reply::ConfirmLeave.encode(c.tx);
                Outcome::Close(LeaveReason::Leave)
            }
            (State::Joined { peer, .. }, Ok(Ext(ExtRequest::AddFile { name, size, hash }))) => {
                store.register(c.owner, *peer, &name, size, Some(hash));
                ExtReply::ConfirmAddFile { name }.encode(c.tx);
                Outcome::Ok
            }
            (State::Joined { .. }, Ok(Ext(ExtRequest::Ping))) => {
                ExtReply::Pong.encode(c.tx);
                Outcome::Ok
            }
            (State::Joined { .. }, Ok(Ext(ExtRequest::DelFile { name }))) => {
                store.unregister(c.owner, &name);
                ExtReply::ConfirmDelFile { name }.encode(c.tx);
                Outcome::Ok
            }
            (State::Joined { .. }, Ok(Ext(ExtRequest::Find { pattern }))) => {
                if config.index == IndexAt::Driver {
                    return Outcome::Ask(pattern.into_owned(), ReplyKind::Ext);
                }
                ext_reply(c.tx, config.max_results, Local(&store.index, &pattern));
                Outcome::Ok
            }
            (State::Closing, _) => Outcome::Ok,
        }
    }
}

fn confirm_join(ext: bool, config: &ServerConfig, tx: &mut Vec<u8>) {
    if ext {
        let idle = config.idle_timeout.map(|d| d.as_secs().max(1));
        ExtReply::ConfirmJoin { idle }.encode(tx);
    } else {
        Reply::ConfirmJoin.encode(tx);
    }
}

pub(super) enum Outcome {
    Ok,
    Joined(PeerAddr),
    Bad(ParseError),
    /// Refused by the named limit.
    Refused(&'static str),
    Close(LeaveReason),
    /// The driver answers this search (pattern, reply format); the connection waits.
    Ask(String, ReplyKind),
}

/// One hit as a reply writes it, wherever it was found.
pub(super) struct Found<'a> {
    name: &'a str,
    peer: &'a str,
    size: u64,
    hash: Option<ContentHash>,
}

/// Hits for a reply: each is handed to `each` until `cap` of them were taken (`each`
/// returns `false` for a hit it left out, which does not count); returns how many were.
pub(super) trait Hits {
    fn take(self, cap: usize, each: impl FnMut(Found<'_>) -> bool) -> usize;
}

/// A search of the server's own index.
pub(super) struct Local<'a>(pub(super) &'a Index, pub(super) &'a str);

impl Hits for Local<'_> {
    #[inline]
    fn take(self, cap: usize, mut each: impl FnMut(Found<'_>) -> bool) -> usize {
        self.0.search(self.1, cap, |hit| {
            each(Found {
                name: hit.name,
                peer: hit.peer_text,
                size: hit.size,
                hash: hit.hash,
            })
        })
    }
}

/// The driver's answer, in its order.
impl Hits for &[RemoteHit] {
    fn take(self, cap: usize, mut each: impl FnMut(Found<'_>) -> bool) -> usize {
        let mut taken = 0;
        for hit in self {
            if taken == cap {
                break;
            }
            let found = Found {
                name: &hit.name,
                peer: &hit.peer,
                size: hit.size,
                hash: hit.hash,
            };
            taken += usize::from(each(found));
        }
        taken
    }
}

/// The reply to a classic `SEARCH`: a `FILE` line a hit, `NORESULT` if none, `ENDSEARCH`.
pub(super) fn classic_reply(tx: &mut Vec<u8>, cap: usize, hits: impl Hits) {
    let found = hits.take(cap, |hit| {
        // A classic line cannot carry a name with a line break or other control
        // character (only the extension can): such names are left out.
        if has_control(hit.name) {
            return false;
        }
        let peer = hit.peer.as_bytes();
        encode_file(tx, hit.name, |out| out.extend_from_slice(peer), hit.size);
        true
    });
    if found == 0 {
        Reply::NoResult.encode(tx);
    }
    Reply::EndSearch.encode(tx);
}

/// The reply to an extension `FIND`: a `FOUND` line a hit, then `ENDFIND count`.
pub(super) fn ext_reply(tx: &mut Vec<u8>, cap: usize, hits: impl Hits) {
    let count = hits.take(cap, |hit| {
        ExtReply::Found {
            name: hit.name.into(),
            peer: hit.peer,
            size: hit.size,
            hash: hit.hash,
        }
        .encode(tx);
        true
    });
    ExtReply::EndFind {
        count: count as u64,
    }
    .encode(tx);
}
