//! Download throughput on loopback, against a plain TCP copy of the same bytes measured in
//! the same run.
//!
//! - plain copy: one thread reads the file and writes it to a loopback socket, another
//!   reads the socket and writes a file, then `fsync`s it (a download is only done when it
//!   is on disk);
//! - napshare, one source: a release `napshare` server, one sharing client, and a client
//!   that runs `DOWNLOAD peer name` (the client's own report of the time, which covers the
//!   lookup, every piece's hash check, the `fsync` and the rename);
//! - napshare, three sources: three sharing clients and `DOWNLOAD name`.
//!
//! Run with `cargo bench -p napshare-mio --bench transfer` (`TRANSFER_MIB` sets the size,
//! default 256; `TRANSFER_RUNS` the runs, default 5). Prints medians and ratios.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_napshare");

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A running `napshare` process whose standard output is read line by line.
struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl Proc {
    fn start(args: &[&str], dir: &Path) -> Self {
        let mut child = Command::new(BIN)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start napshare");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let stdin = child.stdin.take();
        Self {
            child,
            stdin,
            lines,
        }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("write a command");
    }

    /// The first line containing `text`.
    fn expect(&self, text: &str) -> String {
        let mut seen = Vec::new();
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(120))
                .unwrap_or_else(|_| panic!("no line with {text:?} in {seen:#?}"));
            if line.contains(text) {
                return line;
            }
            seen.push(line);
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address at the end of a `... listening on ADDR` line.
fn addr_of(line: &str) -> String {
    line.rsplit(' ').next().expect("an address").to_owned()
}

/// Copies `src` over a loopback socket into `dst` and syncs it; returns the time taken.
fn plain_copy(src: &Path, dst: &Path) -> Duration {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    let dst = dst.to_owned();
    let start = Instant::now();
    let receiver = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut out = std::fs::File::create(&dst).expect("create");
        let mut buf = vec![0; 64 * 1024];
        loop {
            let n = s.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n]).expect("write");
        }
        out.sync_all().expect("sync");
    });
    let mut sock = TcpStream::connect(addr).expect("connect");
    let mut file = std::fs::File::open(src).expect("open");
    let mut buf = vec![0; 64 * 1024];
    loop {
        let n = file.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        sock.write_all(&buf[..n]).expect("send");
    }
    drop(sock);
    receiver.join().expect("receiver");
    start.elapsed()
}

/// Seconds from a `downloaded NAME: N bytes in S s (...)` line.
fn seconds(line: &str) -> f64 {
    let after = line.split(" bytes in ").nth(1).expect("a time");
    after
        .split(' ')
        .next()
        .and_then(|s| s.parse().ok())
        .expect("seconds")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mib = env("TRANSFER_MIB", 256);
    let runs = env("TRANSFER_RUNS", 5);
    let root = tempfile::tempdir().expect("temp dir");
    let dir = |name: &str| -> PathBuf {
        let d = root.path().join(name);
        std::fs::create_dir_all(d.join("public")).expect("dirs");
        d
    };
    let name = "payload.bin";
    let sharers: Vec<PathBuf> = (0..3).map(|k| dir(&format!("sharer{k}"))).collect();
    let block: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let source = sharers[0].join("public").join(name);
    let mut f = std::fs::File::create(&source).expect("create");
    for k in 0..mib {
        f.write_all(&block).expect("write");
        f.write_all(&k.to_le_bytes()).expect("write"); // no two MiB alike
    }
    drop(f);
    for s in &sharers[1..] {
        std::fs::copy(&source, s.join("public").join(name)).expect("copy");
    }
    let size = std::fs::metadata(&source).expect("size").len();

    let server = Proc::start(&["server", "--listen", "127.0.0.1:0"], root.path());
    let server_addr = addr_of(&server.expect("listening on"));
    let client = |d: &Path| {
        Proc::start(
            &[
                "client",
                "--server",
                &server_addr,
                "--peer-listen",
                "127.0.0.1:0",
            ],
            d,
        )
    };
    let peers: Vec<(Proc, String)> = sharers
        .iter()
        .map(|d| {
            let p = client(d);
            let addr = addr_of(&p.expect("file server listening on"));
            p.expect(&format!("sharing {name}"));
            (p, addr)
        })
        .collect();
    let getter_dir = dir("getter");
    let mut getter = client(&getter_dir);
    getter.expect("joined");
    let downloaded = getter_dir.join("downloads").join(name);

    let (mut plain, mut one, mut three) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let copy = root.path().join("copy.bin");
        plain.push(mib as f64 / plain_copy(&source, &copy).as_secs_f64());
        std::fs::remove_file(&copy).expect("remove the copy");

        for (command, out) in [
            (format!("DOWNLOAD {} {name}", peers[0].1), &mut one),
            (format!("DOWNLOAD {name}"), &mut three),
        ] {
            getter.send(&command);
            let line = getter.expect(&format!("downloaded {name}"));
            assert_eq!(
                std::fs::metadata(&downloaded).expect("the file").len(),
                size
            );
            std::fs::remove_file(&downloaded).expect("remove the download");
            out.push(mib as f64 / seconds(&line));
        }
    }
    let (plain, one, three) = (median(plain), median(one), median(three));
    println!("download of {mib} MiB over loopback, median of {runs} runs:");
    println!("  plain TCP copy + fsync:   {plain:7.0} MiB/s");
    println!(
        "  napshare, 1 source:       {one:7.0} MiB/s  ({:.2} of plain)",
        one / plain
    );
    println!(
        "  napshare, 3 sources:      {three:7.0} MiB/s  ({:.2} of plain)",
        three / plain
    );
}
