//! The interactive prompt, driven through a pseudo-terminal as a person would use it:
//! history kept between runs, tab completion of command words and file names, output that
//! stays readable while a line is being typed, and a terminal given back as it was found
//! however the client ends (Ctrl-D, LEAVE, a stop signal).
//!
//! The screen is what a terminal emulator makes of the client's output, so the checks are
//! on what a person sees, not on the escape sequences that drew it.

use std::net::SocketAddr;
use std::path::Path;

use napshare_tests::node::{test_data, ClientProc, Runtime, ServerProc, TIMEOUT};
use napshare_tests::pty::keys::{CTRL_C, CTRL_D, ENTER, TAB, UP};
use napshare_tests::pty::PtyProc;

/// The prompt as a screen row shows it (rows are compared without trailing blanks).
const PROMPT: &str = "napshare>";

/// Starts a client on a pty whose folders are under `dir` and whose history is `history`,
/// and waits until it has joined, shared `shared` and shows its prompt.
fn client_on_pty(
    rt: Runtime,
    server: SocketAddr,
    dir: &Path,
    history: &Path,
    shared: &[(&str, &[u8])],
) -> PtyProc {
    let shared_dir = dir.join("shared");
    std::fs::create_dir_all(&shared_dir).unwrap();
    for (name, data) in shared {
        std::fs::write(shared_dir.join(name), data).unwrap();
    }
    let mut cmd = rt.command();
    cmd.arg("client")
        .arg("--server")
        .arg(server.to_string())
        .arg("--shared")
        .arg(&shared_dir)
        .arg("--downloads")
        .arg(dir.join("downloads"))
        .args(["--peer-listen", "127.0.0.1:0"])
        .env("NAPSHARE_HISTORY", history)
        .env("TERM", "xterm")
        .env_remove("LANG")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES");
    let pty = PtyProc::spawn(cmd, format!("client on a pty ({rt})"));
    pty.wait_row("joined the network at ", TIMEOUT);
    for (name, _) in shared {
        pty.wait_row(&format!("sharing {name} ("), TIMEOUT);
    }
    pty.wait_last_row(PROMPT, TIMEOUT);
    pty
}

/// Checks that the client left the network, exited with success and gave the terminal
/// back: line editing and echo on, and no prompt left on the last row.
fn expect_clean_exit(pty: &mut PtyProc) {
    let status = pty.wait_exit(TIMEOUT);
    if !status.success() {
        pty.fail(&format!("exited with {status}"));
    }
    if !pty.rows().iter().any(|r| r == "left the network") {
        pty.fail("no \"left the network\" row");
    }
    if pty.last_row().starts_with(PROMPT) {
        pty.fail("a prompt is left on the screen");
    }
    if !pty.terminal_is_cooked() {
        pty.fail("the terminal is still in raw mode");
    }
}

fn history_is_kept_between_runs(rt: Runtime) {
    let server = ServerProc::start(rt);
    let dir = tempfile::tempdir().unwrap();
    // A folder that does not exist yet: the client makes it.
    let history = dir.path().join("state").join("napshare").join("history");
    let alpha: &[(&str, &[u8])] = &[("alpha.txt", b"alpha")];

    let mut first = client_on_pty(rt, server.addr(), dir.path(), &history, alpha);
    first.type_text(&format!("SEARCH alpha{ENTER}"));
    first.wait_row("search \"alpha\": 1 result", TIMEOUT);
    first.wait_last_row(PROMPT, TIMEOUT);
    // Ctrl-D on an empty line: end of input, the client leaves.
    first.type_text(CTRL_D);
    expect_clean_exit(&mut first);
    let saved = std::fs::read_to_string(&history).unwrap();
    assert!(saved.lines().any(|l| l == "SEARCH alpha"), "{saved:?}");

    // A new run: Up recalls the command, Enter runs it again.
    let mut second = client_on_pty(rt, server.addr(), dir.path(), &history, alpha);
    second.type_text(UP);
    second.wait_last_row(&format!("{PROMPT} SEARCH alpha"), TIMEOUT);
    second.type_text(ENTER);
    second.wait_row("search \"alpha\": 1 result", TIMEOUT);
    second.wait_last_row(PROMPT, TIMEOUT);
    // A stop signal while the prompt waits: the client leaves cleanly, its last lines
    // are shown, and the terminal is restored.
    second.signal("TERM");
    expect_clean_exit(&mut second);
}

