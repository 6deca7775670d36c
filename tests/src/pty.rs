//! A process on a pseudo-terminal, for tests of what a person at a terminal sees.
//!
//! The child's standard input, output and error are the terminal's side of a new pty; the
//! test holds the other side: what it writes is typed, and what the child draws is fed to
//! a terminal emulator (vt100), so a test reads the screen as a person would see it, with
//! the child's cursor movements and line clearing already applied. Every wait has a
//! deadline and a failing one shows the screen.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
use rustix::termios::{tcgetattr, tcsetwinsize, LocalModes, Winsize};

/// The screen's size: wide enough that no line the tests print wraps.
pub const ROWS: u16 = 40;
pub const COLS: u16 = 160;

/// Keys, as a terminal sends them.
pub mod keys {
    pub const ENTER: &str = "\r";
    pub const TAB: &str = "\t";
    pub const UP: &str = "\x1b[A";
    pub const CTRL_C: &str = "\x03";
    pub const CTRL_D: &str = "\x04";
}

/// A child process whose terminal is a pty this side reads and types into.
pub struct PtyProc {
    who: String,
    child: Child,
    master: File,
    screen: Arc<(Mutex<Screen>, Condvar)>,
}

struct Screen {
    parser: vt100::Parser,
    /// The pty closed: the child and everything it started have exited.
    closed: bool,
}

impl PtyProc {
    /// Starts `cmd` with a new pty as its standard input, output and error.
    pub fn spawn(mut cmd: Command, who: impl Into<String>) -> Self {
        let who = who.into();
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).expect("open a pty");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        let name = ptsname(&master, Vec::new()).expect("ptsname");
        let winsize = Winsize {
            ws_row: ROWS,
            ws_col: COLS,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        tcsetwinsize(&master, winsize).expect("set the pty's size");
        let terminal = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc_o_noctty())
            .open(name.to_str().expect("a pty name is UTF-8"))
            .expect("open the terminal side of the pty");
        let stdio = || Stdio::from(terminal.try_clone().expect("dup the terminal"));
        cmd.stdin(stdio()).stdout(stdio()).stderr(stdio());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {who}: {e}"));
        // Only the child holds the terminal side now: when it exits, reads here end.
        drop(cmd);
        drop(terminal);
        let master = File::from(master);
        let screen = Arc::new((
            Mutex::new(Screen {
                parser: vt100::Parser::new(nonzero(ROWS), nonzero(COLS), 0),
                closed: false,
            }),
            Condvar::new(),
        ));
        let mut reader = master.try_clone().expect("dup the pty");
        let shared = Arc::clone(&screen);
        thread::spawn(move || {
            let mut buf = [0; 4096];
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    // EIO once the terminal side is closed by everyone.
                    Err(_) => 0,
                };
                let (lock, changed) = &*shared;
                let mut screen = lock.lock().unwrap();
                if n == 0 {
                    screen.closed = true;
                } else {
                    screen.parser.process(&buf[..n]);
                }
                changed.notify_all();
                if n == 0 {
                    return;
                }
            }
        });
        Self {
            who,
            child,
            master,
            screen,
        }
    }

    /// Types `text` (see [`keys`] for keys that are not characters).
    pub fn type_text(&mut self, text: &str) {
        if let Err(e) = self.master.write_all(text.as_bytes()) {
            self.fail(&format!("cannot type {text:?}: {e}"));
        }
    }

    /// What the screen shows: its rows, trailing blanks removed.
    pub fn rows(&self) -> Vec<String> {
        let screen = self.screen.0.lock().unwrap();
        screen
            .parser
            .screen()
            .rows(0, COLS)
            .map(|row| row.trim_end().to_owned())
            .collect()
    }

    /// The screen as text, for messages.
    pub fn screen_text(&self) -> String {
        let rows = self.rows();
        let last = rows
            .iter()
            .rposition(|r| !r.is_empty())
            .map_or(0, |i| i + 1);
        rows[..last].join("\n")
    }

    /// The last row that is not blank.
    pub fn last_row(&self) -> String {
        self.rows()
            .into_iter()
            .rev()
            .find(|r| !r.is_empty())
            .unwrap_or_default()
    }

    /// Waits until `pred` holds for the screen's rows; fails the test, showing the
    /// screen, after `timeout`.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&[String]) -> bool,
    ) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let (lock, changed) = &*self.screen;
        let mut screen = lock.lock().unwrap();
        loop {
            let rows: Vec<String> = screen
                .parser
                .screen()
                .rows(0, COLS)
                .map(|row| row.trim_end().to_owned())
                .collect();
            if pred(&rows) {
                return rows;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                drop(screen);
                self.fail(&format!("waited {timeout:?} for {what}"));
            }
            screen = changed.wait_timeout(screen, left).unwrap().0;
        }
    }

    /// Waits until some row contains `text`, and returns that row.
    pub fn wait_row(&self, text: &str, timeout: Duration) -> String {
        let rows = self.wait_for(&format!("a row with {text:?}"), timeout, |rows| {
            rows.iter().any(|r| r.contains(text))
        });
        rows.into_iter().find(|r| r.contains(text)).unwrap()
    }

    /// Waits until the last row that is not blank is `row`.
    pub fn wait_last_row(&self, row: &str, timeout: Duration) {
        self.wait_for(&format!("the last row to be {row:?}"), timeout, |rows| {
            rows.iter()
                .rev()
                .find(|r| !r.is_empty())
                .map(String::as_str)
                == Some(row)
        });
    }

    /// Whether the terminal is back in its ordinary (line-editing, echoing) mode.
    pub fn terminal_is_cooked(&self) -> bool {
        let modes = tcgetattr(&self.master)
            .expect("read the pty's settings")
            .local_modes;
        modes.contains(LocalModes::ICANON | LocalModes::ECHO)
    }

    /// Waits for the child to exit and for the pty to close (everything drawn).
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                Ok(None) => self.fail(&format!("still running after {timeout:?}")),
                Err(e) => self.fail(&format!("cannot wait for it: {e}")),
            }
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let (lock, changed) = &*self.screen;
        let screen = lock.lock().unwrap();
        let (screen, _) = changed
            .wait_timeout_while(screen, left, |s| !s.closed)
            .unwrap();
        if !screen.closed {
            drop(screen);
            self.fail("exited, but its terminal is still open");
        }
        drop(screen);
        status
    }

    /// Sends the child a signal by name (`TERM`, `INT`, ...).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Fails the test with `msg` and the screen.
    pub fn fail(&self, msg: &str) -> ! {
        panic!(
            "{}: {msg}\n--- screen ---\n{}\n--------------",
            self.who,
            self.screen_text()
        )
    }
}

impl Drop for PtyProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `O_NOCTTY`: opening the terminal side must not make it the test's controlling terminal.
fn libc_o_noctty() -> i32 {
    rustix::fs::OFlags::NOCTTY.bits() as i32
}

fn nonzero(n: u16) -> std::num::NonZeroU16 {
    std::num::NonZeroU16::new(n).expect("a screen has rows and columns")
}
