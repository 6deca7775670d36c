//! The subcommands for scripts: `search` and `get` run a client with a [`Goal`] (the core
//! sequences join, search or download, and leave, and picks the exit status), `share` runs
//! a client that reads no commands, and `completions` prints a shell's completion script.
//!
//! What a one-shot client prints: its result on standard output (a table or the saved
//! path, or with `--json` exactly one JSON object), everything else on standard error.
//! The result is printed once the client has exited, from what its events recorded and
//! the exit status it chose.

use std::io::{self, Write as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use clap::CommandFactory;
use serde::Serialize;

use crate::text::results_table;
use napshare_core::client::{exit, ClientConfig, ClientEvent, Goal, SearchHit};

use crate::cli::{Cli, ClientArgs, GetArgs, SearchArgs, ShareArgs};
use crate::lang::{Lang, Localize};
use crate::run::{client, Runtime};
use crate::{hash_file, lang_from_env, resolve_server, ClientSetup};

/// How a one-shot client reports ([`ClientSetup::script`]).
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// The result as JSON.
    pub json: bool,
    /// What the client's events said, read once it has exited.
    record: Arc<Mutex<Record>>,
}

/// What a one-shot client's events said that its result is made of.
#[derive(Debug, Default)]
struct Record {
    search: Option<Vec<SearchHit>>,
    saved: Option<Saved>,
    /// Why it did not work, as last reported.
    problem: Option<String>,
}

#[derive(Debug)]
struct Saved {
    name: String,
    bytes: u64,
    elapsed: Duration,
    path: PathBuf,
}

impl Script {
    fn record(&self) -> std::sync::MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Shows one event (on standard error) and records what the result needs.
    /// Records what the result needs and tells the user, in `lang`, on standard error;
    /// the recorded problem stays English, for the JSON that scripts read.
    pub(super) fn show(&mut self, event: &ClientEvent, progress: &mut Option<u64>, lang: Lang) {
        let mut record = self.record();
        match event {
            ClientEvent::SearchDone { hits, .. } => {
                record.search = Some(hits.clone());
                return;
            }
            ClientEvent::DownloadDone {
                name,
                bytes,
                elapsed,
                path,
            } => {
                record.saved = Some(Saved {
                    name: name.clone(),
                    bytes: *bytes,
                    elapsed: *elapsed,
                    path: path.clone(),
                });
            }
            ClientEvent::DownloadFailed { .. }
            | ClientEvent::ServerLost { .. }
            | ClientEvent::Error(_) => record.problem = Some(event.in_lang(Lang::En).to_string()),
            ClientEvent::DownloadStarted { .. } => *progress = Some(0),
            ClientEvent::DownloadProgress {
                done,
                size: Some(size),
                ..
            } if *size > 0 => {
                // A line per quarter of the file, as the interactive client does off a
                // terminal.
                let quarter = done * 4 / size;
                let last = progress.get_or_insert(0);
                if quarter <= *last || quarter >= 4 {
                    return;
                }
                *last = quarter;
            }
            ClientEvent::DownloadProgress { .. } => return,
            _ => {}
        }
        eprintln!("{}", event.in_lang(lang));
    }
}

// ---- the subcommands ----

/// `napshare search`.
pub(super) fn search<R: Runtime>(args: &SearchArgs) -> ExitCode {
    let goal = Goal::Search {
        pattern: args.pattern.clone(),
    };
    let script = Script {
        json: args.json,
        ..Script::default()
    };
    let status = one_shot::<R>(&args.server, goal, PathBuf::from("."), script.clone());
    match status {
        Ok(status @ (exit::OK | exit::NOT_FOUND)) => {
            let hits = script.record().search.take().unwrap_or_default();
            let lang = lang_from_env();
            if hits.is_empty() {
                let none = lang.pick("no results", "nenhum resultado");
                eprintln!("search {:?}: {none}", args.pattern);
            }
            let text = if script.json {
                search_json(&args.pattern, &hits)
            } else if hits.is_empty() {
                String::new()
            } else {
                // The interactive client's table, so people read one format.
                results_table(&hits, lang) + "\n"
            };
            finish(status, &text)
        }
        // The client's events said why, on standard error already.
        Ok(status) => failed(
            Failure::Shown(status, script.record().problem.take()),
            script.json,
        ),
        Err(msg) => failed(Failure::Before(msg), script.json),
    }
}

