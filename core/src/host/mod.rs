//! Blocking host glue shared by both runtimes: the command line, the shared and downloads
//! folders, and standard input.
//!
//! This is not part of the sans-IO core proper (it touches the file system and spawns the
//! one stdin thread), but it holds no protocol decisions and both runtimes need exactly the
//! same code; keeping it here, behind the `host` feature, is what keeps the runtime crates
//! free of duplicated logic. Sockets and clocks stay in the runtimes: even the listeners are bound through
//! [`Runtime::bind`], so no socket type is named here.

pub mod cli;
mod disk;
mod drain;
mod front;
mod log;
mod run;
mod say;
mod stdin;
mod ui;

pub use disk::{hash_file, resolve_server, scan_shared, Disk, Upload};
pub use drain::{drain, ClientIo};
pub use front::{feed, ClientSetup, Input};
pub use log::{init_logs, log_no_room, log_opened, log_server_event};
pub use run::{main, Runtime};
pub use say::{lang_from_env, Say};
pub use stdin::on_stop_signal;
pub use ui::Ui;
