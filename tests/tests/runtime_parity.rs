//! The two runtimes are one server on the wire: the same scripted session, fed to a mio
//! server and to a smol server, gets byte-identical replies on every connection.

use napshare_core::hash::ContentHash;
use napshare_tests::node::{show, Runtime, ServerProc, Wire};

/// One step of the session: bytes on a connection, then how to tell the reply is over.
enum Until {
    /// Classic sync: a search that finds nothing ends the reply.
    Classic,
    /// Extension sync.
    Ext,
    /// The server closes the connection.
    Eof,
}

fn script() -> Vec<(usize, Vec<u8>, Until)> {
    let hash = ContentHash([0x5a; 32]);
    let long = format!("SEARCH {}\n", "x".repeat(5000));
    vec![
        (0, b"JOIN 127.0.0.1\n".to_vec(), Until::Classic),
        (1, b"JOIN 10.9.9.9:4000 NAPSHARE/1\n".to_vec(), Until::Ext),
        (
            0,
            b"CREATEFILE alpha.txt 100\r\nCREATEFILE my song.mp3 5\n\n".to_vec(),
            Until::Classic,
        ),
        (
            1,
            format!("ADDFILE a%C3%A7%C3%A3o%20x.ogg 7 {hash}\nADDFILE bad\n").into_bytes(),
            Until::Ext,
        ),
        (
            0,
            b"SEARCH a\nSEARCH nomatch\nBOGUS 1 2\n".to_vec(),
            Until::Classic,
        ),
        (1, b"FIND \nFIND song\nSEARCH o\n".to_vec(), Until::Ext),
        (
            0,
            format!("{long}SEARCH alpha\n").into_bytes(),
            Until::Classic,
        ),
        (2, b"SEARCH before join\n".to_vec(), Until::Eof),
        (
            1,
            b"DELETEFILE my song.mp3\nDELFILE x\nLEAVE\n".to_vec(),
            Until::Eof,
        ),
        (
            0,
            b"SEARCH \nDELETEFILE alpha.txt\nSEARCH \nLEAVE\n".to_vec(),
            Until::Eof,
        ),
    ]
}

/// Runs the script against a fresh server of `rt`; returns what each connection received.
fn session(rt: Runtime) -> Vec<Vec<u8>> {
    let server = ServerProc::start(rt);
    let mut conns: Vec<Wire> = (0..3).map(|_| Wire::connect(server.addr())).collect();
    let mut got = vec![Vec::new(); conns.len()];
    for (k, bytes, until) in script() {
        let w = &mut conns[k];
        w.send(&bytes);
        let reply = match until {
            Until::Classic => {
                w.send(b"SEARCH zz-sync-zz\n");
                w.read_until(b"NORESULT\nENDSEARCH\n")
            }
            Until::Ext => {
                w.send(b"FIND zz-sync-zz\n");
                w.read_until(b"ENDFIND 0\n")
            }
            Until::Eof => w.read_to_end(),
        };
        got[k].extend(reply);
    }
    got
}

#[test]
fn mio_and_smol_servers_send_the_same_bytes() {
    let mio = session(Runtime::Mio);
    let smol = session(Runtime::Smol);
    for (k, (a, b)) in mio.iter().zip(&smol).enumerate() {
        assert_eq!(
            a,
            b,
            "connection {k}:\nmio:  {}\nsmol: {}",
            show(a),
            show(b)
        );
    }
    // The session did reach every kind of reply.
    let all = String::from_utf8_lossy(&mio.concat()).into_owned();
    for part in [
        "CONFIRMJOIN\n",
        "CONFIRMJOIN NAPSHARE/1 20\n",
        "FILE alpha.txt 127.0.0.1 100\n",
        "FOUND ação%20x.ogg 127.0.0.1:4000 7",
        "ERROR ",
        "CONFIRMLEAVE\n",
    ] {
        assert!(all.contains(part), "missing {part:?} in {all}");
    }
}
