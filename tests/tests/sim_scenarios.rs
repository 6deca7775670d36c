//! Whole-network scenarios on the in-memory simulation: the seed's six tests (connect,
//! register automatically, search, download between clients, delete, leave) and what the
//! seed got wrong (split and merged reads, truncated downloads, clients that vanish).

use std::time::Instant;

use fastrand::Rng;
use napshare_core::client::{ClientEvent, SearchHit};
use napshare_core::server::{LeaveReason, ServerEvent};
use napshare_tests::sim::{pieces_of, random_bytes, Sim, SimConfig};
use proptest::prelude::*;

fn sim(seed: u64, max_chunk: usize) -> Sim {
    let config = SimConfig {
        seed,
        max_chunk,
        ..SimConfig::default()
    };
    Sim::new(Instant::now(), config)
}

fn has(sim: &Sim, i: usize, wanted: impl Fn(&ClientEvent) -> bool) -> bool {
    sim.events(i).iter().any(wanted)
}

fn names(hits: &[SearchHit]) -> Vec<&str> {
    hits.iter().map(|h| h.name.as_str()).collect()
}

/// A search result for a file whose content is `data`, as napshare peers list it.
fn hit(name: &str, peer: &str, data: &[u8]) -> SearchHit {
    SearchHit {
        name: name.into(),
        peer: peer.into(),
        size: data.len() as u64,
        hash: Some(pieces_of(data).root()),
    }
}

// ---- the seed's six scenarios ----

#[test]
fn a_client_connects_and_joins() {
    let mut sim = sim(1, 4096);
    let c = sim.add_client(&[]);
    sim.run_until_idle();
    assert!(has(&sim, c, |e| matches!(e, ClientEvent::Joined { .. })));
    assert_eq!(sim.server().connections(), 1);
    let joined = sim
        .server_events()
        .iter()
        .any(|e| matches!(e, ServerEvent::Joined { peer, .. } if peer.to_string() == "10.0.0.2"));
    assert!(joined, "{:?}", sim.server_events());
    assert_eq!(sim.client(c).exit_status(), None);
}

#[test]
fn shared_files_are_registered_automatically() {
    let mut sim = sim(2, 4096);
    let c = sim.add_client(&[("alpha.txt", &[1; 100]), ("beta.bin", b"")]);
    sim.run_until_idle();
    for (name, size) in [("alpha.txt", 100), ("beta.bin", 0)] {
        let shared = has(
            &sim,
            c,
            |e| matches!(e, ClientEvent::Shared { name: n, size: s } if n == name && *s == size),
        );
        assert!(shared, "{name}: {:?}", sim.events(c));
    }
    assert_eq!(sim.server().index().len(), 2);
}

#[test]
fn search_is_a_case_sensitive_substring_match() {
    let mut sim = sim(3, 4096);
    let a = sim.add_client(&[("alpha.txt", &[0; 100]), ("gamma.txt", b"g")]);
    sim.run_until_idle();
    let b = sim.add_client_with_port(4000, &[("alphabet", b"abc")]);
    sim.run_until_idle();
    assert_eq!(
        sim.search(b, "alpha"),
        [
            hit("alpha.txt", "10.0.0.2", &[0; 100]),
            hit("alphabet", "10.0.0.3:4000", b"abc")
        ]
    );
    assert_eq!(sim.search(a, "ALPHA"), []);
    assert_eq!(
        names(&sim.search(a, "")),
        ["alpha.txt", "gamma.txt", "alphabet"]
    );
    assert_eq!(names(&sim.search(a, ".txt")), ["alpha.txt", "gamma.txt"]);
}

/// Commands piped in as the client starts reach it before its JOIN is answered: a
/// search then waits for the session instead of being refused.
#[test]
fn a_search_typed_before_joining_waits_for_the_session() {
    let mut sim = sim(4, 4096);
    let _a = sim.add_client(&[("alpha.txt", b"a")]);
    sim.run_until_idle();
    let b = sim.add_client(&[]);
    sim.command_line(b, "SEARCH alpha").unwrap();
    sim.run_until_idle();
    let found = has(
        &sim,
        b,
        |e| matches!(e, ClientEvent::SearchDone { hits, .. } if names(hits) == ["alpha.txt"]),
    );
    assert!(found, "{:?}", sim.events(b));
    assert!(!has(&sim, b, |e| matches!(e, ClientEvent::Error(_))));
}

