//! The client driven by hand, reply by reply: numbered results and `DOWNLOAD N`, and what
//! the user is told in each language. Whole transfers are in the tests crate's
//! simulation tests.

use std::net::SocketAddr;
use std::time::Instant;

use super::*;
use crate::command::CommandError;
use crate::wire::{ExtReply, PeerAddr};

/// The one real clock reading: a base for the times fed in.
#[allow(clippy::disallowed_methods)]
pub(super) fn epoch() -> Instant {
    Instant::now()
}

/// A client of the server at 10.0.0.1 with made-up folders (nothing here touches them).
pub(super) fn config() -> ClientConfig {
    ClientConfig {
        server: "10.0.0.1:1234".parse().unwrap(),
        shared_dir: "/shared".into(),
        downloads_dir: "/downloads".into(),
        peer_port: 1235,
        goal: None,
    }
}

const SERVER: ConnId = ConnId(0);

/// A client whose server session is up, with everything it did so far drained.
struct Driver {
    c: Client,
    now: Instant,
    events: Vec<ClientEvent>,
    commands: Vec<Command>,
    sent: Vec<u8>,
    /// Every connection the client asked for, with where to.
    conns: Vec<(ConnId, SocketAddr)>,
}

impl Driver {
    /// Joined a classic server (`ext: false`: no hashes) or a napshare one.
    fn joined(ext: bool) -> Self {
        let now = epoch();
        let mut d = Self {
            c: Client::new(now, config(), Vec::new()),
            now,
            events: Vec::new(),
            commands: Vec::new(),
            sent: Vec::new(),
            conns: Vec::new(),
        };
        d.c.handle_connected(now, SERVER, "10.0.0.9:5555".parse().unwrap());
        if ext {
            let mut join = Vec::new();
            ExtReply::ConfirmJoin { idle: None }.encode(&mut join);
            d.reply(&join);
        } else {
            d.reply(b"CONFIRMJOIN\n");
        }
        d.drain();
        d.events.clear();
        d.commands.clear();
        d.sent.clear();
        d
    }

    fn drain(&mut self) {
        while let Some(t) = self.c.poll_transmit() {
            if t.conn == SERVER {
                self.sent.extend_from_slice(&t.data);
            }
        }
        self.commands
            .extend(std::iter::from_fn(|| self.c.poll_command()));
        self.events
            .extend(std::iter::from_fn(|| self.c.poll_event()));
    }

    fn reply(&mut self, bytes: &[u8]) {
        self.c.handle_bytes(self.now, SERVER, bytes);
        self.drain();
    }

    fn input(&mut self, line: &str) {
        self.c.handle_input(self.now, Some(line));
        self.drain();
    }

    /// `SEARCH pattern` answered by a classic server with `FILE` lines.
    fn classic_search(&mut self, pattern: &str, files: &[(&str, &str, u64)]) {
        self.input(&format!("SEARCH {pattern}"));
        let mut reply = String::new();
        for (name, peer, size) in files {
            reply += &format!("FILE {name} {peer} {size}\n");
        }
        reply += if files.is_empty() {
            "NORESULT\nENDSEARCH\n"
        } else {
            "ENDSEARCH\n"
        };
        self.reply(reply.as_bytes());
        self.sent.clear();
    }

    /// `SEARCH pattern` answered by a napshare server with `FOUND` lines.
    fn ext_search(&mut self, pattern: &str, files: &[(&str, &str, u64, u8)]) {
        self.input(&format!("SEARCH {pattern}"));
        let mut reply = Vec::new();
        for (name, peer, size, hash) in files {
            ExtReply::Found {
                name: (*name).into(),
                peer,
                size: *size,
                hash: Some(ContentHash([*hash; 32])),
            }
            .encode(&mut reply);
        }
        ExtReply::EndFind {
            count: files.len() as u64,
        }
        .encode(&mut reply);
        self.reply(&reply);
        self.sent.clear();
    }

