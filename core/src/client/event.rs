//! What the client tells its user.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::SearchHit;
use crate::command::HELP;

/// What the user should hear about. `Display` gives the text to print.
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
        reason: String,
    },
    /// A command could not be carried out; nothing was sent.
    Error(String),
    Help,
    /// The session with the index server ended unexpectedly. With `retry_in` the client
    /// tries again after that long (and shares its files again); without, it stops.
    ServerLost {
        reason: String,
        retry_in: Option<Duration>,
    },
    Left,
}

impl fmt::Display for ClientEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Joined { server } => write!(f, "joined the network at {server}"),
            Self::Shared { name, size } => write!(f, "sharing {name} ({size} bytes)"),
            Self::Unshared { name } => write!(f, "stopped sharing {name}"),
            Self::SearchDone { pattern, hits } => {
                let s = if hits.len() == 1 { "" } else { "s" };
                write!(f, "search \"{pattern}\": {} result{s}", hits.len())?;
                for h in hits {
                    write!(f, "\n  {}  {}  {} bytes", h.name, h.peer, h.size)?;
                    if let Some(hash) = h.hash {
                        let same = hits.iter().filter(|o| o.hash == Some(hash)).count();
                        let short = &hash.to_string()[..12];
                        write!(f, "  [blake3 {short}, {same} with this content]")?;
                    }
                }
                Ok(())
            }
            Self::DownloadStarted {
                name,
                sources,
                size,
            } => {
                let from = match sources {
                    1 => "1 peer".to_owned(),
                    n => format!("{n} peers"),
                };
                match size {
                    Some(size) => write!(f, "downloading {name} from {from} ({size} bytes)"),
                    None => write!(
                        f,
                        "downloading {name} from {from} (the server does not list it there, \
                         so its size is unknown and a cut transfer cannot be told from a \
                         whole one)"
                    ),
                }
            }
            Self::DownloadProgress { name, done, size } => match size {
                Some(size) if *size > 0 => {
                    let pct = *done as f64 * 100.0 / *size as f64;
                    write!(f, "{name}: {done} of {size} bytes ({pct:.0}%)")
                }
                _ => write!(f, "{name}: {done} bytes"),
            },
            Self::DownloadDone {
                name,
                bytes,
                elapsed,
                path,
            } => {
                let secs = elapsed.as_secs_f64();
                let rate = *bytes as f64 / secs.max(1e-6) / 1_048_576.0;
                write!(
                    f,
                    "downloaded {name}: {bytes} bytes in {secs:.3} s ({rate:.2} MiB/s), saved as {}",
                    path.display()
                )
            }
            Self::DownloadFailed { name, reason } => {
                write!(f, "download of {name} failed: {reason}")
            }
            Self::Error(msg) => write!(f, "error: {msg}"),
            Self::Help => f.write_str(HELP),
            Self::ServerLost {
                reason,
                retry_in: None,
            } => write!(f, "lost the server: {reason}"),
            Self::ServerLost {
                reason,
                retry_in: Some(wait),
            } => write!(
                f,
                "lost the server: {reason}; trying again in {} s",
                wait.as_secs_f64().ceil()
            ),
            Self::Left => f.write_str("left the network"),
        }
    }
}
