//! Blocking host glue shared by both runtimes: the command line, the shared and downloads
//! folders (and the watch on the shared folder), and standard input (plain lines, or the
//! interactive prompt on a terminal).
//!
//! It touches the file system and starts the threads that read standard input or run the
//! prompt, wait for stop signals and watch the shared folder, so it is not part of the
//! sans-IO core (napshare-core, which it depends on and which never depends on it). It
//! makes no protocol decisions; both runtimes need exactly this code, and keeping it in one
//! crate is what keeps the runtime crates free of duplicated logic. It also holds every
//! text a user reads ([`text`], [`lang`]): the core hands over plain data. Sockets and
//! clocks stay in the runtimes: even the listeners are bound through [`Runtime::bind`], so
//! no socket type is named here.

pub mod cli;
mod disk;
mod front;
mod hash_cache;
mod help;
pub mod lang;
mod log;
mod node;
mod oneshot;
mod prompt;
mod run;
mod say;
mod server_node;
mod stdin;
pub mod text;
mod ui;
mod watch;

pub use disk::{hash_file, resolve_server, scan_shared, Disk, Upload};
pub use front::{ClientSetup, Input};
pub use hash_cache::{HashCache, CACHE_ENV};
pub use log::{init_logs, log_no_room, log_opened, log_server_event};
pub use node::{turn, ClientNode, Happened, Node, Sockets};
pub use oneshot::Script;
pub use run::{main, Runtime};
pub use say::{lang_from_env, Say};
pub use server_node::{ServerNode, ServerSetup};
pub use stdin::on_stop_signal;
pub use ui::{ScanBar, Ui};
pub use watch::{watch_shared, SETTLE};
