use super::*;
use crate::hash::ContentHash;
use std::time::Duration;

struct Fixture {
    server: Server,
    now: Instant,
}

impl Fixture {
    #[allow(clippy::disallowed_methods)] // the one real instant a test starts from
    fn new() -> Self {
        let now = Instant::now();
        Self {
            server: Server::new(now, ServerConfig::default()),
            now,
        }
    }

    fn connect(&mut self, port: u16) -> ConnId {
        let addr = SocketAddr::from(([10, 0, 0, 1], port));
        self.server.handle_accept(self.now, addr)
    }

    /// Sends `lines` on `conn` and returns everything the server answered.
    fn say(&mut self, conn: ConnId, lines: &str) -> String {
        self.server
            .handle_bytes(self.now, conn, lines.as_bytes())
            .unwrap();
        let mut out = Vec::new();
        while let Some(t) = self.server.poll_transmit() {
            assert_eq!(t.conn, conn);
            out.extend(t.data);
        }
        String::from_utf8(out).unwrap()
    }
}

#[test]
fn a_line_without_an_end_is_answered_after_the_quiet_time() {
    let mut f = Fixture::new();
    let c = f.connect(1);
    assert_eq!(f.say(c, "JOIN x"), "");
    let due = f
        .server
        .poll_timeout()
        .expect("a deadline for the partial line");
    f.server
        .handle_timeout(due - std::time::Duration::from_millis(1));
    assert!(f.server.poll_transmit().is_none(), "not before it is due");
    f.server.handle_timeout(due);
    let t = f.server.poll_transmit().expect("the reply");
    assert_eq!(t.data, b"CONFIRMJOIN\n");
    assert_eq!(f.server.poll_timeout(), None);
    // More bytes before the deadline push it back and complete the line normally.
    assert_eq!(f.say(c, "SEARCH "), "");
    assert_eq!(f.say(c, "x\n"), "NORESULT\nENDSEARCH\n");
    assert_eq!(f.server.poll_timeout(), None);
}

#[test]
fn a_connection_that_never_joins_is_closed_after_the_join_timeout() {
    let mut f = Fixture::new();
    let c = f.connect(1);
    let due = f.server.poll_timeout().expect("the join deadline");
    assert_eq!(due, f.now + ServerConfig::default().join_timeout);
    f.server.handle_timeout(due);
    assert_eq!(f.server.poll_close(), Some(c));
    let left = std::iter::from_fn(|| f.server.poll_event()).any(|e| {
        matches!(
            e,
            ServerEvent::Left {
                reason: LeaveReason::JoinTimeout,
                ..
            }
        )
    });
    assert!(left);
    // A classic client that joined is never timed out.
    let d = f.connect(2);
    assert_eq!(f.say(d, "JOIN x\n"), "CONFIRMJOIN\n");
    assert_eq!(f.server.poll_timeout(), None);
}

#[test]
fn a_silent_extension_client_is_taken_for_gone_and_a_pinging_one_is_not() {
    let mut f = Fixture::new();
    let idle = ServerConfig::default().idle_timeout.unwrap();
    let quiet = f.connect(1);
    let alive = f.connect(2);
    let hash = ContentHash([3; 32]);
    assert_eq!(
        f.say(
            quiet,
            &format!("JOIN x NAPSHARE/1\nADDFILE gone.txt 1 {hash}\n")
        ),
        format!(
            "CONFIRMJOIN NAPSHARE/1 {}\nCONFIRMADDFILE gone.txt\n",
            idle.as_secs()
        )
    );
    f.say(
        alive,
        &format!("JOIN y NAPSHARE/1\nADDFILE here.txt 1 {hash}\n"),
    );
    // Half-way, the live client pings; the quiet one says nothing.
    f.now += idle / 2;
    assert_eq!(f.say(alive, "PING\n"), "PONG\n");
    f.now += idle / 2;
    f.server.handle_timeout(f.now);
    assert_eq!(f.server.poll_close(), Some(quiet));
    assert_eq!(f.server.poll_close(), None);
    let mut names = Vec::new();
    f.server.index().search("", 10, |h| {
        names.push(h.name.to_owned());
        true
    });
    assert_eq!(names, ["here.txt"]);
}

