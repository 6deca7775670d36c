//! The subcommands for scripts, run as a script would run them: `napshare search --json`,
//! `napshare get`, `napshare share`, `napshare completions`, with their output parsed and
//! their exit statuses checked, on both runtimes. Servers and file servers listen on
//! ephemeral loopback ports; every folder is temporary.

use std::net::{SocketAddr, TcpListener};
use std::process::ExitStatus;

use napshare_tests::node::{
    self as node, parse_hit, starts_with, test_data, ClientProc, NodeProc, Runtime, ServerProc,
    Wire, TIMEOUT,
};
use napshare_tests::sim::pieces_of;
use serde_json::Value;

/// The exit statuses `napshare --help` documents.
const OK: i32 = 0;
const ERROR: i32 = 1;
const USAGE: i32 = 2;
const NOT_FOUND: i32 = 3;
const FAILED: i32 = 4;

fn code(status: ExitStatus) -> i32 {
    status.code().expect("exited, not killed by a signal")
}

/// Runs `napshare ARGS` and checks it exits with `expected`; returns stdout and stderr.
fn run(rt: Runtime, args: &[&str], expected: i32) -> (String, String) {
    let (status, out, err) = NodeProc::run(rt, args);
    assert_eq!(
        code(status),
        expected,
        "napshare {args:?} ({rt})\n--- stdout ---\n{out}\n--- stderr ---\n{err}"
    );
    (out, err)
}

/// Standard output as the one JSON document it must be.
fn json(out: &str) -> Value {
    assert_eq!(out.lines().count(), 1, "one line of JSON: {out:?}");
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out:?}"))
}

/// An address where nothing listens (a port just bound and released).
fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    l.local_addr().unwrap()
}

fn hash_of(data: &[u8]) -> String {
    pieces_of(data).root().to_string()
}

fn search(rt: Runtime) {
    let server = ServerProc::start(rt);
    let addr = server.addr().to_string();
    let song = test_data(3000, 1);
    let alice = ClientProc::joined(
        rt.other(),
        server.addr(),
        &[("my song.mp3", &song), ("notes.txt", b"hi")],
    );

    let (out, _) = run(rt, &["search", "--server", &addr, "--json", "song"], OK);
    let doc = json(&out);
    assert_eq!(doc["pattern"], "song");
    let results = doc["results"].as_array().expect("results is an array");
    assert_eq!(results.len(), 1, "{doc}");
    let hit = &results[0];
    assert_eq!(hit["name"], "my song.mp3");
    assert_eq!(hit["size"], song.len() as u64);
    assert_eq!(hit["peer"], alice.peer_addr().to_string());
    assert_eq!(hit["hash"], hash_of(&song));

    // Everything, as a table: a header, then a line per file.
    let (out, _) = run(rt, &["search", "--server", &addr, ""], OK);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].ends_with("  name"), "{out}");
    let peer = alice.peer_addr().to_string();
    let rows: Vec<_> = lines[1..].iter().map(|l| parse_hit(l)).collect();
    assert_eq!(
        rows,
        [
            Some(node::hit("my song.mp3", &peer, song.len())),
            Some(node::hit("notes.txt", &peer, 2))
        ],
        "{out}"
    );

    // Nothing found: status 3, and still one JSON document.
    let (out, err) = run(
        rt,
        &["search", "--server", &addr, "--json", "zzz"],
        NOT_FOUND,
    );
    assert_eq!(
        json(&out),
        serde_json::json!({"pattern": "zzz", "results": []})
    );
    assert!(err.contains("no results"), "{err}");
    let (out, _) = run(rt, &["search", "--server", &addr, "zzz"], NOT_FOUND);
    assert_eq!(out, "", "no table without results");
}

