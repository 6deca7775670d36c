//! Upload copy cost: `sendfile(2)` against read-then-write, sending one file range over a
//! loopback TCP connection to a reader that discards it. Both in one run, alternating, so
//! the machine's load affects both alike; prints the median throughput of each and their
//! ratio.
//!
//! Run with `cargo bench -p napshare-mio --bench upload` (`UPLOAD_MIB` sets the size,
//! default 512; `UPLOAD_RUNS` the runs per method, default 7).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use napshare_core::wire::ByteRange;
use napshare_host::Upload;
use napshare_mio::send::{send_upload, Method};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Sends the whole file once by `method`; returns how long it took.
fn run(path: &std::path::Path, method: Method) -> Duration {
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
    let mut up = Upload::open(path, ByteRange::ALL, true).expect("open the file");
    let start = Instant::now();
    while !send_upload(&mut sock, &mut up, method).expect("send") {}
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
