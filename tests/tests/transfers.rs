//! Verified, resumable, multi-source transfers, in the in-memory simulation.

use std::time::Instant;

use fastrand::Rng;
use napshare_core::client::{ClientEvent, DownloadFailure, PeerProblem};
use napshare_core::hash::PIECE;
use napshare_tests::sim::{random_bytes, Sim, SimConfig};
use proptest::prelude::*;

fn sim(seed: u64) -> Sim {
    let config = SimConfig {
        seed,
        max_chunk: 64 * 1024,
        ..SimConfig::default()
    };
    Sim::new(Instant::now(), config)
}

fn done(e: &ClientEvent) -> bool {
    matches!(e, ClientEvent::DownloadDone { .. })
}

/// A file of a few pieces, the last one short.
fn movie(seed: u64) -> Vec<u8> {
    random_bytes(&mut Rng::with_seed(seed), 3 * PIECE as usize + 12_345)
}

/// Steps the network until client `i`'s partial file holds at least `bytes` bytes.
fn run_until_part_has(sim: &mut Sim, i: usize, name: &str, bytes: usize) {
    let part = format!("{name}.part");
    for _ in 0..1_000_000 {
        if sim.fs(i).downloads.get(&part).map_or(0, Vec::len) >= bytes {
            return;
        }
        assert!(
            sim.step(),
            "the network went idle before {bytes} bytes arrived"
        );
    }
    panic!("{bytes} bytes never arrived");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// A download cut at any byte resumes, from what the partial file holds, to a
    /// byte-identical file, and never leaves anything at the final name before that.
    #[test]
    fn a_download_cut_at_any_byte_resumes_to_the_same_file(cut in 0..(3 * PIECE + 12_345)) {
        let data = movie(1);
        let mut sim = sim(cut);
        let a = sim.add_client(&[("movie.mkv", &data)]);
        let b = sim.add_client(&[]);
        sim.run_until_idle();
        sim.cut_uploads_after(a, Some(cut));
        let first = sim.download(b, a, "movie.mkv");
        prop_assert!(!done(&first) || cut as usize >= data.len(), "{first:?}");
        if !done(&first) {
            prop_assert_eq!(sim.fs(b).downloads.get("movie.mkv"), None);
        }
        sim.cut_uploads_after(a, None);
        let second = sim.download(b, a, "movie.mkv");
        prop_assert!(done(&second) || done(&first), "{second:?}");
        prop_assert_eq!(sim.fs(b).downloads.get("movie.mkv"), Some(&data));
        prop_assert_eq!(sim.fs(b).downloads.len(), 1, "the partial file is gone");
    }
}

/// The partial file left by an earlier try is re-checked, and only the pieces it lacks are
/// fetched again.
#[test]
fn a_resumed_download_fetches_only_what_is_missing() {
    let data = movie(2);
    let mut sim = sim(2);
    let a = sim.add_client(&[("movie.mkv", &data)]);
    let b = sim.add_client(&[]);
    sim.run_until_idle();
    sim.cut_uploads_after(a, Some(2 * PIECE + 500));
    sim.download(b, a, "movie.mkv");
    let kept = sim.fs(b).downloads["movie.mkv.part"].len();
    assert!(kept >= PIECE as usize, "whole pieces are kept: {kept}");

    // A corrupt byte in what was kept is found by the re-check and fetched again.
    let mut part = sim.fs(b).downloads["movie.mkv.part"].clone();
    part[10] ^= 1;
    sim.put_download(b, "movie.mkv.part", &part);
    sim.cut_uploads_after(a, None);
    let done_event = sim.download(b, a, "movie.mkv");
    assert!(done(&done_event), "{done_event:?}");
    assert_eq!(sim.fs(b).downloads.get("movie.mkv"), Some(&data));
}

