//! The live shared folder on the in-memory simulation: what the client does when its host
//! reports that a file of the shared folder changed (`Client::handle_folder_change`).
//! The host side (the watcher and its debounce) is tested in `core/src/host/watch.rs` and
//! end to end in `live_folder.rs`.

use std::time::{Duration, Instant};

use napshare_core::client::{ClientEvent, SearchHit};
use napshare_tests::sim::{pieces_of, Sim};

fn hit(name: &str, peer: &str, data: &[u8]) -> SearchHit {
    SearchHit {
        name: name.into(),
        peer: peer.into(),
        size: data.len() as u64,
        hash: Some(pieces_of(data).root()),
    }
}

/// A network of A (sharing `files`) and B, both joined.
fn network(seed: u64, files: &[(&str, &[u8])]) -> (Sim, usize, usize) {
    let mut sim = Sim::with_seed(Instant::now(), seed);
    let a = sim.add_client(files);
    let b = sim.add_client(&[]);
    sim.run_until_idle();
    sim.take_events(a);
    (sim, a, b)
}

#[test]
fn a_file_copied_in_is_shared_and_found() {
    let (mut sim, a, b) = network(1, &[]);
    sim.put_shared(a, "new.txt", b"hello");
    sim.folder_change(a, "new.txt");
    sim.run_until_idle();
    assert_eq!(
        sim.take_events(a),
        [ClientEvent::Shared {
            name: "new.txt".into(),
            size: 5
        }]
    );
    assert_eq!(sim.search(b, "new"), [hit("new.txt", "10.0.0.2", b"hello")]);
    assert_eq!(sim.client(a).shared().collect::<Vec<_>>(), [("new.txt", 5)]);
}

#[test]
fn a_rewritten_file_is_registered_again_with_one_entry() {
    let (mut sim, a, b) = network(2, &[("song.mp3", b"old")]);
    sim.put_shared(a, "song.mp3", b"a longer new version");
    sim.folder_change(a, "song.mp3");
    sim.run_until_idle();
    assert_eq!(
        sim.take_events(a),
        [ClientEvent::Shared {
            name: "song.mp3".into(),
            size: 20
        }]
    );
    assert_eq!(
        sim.search(b, "song"),
        [hit("song.mp3", "10.0.0.2", b"a longer new version")]
    );
    assert_eq!(sim.server().index().len(), 1);
    // Same size, other content: the new hash replaces the old one too.
    sim.put_shared(a, "song.mp3", b"A LONGER NEW VERSION");
    sim.folder_change(a, "song.mp3");
    sim.run_until_idle();
    assert_eq!(
        sim.search(b, "song"),
        [hit("song.mp3", "10.0.0.2", b"A LONGER NEW VERSION")]
    );
    assert_eq!(sim.server().index().len(), 1);
    // And B downloads the new content, checked against the new hash.
    let done = sim.download(b, a, "song.mp3");
    assert!(matches!(done, ClientEvent::DownloadDone { .. }), "{done:?}");
    assert_eq!(
        sim.fs(b).downloads.get("song.mp3").map(Vec::as_slice),
        Some(&b"A LONGER NEW VERSION"[..])
    );
}

#[test]
fn an_unchanged_file_sends_nothing() {
    let (mut sim, a, _b) = network(3, &[("same.txt", b"same")]);
    let before = sim.server_events().len();
    sim.folder_change(a, "same.txt");
    sim.run_until_idle();
    assert_eq!(sim.take_events(a), []);
    assert_eq!(sim.server_events().len(), before);
    assert_eq!(sim.server().index().len(), 1);
}

