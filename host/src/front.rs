//! The user's side of a client process, written once for every runtime: what feeds the
//! event loop from outside it (standard input, stop signals) and what the loop does with
//! it. A runtime only moves [`Input`]s from [`ClientSetup::start`]'s `send` into its loop
//! and hands each to [`Node::input`](crate::Node::input).

use std::collections::VecDeque;
use std::io;
use std::time::Instant;

use crate::lang::Lang;
use std::net::SocketAddr;

use napshare_core::client::{Client, ClientConfig, DownloadId, FileError, SharedFile};
use napshare_core::cluster::Merged;
use napshare_core::hash::PieceHashes;
use napshare_core::server::SearchToken;
use napshare_core::ConnId;

use crate::prompt;
use crate::stdin::spawn_stdin_reader;
use crate::watch::watch_shared;
use crate::{on_stop_signal, ClientNode, Disk, Script, Ui};

/// Everything a runtime needs to run one client process.
#[derive(Debug, Clone)]
pub struct ClientSetup {
    pub config: ClientConfig,
    /// The files found in the shared folder at start.
    pub files: Vec<SharedFile>,
    /// Whether commands are read from standard input.
    pub stdin: bool,
    /// How a one-shot client (one with a goal) reports; `None` prints events for a user.
    pub script: Option<Script>,
    /// Whether the shared folder is watched: files that appear, change or go away in it
    /// are shared, shared again or no longer shared, with no command (see `watch`).
    pub watch: bool,
    /// The language the user is spoken to in.
    pub lang: Lang,
}

/// Something for a node that is not bytes on a socket: for a client, from the user, the
/// shared folder, the disk and the hashing thread, or a socket's fate; for a gateway, from
/// the cluster. Every one reaches the node through [`Node::input`](crate::Node::input) or
/// [`crate::Happened`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A line the user typed.
    Line(String),
    /// End of input: the client leaves the network once its downloads are over, then
    /// exits.
    End,
    /// A stop signal: the client leaves the network now, then exits.
    Stop,
    /// The file of the shared folder with this name appeared, changed or went away, and
    /// has stopped changing.
    Folder(String),
    /// A file looked at and hashed (`Command::Stat`).
    Looked {
        name: String,
        result: Result<PieceHashes, FileError>,
    },
    /// A partial file opened, with the bytes it holds (`Command::OpenPart`).
    PartOpened {
        download: DownloadId,
        result: Result<u64, String>,
    },
    /// Which pieces of a partial file are good (`Command::CheckPart`).
    PartChecked {
        download: DownloadId,
        good: Vec<bool>,
    },
    /// A write to a partial file failed (`Command::WritePart`).
    Written { download: DownloadId, why: String },
    /// A finished partial file made the final file, or why not (`Command::CommitPart`).
    Committed {
        download: DownloadId,
        result: Result<(), String>,
    },
    /// A connection the client asked for is up, from `local`.
    Connected { conn: ConnId, local: SocketAddr },
    /// A connection the client asked for could not be made.
    ConnectFailed { conn: ConnId, why: String },
    /// A file range sent without `close` is written.
    Sent(ConnId),
    /// A connection is gone: closed by the peer, failed, or closed after its last write.
    Closed(ConnId),
    /// The file of a `Command::SendFile` could not be opened (the core decides what the
    /// peer gets).
    UploadFailed { conn: ConnId, why: String },
    /// A gateway's search, answered by the cluster.
    Answered(SearchToken, Merged),
    /// The cluster is back after an outage: a gateway publishes its sessions again.
    Republish,
}

impl ClientSetup {
    /// Builds the client, its [`Ui`] and its [`Disk`], and starts the threads that feed
    /// the loop: each calls `send` with what it has. `send` must wake the loop, and
    /// returns `false` once the loop is gone (the thread then stops).
    pub fn start(
        self,
        now: Instant,
        send: impl Fn(Input) -> bool + Send + Sync + Clone + 'static,
    ) -> io::Result<ClientNode> {
        let disk = Disk::with_hasher(send.clone());
        let stop = send.clone();
        on_stop_signal(move || {
            stop(Input::Stop);
        })?;
        if self.watch {
            let folder = send.clone();
            watch_shared(&self.config, &self.files, self.lang, move |name| {
                folder(Input::Folder(name))
            });
        }
        let mut ui = match self.script {
            Some(script) => Ui::for_script(script, self.lang),
            None => Ui::with_lang(self.lang),
        };
        if self.stdin {
            // A prompt on a terminal; from a pipe or a file, plain lines.
            match prompt::start(&self.config.shared_dir, self.lang, send) {
                Ok(prompt) => ui = Ui::with_prompt(prompt, self.lang),
                Err(send) => spawn_stdin_reader(move |line| {
                    send(line.map_or(Input::End, Input::Line));
                }),
            }
        }
        Ok(ClientNode {
            client: Client::new(now, self.config, self.files),
            disk,
            ui,
            facts: VecDeque::new(),
        })
    }
}