/// `napshare get`.
pub(super) fn get<R: Runtime>(args: &GetArgs) -> ExitCode {
    let script = Script {
        json: args.json,
        ..Script::default()
    };
    let out = std::fs::create_dir_all(&args.out)
        .and_then(|()| std::path::absolute(&args.out))
        .map_err(|e| {
            let cannot = lang_from_env().pick("cannot use folder", "não é possível usar a pasta");
            format!("{cannot} {}: {e}", args.out.display())
        });
    let goal = Goal::Get {
        name: args.name.clone(),
    };
    let status = out.and_then(|dir| one_shot::<R>(&args.server, goal, dir, script.clone()));
    let saved = match status {
        Ok(exit::OK) => script.record().saved.take(),
        Ok(status) => {
            let problem = script.record().problem.take();
            return failed(Failure::Shown(status, problem), script.json);
        }
        Err(msg) => return failed(Failure::Before(msg), script.json),
    };
    let Some(saved) = saved else {
        let msg = "the download was not reported".to_owned();
        return failed(Failure::Before(msg), script.json);
    };
    if !script.json {
        return finish(exit::OK, &format!("{}\n", saved.path.display()));
    }
    match hash_file(&saved.path) {
        Ok(pieces) => finish(exit::OK, &get_json(&saved, &pieces.root().to_string())),
        Err(e) => {
            let msg = format!("cannot read {}: {e}", saved.path.display());
            failed(Failure::Before(msg), true)
        }
    }
}

/// `napshare share`: a client on `DIR` that reads no commands; a stop signal leaves.
pub(super) fn share<R: Runtime>(args: &ShareArgs, lang: Lang) -> Result<ExitCode, String> {
    if !args.dir.is_dir() {
        let not = lang.pick("is not a folder", "não é uma pasta");
        return Err(format!("{} {not}", args.dir.display()));
    }
    let client_args = ClientArgs {
        server: args.server.clone(),
        shared: args.dir.clone(),
        // Nothing is downloaded without commands; the shared folder exists already.
        downloads: args.dir.clone(),
        peer_listen: args.peer_listen,
        no_watch: args.no_watch,
    };
    // Built by the same code as an interactive client's, so whatever that client does
    // with its shared folder (such as watching it) `share` does too.
    client::<R>(&client_args, false, lang)
}

/// `napshare completions SHELL`: the script on standard output.
pub(super) fn completions(bin: &'static str, shell: clap_complete::Shell) -> ExitCode {
    let mut cmd = Cli::command().name(bin).bin_name(bin);
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, bin, &mut out);
    finish(exit::OK, &String::from_utf8_lossy(&out))
}

/// Runs a client with `goal` that shares nothing, until it exits; returns its status.
fn one_shot<R: Runtime>(
    server: &str,
    goal: Goal,
    downloads_dir: PathBuf,
    script: Script,
) -> Result<i32, String> {
    let server =
        resolve_server(server).map_err(|e| format!("cannot resolve server {server}: {e}"))?;
    // A file server for JOIN's port; it shares nothing, so loopback is enough.
    let listener = R::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .map_err(|e| format!("cannot start the file server: {e}"))?;
    let peer_port = R::local_addr(&listener).map_err(|e| e.to_string())?.port();
    let config = ClientConfig {
        server,
        // Nothing is shared, so nothing is ever read from here.
        shared_dir: downloads_dir.clone(),
        downloads_dir,
        peer_port,
        goal: Some(goal),
    };
    let setup = ClientSetup {
        config,
        files: Vec::new(),
        stdin: false,
        script: Some(script),
        watch: false,
        lang: lang_from_env(),
    };
    R::run_client(listener, setup).map_err(|e| e.to_string())
}

/// Prints `text` on standard output and exits with `status`.
fn finish(status: i32, text: &str) -> ExitCode {
    let mut stdout = io::stdout().lock();
    if stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::from(exit::ERROR as u8);
    }
    ExitCode::from(u8::try_from(status).unwrap_or(exit::ERROR as u8))
}

/// Why a one-shot command did not work.
enum Failure {
    /// The client exited with this status; its events told the user why (the last
    /// problem they reported, if any).
    Shown(i32, Option<String>),
    /// It could not run, or its result could not be read ([`exit::ERROR`]).
    Before(String),
}

