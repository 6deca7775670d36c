//! The `napshare` command line, run as a real process: what it prints when it starts, and
//! how it fails. Every address is an ephemeral loopback port (never the classic 1234/1235);
//! every wait has a deadline.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const NAPSHARE: &str = env!("CARGO_BIN_EXE_napshare");

/// Generous: a loaded machine is slow, and a passing test never waits this long.
const TIMEOUT: Duration = Duration::from_secs(20);

fn napshare(args: &[&str]) -> Command {
    let mut cmd = Command::new(NAPSHARE);
    // English whatever the tester's locale: the checks below read English messages.
    cmd.env("LANG", "C")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES");
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// A child whose output is collected on background threads.
struct Proc {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: Option<thread::JoinHandle<String>>,
}

impl Proc {
    fn start(mut cmd: Command) -> Self {
        let mut child = cmd.spawn().expect("start napshare");
        let out = child.stdout.take().unwrap();
        let (tx, stdout) = mpsc::channel();
        thread::spawn(move || {
            // Whatever each read gives: a prompt has no line ending to wait for.
            let mut out = out;
            let mut buf = [0; 4096];
            while let Ok(n @ 1..) = out.read(&mut buf) {
                if tx
                    .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                    .is_err()
                {
                    return;
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Self {
            child,
            stdout,
            stderr: Some(stderr),
        }
    }

    /// Standard output from here on, until it holds `wanted`.
    fn output_until(&mut self, wanted: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        let mut out = String::new();
        while !out.contains(wanted) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(piece) => out.push_str(&piece),
                Err(e) => panic!("no {wanted:?} on stdout within {TIMEOUT:?} ({e}): {out:?}"),
            }
        }
        out
    }

    /// Waits for the exit (killing the process after [`TIMEOUT`]); returns the status, the
    /// rest of standard output and all of standard error.
    fn finish(mut self) -> (ExitStatus, String, String) {
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for napshare") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let out: String = self.stdout.try_iter().collect();
                panic!("napshare still running after {TIMEOUT:?}; stdout so far:\n{out}");
            }
            thread::sleep(Duration::from_millis(10));
        };
        // The pipes close with the process; both readers end.
        let mut out = String::new();
        while let Ok(piece) = self.stdout.recv_timeout(TIMEOUT) {
            out.push_str(&piece);
        }
        let err = self
            .stderr
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        (status, out, err)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An address nobody listens on: a port that was just bound and closed.
fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// Reads the reply to a request from a classic server, exactly `expected.len()` bytes.
fn expect_reply(stream: &mut TcpStream, expected: &str) {
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut got = vec![0; expected.len()];
    stream.read_exact(&mut got).expect("read the reply");
    assert_eq!(String::from_utf8_lossy(&got), expected);
}

#[test]
fn server_prints_the_address_it_listens_on() {
    for word in ["server", "servidor"] {
        let mut server = Proc::start(napshare(&[word, "--listen", "127.0.0.1:0"]));
        let line = server.output_until("\n");
        let addr: SocketAddr = line
            .strip_prefix("napshare server listening on ")
            .and_then(|a| a.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        assert_eq!(addr.ip().to_string(), "127.0.0.1");
        assert_ne!(addr.port(), 0);
        // It is really there, speaking the classic protocol.
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"JOIN 127.0.0.1\n").unwrap();
        expect_reply(&mut s, "CONFIRMJOIN\n");
        s.write_all(b"LEAVE\n").unwrap();
        expect_reply(&mut s, "CONFIRMLEAVE\n");
    }
}

#[test]
fn server_on_an_address_in_use_fails_clearly() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (status, out, err) = Proc::start(napshare(&["server", "--listen", &addr])).finish();
    assert!(!status.success(), "{status}; stdout {out:?}");
    assert!(
        err.contains(&format!("cannot listen on {addr}")),
        "stderr: {err:?}"
    );
    assert!(!out.contains("listening"), "stdout: {out:?}");
}

#[test]
fn no_arguments_asks_which_to_run() {
    let mut proc = Proc::start(napshare(&[]));
    proc.output_until("server or client");
    // A wrong answer is asked again; the end of input gives up.
    let mut stdin = proc.child.stdin.take().unwrap();
    stdin.write_all(b"what\n").unwrap();
    drop(stdin);
    let (status, out, err) = proc.finish();
    assert!(!status.success(), "{status}; stdout {out:?}");
    assert!(out.contains("please answer server or client"), "{out:?}");
    assert!(out.contains("server or client?"), "asked again? {out:?}");
    assert!(err.contains("napshare: "), "stderr: {err:?}");
}

#[test]
fn client_with_an_unreachable_server_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("shared");
    let downloads = dir.path().join("downloads");
    // A port that was just closed can be taken again at once, by the client's own file
    // server on 127.0.0.1:0 or by another process; then try another.
    for _ in 0..5 {
        let addr = closed_port().to_string();
        let mut proc = Proc::start(napshare(&[
            "client",
            "--server",
            &addr,
            "--shared",
            shared.to_str().unwrap(),
            "--downloads",
            downloads.to_str().unwrap(),
            "--peer-listen",
            "127.0.0.1:0",
        ]));
        // Standard input stays open: the client must give up on its own.
        let _stdin = proc.child.stdin.take();
        let (status, out, err) = proc.finish();
        assert!(
            !status.success(),
            "{status}; stdout {out:?}; stderr {err:?}"
        );
        if format!("{out}{err}").contains(&format!("cannot reach the server at {addr}")) {
            return;
        }
        // Taken by the client's own file server, or by another process?
        let own = out.contains(&format!("file server listening on {addr}\n"));
        assert!(
            own || TcpStream::connect(&addr).is_ok(),
            "nothing listens on {addr}, yet the client did not say it cannot reach it: \
             stdout {out:?}; stderr {err:?}"
        );
    }
    panic!("every closed port was taken again before the client tried it");
}

#[test]
fn version_and_usage_errors() {
    let (status, out, _) = Proc::start(napshare(&["--version"])).finish();
    assert!(status.success(), "{status}");
    assert!(out.starts_with("napshare "), "{out:?}");

    let (status, _, err) = Proc::start(napshare(&["frobnicate"])).finish();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("frobnicate"), "{err:?}");

    let (status, _, err) = Proc::start(napshare(&["server", "--listen", "nowhere"])).finish();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("nowhere"), "{err:?}");
}
