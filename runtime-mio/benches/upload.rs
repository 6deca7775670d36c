//! Upload copy cost: `sendfile(2)` against read-then-write, sending one file range over a
//! loopback TCP connection to a reader that discards it. Both in one run, alternating, so
//! the machine's load affects both alike; prints the median throughput of each and their
//! ratio.
//!
//! Read/write is what uploads use (`Upload::chunk`, written by the runtimes); `sendfile`
//! lives only here, the experiment that decided it: on the project's machine read/write
//! beat it by about a third on loopback (BENCHMARKS.md).
//!
//! Run with `cargo bench -p napshare-mio --bench upload` (`UPLOAD_MIB` sets the size,
//! default 512; `UPLOAD_RUNS` the runs per method, default 7).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use napshare_core::wire::ByteRange;
use napshare_host::Upload;

/// How a file range is sent.
#[derive(Debug, Clone, Copy)]
enum Method {
    Sendfile,
    ReadWrite,
}

/// Largest span handed to one `sendfile` call.
const SPAN: u64 = 1 << 20;

/// Sends the whole file at `path` on the blocking socket `sock` by `method`.
fn send(sock: &mut TcpStream, path: &Path, method: Method) {
    match method {
        Method::ReadWrite => {
            let mut up = Upload::open(path, ByteRange::ALL, true).expect("open the file");
            loop {
                let chunk = up.chunk().expect("read");
                if chunk.is_empty() {
                    return;
                }
                let n = sock.write(chunk).expect("write");
                up.consume(n);
            }
        }
        Method::Sendfile => {
            let file = std::fs::File::open(path).expect("open the file");
            let len = file.metadata().expect("size").len();
            let mut offset = 0;
            while offset < len {
                let count = (len - offset).min(SPAN) as usize;
                rustix::fs::sendfile(&*sock, &file, Some(&mut offset), count).expect("sendfile");
            }
        }
    }
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Sends the whole file once by `method`; returns how long it took.
fn run(path: &Path, method: Method) -> Duration {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    let reader = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut buf = vec![0; 256 * 1024];
        let mut total = 0u64;
        loop {
            match s.read(&mut buf) {
                Ok(0) => return total,
                Ok(n) => total += n as u64,
                Err(e) => panic!("read: {e}"),
            }
        }
    });
    let mut sock = TcpStream::connect(addr).expect("connect");
    let start = Instant::now();
    send(&mut sock, path, method);
    sock.flush().expect("flush");
    drop(sock);
    let got = reader.join().expect("reader");
    let took = start.elapsed();
    assert_eq!(got, std::fs::metadata(path).expect("size").len());
    took
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mib = env("UPLOAD_MIB", 512);
    let runs = env("UPLOAD_RUNS", 7);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("payload");
    let block: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut f = std::fs::File::create(&path).expect("create");
    for _ in 0..mib {
        f.write_all(&block).expect("write");
    }
    drop(f);
    run(&path, Method::ReadWrite); // warm the page cache
    let (mut rw, mut sf) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        for (method, out) in [(Method::ReadWrite, &mut rw), (Method::Sendfile, &mut sf)] {
            let secs = run(&path, method).as_secs_f64();
            out.push(mib as f64 / secs);
        }
    }
    let (rw, sf) = (median(rw), median(sf));
    println!("upload of {mib} MiB over loopback, median of {runs} runs:");
    println!("  read/write: {rw:8.0} MiB/s");
    println!("  sendfile:   {sf:8.0} MiB/s");
    println!("  sendfile / read-write: {:.2}", sf / rw);
}
