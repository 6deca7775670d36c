//! Replays the fuzz corpus on stable: every file under `fuzz/corpus/<target>/` (the
//! committed `seed-*` files, plus whatever a local `cargo fuzz run` added) and under
//! `fuzz/artifacts/<target>/` (crashes a local run found) goes through the same library
//! function the fuzz target wraps (the server's with the time it starts, as its target
//! passes). A failing file is named in the panic message.

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Instant;

use napshare_core::fuzzing;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The regular files directly in `dir`, sorted; none if it does not exist.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("read a corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `target` on every corpus and artifact file; returns how many seeds it ran.
fn replay(name: &str, target: fn(&[u8])) -> usize {
    let root = fuzz_dir();
    let corpus = files_in(&root.join("corpus").join(name));
    let artifacts = files_in(&root.join("artifacts").join(name));
    let mut failed = Vec::new();
    for path in corpus.iter().chain(&artifacts) {
        let data = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        if catch_unwind(AssertUnwindSafe(|| target(&data))).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "fuzz target `{name}` panicked on:\n  {}",
        failed.join("\n  ")
    );
    corpus
        .iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("seed-"))
        })
        .count()
}

#[test]
fn codec_corpus() {
    assert!(replay("codec", fuzzing::codec) > 0, "no codec seeds");
}

#[test]
fn server_corpus() {
    let server = |data: &[u8]| fuzzing::server(Instant::now(), data);
    assert!(replay("server", server) > 0, "no server seeds");
}

#[test]
fn get_request_corpus() {
    assert!(
        replay("get_request", fuzzing::get_request) > 0,
        "no get_request seeds"
    );
}

#[test]
fn cluster_corpus() {
    assert!(replay("cluster", fuzzing::cluster) > 0, "no cluster seeds");
}
