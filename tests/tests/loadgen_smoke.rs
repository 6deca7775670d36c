//! A short run of the `loadgen` binary against a real server of each runtime: it must
//! finish with exit status 0, no error of any kind, a nonzero throughput, and every file
//! it registered found by the final check. And against a server whose result cap is not
//! the one `loadgen` expects, it must fail: it notices files missing from replies. And
//! against a server that lists wrong files, it must say what is wrong with each.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Instant;

use napshare_tests::node::{Runtime, ServerProc};

const LOADGEN: &str = env!("CARGO_BIN_EXE_loadgen");
const NODE: &str = env!("CARGO_BIN_EXE_napshare-node");

struct Run {
    code: Option<i32>,
    json: String,
    stderr: String,
}

fn loadgen(args: &[&str]) -> Run {
    let started = Instant::now();
    let out = Command::new(LOADGEN)
        .args(args)
        .args(["--json", "--quiet"])
        .stdin(Stdio::null())
        .output()
        .expect("run loadgen");
    let run = Run {
        code: out.status.code(),
        json: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    eprintln!(
        "loadgen {} ({:.1} s): {}\n{}",
        args.join(" "),
        started.elapsed().as_secs_f64(),
        run.json,
        run.stderr
    );
    run
}

impl Run {
    /// The number after the keys of `path`, each looked for after the one before it
    /// (`["phases", "mix", "rps"]`): enough for the report's flat JSON.
    fn num(&self, path: &[&str]) -> f64 {
        let mut at = 0;
        for key in path {
            let needle = format!("\"{key}\": ");
            at += self.json[at..]
                .find(&needle)
                .unwrap_or_else(|| panic!("no {key:?} (of {path:?}) in {}", self.json))
                + needle.len();
        }
        let rest = &self.json[at..];
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
            .unwrap_or(rest.len());
        rest[..end]
            .parse()
            .unwrap_or_else(|e| panic!("{path:?} is not a number ({e}) in {}", self.json))
    }

    /// Exit 0, no error, a nonzero measured throughput, every client joined and left, and
    /// nothing missing at the end.
    fn assert_clean(&self, clients: f64) {
        assert_eq!(
            self.code,
            Some(0),
            "loadgen failed:\n{}\n{}",
            self.json,
            self.stderr
        );
        assert_eq!(self.num(&["errors", "total"]), 0.0, "{}", self.json);
        assert!(self.num(&["phases", "mix", "rps"]) > 0.0, "{}", self.json);
        assert!(
            self.num(&["phases", "mix", "requests"]) > 0.0,
            "{}",
            self.json
        );
        assert_eq!(self.num(&["joined"]), clients, "{}", self.json);
        assert_eq!(self.num(&["left"]), clients, "{}", self.json);
        let present = self.num(&["verify", "files_present"]);
        assert!(present > 0.0, "{}", self.json);
        assert_eq!(
            self.num(&["verify", "files_checked"]),
            present,
            "{}",
            self.json
        );
        assert_eq!(self.num(&["verify", "unverifiable"]), 0.0, "{}", self.json);
    }
}

/// Lockstep, with the server started by `loadgen` itself (so its memory is reported).
fn lockstep(runtime: Runtime) {
    let run = loadgen(&[
        "--spawn-server",
        runtime.name(),
        "--server-bin",
        NODE,
        "--clients",
        "50",
        "--files",
        "20",
        "--duration",
        "2",
        "--seed",
        "11",
        "--verify-final",
    ]);
    run.assert_clean(50.0);
    assert!(run.num(&["server_memory", "hwm_kib"]) > 0.0, "{}", run.json);
}

/// Pipelined (8 requests in flight per client) with many changes, against a server
/// started by the test.
fn pipelined(runtime: Runtime) {
    let server = ServerProc::start(runtime);
    let addr = server.addr().to_string();
    let run = loadgen(&[
        "--server",
        &addr,
        "--clients",
        "50",
        "--files",
        "20",
        "--duration",
        "1.5",
        "--pipeline",
        "8",
        "--mix",
        "search=60,create=20,delete=20",
        "--seed",
        "12",
        "--verify-final",
    ]);
    run.assert_clean(50.0);
    assert!(run.num(&["phases", "mix", "latency", "CREATEFILE", "count"]) > 0.0);
    assert!(run.num(&["phases", "mix", "latency", "DELETEFILE", "count"]) > 0.0);
}

#[test]
fn lockstep_mio() {
    lockstep(Runtime::Mio);
}

#[test]
fn lockstep_smol() {
    lockstep(Runtime::Smol);
}

#[test]
fn pipelined_mio() {
    pipelined(Runtime::Mio);
}

#[test]
fn pipelined_smol() {
    pipelined(Runtime::Smol);
}

/// A server that lists at most 3 results while `loadgen` expects up to 1000: short replies
/// leave out files that match, and `loadgen` must say so and fail.
#[test]
fn notices_missing_results() {
    let mut cmd = Runtime::Mio.command();
    cmd.args(["server", "--listen", "127.0.0.1:0", "--max-results", "3"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn().expect("start a server");
    let stdout = child.stdout.take().expect("piped");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let prefix = "napshare server listening on ";
    let line = lines
        .next()
        .expect("the server prints its address")
        .expect("read the server's output");
    assert!(line.starts_with(prefix), "{line:?}");
    let addr = line[prefix.len()..].trim().to_owned();
    let run = loadgen(&[
        "--server",
        &addr,
        "--clients",
        "10",
        "--files",
        "20",
        "--requests",
        "300",
        "--seed",
        "13",
    ]);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(run.code, Some(1), "{}\n{}", run.json, run.stderr);
    assert!(run.num(&["errors", "missing"]) > 0.0, "{}", run.json);
    assert!(run.json.contains("left out"), "{}", run.json);
}

/// Files a lying server holds: (name, peer as joined, size).
type Shared = Arc<Mutex<Vec<(String, String, u64)>>>;

/// A classic index server that answers every request, but lists one wrong `FILE` line
/// in each reply that has results, in turn: a wrong size, a name nobody shares, and a
/// file of the right client whose name does not hold the pattern.
fn lying_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let files: Shared = Arc::default();
    let searches = Arc::new(Mutex::new(0u64));
    thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let (files, searches) = (Arc::clone(&files), Arc::clone(&searches));
            thread::spawn(move || lie_to(stream, &files, &searches));
        }
    });
    addr
}

