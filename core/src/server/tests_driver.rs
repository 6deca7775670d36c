//! The index with the driver ([`IndexAt::Driver`]): searches it answers, share lists it
//! publishes. A [`Replica`] fed with what the server publishes plays the cluster.

use super::*;
use crate::cluster::{session_key, Answer, RemoteHit, Replica};
use crate::hash::ContentHash;

struct Fixture {
    server: Server,
    now: Instant,
    /// The one partition of a cluster, fed by [`Fixture::publish`].
    replica: Replica,
}

impl Fixture {
    #[allow(clippy::disallowed_methods)] // the one real instant a test starts from
    fn new(index: IndexAt, max_results: usize) -> Self {
        let now = Instant::now();
        let config = ServerConfig {
            index,
            max_results,
            ..ServerConfig::default()
        };
        Self {
            server: Server::new(now, config),
            now,
            replica: Replica::new(),
        }
    }

    /// Hands what the server has to publish to the replica; returns the updates.
    fn publish(&mut self) -> Vec<ShareUpdate> {
        let mut updates = Vec::new();
        while let Some(u) = self.server.poll_share() {
            let key = session_key("gw", u.session);
            match &u.list {
                Some(list) => {
                    let mut value = Vec::new();
                    list.encode(&mut value).unwrap();
                    self.replica.put(&key, &value).unwrap();
                }
                None => drop(self.replica.delete(&key)),
            }
            updates.push(u);
        }
        updates
    }

    /// Lets the batch wait pass, then publishes.
    fn settle(&mut self) -> Vec<ShareUpdate> {
        self.now += ServerConfig::default().share_batch;
        self.server.handle_timeout(self.now);
        self.publish()
    }

    fn driver() -> Self {
        Self::new(IndexAt::Driver, 1000)
    }

    fn connect(&mut self, port: u16) -> ConnId {
        let addr = SocketAddr::from(([10, 0, 0, 1], port));
        self.server.handle_accept(self.now, addr)
    }

    /// Everything the server has to send, all for `conn`.
    fn sent(&mut self, conn: ConnId) -> String {
        let mut out = Vec::new();
        while let Some(t) = self.server.poll_transmit() {
            assert_eq!(t.conn, conn);
            out.extend(t.data);
        }
        String::from_utf8(out).unwrap()
    }

    /// Sends `lines` on `conn` and returns everything the server answered.
    fn say(&mut self, conn: ConnId, lines: &str) -> String {
        self.server
            .handle_bytes(self.now, conn, lines.as_bytes())
            .unwrap();
        self.sent(conn)
    }

    fn answer(&mut self, token: SearchToken, hits: Vec<RemoteHit>) {
        let merged = Merged {
            hits,
            complete: true,
        };
        self.server.handle_search_answer(self.now, token, &merged);
    }

    /// The one search asked, and that no other was.
    fn asked(&mut self) -> SearchRequest {
        let request = self.server.poll_search().expect("a search for the driver");
        assert_eq!(self.server.poll_search(), None, "one search at a time");
        request
    }
}

fn hit(name: &str) -> RemoteHit {
    RemoteHit {
        name: name.into(),
        size: 7,
        peer: "10.0.0.9:4000".into(),
        hash: None,
    }
}

/// What the cluster has for `pattern`, as a driver would hand it back.
fn hits_of(f: &mut Fixture, pattern: &str) -> Vec<RemoteHit> {
    f.settle();
    let request = crate::cluster::SearchRequest {
        pattern: pattern.into(),
        limit: 1000,
    };
    let Answer { hits, .. } = f.replica.search(&request);
    hits
}

#[test]
fn a_search_is_asked_of_the_driver_and_answered_only_then() {
    let mut f = Fixture::driver();
    let c = f.connect(1);
    assert_eq!(f.say(c, "JOIN x\nSEARCH song\n"), "CONFIRMJOIN\n");
    let request = f.asked();
    assert_eq!(
        request,
        SearchRequest {
            token: request.token,
            conn: c,
            pattern: "song".into(),
            limit: 1000,
            kind: ReplyKind::Classic,
        }
    );
    assert_eq!(f.sent(c), "", "no bytes before the answer");
    f.answer(request.token, vec![hit("song.mp3")]);
    assert_eq!(f.sent(c), "FILE song.mp3 10.0.0.9:4000 7\nENDSEARCH\n");
    assert_eq!(f.server.poll_search(), None);
    // An extension FIND is asked the same way, with its own format.
    let e = f.connect(2);
    f.say(e, "JOIN y NAPSHARE/1\n");
    assert_eq!(f.say(e, "FIND a%20b\n"), "");
    let request = f.asked();
    assert_eq!(
        (request.pattern.as_str(), request.kind),
        ("a b", ReplyKind::Ext)
    );
    f.answer(request.token, Vec::new());
    assert_eq!(f.sent(e), "ENDFIND 0\n");
}