fn tab_completes_commands_and_file_names(rt: Runtime) {
    let server = ServerProc::start(rt);
    let photo = test_data(300_000, 7);
    let _seeder = ClientProc::joined(rt.other(), server.addr(), &[("holiday photo.jpg", &photo)]);
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history");
    let mut pty = client_on_pty(rt, server.addr(), dir.path(), &history, &[]);

    // A command word, in the case typed.
    pty.type_text(&format!("sea{TAB}"));
    pty.wait_last_row(&format!("{PROMPT} search"), TIMEOUT);
    pty.type_text(&format!("holiday{ENTER}"));
    pty.wait_row("search \"holiday\": 1 result", TIMEOUT);
    pty.wait_last_row(PROMPT, TIMEOUT);

    // A name from that search, spaces and all; then the download works.
    pty.type_text(&format!("DOWNLOAD ho{TAB}"));
    pty.wait_last_row(&format!("{PROMPT} DOWNLOAD holiday photo.jpg"), TIMEOUT);
    pty.type_text(ENTER);
    pty.wait_row("downloaded holiday photo.jpg: 300000 bytes", TIMEOUT);
    let got = std::fs::read(dir.path().join("downloads").join("holiday photo.jpg")).unwrap();
    assert!(
        got == photo,
        "the downloaded file differs from the shared one"
    );

    // A file of the shared folder after CREATEFILE.
    std::fs::write(dir.path().join("shared").join("notes.txt"), b"notes").unwrap();
    pty.wait_last_row(PROMPT, TIMEOUT);
    pty.type_text(&format!("CREATEFILE no{TAB}"));
    pty.wait_last_row(&format!("{PROMPT} CREATEFILE notes.txt"), TIMEOUT);
    pty.type_text(ENTER);
    pty.wait_row("sharing notes.txt (5 bytes)", TIMEOUT);

    // Two words start with D: a second Tab lists them.
    pty.wait_last_row(PROMPT, TIMEOUT);
    pty.type_text(&format!("D{TAB}{TAB}"));
    pty.wait_row("DELETEFILE", TIMEOUT);
    let rows = pty.rows();
    if !rows
        .iter()
        .any(|r| r.contains("DELETEFILE") && r.contains("DOWNLOAD"))
    {
        pty.fail("the second Tab did not list DELETEFILE and DOWNLOAD");
    }
    pty.type_text(CTRL_C);
    pty.wait_last_row(PROMPT, TIMEOUT);

    pty.type_text(&format!("LEAVE{ENTER}"));
    expect_clean_exit(&mut pty);
}

