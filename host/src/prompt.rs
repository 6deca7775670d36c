//! The interactive prompt, for when standard input and output are both a terminal:
//! line editing, history kept between runs and tab completion, with rustyline.
//!
//! Two threads serve it. The prompt thread sits in `readline` and hands every line to the
//! event loop, like the plain stdin reader does. The printer thread shows the loop's lines:
//! while the user types, rustyline's external printer clears the line being edited, prints
//! above it and draws it again, so output never garbles what is typed. It has a thread of
//! its own because that printer can block (its queue holds one message, and rustyline does
//! not take messages while the user answers a completion question): the event loop, which
//! also serves other peers' downloads, only ever puts lines in an unbounded queue.
//!
//! Progress bars are off while the prompt runs: indicatif redraws its bars by moving the
//! cursor over lines it believes it owns, rustyline redraws the edited line the same way,
//! and neither knows of the other, so the screen ends up garbled. Downloads report a line
//! at each quarter instead, as they do when output is not a terminal, and those lines go
//! through the printer like all others.
//!
//! Keys: Tab completes command words, the names of the latest search's results after
//! `DOWNLOAD`, and the names of the shared folder's files after `CREATEFILE` and
//! `DELETEFILE`; Up and Down walk the history; Ctrl-D on an empty line is end of input (the
//! client leaves); Ctrl-C clears the line, as in a shell, and on an empty line says how to
//! leave. A stop signal (SIGTERM, or SIGINT from `kill`) still leaves cleanly.
//!
//! History goes to `$NAPSHARE_HISTORY`, or `$XDG_STATE_HOME/napshare/history`, or
//! `~/.local/state/napshare/history`; an empty `NAPSHARE_HISTORY` keeps none. Every line is
//! appended as soon as it is typed, so a client that is killed keeps its history too; a
//! line that starts with a space is not kept, as in shells.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::Duration;

use rustix::termios::{tcgetattr, tcsetattr, OptionalActions, Termios};
use rustyline::completion::{Completer, Pair};
use rustyline::config::{CompletionType, Config};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::FileHistory;
use rustyline::validate::Validator;
use rustyline::{
    Cmd, ConditionalEventHandler, Context, Editor, Event, EventContext, EventHandler,
    ExternalPrinter, Helper, KeyEvent, RepeatCount,
};

use crate::lang::Lang;
use crate::Input;
use napshare_core::client::ClientEvent;
use napshare_core::command::{self, UserCommand, Verb};
use napshare_core::names::check_file_name;
use napshare_core::wire::PeerAddr;

/// What the prompt shows.
pub const PROMPT: &str = "napshare> ";

/// The variable that says where the history file is (empty: keep no history).
pub const HISTORY_ENV: &str = "NAPSHARE_HISTORY";

/// Shown when Ctrl-C is pressed on an empty line.
fn ctrl_c_hint(lang: Lang) -> &'static str {
    lang.pick(
        "(Ctrl-C clears the line; type LEAVE or press Ctrl-D to leave)",
        "(Ctrl-C apaga a linha; digite SAIR ou tecle Ctrl-D para sair)",
    )
}

/// Lines kept in the history file.
const HISTORY_SIZE: usize = 1000;

/// How long the end of the process waits for the printer to show its last lines.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Moves the cursor up a line and down again: nothing on screen. The end of the process
/// prints it to learn when rustyline has shown everything before it (see [`Drop`]).
const NO_OP: &str = "\x1b[A\n";

/// The event loop's side of a running prompt: prints lines and tells the completion what
/// the latest search found. Dropping it (when the loop is over) shows the lines still
/// queued and gives the terminal back as it was.
pub struct PromptOut {
    lines: Option<mpsc::Sender<String>>,
    found: Arc<Mutex<Vec<String>>>,
    closing: Arc<AtomicBool>,
    printed: mpsc::Receiver<()>,
    /// The terminal's settings before the prompt, for the end.
    cooked: Option<Termios>,
}

