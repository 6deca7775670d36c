//! One-shot clients (`napshare search`, `napshare get`) on the in-memory simulation: a
//! client with a goal joins, searches or downloads, leaves, and exits with a status that
//! says how it went, whatever the network does meanwhile.

use std::time::Instant;

use fastrand::Rng;
use napshare_core::client::{exit, ClientEvent, Goal};
use napshare_tests::sim::{random_bytes, Sim};

fn has(sim: &Sim, i: usize, wanted: impl Fn(&ClientEvent) -> bool) -> bool {
    sim.events(i).iter().any(wanted)
}

fn search(pattern: &str) -> Goal {
    Goal::Search {
        pattern: pattern.into(),
    }
}

fn get(name: &str) -> Goal {
    Goal::Get { name: name.into() }
}

/// Steps until client `i` has reported an event `wanted`.
fn step_until(sim: &mut Sim, i: usize, wanted: impl Fn(&ClientEvent) -> bool) {
    while !has(sim, i, &wanted) {
        assert!(
            sim.step(),
            "the network went idle first: {:?}",
            sim.events(i)
        );
    }
}

/// A network of sharers that have joined, each sharing its files.
fn network(seed: u64, sharers: &[&[(&str, &[u8])]]) -> Sim {
    let mut sim = Sim::with_seed(Instant::now(), seed);
    for files in sharers {
        sim.add_client(files);
    }
    sim.run_until_idle();
    sim
}

#[test]
fn a_search_prints_what_it_finds_leaves_and_exits_0() {
    let mut sim = network(
        1,
        &[&[("my song.mp3", b"la la la")], &[("song.ogg", b"oo")]],
    );
    let g = sim.add_goal_client(search("song"));
    sim.run_until_idle();
    assert_eq!(sim.client(g).exit_status(), Some(exit::OK));
    let hits = sim.events(g).iter().find_map(|e| match e {
        ClientEvent::SearchDone { hits, .. } => Some(hits.clone()),
        _ => None,
    });
    let mut names: Vec<String> = hits.unwrap().into_iter().map(|h| h.name).collect();
    names.sort();
    assert_eq!(names, ["my song.mp3", "song.ogg"]);
    assert!(has(&sim, g, |e| *e == ClientEvent::Left));
    assert!(sim.is_dead(g), "the process ended");
    assert_eq!(sim.server().connections(), 2, "it left the server");
}

#[test]
fn a_search_that_finds_nothing_exits_3() {
    let mut sim = network(2, &[&[("a.txt", b"alpha")]]);
    let g = sim.add_goal_client(search("zzz"));
    sim.run_until_idle();
    assert_eq!(sim.client(g).exit_status(), Some(exit::NOT_FOUND));
    assert!(has(&sim, g, |e| *e == ClientEvent::Left));
}

#[test]
fn an_unreachable_server_exits_1_for_either_goal() {
    for goal in [search(""), get("a.txt")] {
        let mut sim = network(3, &[]);
        sim.refuse_server(true);
        let g = sim.add_goal_client(goal.clone());
        sim.run_until_idle();
        assert_eq!(sim.client(g).exit_status(), Some(exit::ERROR), "{goal:?}");
        assert!(has(&sim, g, |e| matches!(
            e,
            ClientEvent::ServerLost { retry_in: None, .. }
        )));
    }
}

#[test]
fn a_server_lost_before_the_answer_is_not_waited_for() {
    let mut sim = network(4, &[&[("a.txt", b"alpha")]]);
    let g = sim.add_goal_client(search("a"));
    step_until(&mut sim, g, |e| matches!(e, ClientEvent::Joined { .. }));
    sim.cut_server_link(g);
    sim.run_until_idle();
    assert_eq!(sim.client(g).exit_status(), Some(exit::ERROR));
    assert!(!has(&sim, g, |e| matches!(
        e,
        ClientEvent::ServerLost {
            retry_in: Some(_),
            ..
        }
    )));
}

#[test]
fn get_downloads_from_every_peer_with_the_most_common_content() {
    let song = random_bytes(&mut Rng::with_seed(5), 300_000);
    let other = random_bytes(&mut Rng::with_seed(6), 1000);
    let mut sim = network(
        5,
        &[
            &[("song.mp3", &song)],
            &[("song.mp3", &other)],
            &[("song.mp3", &song)],
        ],
    );
    let g = sim.add_goal_client(get("song.mp3"));
    sim.run_until_idle();
    assert_eq!(
        sim.client(g).exit_status(),
        Some(exit::OK),
        "{:?}",
        sim.events(g)
    );
    assert!(has(&sim, g, |e| matches!(
        e,
        ClientEvent::DownloadStarted { sources: 2, .. }
    )));
    assert!(has(&sim, g, |e| matches!(
        e,
        ClientEvent::DownloadDone { bytes, .. } if *bytes == song.len() as u64
    )));
    assert_eq!(sim.fs(g).downloads.get("song.mp3"), Some(&song));
    assert!(has(&sim, g, |e| *e == ClientEvent::Left));
}