#[test]
fn a_download_between_clients_is_byte_identical() {
    let data = random_bytes(&mut Rng::with_seed(4), 50_000);
    let mut sim = sim(4, 1500);
    let a = sim.add_client(&[("big file.bin", &data)]);
    let b = sim.add_client(&[]);
    sim.run_until_idle();
    assert_eq!(sim.search(b, "big").len(), 1);
    let done = sim.download(b, a, "big file.bin");
    assert!(
        matches!(done, ClientEvent::DownloadDone { bytes: 50_000, .. }),
        "{done:?}"
    );
    assert_eq!(sim.fs(b).downloads.get("big file.bin"), Some(&data));
    assert_eq!(sim.fs(b).downloads.len(), 1, "no .part left behind");
    assert_eq!(sim.fs(a).shared.get("big file.bin"), Some(&data));
}

#[test]
fn a_deleted_file_is_gone_from_the_server() {
    let mut sim = sim(5, 4096);
    let a = sim.add_client(&[("keep.txt", b"k"), ("drop.txt", b"d")]);
    let b = sim.add_client(&[]);
    sim.run_until_idle();
    sim.command_line(a, "DELETEFILE drop.txt").unwrap();
    sim.run_until_idle();
    assert!(has(
        &sim,
        a,
        |e| matches!(e, ClientEvent::Unshared { name } if name == "drop.txt")
    ));
    assert_eq!(sim.search(b, "drop"), []);
    assert_eq!(names(&sim.search(b, ".txt")), ["keep.txt"]);
    assert_eq!(sim.server().index().len(), 1);
}

#[test]
fn a_client_that_leaves_takes_its_files_along() {
    let mut sim = sim(6, 4096);
    let a = sim.add_client(&[("a1", b"1"), ("a2", b"22")]);
    let b = sim.add_client(&[("b1", b"b")]);
    sim.run_until_idle();
    sim.command_line(a, "LEAVE").unwrap();
    sim.run_until_idle();
    assert!(has(&sim, a, |e| matches!(e, ClientEvent::Left)));
    assert_eq!(sim.client(a).exit_status(), Some(0));
    let left = sim.server_events().iter().any(|e| {
        matches!(
            e,
            ServerEvent::Left {
                files: 2,
                reason: LeaveReason::Leave,
                ..
            }
        )
    });
    assert!(left, "{:?}", sim.server_events());
    assert_eq!(names(&sim.search(b, "")), ["b1"]);
    assert_eq!(sim.server().connections(), 1);
    assert_eq!(sim.open_links(), 1, "only b's session is left");
}

// ---- beyond the seed ----

/// Each client's event log and its downloads folder, by client index.
type Outcome = (Vec<Vec<ClientEvent>>, Vec<Vec<(String, Vec<u8>)>>);

/// A fixed script of everything above, run to completion; returns each client's log and
/// the files each one ends with, which must not depend on how links cut the bytes.
fn script(seed: u64, max_chunk: usize) -> Outcome {
    let mut rng = Rng::with_seed(99);
    let song = random_bytes(&mut rng, 3000);
    let doc = random_bytes(&mut rng, 700);
    let mut sim = sim(seed, max_chunk);
    let a = sim.add_client(&[("song 1.mp3", &song), ("doc.txt", &doc)]);
    sim.run_until_idle();
    let b = sim.add_client_with_port(4000, &[("b.txt", b"from b")]);
    sim.run_until_idle();
    let c = sim.add_client(&[]);
    sim.run_until_idle();
    for line in ["SEARCH song", "SEARCH .txt", "SEARCH nothing"] {
        sim.command_line(c, line).unwrap();
        sim.run_until_idle();
    }
    for line in [
        "DOWNLOAD 10.0.0.2 song 1.mp3",
        "DOWNLOAD 10.0.0.3:4000 b.txt",
        "DOWNLOAD 10.0.0.2 doc.txt",
    ] {
        sim.command_line(c, line).unwrap();
        sim.run_until_idle();
    }
    sim.command_line(a, "DELETEFILE doc.txt").unwrap();
    sim.run_until_idle();
    sim.command_line(b, "LEAVE").unwrap();
    sim.run_until_idle();
    sim.command_line(c, "SEARCH").unwrap();
    sim.run_until_idle();
    let logs = (0..sim.clients()).map(|i| sim.take_events(i)).collect();
    let files = (0..sim.clients())
        .map(|i| sim.fs(i).downloads.clone().into_iter().collect())
        .collect();
    (logs, files)
}