/// Starts the prompt when standard input and output are both a terminal rustyline can
/// drive; otherwise gives `send` back, for the plain line-by-line reader.
pub fn start<S>(shared_dir: &Path, lang: Lang, send: S) -> Result<PromptOut, S>
where
    S: Fn(Input) -> bool + Send + 'static,
{
    if !io::stdin().is_terminal() || !io::stdout().is_terminal() {
        return Err(send);
    }
    let found = Arc::new(Mutex::new(Vec::new()));
    let closing = Arc::new(AtomicBool::new(false));
    let empty_ctrl_c = Arc::new(AtomicBool::new(false));
    let helper = Words {
        found: Arc::clone(&found),
        shared_dir: shared_dir.to_owned(),
    };
    // A terminal rustyline cannot drive (TERM=dumb, say) has no external printer.
    let Ok((editor, printer)) = editor(helper, Arc::clone(&empty_ctrl_c)) else {
        return Err(send);
    };
    let cooked = tcgetattr(io::stdin()).ok();
    let (lines_tx, lines) = mpsc::channel();
    let (printed_tx, printed) = mpsc::channel();
    spawn_printer(printer, lines, printed_tx);
    let reader = Reader {
        editor,
        history: history_file(),
        prompt: Shown(Arc::clone(&closing)),
        empty_ctrl_c,
        lang,
    };
    spawn_reader(reader, send);
    Ok(PromptOut {
        lines: Some(lines_tx),
        found,
        closing,
        printed,
        cooked,
    })
}

impl PromptOut {
    /// Prints `text` (one or more lines) above the prompt.
    pub fn print(&self, text: &str) {
        if let Some(lines) = &self.lines {
            let _ = lines.send(format!("{text}\n"));
        }
    }

    /// Learns from an event what completion needs: the names of the latest search's results.
    pub fn observe(&self, event: &ClientEvent) {
        if let ClientEvent::SearchDone { hits, .. } = event {
            let mut names: Vec<String> = hits.iter().map(|h| h.name.clone()).collect();
            names.sort();
            names.dedup();
            *self.found.lock().unwrap_or_else(PoisonError::into_inner) = names;
        }
    }
}

impl Drop for PromptOut {
    fn drop(&mut self) {
        // The prompt stops, and draws itself empty if it is still up (an exit not asked for
        // at the prompt: a stop signal, or the server gone for good).
        self.closing.store(true, Ordering::SeqCst);
        // The printer shows what is queued and then says so; not forever, in case rustyline
        // is busy with a completion question.
        self.lines = None;
        let _ = self.printed.recv_timeout(FLUSH_TIMEOUT);
        // Rustyline may still hold the terminal: clear what was typed, turn bracketed paste
        // off and restore the settings it found, as it would on leaving `readline`.
        let mut out = io::stdout().lock();
        let _ = out.write_all(b"\r\x1b[K\x1b[?2004l");
        let _ = out.flush();
        if let Some(cooked) = &self.cooked {
            let _ = tcsetattr(io::stdin(), OptionalActions::Drain, cooked);
        }
    }
}

type Line = Editor<Words, FileHistory>;

fn editor(
    helper: Words,
    empty_ctrl_c: Arc<AtomicBool>,
) -> rustyline::Result<(Line, impl ExternalPrinter + Send + 'static)> {
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .max_history_size(HISTORY_SIZE)?
        .history_ignore_space(true)
        .auto_add_history(false)
        .build();
    let mut editor = Line::with_config(config)?;
    editor.set_helper(Some(helper));
    editor.bind_sequence(
        KeyEvent::ctrl('C'),
        EventHandler::Conditional(Box::new(CtrlC(empty_ctrl_c))),
    );
    let printer = editor.create_external_printer()?;
    Ok((editor, printer))
}

/// Shows the loop's lines, then, when they end, makes sure rustyline has drawn them all.
#[allow(clippy::disallowed_methods)] // the prompt's printer thread, see the module docs
fn spawn_printer(
    mut printer: impl ExternalPrinter + Send + 'static,
    lines: mpsc::Receiver<String>,
    printed: mpsc::Sender<()>,
) {
    std::thread::spawn(move || {
        for line in lines {
            let _ = printer.print(line);
        }
        // Rustyline queues one message; printing a second waits until it has taken the
        // first. After two no-ops, every real line has been drawn.
        let _ = printer.print(NO_OP.to_owned());
        let _ = printer.print(NO_OP.to_owned());
        let _ = printed.send(());
    });
}

/// The prompt thread's state.
struct Reader {
    editor: Line,
    history: Option<PathBuf>,
    prompt: Shown,
    empty_ctrl_c: Arc<AtomicBool>,
    /// The language of the prompt's own messages.
    lang: Lang,
}

