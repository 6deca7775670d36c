//! Hostile input against a running server and a client's file server, for each runtime:
//! thousands of random and hand-picked bad lines. Afterwards the server still answers a
//! valid search correctly, no client lost a file, and a canary file outside the shared
//! folder never appeared in any reply. And a client that pipelines more searches at once
//! than their replies could ever wait for is dropped without holding up anyone else.

use napshare_core::server::{ServerConfig, SOCKET_BUFFER_MAX};
use napshare_tests::node::{show, ClientProc, Runtime, ServerProc, Wire};

const CANARY: &[u8] = b"CANARY-7f3a: this must never leave its folder";

/// Hand-picked lines that broke, or could break, a naive server.
fn hand_picked() -> Vec<Vec<u8>> {
    let mut lines: Vec<Vec<u8>> = [
        "CREATEFILE",
        "CREATEFILE ",
        "CREATEFILE x",
        "CREATEFILE x -1",
        "CREATEFILE x +5",
        "CREATEFILE x 99999999999999999999999999",
        "CREATEFILE x 1e9",
        "CREATEFILE x 0x10",
        "CREATEFILE ../../etc/passwd 10",
        "CREATEFILE /etc/passwd 10",
        "CREATEFILE ..\\..\\windows 3",
        "CREATEFILE . 1",
        "CREATEFILE .. 1",
        "CREATEFILE ... 1",
        "DELETEFILE",
        "DELETEFILE ../../etc/passwd",
        "SEARCH",
        "SEARCH ../",
        "GET ../../etc/passwd 0",
        "GET /etc/passwd 0",
        "JOIN",
        "JOIN 1.2.3.4:0",
        "JOIN 1.2.3.4:99999",
        "JOIN [::1]:1",
        "ADDFILE a 1 zz",
        "ADDFILE %zz 1 00",
        "FIND %",
        "PING",
        "LEAVE now",
        "leave",
        " LEAVE",
        "\t",
        "\r",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    lines.push(b"CREATEFILE a\0b 5".to_vec());
    lines.push(b"SEARCH \xff\xfe".to_vec());
    lines.push(b"CREATEFILE \xc3\x28 1".to_vec());
    lines.push([b"SEARCH ".as_slice(), &[b'a'; 10_000]].concat());
    lines.push([b"CREATEFILE ".as_slice(), &[b'b'; 5000], b" 1"].concat());
    lines
}

/// `n` random lines: command words, separators, digits, dots, slashes, NUL, bad UTF-8.
fn random_lines(n: usize, mut x: u64) -> Vec<Vec<u8>> {
    const WORDS: &[&[u8]] = &[
        b"JOIN",
        b"CREATEFILE",
        b"DELETEFILE",
        b"SEARCH",
        b"LEAVE",
        b"GET",
        b"ADDFILE",
        b"FIND",
        b"XGET",
        b"PING",
        b" ",
        b"  ",
        b"..",
        b"/",
        b"\\",
        b"\0",
        b"\xff",
        b"-",
        b"1",
        b"0",
        b"18446744073709551616",
        b"a",
        b"alpha.txt",
        b"%",
        b"%00",
        b"\r",
    ];
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|_| {
            let parts = 1 + next() % 6;
            (0..parts)
                .flat_map(|_| WORDS[(next() % WORDS.len() as u64) as usize].to_vec())
                .collect()
        })
        .collect()
}