#[test]
fn links_that_split_every_byte_change_nothing() {
    let (logs, files) = script(7, 1);
    let c = &files[2];
    let c_names: Vec<&str> = c.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(c_names, ["b.txt", "doc.txt", "song 1.mp3"]);
    let last = logs[2].last().unwrap();
    assert!(
        matches!(last, ClientEvent::SearchDone { hits, .. } if names(hits) == ["song 1.mp3"]),
        "{last:?}"
    );
    assert_eq!((logs, files), script(7, 1 << 16));
}

#[test]
fn a_download_cut_midway_leaves_no_file_at_the_final_name() {
    let data = random_bytes(&mut Rng::with_seed(8), 10_000);
    let mut sim = sim(8, 512);
    let a = sim.add_client(&[("movie.avi", &data)]);
    let b = sim.add_client(&[]);
    sim.run_until_idle();
    // The search tells b how big the file is, so it can tell a cut from an end.
    assert_eq!(sim.search(b, "movie").len(), 1);
    sim.cut_uploads_after(a, Some(4321));
    let failed = sim.download(b, a, "movie.avi");
    assert!(
        matches!(failed, ClientEvent::DownloadFailed { .. }),
        "{failed:?}"
    );
    let downloads = &sim.fs(b).downloads;
    assert_eq!(downloads.get("movie.avi"), None);
    // Only what was checked is kept: never more than arrived.
    assert!(downloads.get("movie.avi.part").map_or(0, Vec::len) <= 4321);

    // Once the link holds, a retry completes and replaces the partial file.
    sim.cut_uploads_after(a, None);
    let done = sim.download(b, a, "movie.avi");
    assert!(matches!(done, ClientEvent::DownloadDone { .. }), "{done:?}");
    assert_eq!(sim.fs(b).downloads.get("movie.avi"), Some(&data));
    assert_eq!(sim.fs(b).downloads.len(), 1);
}

/// Without a search first, the client asks the server for the size itself, so a cut
/// transfer is still told from a whole one.
#[test]
fn a_cut_download_is_caught_even_without_a_search_first() {
    let mut sim = sim(21, 4096);
    let data = vec![7u8; 10_000];
    let a = sim.add_client(&[("movie.avi", &data)]);
    let b = sim.add_client(&[]);
    sim.run_until_idle();
    sim.cut_uploads_after(a, Some(4000));
    let failed = sim.download(b, a, "movie.avi");
    assert!(
        matches!(failed, ClientEvent::DownloadFailed { .. }),
        "{failed:?}"
    );
    assert_eq!(sim.fs(b).downloads.get("movie.avi"), None);
    assert!(
        sim.client(b).last_hits().is_empty(),
        "the lookup is not shown as a search"
    );
}

#[test]
fn downloads_fail_cleanly() {
    let mut sim = sim(9, 4096);
    let a = sim.add_client(&[("here.txt", b"here")]);
    let b = sim.add_client(&[]);
    sim.run_until_idle();

    // A name the peer does not share: it closes with no bytes.
    let missing = sim.download(b, a, "absent.txt");
    assert!(
        matches!(missing, ClientEvent::DownloadFailed { .. }),
        "{missing:?}"
    );

    // A full disk.
    sim.fail_part_writes(b, true);
    let full = sim.download(b, a, "here.txt");
    assert!(
        matches!(full, ClientEvent::DownloadFailed { .. }),
        "{full:?}"
    );
    sim.fail_part_writes(b, false);
    assert!(sim.fs(b).downloads.is_empty(), "{:?}", sim.fs(b).downloads);

    // A peer that is gone: the connection is refused.
    sim.kill(a);
    sim.run_until_idle();
    let refused = sim.download(b, a, "here.txt");
    assert!(
        matches!(refused, ClientEvent::DownloadFailed { .. }),
        "{refused:?}"
    );
    assert!(sim.fs(b).downloads.is_empty());
    assert_eq!(sim.search(b, "here"), []);
}

