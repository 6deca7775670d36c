//! The user's side of a client process, written once for every runtime: what feeds the
//! event loop from outside it (standard input, stop signals) and what the loop does with
//! it. A runtime only moves [`Input`]s from [`ClientSetup::start`]'s `send` into its loop
//! and hands each to [`feed`].

use std::io;
use std::time::Instant;

use crate::lang::Lang;
use napshare_core::client::{Client, ClientConfig, SharedFile};

use crate::prompt;
use crate::stdin::spawn_stdin_reader;
use crate::watch::watch_shared;
use crate::{drain, on_stop_signal, Answer, ClientIo, Disk, Script, Ui};

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

/// Something from outside the event loop for the client.
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
    /// What the hashing thread found (see [`Disk::with_hasher`]).
    Disk(Answer),
}

impl ClientSetup {
    /// Builds the client, its [`Ui`] and its [`Disk`], and starts the threads that feed
    /// the loop: each calls `send` with what it has. `send` must wake the loop, and
    /// returns `false` once the loop is gone (the thread then stops).
    pub fn start(
        self,
        now: Instant,
        send: impl Fn(Input) -> bool + Send + Sync + Clone + 'static,
    ) -> io::Result<(Client, Ui, Disk)> {
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
        Ok((Client::new(now, self.config, self.files), ui, disk))
    }
}

/// Hands one input to the client and carries out what follows from it.
pub fn feed(client: &mut Client, io: &mut impl ClientIo, now: Instant, input: Input) {
    match input {
        Input::Line(line) => client.handle_input(now, Some(&line)),
        Input::End => client.handle_input(now, None),
        Input::Stop => client.stop(now),
        Input::Folder(name) => client.handle_folder_change(now, &name),
        Input::Disk(answer) => answer.give(client, now),
    }
    drain(client, io, now);
}