/// A peer that sends a corrupt byte is caught by the piece hash; the piece comes again
/// from another peer and the file is whole.
#[test]
fn a_corrupt_piece_is_fetched_again_from_another_peer() {
    let data = movie(3);
    let mut sim = sim(3);
    let liar = sim.add_client(&[("movie.mkv", &data)]);
    let honest = sim.add_client(&[("movie.mkv", &data)]);
    let b = sim.add_client(&[]);
    sim.run_until_idle();
    sim.corrupt_uploads(liar, true);
    assert_eq!(sim.search(b, "movie").len(), 2);
    sim.command_line(b, "DOWNLOAD movie.mkv").unwrap();
    sim.run_until_idle();
    let events = sim.events(b);
    assert!(events.iter().any(done), "{events:?}");
    assert_eq!(sim.fs(b).downloads.get("movie.mkv"), Some(&data));
    let _ = honest;
}

/// Three peers serve one file; two of them vanish mid-way and the third finishes it.
#[test]
fn three_peers_finish_a_file_when_two_vanish() {
    let data = random_bytes(&mut Rng::with_seed(4), 8 * PIECE as usize + 1);
    let mut sim = sim(4);
    let peers: Vec<usize> = (0..3)
        .map(|_| sim.add_client(&[("big.iso", &data)]))
        .collect();
    let b = sim.add_client(&[]);
    sim.run_until_idle();
    assert_eq!(sim.search(b, "big").len(), 3);
    sim.command_line(b, "DOWNLOAD big.iso").unwrap();
    run_until_part_has(&mut sim, b, "big.iso", 2 * PIECE as usize);
    sim.kill(peers[0]);
    sim.kill(peers[1]);
    sim.run_until_idle();
    let events = sim.events(b);
    assert!(events.iter().any(done), "{events:?}");
    assert_eq!(sim.fs(b).downloads.get("big.iso"), Some(&data));
}

/// When every peer is gone, the download fails, keeps what it checked, and leaves nothing
/// at the final name.
#[test]
fn a_download_whose_peers_all_vanish_fails_cleanly() {
    let data = movie(5);
    let mut sim = sim(5);
    let a = sim.add_client(&[("movie.mkv", &data)]);
    let b = sim.add_client(&[]);
    sim.run_until_idle();
    sim.search(b, "movie");
    sim.command_line(b, "DOWNLOAD movie.mkv").unwrap();
    run_until_part_has(&mut sim, b, "movie.mkv", PIECE as usize);
    sim.kill(a);
    sim.run_until_idle();
    let failed = sim
        .events(b)
        .iter()
        .any(|e| matches!(e, ClientEvent::DownloadFailed { .. }));
    assert!(failed, "{:?}", sim.events(b));
    assert_eq!(sim.fs(b).downloads.get("movie.mkv"), None);
    assert!(sim.fs(b).downloads["movie.mkv.part"].len() >= PIECE as usize);
}

/// When every peer sends corrupt data, nothing corrupt is ever written at the final name.
#[test]
fn corrupt_data_never_reaches_the_final_name() {
    let data = movie(6);
    let mut sim = sim(6);
    let liars: Vec<usize> = (0..2)
        .map(|_| sim.add_client(&[("movie.mkv", &data)]))
        .collect();
    let b = sim.add_client(&[]);
    sim.run_until_idle();
    for &l in &liars {
        sim.corrupt_uploads(l, true);
    }
    sim.search(b, "movie");
    sim.command_line(b, "DOWNLOAD movie.mkv").unwrap();
    sim.run_until_idle();
    let failed = sim.events(b).iter().any(|e| {
        matches!(
            e,
            ClientEvent::DownloadFailed {
                reason: DownloadFailure::NoPeerForRest(Some((_, PeerProblem::CorruptPiece(_)))),
                ..
            }
        )
    });
    assert!(failed, "{:?}", sim.events(b));
    assert_eq!(sim.fs(b).downloads.get("movie.mkv"), None);
}