#[allow(clippy::disallowed_methods)] // the prompt thread, see the module docs
fn spawn_reader(mut reader: Reader, send: impl Fn(Input) -> bool + Send + 'static) {
    std::thread::spawn(move || {
        reader.load_history();
        while !reader.prompt.0.load(Ordering::SeqCst) {
            match reader.editor.readline(&reader.prompt) {
                Ok(line) => {
                    reader.remember(&line);
                    // After LEAVE the client exits: leave the terminal alone from now on,
                    // so that its last lines are printed straight to it.
                    let leave = matches!(UserCommand::parse(&line), Ok(UserCommand::Leave));
                    if !send(Input::Line(line)) || leave {
                        return;
                    }
                }
                Err(ReadlineError::Interrupted) => {
                    if reader.empty_ctrl_c.swap(false, Ordering::SeqCst) {
                        println!("{}", ctrl_c_hint(reader.lang));
                    }
                }
                Err(ReadlineError::Eof) => break,
                Err(e) => {
                    let failed = reader.lang.pick(
                        "the prompt failed; leaving",
                        "o prompt falhou; saindo da rede",
                    );
                    eprintln!("napshare: {failed} ({e})");
                    break;
                }
            }
        }
        send(Input::End);
    });
}

impl Reader {
    fn load_history(&mut self) {
        let Some(path) = &self.history else { return };
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        match self.editor.load_history(path) {
            Ok(()) => {}
            Err(ReadlineError::Io(e)) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                let cannot = self
                    .lang
                    .pick("cannot read the history", "não é possível ler o histórico");
                eprintln!("napshare: {cannot} {}: {e}", path.display());
            }
        }
    }

    /// Adds a typed line to the history, and to the history file at once.
    fn remember(&mut self, line: &str) {
        if line.trim().is_empty() || !matches!(self.editor.add_history_entry(line), Ok(true)) {
            return;
        }
        let Some(path) = &self.history else { return };
        if let Err(e) = self.editor.append_history(path) {
            let cannot = self.lang.pick(
                "cannot save the history to",
                "não é possível salvar o histórico em",
            );
            eprintln!("napshare: {cannot} {}: {e}", path.display());
            // Said once: the rest of the session keeps its history in memory only.
            self.history = None;
        }
    }
}

/// Where the history is kept: see the module docs.
fn history_file() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(HISTORY_ENV) {
        return (!path.is_empty()).then(|| path.into());
    }
    let absolute = |var| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    let state = absolute("XDG_STATE_HOME")
        .or_else(|| absolute("HOME").map(|home| home.join(".local").join("state")))?;
    Some(state.join("napshare").join("history"))
}

/// The prompt text: [`PROMPT`], or nothing once the client is closing, so that a prompt
/// rustyline draws while the process ends leaves no trace.
struct Shown(Arc<AtomicBool>);

impl rustyline::Prompt for Shown {
    fn raw(&self) -> &str {
        if self.0.load(Ordering::SeqCst) {
            ""
        } else {
            PROMPT
        }
    }
}

/// Ctrl-C: rustyline's own handling (the line is dropped), noting whether it was empty.
struct CtrlC(Arc<AtomicBool>);

impl ConditionalEventHandler for CtrlC {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, ctx: &EventContext) -> Option<Cmd> {
        self.0.store(ctx.line().is_empty(), Ordering::SeqCst);
        None
    }
}

/// The completion: command words, then file names.
struct Words {
    found: Arc<Mutex<Vec<String>>>,
    shared_dir: PathBuf,
}

impl Completer for Words {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let found = || {
            self.found
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        };
        Ok(complete(&line[..pos], found, || {
            shared_names(&self.shared_dir)
        }))
    }
}

impl Hinter for Words {
    type Hint = String;
}
impl Highlighter for Words {}
impl Validator for Words {}
impl Helper for Words {}

