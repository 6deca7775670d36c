//! The seed's users speak Portuguese: a client started with `LANG=pt_BR.UTF-8` takes the
//! Portuguese command words and answers in Portuguese, on each runtime, next to an English
//! client (every other process runs in the `C` locale). Numbered results too: `BAIXAR 2`
//! fetches result 2 of the latest search.

use std::fs;

use napshare_tests::node::{hit, starts_with, test_data, ClientProc, Runtime, ServerProc};

fn speaks_portuguese(runtime: Runtime) {
    let server = ServerProc::start(runtime.other());
    let song = test_data(3 * 1024 * 1024 + 17, 7);
    let mut a = ClientProc::joined(
        runtime.other(),
        server.addr(),
        &[("canção.mp3", &song), ("notas.txt", b"la la la")],
    );
    let mut b = ClientProc::start_env(
        runtime,
        server.addr(),
        &[("meu.txt", b"oi")],
        &[("LANG", "pt_BR.UTF-8")],
    );
    b.expect(format!("entrou na rede em {}", server.addr()));
    b.expect("compartilhando meu.txt (2 bytes)");

    // Results are numbered in a table whose header is in Portuguese.
    b.send("BUSCAR a");
    let mut hits = b.read_results("busca \"a\": ");
    let n = 1 + hits.iter().position(|h| h.name == "canção.mp3").unwrap();
    hits.sort();
    let pa = a.peer_addr();
    assert_eq!(
        hits,
        [hit("canção.mp3", pa, song.len()), hit("notas.txt", pa, 8)]
    );
    let seen = b.out.seen();
    let header = &seen[seen.len() - 3];
    for word in ["#", "tamanho", "peer", "cópias", "nome"] {
        assert!(header.contains(word), "{header:?}");
    }
    // The size is read at a glance, with a decimal comma, and exactly.
    let row = &seen[seen.len() - 3 + n];
    assert!(
        row.starts_with(&format!("  {n}  3,0 MiB (3145745 B)")),
        "{row:?}"
    );
    assert!(row.ends_with("  canção.mp3"), "{row:?}");

    // A number picks a result.
    b.send(&format!("baixar {n}"));
    b.expect("baixando canção.mp3 de 1 peer (3145745 bytes)");
    b.expect(starts_with("baixado canção.mp3: 3145745 bytes em "));
    assert!(fs::read(b.downloads_dir().join("canção.mp3")).unwrap() == song);

    // Errors and help.
    b.send("PEGAR x");
    b.expect("erro: comando desconhecido `PEGAR`");
    b.expect("comandos:");
    b.expect("BAIXAR N");
    b.send("COMPARTILHAR fantasma.txt");
    b.expect("erro: não é possível compartilhar fantasma.txt: esse arquivo não está na pasta compartilhada");
    // The seed's words work in Portuguese too, and Portuguese words in English.
    b.send("DELETEFILE meu.txt");
    b.expect("deixou de compartilhar meu.txt");
    a.send("BUSCAR meu");
    assert_eq!(a.read_search("meu"), []);
    a.send("AJUDA");
    a.expect("commands:");
    a.expect("(BAIXAR)");
    b.send("SAIR");
    b.expect("saiu da rede");
    let status = b.wait_exit(napshare_tests::node::TIMEOUT);
    assert!(status.success(), "{status}");
    a.leave();
}

mod mio {
    #[test]
    fn speaks_portuguese() {
        super::speaks_portuguese(super::Runtime::Mio);
    }
}

mod smol {
    #[test]
    fn speaks_portuguese() {
        super::speaks_portuguese(super::Runtime::Smol);
    }
}