fn output_does_not_garble_the_line_being_typed(rt: Runtime) {
    let mut server = ServerProc::start(rt);
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history");
    let mut pty = client_on_pty(rt, server.addr(), dir.path(), &history, &[]);

    // Typed ahead in one go (as a paste would be): the first line runs, the rest waits on
    // the prompt.
    pty.type_text(&format!("HELP{ENTER}SEAR"));
    pty.wait_row("Tab completes", TIMEOUT);
    let typing = format!("{PROMPT} SEAR");
    pty.wait_last_row(&typing, TIMEOUT);
    // Something happens while the user types: the server goes away.
    server.kill();
    let lost = pty.wait_row("lost the server", TIMEOUT);
    if !lost.starts_with("lost the server") {
        pty.fail(&format!("the message shares its row: {lost:?}"));
    }
    // The half-typed line is drawn again below the message, as it was.
    pty.wait_last_row(&typing, TIMEOUT);
    let rows = pty.rows();
    let at = |text: &str| rows.iter().rposition(|r| r.starts_with(text));
    assert!(at("lost the server") < at(&typing), "{rows:#?}");

    // Ctrl-C drops the line without running it, as a shell does.
    pty.type_text(CTRL_C);
    pty.wait_last_row(PROMPT, TIMEOUT);
    // On an empty line it says how to leave.
    pty.type_text(CTRL_C);
    pty.wait_row("press Ctrl-D to leave", TIMEOUT);
    pty.wait_last_row(PROMPT, TIMEOUT);
    if pty.rows().iter().any(|r| r.contains("unknown command")) {
        pty.fail("Ctrl-C ran the line");
    }

    // Typing goes on: the next line runs.
    pty.type_text(&format!("SEARCH x{ENTER}"));
    pty.wait_row("error: ", TIMEOUT);
    pty.wait_last_row(PROMPT, TIMEOUT);
    pty.type_text(CTRL_D);
    pty.wait_exit(TIMEOUT);
    if !pty.terminal_is_cooked() {
        pty.fail("the terminal is still in raw mode");
    }
}

fn download_by_result_number(rt: Runtime) {
    let server = ServerProc::start(rt);
    let files: Vec<(String, Vec<u8>)> = (1..=4)
        .map(|i| (format!("track {i}.ogg"), test_data(10_000 * i, i as u64)))
        .collect();
    let shared: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    let _seeder = ClientProc::joined(rt.other(), server.addr(), &shared);
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history");
    let mut pty = client_on_pty(rt, server.addr(), dir.path(), &history, &[]);

    pty.type_text(&format!("SEARCH track{ENTER}"));
    pty.wait_row("search \"track\": 4 results", TIMEOUT);
    pty.wait_last_row(PROMPT, TIMEOUT);
    // Result 3 is whatever the table numbers 3: its row ends with the name.
    let rows = pty.rows();
    let row = rows
        .iter()
        .find(|r| r.trim_start().starts_with("3  "))
        .unwrap_or_else(|| pty.fail("no row numbered 3"));
    let Some((name, data)) = files.iter().find(|(n, _)| row.ends_with(n.as_str())) else {
        pty.fail(&format!("row 3 names no shared file: {row:?}"));
    };
    pty.type_text(&format!("DOWNLOAD 3{ENTER}"));
    pty.wait_row(&format!("downloaded {name}: {} bytes", data.len()), TIMEOUT);
    let got = std::fs::read(dir.path().join("downloads").join(name)).unwrap();
    assert!(&got == data, "result 3 downloaded other bytes");
    // Only that result was fetched.
    let saved = std::fs::read_dir(dir.path().join("downloads"))
        .unwrap()
        .count();
    assert_eq!(saved, 1);
    pty.wait_last_row(PROMPT, TIMEOUT);
    pty.type_text(&format!("LEAVE{ENTER}"));
    expect_clean_exit(&mut pty);
}

/// Runs every test on one runtime, in a module named after it.
macro_rules! on_runtime {
    ($module:ident, $rt:expr) => {
        mod $module {
            #[test]
            fn history_is_kept_between_runs() {
                super::history_is_kept_between_runs($rt)
            }

            #[test]
            fn tab_completes_commands_and_file_names() {
                super::tab_completes_commands_and_file_names($rt)
            }

            #[test]
            fn download_by_result_number() {
                super::download_by_result_number($rt)
            }

            #[test]
            fn output_does_not_garble_the_line_being_typed() {
                super::output_does_not_garble_the_line_being_typed($rt)
            }
        }
    };
}

on_runtime!(mio, napshare_tests::node::Runtime::Mio);
on_runtime!(smol, napshare_tests::node::Runtime::Smol);
