//! Blocking host glue shared by both runtimes: the command line, the shared and downloads
//! folders (and the watch on the shared folder), and standard input (plain lines, or the
//! interactive prompt on a terminal).
//!
//! This is not part of the sans-IO core proper (it touches the file system and spawns the
//! threads that read standard input or run the prompt, wait for stop signals and watch the
//! shared folder), but it holds no protocol decisions and both runtimes need exactly the
//! same code; keeping it here, behind the `host` feature, is what keeps the runtime crates
//! free of duplicated logic. Sockets and clocks stay in the runtimes: even the listeners are bound through
//! [`Runtime::bind`], so no socket type is named here.

pub mod cli;
mod disk;
mod drain;
mod front;
mod hash_cache;
mod help;
mod log;
mod oneshot;
mod prompt;
mod run;
mod say;
mod stdin;
mod ui;
mod watch;

pub use disk::{hash_file, resolve_server, scan_shared, Answer, Disk, Upload};
pub use drain::{drain, ClientIo};
pub use front::{feed, ClientSetup, Input};
pub use hash_cache::{HashCache, CACHE_ENV};
pub use log::{init_logs, log_no_room, log_opened, log_server_event};
pub use oneshot::{json_string, Script};
pub use run::{main, Runtime};
pub use say::{lang_from_env, Say};
pub use stdin::on_stop_signal;
pub use ui::{ScanBar, Ui};
pub use watch::{watch_shared, SETTLE};