/// With the defaults, a frozen napshare client (its last byte sent at the latest when it
/// froze) is dropped within [`FROZEN_BOUND`]. (That a live one, pinging every third of
/// the idle timeout it is told, stays listed is the simulation's `liveness` test.)
#[test]
fn by_default_a_frozen_client_leaves_within_the_bound() {
    let mut f = Fixture::new();
    let idle = ServerConfig::default().idle_timeout.unwrap();
    assert_eq!(idle, DEFAULT_IDLE_TIMEOUT);
    assert!(idle <= FROZEN_BOUND);
    let frozen = f.connect(1);
    let hash = ContentHash([4; 32]);
    let said = f.say(frozen, &format!("JOIN x NAPSHARE/1\nADDFILE f 1 {hash}\n"));
    let told: u64 = said
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("CONFIRMJOIN NAPSHARE/1 "))
        .and_then(|s| s.parse().ok())
        .expect("the idle timeout in CONFIRMJOIN");
    assert_eq!(
        Duration::from_secs(told),
        idle,
        "the client is told the timeout"
    );
    // It froze right after its last byte.
    let froze = f.now;
    f.now = froze + idle - Duration::from_millis(1);
    f.server.handle_timeout(f.now);
    assert_eq!(f.server.poll_close(), None, "not before the idle timeout");
    f.now = froze + FROZEN_BOUND;
    f.server.handle_timeout(f.now);
    assert_eq!(f.server.poll_close(), Some(frozen));
    assert_eq!(f.server.index().len(), 0, "its files left the index");
}

#[test]
fn files_beyond_the_limit_are_refused_and_the_session_goes_on() {
    let mut f = Fixture::new();
    let config = ServerConfig {
        max_files: 2,
        ..ServerConfig::default()
    };
    f.server = Server::new(f.now, config);
    let c = f.connect(1);
    f.say(c, "JOIN x\nCREATEFILE a 1\nCREATEFILE b 1\n");
    assert_eq!(f.say(c, "CREATEFILE c 1\n"), "", "classic: no reply");
    assert_eq!(
        f.say(c, "SEARCH \n"),
        "FILE a 10.0.0.1 1\nFILE b 10.0.0.1 1\nENDSEARCH\n"
    );
    let e = f.connect(2);
    let hash = ContentHash([1; 32]);
    f.say(
        e,
        &format!("JOIN y NAPSHARE/1\nADDFILE a 1 {hash}\nADDFILE b 1 {hash}\n"),
    );
    assert_eq!(
        f.say(e, &format!("ADDFILE c 1 {hash}\n")),
        "ERROR too%20many%20files%20(at%20most%202)\n"
    );
}

