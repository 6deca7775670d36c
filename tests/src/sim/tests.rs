use super::*;

/// The one real clock reading: a base that virtual time is added to.
fn epoch() -> Instant {
    Instant::now()
}

fn joined(sim: &Sim, i: usize) -> bool {
    sim.events(i)
        .iter()
        .any(|e| matches!(e, ClientEvent::Joined { .. }))
}

#[test]
fn two_clients_join_and_one_downloads_from_the_other() {
    let song = random_bytes(&mut Rng::with_seed(7), 20_000);
    let mut sim = Sim::with_seed(epoch(), 1);
    let alice = sim.add_client(&[("my song.mp3", &song)]);
    let bob = sim.add_client(&[]);
    sim.run_until_idle();
    assert!(joined(&sim, alice) && joined(&sim, bob));

    let hits = sim.search(bob, "song");
    let expected = SearchHit {
        name: "my song.mp3".into(),
        peer: "10.0.0.2".into(),
        size: song.len() as u64,
        hash: Some(pieces_of(&song).root()),
    };
    assert_eq!(hits, [expected]);

    sim.command_line(bob, "DOWNLOAD 10.0.0.2 my song.mp3")
        .unwrap();
    sim.run_until_idle();
    let done = sim.events(bob).iter().any(|e| {
        matches!(e, ClientEvent::DownloadDone { name, bytes, .. }
            if name == "my song.mp3" && *bytes == song.len() as u64)
    });
    assert!(done, "{:?}", sim.events(bob));
    let downloads = &sim.fs(bob).downloads;
    assert_eq!(downloads.get("my song.mp3"), Some(&song));
    assert_eq!(downloads.len(), 1, "no .part file is left behind");
    assert_eq!(
        sim.open_links(),
        2,
        "only the two server sessions stay open"
    );
}

#[test]
fn a_client_that_vanishes_without_leave_loses_its_files() {
    let mut sim = Sim::with_seed(epoch(), 2);
    let alice = sim.add_client(&[("a.txt", b"alpha")]);
    let bob = sim.add_client(&[]);
    sim.run_until_idle();
    assert_eq!(sim.search(bob, "a.txt").len(), 1);

    sim.kill(alice);
    sim.run_until_idle();
    assert_eq!(sim.search(bob, "a.txt"), []);
    assert!(sim.server().index().is_empty());
    assert!(matches!(
        sim.server_events().last(),
        Some(ServerEvent::Left { files: 1, .. })
    ));
    let refused = sim.download(bob, alice, "a.txt");
    assert!(matches!(refused, ClientEvent::DownloadFailed { .. }));
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let run = |seed| {
        let mut sim = Sim::new(
            epoch(),
            SimConfig {
                seed,
                max_chunk: 3,
                ..SimConfig::default()
            },
        );
        let a = sim.add_client(&[("x", b"0123456789"), ("y", b"")]);
        let b = sim.add_client(&[("z", b"zz")]);
        sim.run_until_idle();
        sim.search(b, "");
        sim.download(b, a, "x");
        (
            sim.take_events(a),
            sim.take_events(b),
            sim.server_events().to_vec(),
        )
    };
    assert_eq!(run(5), run(5));
}

#[test]
fn run_bounded_reports_a_busy_network() {
    let mut sim = Sim::with_seed(epoch(), 3);
    sim.add_client(&[("f", b"data")]);
    assert_eq!(sim.run_bounded(1), Err(NotIdle { steps: 1 }));
    assert_eq!(sim.run_bounded(1000), Ok(()));
    assert!(sim.is_idle());
}

#[test]
fn rng_is_deterministic_and_in_range() {
    let (mut a, mut b) = (Rng::with_seed(3), Rng::with_seed(3));
    for _ in 0..100 {
        let n = a.usize(..7);
        assert!(n < 7);
        assert_eq!(n, b.usize(..7));
    }
}
