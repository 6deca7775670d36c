//! One-shot clients: a client with a [`Goal`] joins, does one thing, leaves and exits with
//! a status that says how it went, with no user typing commands.
//!
//! The sequencing is the client's own: the goal's request is queued right behind `JOIN`
//! (requests go one at a time), and the client leaves as soon as the search is answered or
//! the download is saved or given up. A one-shot client never waits for a lost server to
//! come back: it gives up with [`exit::ERROR`], unless its download is already under way,
//! which needs only the peers and is let finish.

use super::session::{Link, Pending};
use super::{Client, DownloadId};

/// What a one-shot client is for ([`super::ClientConfig::goal`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Goal {
    /// Search for `pattern` once joined, then leave: [`exit::OK`] with results,
    /// [`exit::NOT_FOUND`] without.
    Search { pattern: String },
    /// Download `name` as `DOWNLOAD name` does (from every peer holding the content most
    /// of them list, checked piece by piece, resuming a partial file), then leave:
    /// [`exit::OK`] once saved, [`exit::NOT_FOUND`] when no peer lists that name,
    /// [`exit::FAILED`] when the download was given up.
    Get { name: String },
}

/// A client's exit statuses ([`Client::exit_status`]); 2 is left to the command line for
/// usage errors.
pub mod exit {
    /// Done: left after `LEAVE`, or a goal reached.
    pub const OK: i32 = 0;
    /// The server could not be reached or was lost, or the client was stopped before its
    /// goal was reached.
    pub const ERROR: i32 = 1;
    /// A search found nothing, or no peer lists the file to download.
    pub const NOT_FOUND: i32 = 3;
    /// The download was given up (no peer could send it whole, or it could not be saved).
    pub const FAILED: i32 = 4;
}

/// A goal being worked on.
#[derive(Debug)]
pub(super) struct GoalRun {
    goal: Goal,
    /// The goal's download, once started.
    download: Option<DownloadId>,
    /// The status to exit with, once the goal is reached or given up.
    outcome: Option<i32>,
}

impl GoalRun {
    pub(super) fn new(goal: Goal) -> Self {
        Self {
            goal,
            download: None,
            outcome: None,
        }
    }
}

/// What a one-shot client does when the server is lost.
pub(super) enum OnServerLost {
    /// No goal: reconnect, as an interactive client does.
    Reconnect,
    /// Exit with [`exit::ERROR`].
    GiveUp,
    /// The goal's download goes on without the server; leave when it ends.
    Detach,
}

impl Client {
    /// Queues the goal's first step behind `JOIN`; called once, as the client starts.
    pub(super) fn start_goal(&mut self, now: std::time::Instant) {
        let Some(run) = &self.goal else { return };
        match run.goal.clone() {
            Goal::Search { pattern } => self.session.queue.push_back(Pending::Search {
                pattern,
                hits: Vec::new(),
                answered: false,
                lookup: None,
            }),
            Goal::Get { name } => {
                let id = DownloadId(self.next_download);
                self.start_download(now, None, name);
                if self.downloads.contains_key(&id) {
                    if let Some(run) = &mut self.goal {
                        run.download = Some(id);
                    }
                } else {
                    // Refused at once (a name that cannot be a file): already reported.
                    self.reach_goal(exit::FAILED);
                }
            }
        }
    }

    /// A search the user (or the goal) asked for was answered.
    pub(super) fn goal_searched(&mut self, found: bool) {
        if matches!(&self.goal, Some(r) if matches!(r.goal, Goal::Search { .. })) {
            self.reach_goal(if found { exit::OK } else { exit::NOT_FOUND });
        }
    }

    /// Download `id` ended with `status` ([`exit::OK`], [`exit::NOT_FOUND`] or
    /// [`exit::FAILED`]).
    pub(super) fn goal_download_ended(&mut self, id: DownloadId, status: i32) {
        if matches!(&self.goal, Some(r) if r.download == Some(id)) {
            self.reach_goal(status);
        }
    }

    /// How to take the loss of the server.
    pub(super) fn goal_on_server_lost(&self) -> OnServerLost {
        let Some(run) = &self.goal else {
            return OnServerLost::Reconnect;
        };
        let running = run
            .download
            .and_then(|id| self.downloads.get(&id))
            .is_some_and(|d| d.planned());
        if running && run.outcome.is_none() {
            OnServerLost::Detach
        } else {
            OnServerLost::GiveUp
        }
    }

    /// The status to exit with after leaving: the goal's outcome, [`exit::ERROR`] when it
    /// was stopped short of it, [`exit::OK`] without a goal.
    pub(super) fn leave_status(&self) -> i32 {
        match &self.goal {
            None => exit::OK,
            Some(run) => run.outcome.unwrap_or(exit::ERROR),
        }
    }

    /// Records the goal's outcome (the first one counts) and leaves the network. The
    /// `LEAVE` goes out on the next `pump`.
    fn reach_goal(&mut self, status: i32) {
        if self.exit.is_some() {
            return;
        }
        let Some(run) = &mut self.goal else { return };
        if run.outcome.is_some() {
            return;
        }
        run.outcome = Some(status);
        if !self.session.leaving {
            self.begin_leave();
        } else if self.session.link == Link::Down {
            self.finish_leave();
        }
    }

    /// Starts leaving: `LEAVE` after what is queued, or at once when the server is gone.
    pub(super) fn begin_leave(&mut self) {
        self.session.leaving = true;
        self.session.queue.push_back(Pending::Leave);
        if self.session.link == Link::Down {
            self.finish_leave();
        }
    }
}