fn lie_to(stream: TcpStream, files: &Shared, searches: &Mutex<u64>) {
    let mut out = stream.try_clone().expect("clone");
    let mut peer = String::new();
    for line in BufReader::new(stream).lines().map_while(Result::ok) {
        let reply = match line.split_once(' ') {
            Some(("JOIN", addr)) => {
                peer = addr.to_owned();
                "CONFIRMJOIN\n".to_owned()
            }
            Some(("CREATEFILE", rest)) => {
                let (name, size) = rest.rsplit_once(' ').expect("name and size");
                let mut files = files.lock().unwrap();
                files.retain(|(n, p, _)| !(n == name && *p == peer));
                files.push((name.to_owned(), peer.clone(), size.parse().expect("a size")));
                format!("CONFIRMCREATEFILE {name}\n")
            }
            Some(("DELETEFILE", name)) => {
                files
                    .lock()
                    .unwrap()
                    .retain(|(n, p, _)| !(n == name && *p == peer));
                format!("CONFIRMDELETEFILE {name}\n")
            }
            Some(("SEARCH", pattern)) => {
                let files = files.lock().unwrap();
                let mut hits: Vec<_> = files.iter().filter(|f| f.0.contains(pattern)).collect();
                let mut reply = String::new();
                if let Some(&&(ref name, ref owner, size)) = hits.first() {
                    let mut n = searches.lock().unwrap();
                    *n += 1;
                    let other = files
                        .iter()
                        .find(|f| f.1 == *owner && !f.0.contains(pattern));
                    match (*n % 3, other) {
                        (0, _) => reply += &format!("FILE {name} {owner} {}\n", size + 1),
                        (1, _) | (_, None) => {
                            reply += &format!("FILE zz-never-shared.bin {owner} {size}\n");
                        }
                        (_, Some((other, _, size))) => {
                            reply += &format!("FILE {other} {owner} {size}\n");
                        }
                    }
                    if n.is_multiple_of(3) {
                        hits.remove(0);
                    }
                }
                for (name, owner, size) in hits {
                    reply += &format!("FILE {name} {owner} {size}\n");
                }
                if reply.is_empty() {
                    reply += "NORESULT\n";
                }
                reply + "ENDSEARCH\n"
            }
            None if line == "LEAVE" => {
                files.lock().unwrap().retain(|f| f.1 != peer);
                let _ = out.write_all(b"CONFIRMLEAVE\n");
                return;
            }
            _ => continue,
        };
        if out.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// Every kind of wrong `FILE` line is caught and said as what it is.
#[test]
fn notices_wrong_results() {
    let addr = lying_server().to_string();
    let run = loadgen(&[
        "--server",
        &addr,
        "--clients",
        "5",
        "--files",
        "20",
        "--requests",
        "300",
        "--seed",
        "5",
        "--loose",
        "50",
        "--examples",
        "1000",
    ]);
    assert_eq!(run.code, Some(1), "{}\n{}", run.json, run.stderr);
    assert!(run.num(&["errors", "bad_result"]) > 0.0, "{}", run.json);
    for what in [
        "registered with",
        "never registered that name",
        "the name does not contain the pattern",
    ] {
        assert!(run.json.contains(what), "no {what:?} in {}", run.json);
    }
}