/// The completions of the text before the cursor: where the completed part starts, and
/// what may replace it. `found` gives the latest search's names and `shared` the shared
/// folder's; each is asked only when needed.
fn complete(
    before: &str,
    found: impl FnOnce() -> Vec<String>,
    shared: impl FnOnce() -> Vec<String>,
) -> (usize, Vec<Pair>) {
    let start = before.len() - before.trim_start().len();
    let text = &before[start..];
    let Some((word, rest)) = text.split_once(char::is_whitespace) else {
        return (start, command_words(text));
    };
    // Where the argument starts: after the word and the blanks that follow it.
    let mut arg = before.len() - rest.trim_start().len();
    let names = match Verb::from_word(word) {
        Some(Verb::Download) => {
            // `DOWNLOAD peer name`: skip the peer.
            let after = &before[arg..];
            if let Some((peer, name)) = after.split_once(char::is_whitespace) {
                if peer.parse::<PeerAddr>().is_ok() {
                    arg = before.len() - name.trim_start().len();
                }
            }
            found()
        }
        Some(Verb::CreateFile | Verb::DeleteFile) => shared(),
        _ => Vec::new(),
    };
    let typed = &before[arg..];
    let pairs = names
        .into_iter()
        .filter(|name| name.starts_with(typed))
        .map(|name| Pair {
            display: name.clone(),
            replacement: name,
        })
        .collect();
    (arg, pairs)
}

/// The command words starting with `typed` (in any case), followed by a space, in the case
/// typed: `se` completes to `search `, `SE` and `Se` to `SEARCH `.
fn command_words(typed: &str) -> Vec<Pair> {
    let lower = !typed.is_empty() && !typed.chars().any(|c| c.is_ascii_uppercase());
    command::command_words()
        .map(|(word, _)| word)
        .filter(|word| word.chars().all(|c| c.is_alphabetic()))
        .filter(|word| {
            word.len() >= typed.len()
                && word.is_char_boundary(typed.len())
                && word[..typed.len()].eq_ignore_ascii_case(typed)
        })
        .map(|word| {
            let word = if lower {
                word.to_lowercase()
            } else {
                word.to_owned()
            };
            Pair {
                display: word.clone(),
                replacement: format!("{word} "),
            }
        })
        .collect()
}

/// The names of the files in the shared folder that can be shared, sorted.
fn shared_names(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| check_file_name(name).is_ok())
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completions(before: &str) -> (usize, Vec<String>) {
        let found = || vec!["my song.mp3".to_owned(), "mystery.txt".to_owned()];
        let shared = || vec!["alpha.txt".to_owned(), "beta.bin".to_owned()];
        let (start, pairs) = complete(before, found, shared);
        (start, pairs.into_iter().map(|p| p.replacement).collect())
    }

    #[test]
    fn command_words_complete_in_the_case_typed() {
        assert_eq!(completions("SE"), (0, vec!["SEARCH ".to_owned()]));
        assert_eq!(completions("  se"), (2, vec!["search ".to_owned()]));
        assert_eq!(
            completions("d"),
            (0, vec!["deletefile ".to_owned(), "download ".to_owned()])
        );
        let (_, all) = completions("");
        assert!(all.contains(&"CREATEFILE ".to_owned()), "{all:?}");
        assert!(!all.iter().any(|w| w.starts_with('?')), "{all:?}");
        assert_eq!(completions("FETCH"), (0, vec![]));
    }

    #[test]
    fn download_completes_names_from_the_latest_search() {
        assert_eq!(
            completions("DOWNLOAD my"),
            (9, vec!["my song.mp3".to_owned(), "mystery.txt".to_owned()])
        );
        assert_eq!(
            completions("download   my "),
            (11, vec!["my song.mp3".to_owned()])
        );
        // After a peer address, the name that follows it.
        assert_eq!(
            completions("DOWNLOAD 127.0.0.1:4000 mys"),
            (24, vec!["mystery.txt".to_owned()])
        );
        assert_eq!(completions("SEARCH my"), (7, vec![]));
    }

    #[test]
    fn create_and_delete_complete_shared_files() {
        assert_eq!(
            completions("DELETEFILE a"),
            (11, vec!["alpha.txt".to_owned()])
        );
        assert_eq!(
            completions("createfile "),
            (11, vec!["alpha.txt".to_owned(), "beta.bin".to_owned()])
        );
    }

    #[test]
    fn shared_names_are_the_files_that_can_be_shared() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path();
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("b.txt"), b"b").unwrap();
        std::fs::write(dir.join("a.txt"), b"a").unwrap();
        let names = shared_names(dir);
        assert_eq!(names, vec!["a.txt".to_owned(), "b.txt".to_owned()]);
    }
}