/// Reports a failure: the reason on standard error (unless the client's events said it)
/// and, with `json`, as `{"error": ..., "status": ...}` on standard output.
fn failed(failure: Failure, json: bool) -> ExitCode {
    let (status, problem) = match failure {
        Failure::Shown(status, Some(problem)) => (status, problem),
        Failure::Shown(status, None) => {
            let problem = "stopped before it was done".to_owned();
            let said = lang_from_env().pick(problem.as_str(), "interrompido antes de terminar");
            eprintln!("napshare: {said}");
            (status, problem)
        }
        Failure::Before(problem) => {
            eprintln!("napshare: {problem}");
            (exit::ERROR, problem)
        }
    };
    let text = if json {
        error_json(&problem, status)
    } else {
        String::new()
    };
    finish(status, &text)
}

// ---- output ----

/// One result of `search --json`.
#[derive(Serialize)]
struct HitJson<'a> {
    name: &'a str,
    size: u64,
    peer: &'a str,
    /// `null` for a classic peer, which gives no hash.
    hash: Option<String>,
}

/// `{"pattern": ..., "results": [{"name", "size", "peer", "hash"}]}` and a line end.
fn search_json(pattern: &str, hits: &[SearchHit]) -> String {
    #[derive(Serialize)]
    struct Search<'a> {
        pattern: &'a str,
        results: Vec<HitJson<'a>>,
    }
    let results = hits
        .iter()
        .map(|h| HitJson {
            name: &h.name,
            size: h.size,
            peer: &h.peer,
            hash: h.hash.map(|hash| hash.to_string()),
        })
        .collect();
    line(&Search { pattern, results })
}

/// `{"name", "path", "size", "hash", "elapsed"}` and a line end; `elapsed` in seconds, to
/// the millisecond.
fn get_json(saved: &Saved, hash: &str) -> String {
    #[derive(Serialize)]
    struct Get<'a> {
        name: &'a str,
        path: std::borrow::Cow<'a, str>,
        size: u64,
        hash: &'a str,
        elapsed: f64,
    }
    line(&Get {
        name: &saved.name,
        path: saved.path.to_string_lossy(),
        size: saved.bytes,
        hash,
        elapsed: saved.elapsed.as_millis() as f64 / 1000.0,
    })
}

/// `{"error", "status"}` and a line end.
fn error_json(error: &str, status: i32) -> String {
    line(&serde_json::json!({ "error": error, "status": status }))
}

/// `value` as JSON on a line of its own.
fn line(value: &impl Serialize) -> String {
    let mut text = serde_json::to_string(value).expect("plain structs serialize");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use napshare_core::hash::ContentHash;

    #[test]
    fn search_results_as_json() {
        let hits = [
            SearchHit {
                name: "my \"song\".mp3".into(),
                peer: "127.0.0.1:4000".into(),
                size: 9,
                hash: Some(ContentHash([0xab; 32])),
            },
            SearchHit {
                name: "old.txt".into(),
                peer: "10.0.0.2".into(),
                size: 0,
                hash: None,
            },
        ];
        let text = search_json("so", &hits);
        let ab = "ab".repeat(32);
        assert_eq!(
            text,
            format!(
                "{{\"pattern\":\"so\",\"results\":[\
                 {{\"name\":\"my \\\"song\\\".mp3\",\"size\":9,\"peer\":\"127.0.0.1:4000\",\"hash\":\"{ab}\"}},\
                 {{\"name\":\"old.txt\",\"size\":0,\"peer\":\"10.0.0.2\",\"hash\":null}}]}}\n"
            )
        );
        assert_eq!(search_json("", &[]), "{\"pattern\":\"\",\"results\":[]}\n");
    }

    #[test]
    fn a_saved_file_as_json() {
        let saved = Saved {
            name: "a.txt".into(),
            bytes: 5,
            elapsed: Duration::from_millis(1500),
            path: "/tmp/in/a.txt".into(),
        };
        assert_eq!(
            get_json(&saved, "00"),
            "{\"name\":\"a.txt\",\"path\":\"/tmp/in/a.txt\",\"size\":5,\"hash\":\"00\",\"elapsed\":1.5}\n"
        );
    }
}