#[test]
fn get_resumes_a_partial_file() {
    let song = random_bytes(&mut Rng::with_seed(7), 200_000);
    let mut sim = network(7, &[&[("song.mp3", &song)]]);
    // Nothing is sent until the network runs: the part is there before the client opens it.
    let g = sim.add_goal_client(get("song.mp3"));
    sim.put_download(g, "song.mp3.part", &song[..100_000]);
    sim.run_until_idle();
    assert_eq!(
        sim.client(g).exit_status(),
        Some(exit::OK),
        "{:?}",
        sim.events(g)
    );
    assert_eq!(sim.fs(g).downloads.get("song.mp3"), Some(&song));
    assert!(!sim.fs(g).downloads.contains_key("song.mp3.part"));
}

#[test]
fn get_of_a_name_nobody_lists_exits_3() {
    let mut sim = network(8, &[&[("song.mp3", b"la")]]);
    // A search for the name finds a longer one: only the exact name counts.
    let g = sim.add_goal_client(get("song"));
    sim.run_until_idle();
    assert_eq!(sim.client(g).exit_status(), Some(exit::NOT_FOUND));
    assert!(has(&sim, g, |e| matches!(
        e,
        ClientEvent::DownloadFailed { .. }
    )));
    assert!(has(&sim, g, |e| *e == ClientEvent::Left));
}

#[test]
fn get_from_peers_that_send_garbage_exits_4() {
    let song = random_bytes(&mut Rng::with_seed(9), 100_000);
    let mut sim = network(9, &[&[("song.mp3", &song)]]);
    sim.corrupt_uploads(0, true);
    let g = sim.add_goal_client(get("song.mp3"));
    sim.run_until_idle();
    assert_eq!(sim.client(g).exit_status(), Some(exit::FAILED));
    assert!(!sim.fs(g).downloads.contains_key("song.mp3"));
}

#[test]
fn get_that_cannot_write_exits_4() {
    let mut sim = network(10, &[&[("song.mp3", b"la la la")]]);
    let g = sim.add_goal_client(get("song.mp3"));
    sim.fail_part_writes(g, true);
    sim.run_until_idle();
    assert_eq!(sim.client(g).exit_status(), Some(exit::FAILED));
}

#[test]
fn a_download_under_way_outlives_the_server() {
    let song = random_bytes(&mut Rng::with_seed(11), 400_000);
    let mut sim = network(11, &[&[("song.mp3", &song)]]);
    let g = sim.add_goal_client(get("song.mp3"));
    step_until(&mut sim, g, |e| {
        matches!(e, ClientEvent::DownloadStarted { .. })
    });
    sim.refuse_server(true);
    sim.cut_server_link(g);
    sim.run_until_idle();
    assert!(has(&sim, g, |e| matches!(
        e,
        ClientEvent::ServerLost { retry_in: None, .. }
    )));
    assert_eq!(
        sim.client(g).exit_status(),
        Some(exit::OK),
        "{:?}",
        sim.events(g)
    );
    assert_eq!(sim.fs(g).downloads.get("song.mp3"), Some(&song));
}

#[test]
fn stopped_before_the_goal_exits_1() {
    let song = random_bytes(&mut Rng::with_seed(12), 400_000);
    let mut sim = network(12, &[&[("song.mp3", &song)]]);
    let g = sim.add_goal_client(get("song.mp3"));
    step_until(&mut sim, g, |e| {
        matches!(e, ClientEvent::DownloadStarted { .. })
    });
    // A stop signal: the client leaves at once.
    sim.stop(g);
    sim.run_until_idle();
    assert_eq!(sim.client(g).exit_status(), Some(exit::ERROR));
    assert!(has(&sim, g, |e| *e == ClientEvent::Left));
    assert!(!sim.fs(g).downloads.contains_key("song.mp3"));
}

#[test]
fn get_of_a_name_that_cannot_be_a_file_exits_4() {
    let mut sim = network(13, &[]);
    let g = sim.add_goal_client(get("../etc/passwd"));
    sim.run_until_idle();
    assert_eq!(sim.client(g).exit_status(), Some(exit::FAILED));
    assert!(has(&sim, g, |e| matches!(e, ClientEvent::Error(_))));
    assert!(has(&sim, g, |e| *e == ClientEvent::Left));
}