/// The driver's answer, given the files a local search finds, is the local reply byte
/// for byte, in both formats: names a classic line cannot carry are left out the same way.
#[test]
fn an_answer_is_written_exactly_as_a_local_search_would_be() {
    let mut local = Fixture::new(IndexAt::Local, 1000);
    let mut driver = Fixture::driver();
    let hash = ContentHash([0xab; 32]);
    let shares = format!(
        "JOIN 10.0.0.1:4000 NAPSHARE/1\nADDFILE a%20song%0Ab 7 {hash}\nADDFILE song.mp3 9 {hash}\n"
    );
    for f in [&mut local, &mut driver] {
        let sharer = f.connect(1);
        f.say(sharer, &shares);
        let classic = f.connect(2);
        f.say(classic, "JOIN 10.0.0.1\nCREATEFILE other song.mp3 3\n");
    }
    for (request, pattern) in [
        ("SEARCH song\n", "song"),
        ("SEARCH nothing\n", "nothing"),
        ("FIND song\n", "song"),
        ("FIND nothing\n", "nothing"),
    ] {
        let ext = request.starts_with("FIND");
        let join = if ext {
            "JOIN z NAPSHARE/1\n"
        } else {
            "JOIN z\n"
        };
        let (l, d) = (local.connect(3), driver.connect(3));
        local.say(l, join);
        driver.say(d, join);
        let expected = local.say(l, request);
        assert_eq!(driver.say(d, request), "");
        let asked = driver.asked();
        assert_eq!(asked.pattern, pattern);
        let hits = hits_of(&mut driver, pattern);
        driver.answer(asked.token, hits);
        assert_eq!(driver.sent(d), expected, "{request}");
    }
}

/// Pipelined requests are answered strictly in order: the second search is asked only
/// once the first is answered, and what follows it waits for it, even when it arrives
/// while the connection waits. Other connections go on meanwhile.
#[test]
fn pipelined_requests_wait_for_the_answer_before_them() {
    let mut f = Fixture::driver();
    let c = f.connect(1);
    f.say(c, "JOIN x\n");
    assert_eq!(f.say(c, "SEARCH a\nSEARCH b\nCREATEFILE c 1\n"), "");
    let first = f.asked();
    assert_eq!(first.pattern, "a");
    assert_eq!(
        f.say(c, "CREATEFILE d 1\nSEARCH "),
        "",
        "held while waiting"
    );
    let other = f.connect(2);
    assert_eq!(
        f.say(other, "JOIN y\nCREATEFILE e 1\n"),
        "CONFIRMJOIN\nCONFIRMCREATEFILE e\n"
    );
    f.answer(first.token, vec![hit("a1")]);
    assert_eq!(f.sent(c), "FILE a1 10.0.0.9:4000 7\nENDSEARCH\n");
    let second = f.asked();
    assert_eq!(second.pattern, "b");
    assert!(second.token != first.token);
    f.answer(second.token, Vec::new());
    assert_eq!(
        f.sent(c),
        "NORESULT\nENDSEARCH\nCONFIRMCREATEFILE c\nCONFIRMCREATEFILE d\n"
    );
    // The unterminated "SEARCH " is taken as a line after the quiet time, as ever.
    assert_eq!(f.server.poll_search(), None);
    f.server.handle_timeout(f.now + QUIET);
    assert_eq!(f.asked().pattern, "");
    // It waits for its answer like any other.
    assert_eq!(f.say(c, "CREATEFILE g 1\n"), "");
}

#[test]
fn an_answer_for_a_closed_connection_or_an_unknown_token_is_ignored() {
    let mut f = Fixture::driver();
    let c = f.connect(1);
    f.say(c, "JOIN x\nSEARCH a\n");
    let gone = f.asked();
    f.server.handle_closed(f.now, c);
    f.answer(gone.token, vec![hit("a1")]);
    assert!(f.server.poll_transmit().is_none());
    // Tokens are never reused, and a stale or unknown one changes nothing.
    let d = f.connect(2);
    f.say(d, "JOIN y\nSEARCH b\nCREATEFILE c 1\n");
    let live = f.asked();
    assert!(live.token != gone.token);
    f.answer(gone.token, vec![hit("stale")]);
    f.answer(SearchToken(u64::MAX), vec![hit("unknown")]);
    assert!(f.server.poll_transmit().is_none());
    f.answer(live.token, vec![hit("b1")]);
    assert_eq!(
        f.sent(d),
        "FILE b1 10.0.0.9:4000 7\nENDSEARCH\nCONFIRMCREATEFILE c\n"
    );
    f.answer(live.token, vec![hit("twice")]);
    assert!(f.server.poll_transmit().is_none(), "answered once");
}

/// At most `max_results` hits go out, however many the driver hands back; a classic
/// reply leaves out names it cannot carry without counting them.
#[test]
fn the_result_cap_bounds_an_answer() {
    let mut f = Fixture::new(IndexAt::Driver, 2);
    let c = f.connect(1);
    let e = f.connect(2);
    f.say(c, "JOIN x\n");
    f.say(e, "JOIN y NAPSHARE/1\n");
    let many = || ["a\nb", "x", "y", "z"].map(hit).to_vec();
    f.say(c, "SEARCH any\n");
    let asked = f.asked();
    assert_eq!(asked.limit, 2);
    f.answer(asked.token, many());
    assert_eq!(
        f.sent(c),
        "FILE x 10.0.0.9:4000 7\nFILE y 10.0.0.9:4000 7\nENDSEARCH\n"
    );
    f.say(e, "FIND any\n");
    let asked = f.asked();
    f.answer(asked.token, many());
    assert_eq!(
        f.sent(e),
        "FOUND a%0Ab 10.0.0.9:4000 7 -\nFOUND x 10.0.0.9:4000 7 -\nENDFIND 2\n"
    );
}