    /// The partial file of the only download opened empty; returns the addresses the
    /// client then connects to, in order.
    fn open_part(&mut self) -> Vec<SocketAddr> {
        let id = self
            .commands
            .iter()
            .find_map(|c| match c {
                Command::OpenPart { download, .. } => Some(*download),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no partial file opened: {:?}", self.events));
        self.commands.clear();
        self.c.handle_part_opened(self.now, id, Ok(0));
        self.drain();
        self.connects()
    }

    /// The connections asked for since the last call, taken out.
    fn connects(&mut self) -> Vec<SocketAddr> {
        let new: Vec<(ConnId, SocketAddr)> = self
            .commands
            .iter()
            .filter_map(|c| match c {
                Command::Connect { conn, addr } => Some((*conn, *addr)),
                _ => None,
            })
            .collect();
        self.commands
            .retain(|c| !matches!(c, Command::Connect { .. }));
        self.conns.extend(&new);
        new.into_iter().map(|(_, a)| a).collect()
    }

    /// The peer at `addr` closes the latest connection to it without a byte.
    fn peer_closes(&mut self, addr: SocketAddr) {
        let (conn, _) = *self
            .conns
            .iter()
            .rev()
            .find(|(_, a)| *a == addr)
            .expect("a connection to that peer");
        self.c.handle_closed(self.now, conn);
        self.drain();
    }

    fn started(&self) -> Vec<(String, usize, Option<u64>)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                ClientEvent::DownloadStarted {
                    name,
                    sources,
                    size,
                } => Some((name.clone(), *sources, *size)),
                _ => None,
            })
            .collect()
    }

    /// What the client asked the server since the last call, taken out.
    fn take_sent(&mut self) -> String {
        String::from_utf8(std::mem::take(&mut self.sent)).unwrap()
    }
}

fn addr(text: &str) -> SocketAddr {
    text.parse::<PeerAddr>().unwrap().0
}

#[test]
fn download_n_takes_result_n_with_the_peers_of_the_same_content_its_peer_first() {
    let mut d = Driver::joined(true);
    d.ext_search(
        "song",
        &[
            ("song.mp3", "10.0.0.2:4000", 300, 1),
            ("song.mp3", "10.0.0.3:4000", 200, 2),
            ("other name.mp3", "10.0.0.4:4000", 300, 1),
            ("song.mp3", "10.0.0.5:4000", 300, 1),
        ],
    );
    assert_eq!(d.c.last_hits().len(), 4);
    // Result 4: content 1, held by three peers under two names; its own peer first.
    d.input("DOWNLOAD 4");
    assert_eq!(d.started(), [("song.mp3".to_owned(), 3, Some(300))]);
    assert_eq!(
        d.open_part(),
        [
            addr("10.0.0.5:4000"),
            addr("10.0.0.2:4000"),
            addr("10.0.0.4:4000")
        ]
    );
    assert_eq!(d.take_sent(), "", "no lookup: the results say it all");
}

#[test]
fn download_n_of_another_version_fetches_that_version_only() {
    let mut d = Driver::joined(true);
    d.ext_search(
        "song",
        &[
            ("song.mp3", "10.0.0.2:4000", 300, 1),
            ("song.mp3", "10.0.0.3:4000", 300, 1),
            ("song.mp3", "10.0.0.4:4000", 200, 2),
        ],
    );
    // By name, the content most peers hold would win; result 3 is the other one.
    d.input("baixar 3");
    assert_eq!(d.started(), [("song.mp3".to_owned(), 1, Some(200))]);
    assert_eq!(d.open_part(), [addr("10.0.0.4:4000")]);
}

#[test]
fn without_hashes_the_same_content_is_the_same_name_and_size() {
    let mut d = Driver::joined(false);
    d.classic_search(
        "a",
        &[
            ("a.txt", "10.0.0.2", 100),
            ("a.txt", "10.0.0.3", 50),
            ("a.txt", "10.0.0.4", 100),
            ("b.txt", "10.0.0.5", 100),
        ],
    );
    d.input("DOWNLOAD 3");
    assert_eq!(d.started(), [("a.txt".to_owned(), 2, Some(100))]);
    // One peer at a time, in order: result 3's, then the other with the same size.
    assert_eq!(d.open_part(), [addr("10.0.0.4")]);
    d.peer_closes(addr("10.0.0.4"));
    assert_eq!(d.connects(), [addr("10.0.0.2")]);
}

/// What a number means: result N when the latest search listed N or more results; any
/// other number is a file name (a file may be called `3`), and the failure, when nobody
/// has one, says how many results there were.
#[test]
fn a_number_past_the_results_is_a_file_name() {
    let mut d = Driver::joined(false);

    // No search yet: `3` is a name, looked up on the server.
    d.input("DOWNLOAD 3");
    assert_eq!(d.take_sent(), "SEARCH 3\n");
    d.reply(b"FILE 3 10.0.0.7 5\nENDSEARCH\n");
    assert_eq!(d.started(), [("3".to_owned(), 1, Some(5))]);
    assert_eq!(d.open_part(), [addr("10.0.0.7")]);
    assert!(d.c.last_hits().is_empty(), "a lookup is not a search");
    d.peer_closes(addr("10.0.0.7"));
    assert!(matches!(
        d.events.last(),
        Some(ClientEvent::DownloadFailed { .. })
    ));
    d.events.clear();

    // Two results: 2 is a result, 3 is a name again, and nobody has a file `3` now.
    d.classic_search("x", &[("x1", "10.0.0.2", 1), ("x2", "10.0.0.3", 2)]);
    d.input("DOWNLOAD 2");
    assert_eq!(d.started(), [("x2".to_owned(), 1, Some(2))]);
    d.events.clear();
    d.input("DOWNLOAD 3");
    assert_eq!(d.take_sent(), "SEARCH 3\n");
    d.reply(b"NORESULT\nENDSEARCH\n");
    let failed = d.events.last().unwrap();
    assert_eq!(
        failed,
        &ClientEvent::DownloadFailed {
            name: "3".into(),
            reason: DownloadFailure::NoResultOrFile { results: 2 },
        }
    );

    // `0` is never a result; with a peer, a number is always a name.
    d.input("DOWNLOAD 0");
    assert_eq!(d.take_sent(), "SEARCH 0\n");
    d.reply(b"NORESULT\nENDSEARCH\n");
    d.events.clear();
    d.input("DOWNLOAD 10.0.0.3 2");
    assert_eq!(
        d.take_sent(),
        "SEARCH 2\n",
        "the file named 2, not result 2"
    );
}