#[test]
fn files_shared_later_are_found_and_missing_ones_refused() {
    let mut sim = sim(10, 4096);
    let a = sim.add_client(&[]);
    let b = sim.add_client(&[]);
    sim.run_until_idle();
    sim.put_shared(a, "new song.ogg", b"la la");
    sim.command_line(a, "CREATEFILE new song.ogg").unwrap();
    sim.command_line(a, "CREATEFILE ghost.txt").unwrap();
    sim.command_line(a, "CREATEFILE new song.ogg 99").unwrap();
    sim.run_until_idle();
    let errors = sim
        .events(a)
        .iter()
        .filter(|e| matches!(e, ClientEvent::Error(_)))
        .count();
    assert_eq!(
        errors,
        2,
        "a missing file and a wrong size: {:?}",
        sim.events(a)
    );
    assert_eq!(
        sim.search(b, "song"),
        [hit("new song.ogg", "10.0.0.2", b"la la")]
    );
}

#[test]
fn a_client_that_vanishes_loses_its_files_and_others_carry_on() {
    let mut sim = sim(11, 7);
    let a = sim.add_client(&[("a.txt", b"a")]);
    let b = sim.add_client(&[("b.txt", b"b")]);
    let c = sim.add_client(&[]);
    sim.run_until_idle();
    sim.kill(a);
    sim.run_until_idle();
    let dropped = sim.server_events().iter().any(|e| {
        matches!(
            e,
            ServerEvent::Left {
                files: 1,
                reason: LeaveReason::Closed,
                ..
            }
        )
    });
    assert!(dropped, "{:?}", sim.server_events());
    assert_eq!(names(&sim.search(c, ".txt")), ["b.txt"]);
    assert_eq!(
        sim.download(c, b, "b.txt"),
        sim.events(c).last().unwrap().clone()
    );
    assert_eq!(
        sim.fs(c).downloads.get("b.txt").map(Vec::as_slice),
        Some(&b"b"[..])
    );
}

/// The link to the server drops: the server forgets the client's files at once; the
/// client tries again after a backoff, joins again and shares everything again.
#[test]
fn a_client_whose_server_link_drops_reconnects_and_shares_again() {
    let mut sim = sim(14, 4096);
    let a = sim.add_client(&[("a.txt", b"a")]);
    let b = sim.add_client(&[]);
    sim.run_until_idle();
    sim.cut_server_link(a);
    sim.settle();
    assert_eq!(
        sim.server().index().len(),
        0,
        "the files go with the connection"
    );
    sim.run_until_idle();
    assert!(has(&sim, a, |e| matches!(
        e,
        ClientEvent::ServerLost {
            retry_in: Some(_),
            ..
        }
    )));
    let joins = sim
        .events(a)
        .iter()
        .filter(|e| matches!(e, ClientEvent::Joined { .. }));
    assert_eq!(joins.count(), 2);
    assert_eq!(sim.client(a).exit_status(), None);
    assert_eq!(names(&sim.search(b, "")), ["a.txt"]);
}