/// A `DOWNLOAD` typed before the client has joined waits for the session and then finds
/// the file, instead of failing at once.
#[test]
fn a_download_asked_before_joining_waits_for_the_session() {
    let data = random_bytes(&mut Rng::with_seed(9), 5000);
    let mut sim = sim(9);
    let _a = sim.add_client(&[("notes.txt", &data)]);
    sim.run_until_idle();
    let b = sim.add_client(&[]);
    sim.command_line(b, "DOWNLOAD notes.txt").unwrap();
    sim.run_until_idle();
    assert!(sim.events(b).iter().any(done), "{:?}", sim.events(b));
    assert_eq!(sim.fs(b).downloads.get("notes.txt"), Some(&data));
}

/// `SEARCH` and `DOWNLOAD 2` piped in together, before the client has even joined: the
/// number names result 2 of that search, so the download waits for it.
#[test]
fn a_numbered_download_waits_for_the_search_typed_before_it() {
    let (one, two) = (
        random_bytes(&mut Rng::with_seed(10), 3000),
        random_bytes(&mut Rng::with_seed(11), 4000),
    );
    let mut sim = sim(10);
    let _a = sim.add_client(&[("song one.mp3", &one), ("song two.mp3", &two)]);
    sim.run_until_idle();
    let b = sim.add_client(&[]);
    sim.command_line(b, "SEARCH song").unwrap();
    sim.command_line(b, "DOWNLOAD 2").unwrap();
    sim.run_until_idle();
    assert!(sim.events(b).iter().any(done), "{:?}", sim.events(b));
    assert_eq!(sim.fs(b).downloads.get("song two.mp3"), Some(&two));
    assert_eq!(sim.fs(b).downloads.len(), 1);

    // A second search typed with a number after it: the number is from the new list.
    sim.command_line(b, "SEARCH one").unwrap();
    sim.command_line(b, "DOWNLOAD 1").unwrap();
    sim.run_until_idle();
    assert_eq!(sim.fs(b).downloads.get("song one.mp3"), Some(&one));
}

/// `LEAVE` (or the end of input) typed while a download runs leaves once it is done, as
/// the seed's one-command-at-a-time client did; a stop leaves at once and keeps the
/// partial file.
#[test]
fn leave_waits_for_the_download_in_progress_and_stop_does_not() {
    let data = movie(12);
    let mut sim = sim(12);
    let _a = sim.add_client(&[("movie.mkv", &data)]);
    sim.run_until_idle();
    let b = sim.add_client(&[]);
    sim.command_line(b, "DOWNLOAD movie.mkv").unwrap();
    sim.command_line(b, "LEAVE").unwrap();
    sim.run_until_idle();
    assert_eq!(sim.fs(b).downloads.get("movie.mkv"), Some(&data));
    let events = sim.events(b);
    let at = |f: &dyn Fn(&ClientEvent) -> bool| events.iter().position(f);
    let waiting = at(&|e| matches!(e, ClientEvent::LeavingAfterDownloads { downloads: 1 }));
    let (finished, left) = (at(&done), at(&|e| matches!(e, ClientEvent::Left)));
    assert!(
        waiting.is_some() && finished < left && left.is_some(),
        "{events:?}"
    );

    // A stop in the middle of a download leaves at once; the partial file stays.
    let mut sim = self::sim(13);
    let _a = sim.add_client(&[("movie.mkv", &data)]);
    sim.run_until_idle();
    let c = sim.add_client(&[]);
    sim.command_line(c, "DOWNLOAD movie.mkv").unwrap();
    let progress = |e: &ClientEvent| matches!(e, ClientEvent::DownloadProgress { .. });
    while !sim.events(c).iter().any(progress) {
        assert!(sim.step(), "the download never started");
    }
    sim.stop(c);
    sim.run_until_idle();
    let events = sim.events(c);
    assert!(
        events.iter().any(|e| matches!(e, ClientEvent::Left)),
        "{events:?}"
    );
    assert_eq!(sim.fs(c).downloads.get("movie.mkv"), None);
    assert!(sim.fs(c).downloads.contains_key("movie.mkv.part"));
}
