//! What the client tells its user: events, and the errors and failure reasons they carry,
//! as plain data. The host renders them in the user's language (napshare-host's `text`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::SearchHit;
use crate::command::CommandError;
use crate::names::BadName;
use crate::wire::{PeerAddr, PeerError};

/// What the user should hear about (napshare-host renders it in the user's language).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    Joined {
        server: SocketAddr,
    },
    Shared {
        name: String,
        size: u64,
    },
    Unshared {
        name: String,
    },
    /// A search finished; `hits` are numbered from 1 in this order, which is what
    /// `DOWNLOAD N` refers to.
    SearchDone {
        pattern: String,
        hits: Vec<SearchHit>,
    },
    DownloadStarted {
        name: String,
        /// How many peers it will be fetched from.
        sources: usize,
        /// The size the server lists, which the download is checked against.
        size: Option<u64>,
    },
    /// More of a download is in (and, where there are hashes, checked).
    DownloadProgress {
        name: String,
        done: u64,
        size: Option<u64>,
    },
    DownloadDone {
        name: String,
        bytes: u64,
        elapsed: Duration,
        path: PathBuf,
    },
    DownloadFailed {
        name: String,
        reason: DownloadFailure,
    },
    /// A command could not be carried out (as far as it says).
    Error(ClientError),
    Help,
    /// The session with the index server ended unexpectedly. With `retry_in` the client
    /// tries again after that long (and shares its files again); without, it stops.
    ServerLost {
        reason: LostReason,
        retry_in: Option<Duration>,
    },
    /// `LEAVE` (or the end of input) came while downloads were in progress: the client
    /// leaves once these many are over.
    LeavingAfterDownloads {
        downloads: usize,
    },
    Left,
}

/// Why a command could not be carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// The line is not a command (the help follows).
    Command(CommandError),
    /// `CREATEFILE` of a file that cannot be read.
    CannotShare {
        name: String,
        why: FileError,
    },
    /// `CREATEFILE name size` with a size that is not the file's.
    WrongSize {
        name: String,
        size: u64,
        given: u64,
    },
    /// `DELETEFILE` of a name that was not shared (the server is told anyway).
    NotShared {
        name: String,
    },
    /// `SEARCH` while the server is away.
    NotConnected,
    /// `DOWNLOAD` of a name that cannot be a file in the downloads folder.
    BadName {
        name: String,
        why: BadName,
    },
    AlreadyDownloading {
        name: String,
    },
    /// The server answered a request with an error.
    ServerRefused {
        message: String,
    },
    /// The server went away while a search was answered.
    SearchCutOff {
        pattern: String,
    },
}

/// Why the host could not read a file for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileError {
    /// There is no such file in the shared folder.
    NotFound,
    /// Anything else, as the operating system says it.
    Other(String),
}

impl From<String> for FileError {
    fn from(why: String) -> Self {
        Self::Other(why)
    }
}

impl From<std::io::Error> for FileError {
    fn from(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::NotFound => Self::NotFound,
            _ => Self::Other(e.to_string()),
        }
    }
}

/// Why a download was given up (its partial file is kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownloadFailure {
    /// No search result lists the name.
    NobodyHasIt,
    /// `DOWNLOAD N` when the latest search listed fewer than `N` results (`results` of
    /// them), and no file is named `N` either.
    NoResultOrFile { results: usize },
    /// The partial file could not be opened (the operating system's reason).
    OpenPart(String),
    /// Writing to the partial file failed.
    Write(String),
    /// Renaming the complete file into place failed.
    Save(String),
    /// The last peer there was to try failed so.
    Peer {
        peer: PeerAddr,
        problem: PeerProblem,
    },
    /// No peer was left to send the whole file (fetched in order).
    NoPeerSentAll,
    /// No peer was left to send the missing pieces; the last one's problem, if any.
    NoPeerForRest(Option<(PeerAddr, PeerProblem)>),
    /// The client is leaving.
    Stopping,
}

/// What went wrong with one peer a download fetched from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerProblem {
    /// Connecting failed (the operating system's reason).
    CannotConnect(String),
    Closed,
    /// It closed after `got` of the listed `size` bytes.
    StoppedAfter {
        got: u64,
        size: u64,
    },
    /// It closed without a byte: it does not share `name`.
    SentNothing {
        name: String,
    },
    OverlongReply,
    UnaskedReply,
    WrongRange,
    /// Its piece list is for another size.
    OtherSize,
    Refused {
        code: PeerError,
        message: String,
    },
    BadReply(String),
    /// Its piece hashes do not add up to the content hash.
    BadPieceHashes,
    CorruptPiece(u64),
}

/// Why the session with the index server ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LostReason {
    Unreachable { server: SocketAddr, why: String },
    Closed,
    NoAnswer { secs: u64 },
}

/// How many distinct peers list a hit's content (by hash), or `None` without a hash.
pub fn copies(hits: &[SearchHit], hit: &SearchHit) -> Option<usize> {
    let hash = hit.hash?;
    let mut holders: Vec<&str> = hits
        .iter()
        .filter(|h| h.hash == Some(hash))
        .map(|h| h.peer.as_str())
        .collect();
    holders.sort_unstable();
    holders.dedup();
    Some(holders.len())
}