/// Replies carry no request id: once a request has gone unanswered for the reply timeout,
/// a late reply could be taken for the answer to the next request, so the client gives the
/// session up instead of guessing.
#[test]
fn a_late_reply_is_not_taken_for_the_next_request() {
    let mut sim = sim(13, 4096);
    let a = sim.add_client(&[("apple", b"1"), ("banana", b"22")]);
    sim.run_until_idle();
    let start = sim.now();
    sim.stall(a, true);
    sim.command_line(a, "SEARCH apple").unwrap();
    sim.run_until_idle();
    assert!(sim.now() - start >= napshare_core::client::REPLY_TIMEOUT);
    sim.command_line(a, "SEARCH banana").unwrap();
    sim.stall(a, false);
    sim.run_until_idle();
    let wrong = sim.events(a).iter().any(|e| {
        matches!(e, ClientEvent::SearchDone { pattern, hits } if pattern == "banana" && names(hits) == ["apple"])
    });
    assert!(!wrong, "a late reply was taken for the next request");
    assert!(has(&sim, a, |e| matches!(
        e,
        ClientEvent::ServerLost { .. }
    )));
    // The client joined again instead, and carries on.
    assert_eq!(sim.client(a).exit_status(), None);
    assert_eq!(names(&sim.search(a, "banana")), ["banana"]);
}

/// Whole transfers in the simulation: `DOWNLOAD N` saves result N's content under its
/// name, whichever version of a name it is.
#[test]
fn download_n_in_a_simulated_network_saves_that_version() {
    let old = random_bytes(&mut Rng::with_seed(1), 70_000);
    let new = random_bytes(&mut Rng::with_seed(2), 90_000);
    let mut sim = Sim::with_seed(Instant::now(), 3);
    let a = sim.add_client(&[("track.ogg", &old)]);
    let b = sim.add_client(&[("track.ogg", &new)]);
    let c = sim.add_client(&[("track.ogg", &old)]);
    let d = sim.add_client(&[]);
    sim.run_until_idle();
    let hits = sim.search(d, "track");
    assert_eq!(hits.len(), 3);
    let peers: Vec<String> = (0..4).map(|i| sim.peer_addr(i).to_string()).collect();
    let result_of = |i: usize| 1 + hits.iter().position(|h| h.peer == peers[i]).unwrap();
    let n = result_of(b);
    sim.command_line(d, &format!("BAIXAR {n}")).unwrap();
    sim.run_until_idle();
    assert_eq!(sim.fs(d).downloads.get("track.ogg"), Some(&new));

    // The other version, held by two peers (a and c), from both; it replaces the first.
    let seen = sim.events(d).len();
    sim.command_line(d, &format!("DOWNLOAD {}", result_of(c)))
        .unwrap();
    sim.run_until_idle();
    let events = &sim.events(d)[seen..];
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ClientEvent::DownloadStarted { sources: 2, .. })),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ClientEvent::DownloadDone { .. })),
        "{events:?}"
    );
    assert_eq!(sim.fs(d).downloads.get("track.ogg"), Some(&old));
    assert_eq!(hits.iter().filter(|h| h.peer == peers[a]).count(), 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any seed and any chunking: clients that join concurrently all end up sharing, every
    /// download is byte-identical, and the network ends idle with only sessions open.
    #[test]
    fn concurrent_joins_and_downloads_work_for_any_seed(
        seed in any::<u64>(),
        max_chunk in prop_oneof![Just(1usize), 2..64usize, Just(4096usize)],
        sizes in proptest::collection::vec(0..1500usize, 1..4),
    ) {
        let mut rng = Rng::with_seed(seed);
        let mut sim = sim(seed, max_chunk);
        let files: Vec<(String, Vec<u8>)> = sizes
            .iter()
            .enumerate()
            .map(|(k, &n)| (format!("file {k}.bin"), random_bytes(&mut rng, n)))
            .collect();
        let sharers: Vec<usize> = files
            .iter()
            .map(|(name, data)| sim.add_client(&[(name, data)]))
            .collect();
        let getter = sim.add_client(&[]);
        sim.run_until_idle();
        let hits = sim.search(getter, "file");
        prop_assert_eq!(hits.len(), files.len());
        for ((name, _), &from) in files.iter().zip(&sharers) {
            sim.command_line(getter, &format!("DOWNLOAD {} {name}", sim.peer_addr(from))).unwrap();
        }
        sim.run_until_idle();
        for (name, data) in &files {
            prop_assert_eq!(sim.fs(getter).downloads.get(name), Some(data));
        }
        prop_assert_eq!(sim.fs(getter).downloads.len(), files.len());
        prop_assert_eq!(sim.open_links(), files.len() + 1);
        prop_assert!(sim.is_idle());
    }
}