fn battery(rt: Runtime) {
    let server = ServerProc::start(rt);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("canary.txt"), CANARY).unwrap();
    let addr = server.addr().to_string();
    let mut a = ClientProc::start_in(
        rt,
        &addr,
        dir.path(),
        &[("alpha.txt", b"alpha"), ("beta song.mp3", b"beta")],
    );
    a.wait_joined();
    let mut seen: Vec<u8> = Vec::new();

    // The index server: each batch on a fresh connection, joined or not, in one write.
    let mut lines = hand_picked();
    lines.extend(random_lines(3000, 0x9e37_79b9_7f4a_7c15));
    for (k, batch) in lines.chunks(50).enumerate() {
        let mut w = Wire::connect(server.addr());
        if k % 2 == 0 {
            w.send("JOIN 127.0.0.1\n");
        }
        let mut bytes = Vec::new();
        for line in batch {
            bytes.extend_from_slice(line);
            bytes.push(b'\n');
        }
        w.send(&bytes);
        w.shutdown_write();
        seen.extend(w.read_to_end());
    }

    // A's file server: traversal, absolute paths, separators, dots, NUL, junk.
    let mut gets: Vec<Vec<u8>> = [
        "GET ../canary.txt 0",
        "GET ../../canary.txt 0",
        "GET ../shared/../canary.txt 0",
        "GET canary.txt 0",
        "GET ..\\canary.txt 0",
        "GET . 0",
        "GET .. 0",
        "GET ... 0",
        "GET  0",
        "XGET 0000000000000000000000000000000000000000000000000000000000000000 0 10",
        "XPIECES zz",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    gets.push(format!("GET {}/canary.txt 0", dir.path().display()).into_bytes());
    gets.push(b"GET alpha.txt\0 0".to_vec());
    gets.extend(
        random_lines(300, 42)
            .into_iter()
            .map(|l| [b"GET ".as_slice(), &l].concat()),
    );
    for get in gets {
        let mut w = Wire::connect(a.peer_addr());
        w.send([get.as_slice(), b"\n"].concat());
        w.shutdown_write();
        seen.extend(w.read_to_end());
    }

    // The canary never left its folder.
    assert!(
        !seen.windows(CANARY.len()).any(|w| w == CANARY),
        "the canary appeared in a reply: {}",
        show(&seen[..seen.len().min(200)])
    );
    // The server still answers correctly, and nobody lost a file.
    let mut b = ClientProc::joined(rt.other(), server.addr(), &[]);
    let mut names: Vec<String> = b.search("").into_iter().map(|h| h.name).collect();
    names.sort();
    assert_eq!(names, ["alpha.txt", "beta song.mp3"]);
    b.download(&a.peer_addr().to_string(), "alpha.txt").unwrap();
    a.send("SEARCH beta");
    a.expect("beta song.mp3");
}

#[test]
fn mio() {
    battery(Runtime::Mio);
}

#[test]
fn smol() {
    battery(Runtime::Smol);
}

/// A client writes 64 KiB of `SEARCH`es for a word in 1,000 names at once and reads
/// nothing: their replies (about 200 MB) are never built. The server drops it as too slow
/// and goes on answering the others.
fn greedy_pipeline(rt: Runtime) {
    let server = ServerProc::start(rt);
    let mut sharer = Wire::connect(server.addr());
    let mut files = String::from("JOIN 127.0.0.1:5000\n");
    for i in 0..1000 {
        files += &format!("CREATEFILE song number {i:04}.mp3 123456\n");
    }
    sharer.send(&files);
    sharer.read_until(b"CONFIRMCREATEFILE song number 0999.mp3\n");
    let mut greedy = Wire::connect(server.addr());
    greedy.send("JOIN 127.0.0.1:5001\n");
    greedy.expect("CONFIRMJOIN\n");
    greedy.send("SEARCH song\n".repeat(5400));
    // Closed, with no more replies than the limit on what may wait for one client.
    let got = greedy.read_to_end();
    let limit = ServerConfig::default().max_queued + SOCKET_BUFFER_MAX;
    assert!(
        got.len() <= limit,
        "{} bytes for the greedy client",
        got.len()
    );
    let reply = {
        sharer.send("SEARCH number 0007\n");
        sharer.read_until(b"ENDSEARCH\n")
    };
    assert_eq!(
        String::from_utf8_lossy(&reply),
        "FILE song number 0007.mp3 127.0.0.1:5000 123456\nENDSEARCH\n"
    );
}

#[test]
fn greedy_pipeline_mio() {
    greedy_pipeline(Runtime::Mio);
}

#[test]
fn greedy_pipeline_smol() {
    greedy_pipeline(Runtime::Smol);
}