/// One read of pipelined searches whose replies could never all wait for the client is
/// cut short: the client is dropped as too slow before the rest are built, and the
/// others are served as before. A burst just under the limit is served whole.
#[test]
fn a_burst_of_requests_no_socket_could_take_is_cut_short() {
    let mut f = Fixture::new();
    let config = ServerConfig {
        max_queued: 64 << 10,
        ..ServerConfig::default()
    };
    f.server = Server::new(f.now, config);
    let sharer = f.connect(1);
    let mut files = String::from("JOIN x\n");
    for i in 0..1000 {
        files += &format!("CREATEFILE song number {i:04}.mp3 123456\n");
    }
    f.say(sharer, &files);
    let reply = f.say(sharer, "SEARCH song\n");
    let per_search = reply.len();
    assert!(per_search > 30_000, "{per_search} bytes a search");
    let limit = (64 << 10) + SOCKET_BUFFER_MAX;
    // Just under the limit: every reply, and the client stays.
    let fits = limit / per_search;
    let polite = f.connect(2);
    f.say(polite, "JOIN y\n");
    let out = f.say(polite, &"SEARCH song\n".repeat(fits));
    assert_eq!(out.len(), fits * per_search);
    assert_eq!(f.server.poll_close(), None);
    // Ten times more: dropped, with nothing built for it beyond the limit.
    let greedy = f.connect(3);
    f.say(greedy, "JOIN z\n");
    f.server
        .handle_bytes(f.now, greedy, "SEARCH song\n".repeat(10 * fits).as_bytes())
        .unwrap();
    let mut sent = 0;
    while let Some(t) = f.server.poll_transmit() {
        assert_eq!(t.conn, greedy);
        sent += t.data.len();
    }
    assert_eq!(sent, 0, "its replies were dropped with it");
    assert_eq!(f.server.poll_close(), Some(greedy));
    let left = std::iter::from_fn(|| f.server.poll_event()).any(|e| {
        matches!(
            e,
            ServerEvent::Left {
                conn,
                reason: LeaveReason::TooSlow,
                ..
            } if conn == greedy
        )
    });
    assert!(left);
    assert_eq!(f.say(polite, "SEARCH song\n").len(), per_search);
}

#[test]
fn the_extension_is_granted_only_when_asked() {
    let mut f = Fixture::new();
    let classic = f.connect(1);
    let modern = f.connect(2);
    assert_eq!(f.say(classic, "JOIN 10.0.0.1\n"), "CONFIRMJOIN\n");
    assert_eq!(
        f.say(modern, "JOIN 10.0.0.1:4000 NAPSHARE/1\n"),
        "CONFIRMJOIN NAPSHARE/1 20\n"
    );
    // A classic client that says extension words is not answered at all.
    let hash = ContentHash([1; 32]);
    assert_eq!(f.say(classic, &format!("ADDFILE x 1 {hash}\n")), "");
    assert_eq!(f.say(classic, "FIND x\n"), "");
}

#[test]
fn hashes_and_any_names_go_through_the_extension() {
    let mut f = Fixture::new();
    let modern = f.connect(2);
    let classic = f.connect(3);
    f.say(modern, "JOIN 10.0.0.1:4000 NAPSHARE/1\n");
    f.say(classic, "JOIN 10.0.0.1\n");
    let hash = ContentHash([0xab; 32]);
    assert_eq!(
        f.say(
            modern,
            &format!("ADDFILE a%20b%0Ac 7 {hash}\nADDFILE song.mp3 9 {hash}\n")
        ),
        "CONFIRMADDFILE a%20b%0Ac\nCONFIRMADDFILE song.mp3\n"
    );
    f.say(classic, "CREATEFILE song 2.mp3 3\n");
    assert_eq!(
        f.say(modern, "FIND \n"),
        format!(
            "FOUND a%20b%0Ac 10.0.0.1:4000 7 {hash}\nFOUND song.mp3 10.0.0.1:4000 9 {hash}\n\
             FOUND song%202.mp3 10.0.0.1 3 -\nENDFIND 3\n"
        )
    );
    // The name with a line break cannot be written on a classic line: it is left out.
    assert_eq!(
        f.say(classic, "SEARCH \n"),
        "FILE song.mp3 10.0.0.1:4000 9\nFILE song 2.mp3 10.0.0.1 3\nENDSEARCH\n"
    );
    assert_eq!(
        f.say(modern, "DELFILE a%20b%0Ac\n"),
        "CONFIRMDELFILE a%20b%0Ac\n"
    );
    assert_eq!(f.server.index().len(), 2);
}

#[test]
fn a_bad_extension_line_gets_an_error_reply_and_the_session_goes_on() {
    let mut f = Fixture::new();
    let modern = f.connect(2);
    f.say(modern, "JOIN x NAPSHARE/1\n");
    assert_eq!(
        f.say(modern, "ADDFILE a 1 nothex\n"),
        "ERROR bad%20content%20hash\n"
    );
    assert_eq!(f.say(modern, "FIND a\n"), "ENDFIND 0\n");
}