#[test]
fn a_result_with_a_name_that_cannot_be_saved_is_refused() {
    let mut d = Driver::joined(false);
    d.classic_search("", &[("..", "10.0.0.2", 1)]);
    d.input("DOWNLOAD 1");
    assert!(d.started().is_empty());
    assert!(matches!(
        d.events.last(),
        Some(ClientEvent::Error(ClientError::BadName { .. }))
    ));
}

/// A mistyped line is an error event followed by the help (the host renders both in the
/// user's language, napshare-host's `text`).
#[test]
fn mistakes_are_errors_then_help() {
    let mut d = Driver::joined(false);
    d.input("REMOVER nada.txt");
    d.input("FROBNICATE");
    assert_eq!(
        d.events[..3],
        [
            ClientEvent::Error(ClientError::NotShared {
                name: "nada.txt".into()
            }),
            ClientEvent::Error(ClientError::Command(CommandError::Unknown(
                "FROBNICATE".into()
            ))),
            ClientEvent::Help,
        ]
    );
}

/// A classic server that answers a search matching nothing with nothing at all (no
/// `NORESULT`, no `ENDSEARCH`): the lookup of `DOWNLOAD ip name` ends after
/// [`NO_ANSWER_QUIET`], the peer is tried by name anyway, and the commands behind it go on.
#[test]
fn a_search_a_classic_server_never_answers_ends_after_a_quiet_time() {
    let mut d = Driver::joined(false);
    d.input("DOWNLOAD 127.0.0.9 remote.bin");
    d.input("SEARCH later");
    assert_eq!(
        d.take_sent(),
        "SEARCH remote.bin\n",
        "one request at a time"
    );
    assert_eq!(d.c.poll_timeout(), Some(d.now + NO_ANSWER_QUIET));
    d.c.handle_timeout(d.now + NO_ANSWER_QUIET / 2);
    d.drain();
    assert!(d.started().is_empty(), "too early");
    d.now += NO_ANSWER_QUIET;
    d.c.handle_timeout(d.now);
    d.drain();
    assert_eq!(d.started(), [("remote.bin".to_owned(), 1, None)]);
    assert_eq!(d.open_part(), [addr("127.0.0.9")]);
    assert_eq!(d.take_sent(), "SEARCH later\n", "the next command went on");
    d.peer_closes(addr("127.0.0.9"));

    // A search with results ends after the shorter quiet time after its last line.
    d.reply(b"FILE later.txt 10.0.0.2 4\n");
    d.now += QUIET;
    d.c.handle_timeout(d.now);
    d.drain();
    assert!(matches!(
        d.events.last(),
        Some(ClientEvent::SearchDone { hits, .. }) if hits.len() == 1
    ));

    // `LEAVE` (with no download left) is not held up by a search either.
    d.input("SEARCH nothing");
    d.input("LEAVE");
    d.now += NO_ANSWER_QUIET;
    d.c.handle_timeout(d.now);
    d.drain();
    assert_eq!(d.take_sent(), "SEARCH nothing\nLEAVE\n");
}

/// Once a classic server has answered an empty search, it is trusted to answer the next
/// ones: an unanswered search waits for the reply timeout, not the quiet time; and a
/// napshare server always ends a search.
#[test]
fn a_server_that_ends_its_searches_is_waited_for() {
    let mut d = Driver::joined(false);
    d.classic_search("none", &[]);
    d.input("SEARCH slow");
    assert_eq!(d.c.poll_timeout(), Some(d.now + REPLY_TIMEOUT));

    let mut d = Driver::joined(true);
    d.input("SEARCH slow");
    assert_eq!(d.c.poll_timeout(), Some(d.now + REPLY_TIMEOUT));
}
