//! What a request does: its change to the index and the reply bytes it gets.

use super::conn::{At, Parsed, State};
use super::{LeaveReason, Server, ServerConfig};
use crate::index::Index;
use crate::wire::{
    encode_file, has_control, split_join, ExtReply, ExtRequest, ParseError, PeerAddr, Reply,
    Request,
};

impl Server {
    pub(super) fn apply(
        index: &mut Index,
        config: &ServerConfig,
        c: &mut At<'_>,
        request: Result<Parsed<'_>, ParseError>,
    ) -> Outcome {
        use Parsed::{Classic, Ext};
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
                index.set_peer(c.owner, peer);
                *c.state = State::Joined { peer, ext };
                confirm_join(ext, config, c.tx);
                Outcome::Joined(peer)
            }
            (
                State::Joined { ext, .. },
                Ok(Classic(Request::CreateFile { .. }) | Ext(ExtRequest::AddFile { .. })),
            ) if index.owner_len(c.owner) >= config.max_files => {
                if *ext {
                    let message = format!("too many files (at most {})", config.max_files).into();
                    ExtReply::Error { message }.encode(c.tx);
                }
                Outcome::Refused("files per client")
            }
            (State::Joined { peer, .. }, Ok(Classic(Request::CreateFile { name, size }))) => {
                index.register(c.owner, *peer, name, size, None);
                Reply::ConfirmCreateFile { name }.encode(c.tx);
                Outcome::Ok
            }
            (State::Joined { .. }, Ok(Classic(Request::DeleteFile { name }))) => {
                index.unregister(c.owner, name);
                Reply::ConfirmDeleteFile { name }.encode(c.tx);
                Outcome::Ok
            }
            (State::Joined { .. }, Ok(Classic(Request::Search { pattern }))) => {
                let tx = &mut *c.tx;
                let found = index.search(pattern, config.max_results, |hit| {
                    // A classic line cannot carry a name with a line break or other control
                    // character (only the extension can): such names are left out.
                    if has_control(hit.name) {
                        return false;
                    }
                    let peer = hit.peer_text.as_bytes();
                    encode_file(tx, hit.name, |out| out.extend_from_slice(peer), hit.size);
                    true
                });
                if found == 0 {
                    Reply::NoResult.encode(tx);
                }
                Reply::EndSearch.encode(tx);
                Outcome::Ok
            }
            (State::Joined { .. }, Ok(Classic(Request::Leave))) => {
                Reply::ConfirmLeave.encode(c.tx);
                Outcome::Close(LeaveReason::Leave)
            }
            (State::Joined { peer, .. }, Ok(Ext(ExtRequest::AddFile { name, size, hash }))) => {
                index.register(c.owner, *peer, &name, size, Some(hash));
                ExtReply::ConfirmAddFile { name }.encode(c.tx);
                Outcome::Ok
            }
            (State::Joined { .. }, Ok(Ext(ExtRequest::Ping))) => {
                ExtReply::Pong.encode(c.tx);
                Outcome::Ok
            }
            (State::Joined { .. }, Ok(Ext(ExtRequest::DelFile { name }))) => {
                index.unregister(c.owner, &name);
                ExtReply::ConfirmDelFile { name }.encode(c.tx);
                Outcome::Ok
            }
            (State::Joined { .. }, Ok(Ext(ExtRequest::Find { pattern }))) => {
                let tx = &mut *c.tx;
                let count = index.search(&pattern, config.max_results, |hit| {
                    ExtReply::Found {
                        name: hit.name.into(),
                        peer: hit.peer_text,
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
}
