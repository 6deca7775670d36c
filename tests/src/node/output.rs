//! Reading a process's output: line by line, with deadlines, and everything it printed
//! for failure messages.

use std::io::{BufRead, BufReader, Read};
use std::process::Child;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// What a line of output must look like: a substring (`&str`, `String`) or a predicate
/// (any `Fn(&str) -> bool`).
pub trait LineMatch {
    fn matches(&self, line: &str) -> bool;
    /// How to name what was expected in a failure message.
    fn describe(&self) -> String;
}

impl LineMatch for &str {
    fn matches(&self, line: &str) -> bool {
        line.contains(*self)
    }
    fn describe(&self) -> String {
        format!("a line containing {self:?}")
    }
}

impl LineMatch for String {
    fn matches(&self, line: &str) -> bool {
        line.contains(self.as_str())
    }
    fn describe(&self) -> String {
        format!("a line containing {self:?}")
    }
}

impl<F: Fn(&str) -> bool> LineMatch for F {
    fn matches(&self, line: &str) -> bool {
        self(line)
    }
    fn describe(&self) -> String {
        "a line matching the predicate".to_owned()
    }
}

/// A predicate with a name for failure messages: `described("a search summary", |l| ..)`.
pub struct Described<F> {
    what: String,
    pred: F,
}

/// Names `pred` for failure messages.
pub fn described<F: Fn(&str) -> bool>(what: impl Into<String>, pred: F) -> Described<F> {
    Described {
        what: what.into(),
        pred,
    }
}

impl<F: Fn(&str) -> bool> LineMatch for Described<F> {
    fn matches(&self, line: &str) -> bool {
        (self.pred)(line)
    }
    fn describe(&self) -> String {
        self.what.clone()
    }
}

/// A line that starts with `prefix`.
pub fn starts_with(prefix: impl Into<String>) -> impl LineMatch {
    let prefix = prefix.into();
    described(format!("a line starting with {prefix:?}"), move |l| {
        l.starts_with(&prefix)
    })
}

/// Why no line came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoLine {
    Timeout,
    /// The process closed its standard output (it exited).
    Eof,
}

/// The standard output of a child, line by line, and its standard error, collected.
#[derive(Debug)]
pub struct Output {
    pub(super) who: String,
    lines: Receiver<String>,
    /// Every line taken so far, in order.
    seen: Vec<String>,
    stderr: Arc<Mutex<Vec<u8>>>,
    /// The thread collecting standard error, until it has all of it.
    pub(super) stderr_reader: Option<thread::JoinHandle<()>>,
    eof: bool,
}

impl Output {
    /// Starts the reader threads for `child`'s piped standard output and error.
    pub(super) fn capture(who: String, child: &mut Child) -> Self {
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf);
                        let line = line.strip_suffix('\n').unwrap_or(&line);
                        if tx.send(line.to_owned()).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut stderr_reader = None;
        if let Some(mut pipe) = child.stderr.take() {
            let sink = Arc::clone(&stderr);
            stderr_reader = Some(thread::spawn(move || {
                let mut buf = [0; 4096];
                loop {
                    match pipe.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => sink.lock().unwrap().extend_from_slice(&buf[..n]),
                    }
                }
            }));
        }
        Self {
            who,
            lines,
            seen: Vec::new(),
            stderr,
            stderr_reader,
            eof: false,
        }
    }

    /// The next line, waiting at most `timeout`.
    pub fn next_line(&mut self, timeout: Duration) -> Result<String, NoLine> {
        if self.eof {
            return Err(NoLine::Eof);
        }
        match self.lines.recv_timeout(timeout) {
            Ok(line) => {
                self.seen.push(line.clone());
                Ok(line)
            }
            Err(RecvTimeoutError::Timeout) => Err(NoLine::Timeout),
            Err(RecvTimeoutError::Disconnected) => {
                self.eof = true;
                Err(NoLine::Eof)
            }
        }
    }

    /// Skips lines until one matches `wanted` and returns it; fails the test, showing all
    /// output so far, if none comes within `timeout` or the process ends first.
    pub fn expect_line(&mut self, wanted: impl LineMatch, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_line(left) {
                Ok(line) if wanted.matches(&line) => return line,
                Ok(_) => {}
                Err(why) => self.fail(&format!(
                    "expected {} within {timeout:?}, but {}",
                    wanted.describe(),
                    match why {
                        NoLine::Timeout => "none came",
                        NoLine::Eof => "the process closed its output",
                    }
                )),
            }
        }
    }

    /// Reads until the process closes its output (it exited) and returns the lines read.
    pub fn read_to_end(&mut self, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let from = self.seen.len();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_line(left) {
                Ok(_) => {}
                Err(NoLine::Eof) => return self.seen[from..].to_vec(),
                Err(NoLine::Timeout) => self.fail(&format!(
                    "expected the output to end within {timeout:?}, but it did not"
                )),
            }
        }
    }

    /// Every line read so far.
    pub fn seen(&self) -> &[String] {
        &self.seen
    }

    /// The standard error collected so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Everything the process printed so far, for failure messages.
    pub fn transcript(&self) -> String {
        format!(
            "--- stdout of {} (lines read so far) ---\n{}\n--- stderr ---\n{}",
            self.who,
            self.seen.join("\n"),
            self.stderr()
        )
    }

    /// Fails the test with `msg` and the transcript.
    pub fn fail(&self, msg: &str) -> ! {
        panic!("{}: {msg}\n{}", self.who, self.transcript())
    }
}