fn unreachable_server(rt: Runtime) {
    let nobody = closed_port().to_string();
    let (out, err) = run(rt, &["search", "--server", &nobody, "--json", "x"], ERROR);
    let doc = json(&out);
    assert_eq!(doc["status"], ERROR);
    assert!(
        doc["error"].as_str().unwrap().contains("cannot reach"),
        "{doc}"
    );
    assert!(err.contains("cannot reach"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().to_str().unwrap();
    let args = ["get", "--server", &nobody, "--out", out_dir, "a.txt"];
    let (out, _) = run(rt, &args, ERROR);
    assert_eq!(out, "", "nothing on stdout without --json");
}

fn get(rt: Runtime) {
    let server = ServerProc::start(rt);
    let addr = server.addr().to_string();
    let song = test_data(600_000, 2);
    let other = test_data(1000, 3);
    // Two peers hold the same content, a third another one under the same name.
    let _a = ClientProc::joined(rt, server.addr(), &[("song.mp3", &song)]);
    let _b = ClientProc::joined(rt.other(), server.addr(), &[("song.mp3", &song)]);
    let _c = ClientProc::joined(rt, server.addr(), &[("song.mp3", &other)]);
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("in");
    let out_arg = out_dir.to_str().unwrap();

    let args = [
        "get", "--server", &addr, "--out", out_arg, "--json", "song.mp3",
    ];
    let (out, err) = run(rt, &args, OK);
    let doc = json(&out);
    let saved = out_dir.join("song.mp3");
    assert_eq!(doc["name"], "song.mp3");
    assert_eq!(doc["path"], saved.to_str().unwrap());
    assert_eq!(doc["size"], song.len() as u64);
    assert_eq!(doc["hash"], hash_of(&song));
    assert!(doc["elapsed"].as_f64().is_some_and(|s| s >= 0.0), "{doc}");
    assert_eq!(std::fs::read(&saved).unwrap(), song);
    assert!(err.contains("from 2 peers"), "multi-source: {err}");
    assert!(!out_dir.join("song.mp3.part").exists());

    // Without --json, the path alone; an existing partial file is resumed.
    std::fs::remove_file(&saved).unwrap();
    std::fs::write(out_dir.join("song.mp3.part"), &song[..300_000]).unwrap();
    let args = ["get", "--server", &addr, "--out", out_arg, "song.mp3"];
    let (out, _) = run(rt, &args, OK);
    assert_eq!(out, format!("{}\n", saved.display()));
    assert_eq!(std::fs::read(&saved).unwrap(), song);

    // A name nobody lists.
    let args = ["get", "--server", &addr, "--out", out_arg, "--json", "song"];
    let (out, _) = run(rt, &args, NOT_FOUND);
    let doc = json(&out);
    assert_eq!(doc["status"], NOT_FOUND);
    assert!(doc["error"].is_string(), "{doc}");
    assert!(!out_dir.join("song").exists());
}

fn failed_download(rt: Runtime) {
    let server = ServerProc::start(rt);
    let addr = server.addr().to_string();
    // A classic peer that lists a file at a port where nothing listens.
    let mut ghost = Wire::connect(server.addr());
    ghost.send(format!("JOIN {}\n", closed_port()));
    ghost.expect("CONFIRMJOIN\n");
    ghost.send("CREATEFILE gone.txt 100\n");
    ghost.expect("CONFIRMCREATEFILE gone.txt\n");

    let dir = tempfile::tempdir().unwrap();
    let out_arg = dir.path().to_str().unwrap();
    let args = [
        "get", "--server", &addr, "--out", out_arg, "--json", "gone.txt",
    ];
    let (out, err) = run(rt, &args, FAILED);
    let doc = json(&out);
    assert_eq!(doc["status"], FAILED);
    assert!(doc["error"].as_str().unwrap().contains("gone.txt"), "{doc}");
    assert!(err.contains("download of gone.txt failed"), "{err}");
    assert!(!dir.path().join("gone.txt").exists());
}

fn share(rt: Runtime) {
    let server = ServerProc::start(rt);
    let addr = server.addr().to_string();
    let dir = tempfile::tempdir().unwrap();
    let data = test_data(5000, 4);
    std::fs::write(dir.path().join("shared.bin"), &data).unwrap();
    let folder = dir.path().to_str().unwrap();
    // Its standard input is closed at once: `share` reads none, so it stays.
    let args = [
        "share",
        "--server",
        &addr,
        "--peer-listen",
        "127.0.0.1:0",
        folder,
    ];
    let mut sharer = NodeProc::start(rt, &args, false);
    let line = sharer
        .out
        .expect_line(starts_with("file server listening on "), TIMEOUT);
    let peer = line.rsplit(' ').next().unwrap().to_owned();
    sharer
        .out
        .expect_line(starts_with("sharing shared.bin ("), TIMEOUT);

    let other = rt.other();
    let (out, _) = run(
        other,
        &["search", "--server", &addr, "--json", "shared"],
        OK,
    );
    let doc = json(&out);
    assert_eq!(doc["results"][0]["peer"], peer.as_str(), "{doc}");
    let got = tempfile::tempdir().unwrap();
    let got_arg = got.path().to_str().unwrap();
    let args = ["get", "--server", &addr, "--out", got_arg, "shared.bin"];
    run(other, &args, OK);
    assert_eq!(std::fs::read(got.path().join("shared.bin")).unwrap(), data);

    sharer.signal("TERM");
    sharer.out.expect_line("left the network", TIMEOUT);
    assert_eq!(code(sharer.wait_exit(TIMEOUT)), OK);
    run(other, &["search", "--server", &addr, "shared"], NOT_FOUND);

    // A folder that is not there is an error, not an empty share.
    let missing = dir.path().join("missing");
    let args = ["share", "--server", &addr, missing.to_str().unwrap()];
    let (_, err) = run(rt, &args, ERROR);
    assert!(err.contains("is not a folder"), "{err}");
}

macro_rules! on_runtime {
    ($module:ident, $rt:expr) => {
        mod $module {
            #[test]
            fn search_prints_json_a_table_or_nothing_found() {
                super::search($rt)
            }

            #[test]
            fn an_unreachable_server_exits_1() {
                super::unreachable_server($rt)
            }

            #[test]
            fn get_saves_the_file_and_says_where() {
                super::get($rt)
            }

            #[test]
            fn a_failed_download_exits_4() {
                super::failed_download($rt)
            }

            #[test]
            fn share_serves_a_folder_until_sigterm() {
                super::share($rt)
            }
        }
    };
}

on_runtime!(mio, napshare_tests::node::Runtime::Mio);
on_runtime!(smol, napshare_tests::node::Runtime::Smol);

// ---- the command line itself (the same for both runtimes) ----

#[test]
fn completions_cover_every_subcommand() {
    let (out, _) = run(Runtime::Mio, &["completions", "bash"], OK);
    for word in [
        "server",
        "client",
        "search",
        "get",
        "share",
        "completions",
        "--json",
    ] {
        assert!(out.contains(word), "{word} is not in the bash script");
    }
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let (out, _) = run(Runtime::Mio, &["completions", shell], OK);
        assert!(out.contains("search"), "{shell}: {out}");
    }
    run(Runtime::Mio, &["completions", "tcsh"], USAGE);
}

#[test]
fn every_subcommand_has_examples_in_its_help() {
    let (out, _) = run(Runtime::Mio, &["--help"], OK);
    assert!(out.contains("Exit status:"), "{out}");
    for sub in ["server", "client", "search", "get", "share", "completions"] {
        let (out, _) = run(Runtime::Mio, &[sub, "--help"], OK);
        assert!(out.contains("Examples:"), "{sub} --help: {out}");
        assert!(
            out.contains(&format!("napshare {sub}")),
            "{sub} --help: {out}"
        );
    }
}

#[test]
fn bad_arguments_exit_2() {
    run(Runtime::Mio, &["search", "song"], USAGE); // no --server
    run(
        Runtime::Mio,
        &["get", "--server", "127.0.0.1", "../x"],
        USAGE,
    );
}
