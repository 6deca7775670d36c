//! The live shared folder: the host watches the shared folder and reports each name whose
//! file appeared, changed, went away or was renamed, once it has stopped changing
//! ([`Client::handle_folder_change`]). The client looks at the file again through the
//! usual [`Command::Stat`] and decides: a new file, or one whose size or content changed,
//! is shared (registered again: the server keeps one entry per name and connection); a
//! file that is gone or is no longer a regular file stops being shared and the server is
//! told. A file whose content did not change sends nothing.
//!
//! The host's look ([`Command::Stat`] with `later`) hashes the whole file on a thread of
//! its own, so a big file that changes does not hold the client up; looks at one name are
//! answered in order, and only the latest counts.

use std::time::Instant;

use super::session::Pending;
use super::{Client, Command};
use crate::hash::PieceHashes;
use crate::names::check_file_name;

impl Client {
    /// The file `name` of the shared folder appeared, changed or went away (the host saw
    /// it and waited until it stopped changing). The client looks at it again and shares
    /// it, shares it again or stops sharing it, telling the server and the user. Names
    /// that cannot be shared (see [`check_file_name`]) are ignored, as at start.
    pub fn handle_folder_change(&mut self, now: Instant, name: &str) {
        if self.exit.is_some() || self.session.leaving || check_file_name(name).is_err() {
            return;
        }
        *self.folder_stats.entry(name.to_owned()).or_default() += 1;
        self.commands.push_back(Command::Stat {
            name: name.to_owned(),
            path: self.config.shared_dir.join(name),
            later: true,
        });
        self.pump(now);
    }

    /// The result of a look at a file of the shared folder that changed; a result no one
    /// asked for is ignored. Only the latest look at a name counts: while another one is
    /// on its way, this one may already be out of date.
    pub(super) fn folder_looked_at(
        &mut self,
        now: Instant,
        name: &str,
        result: Result<PieceHashes, impl Into<crate::client::FileError>>,
    ) {
        let Some(waiting) = self.folder_stats.get_mut(name) else {
            return;
        };
        *waiting -= 1;
        if *waiting > 0 {
            return;
        }
        self.folder_stats.remove(name);
        if self.exit.is_some() || self.session.leaving {
            return;
        }
        match result {
            Ok(pieces) => match self.shared.get(name) {
                Some(old) if *old == pieces => {}
                Some(_) => {
                    // The extension's server replaces the entry in place (`ADDFILE` of a
                    // name the connection shares updates it). A classic server may keep
                    // both (the seed appends), so it is told to drop the old one first.
                    if !self.session.ext {
                        self.session.queue.push_back(Pending::Delete {
                            name: name.to_owned(),
                        });
                    }
                    self.share(name.to_owned(), pieces);
                }
                None => self.share(name.to_owned(), pieces),
            },
            // Gone, not a regular file any more, or unreadable: it cannot be served. A
            // file that was never shared needs nothing (a temporary file that came and
            // went, a folder, a symlink: the scan at start skips those too).
            Err(_) => {
                if self.unshare(name) {
                    self.session.queue.push_back(Pending::Delete {
                        name: name.to_owned(),
                    });
                }
            }
        }
        self.pump(now);
    }
}