#[test]
fn a_removed_file_stops_being_shared() {
    let (mut sim, a, b) = network(4, &[("gone.txt", b"g"), ("kept.txt", b"k")]);
    sim.remove_shared(a, "gone.txt");
    sim.folder_change(a, "gone.txt");
    sim.run_until_idle();
    assert_eq!(
        sim.take_events(a),
        [ClientEvent::Unshared {
            name: "gone.txt".into()
        }]
    );
    assert_eq!(sim.search(b, ".txt"), [hit("kept.txt", "10.0.0.2", b"k")]);
    assert_eq!(
        sim.client(a).shared().collect::<Vec<_>>(),
        [("kept.txt", 1)]
    );
    // A file that was never shared and is gone again says nothing.
    sim.folder_change(a, "never.tmp");
    sim.run_until_idle();
    assert_eq!(sim.take_events(a), []);
}

#[test]
fn a_renamed_file_moves_to_its_new_name() {
    let (mut sim, a, b) = network(5, &[("draft.txt", b"text")]);
    sim.remove_shared(a, "draft.txt");
    sim.put_shared(a, "final.txt", b"text");
    sim.folder_change(a, "draft.txt");
    sim.folder_change(a, "final.txt");
    sim.run_until_idle();
    assert_eq!(
        sim.search(b, ".txt"),
        [hit("final.txt", "10.0.0.2", b"text")]
    );
    assert_eq!(sim.server().index().len(), 1);
    // B downloads it by its new name (by content, the old name is gone from A).
    let done = sim.download(b, a, "final.txt");
    assert!(matches!(done, ClientEvent::DownloadDone { .. }), "{done:?}");
}

#[test]
fn names_that_cannot_be_shared_are_ignored() {
    let (mut sim, a, _b) = network(6, &[]);
    for name in ["", ".", "..", "sub/x.txt", "../x.txt", "tab\there"] {
        sim.put_shared(a, name, b"x");
        sim.folder_change(a, name);
    }
    sim.run_until_idle();
    assert_eq!(sim.take_events(a), []);
    assert_eq!(sim.server().index().len(), 0);
}

#[test]
fn createfile_and_deletefile_work_alongside() {
    let (mut sim, a, b) = network(7, &[]);
    sim.put_shared(a, "x.txt", b"xx");
    sim.command_line(a, "CREATEFILE x.txt 2").unwrap();
    sim.run_until_idle();
    // The watcher's report of the same file changes nothing more.
    sim.folder_change(a, "x.txt");
    sim.run_until_idle();
    assert_eq!(
        sim.take_events(a),
        [ClientEvent::Shared {
            name: "x.txt".into(),
            size: 2
        }]
    );
    sim.command_line(a, "DELETEFILE x.txt").unwrap();
    sim.run_until_idle();
    assert_eq!(sim.search(b, "x"), []);
    // The file is still in the folder: when it changes again, it is shared again.
    sim.put_shared(a, "x.txt", b"xyz");
    sim.folder_change(a, "x.txt");
    sim.run_until_idle();
    assert_eq!(sim.search(b, "x"), [hit("x.txt", "10.0.0.2", b"xyz")]);
}

#[test]
fn changes_while_the_server_is_away_are_sent_once_it_is_back() {
    let (mut sim, a, b) = network(8, &[("old.txt", b"o")]);
    sim.cut_server_link(a);
    sim.settle();
    sim.remove_shared(a, "old.txt");
    sim.folder_change(a, "old.txt");
    sim.put_shared(a, "new.txt", b"n");
    sim.folder_change(a, "new.txt");
    // Reconnected after the backoff: everything shared now, and nothing else.
    sim.advance(Duration::from_secs(2));
    sim.run_until_idle();
    assert_eq!(sim.search(b, ".txt"), [hit("new.txt", "10.0.0.2", b"n")]);
    assert_eq!(sim.server().index().len(), 1);
}

#[test]
fn a_client_that_is_leaving_ignores_the_folder() {
    let (mut sim, a, _b) = network(9, &[]);
    sim.command_line(a, "LEAVE").unwrap();
    sim.put_shared(a, "late.txt", b"l");
    sim.folder_change(a, "late.txt");
    sim.run_until_idle();
    assert!(sim.is_dead(a));
    assert_eq!(sim.server().index().len(), 0);
}