/// A client that piles up requests while it waits is held to the same bound as one
/// that sends them at once.
#[test]
fn requests_held_while_waiting_are_bounded() {
    let mut f = Fixture::driver();
    let c = f.connect(1);
    f.say(c, "JOIN x\nSEARCH a\n");
    let _ = f.asked();
    let burst = ServerConfig::default().max_queued + SOCKET_BUFFER_MAX;
    let line = "CREATEFILE some file.mp3 1\n";
    let pile = line.repeat(burst / line.len() + 1);
    f.server.handle_bytes(f.now, c, pile.as_bytes()).unwrap();
    assert_eq!(f.server.poll_close(), Some(c));
}

/// Share lists go out whole, one per changed session, after the batch wait; a session
/// that ends goes out at once; the server keeps no index of its own.
#[test]
fn share_lists_are_published_in_batches_and_ends_at_once() {
    let mut f = Fixture::driver();
    let a = f.connect(4000);
    let b = f.connect(4001);
    let hash = ContentHash([7; 32]);
    f.say(
        a,
        "JOIN 10.0.0.1:4000\nCREATEFILE one 1\nCREATEFILE two 2\n",
    );
    f.say(
        b,
        &format!("JOIN 10.0.0.1:4001 NAPSHARE/1\nADDFILE three 3 {hash}\n"),
    );
    assert_eq!(f.publish(), [], "nothing before the batch wait");
    let due = f.server.poll_timeout().unwrap();
    assert_eq!(due, f.now + ServerConfig::default().share_batch);
    let updates = f.settle();
    assert_eq!(updates.len(), 2, "one list per session");
    let list = updates[0].list.as_ref().unwrap();
    assert_eq!(updates[0].session, a.0);
    assert_eq!(list.peer, "10.0.0.1:4000");
    let names: Vec<_> = list.files.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["one", "two"]);
    assert_eq!(updates[1].list.as_ref().unwrap().files[0].hash, Some(hash));
    assert!(f.server.index().is_empty(), "no local index");
    // A change, then nothing left: the key goes.
    f.say(a, "DELETEFILE one\n");
    let updates = f.settle();
    assert_eq!(updates[0].list.as_ref().unwrap().files.len(), 1);
    f.say(a, "DELETEFILE two\n");
    assert_eq!(f.settle()[0].list, None);
    assert_eq!(f.settle(), [], "and only once");
    // A session that ends leaves at once, without the batch wait.
    f.say(b, &format!("ADDFILE four 4 {hash}\n"));
    f.server.handle_closed(f.now, b);
    let updates = f.publish();
    assert_eq!(
        updates,
        [ShareUpdate {
            session: b.0,
            list: None
        }]
    );
    assert_eq!(f.replica.files(), 0);
    assert_eq!(f.settle(), [], "no batch left for it");
}

/// After the cluster lost them, every session's list goes out again at once.
#[test]
fn republish_sends_every_list_again() {
    let mut f = Fixture::driver();
    for port in 1..=3 {
        let c = f.connect(port);
        f.say(c, &format!("JOIN x:{port}\nCREATEFILE f{port} 1\n"));
    }
    let silent = f.connect(9);
    f.say(silent, "JOIN y\n");
    assert_eq!(f.settle().len(), 3);
    f.replica = Replica::new();
    f.server.republish(f.now);
    assert_eq!(f.publish().len(), 3, "a session with no files has no key");
    assert_eq!(f.replica.files(), 3);
}

/// A session's list must fit one KV value: past it a file is refused, with an error an
/// extension client can read; an update of a file already shared is never refused.
#[test]
fn a_list_is_kept_within_one_kv_value() {
    let mut f = Fixture::driver();
    let c = f.connect(1);
    f.say(c, "JOIN x NAPSHARE/1\n");
    let name = "n".repeat(3000); // a line holds at most 4 kB
    let hash = ContentHash([1; 32]);
    let mut refused = 0;
    for i in 0..400 {
        let reply = f.say(c, &format!("ADDFILE {name}{i} 1 {hash}\n"));
        if reply.starts_with("ERROR") {
            refused += 1;
        }
    }
    assert!(refused > 0, "1 MiB holds fewer than 400 names of 3 kB");
    assert!(f
        .say(c, &format!("ADDFILE {name}0 2 {hash}\n"))
        .starts_with("CONFIRMADDFILE"));
    let updates = f.settle();
    let mut value = Vec::new();
    updates[0]
        .list
        .as_ref()
        .unwrap()
        .encode(&mut value)
        .unwrap();
}
