//! Real napshare processes on loopback, for end-to-end tests.
//!
//! Every process is the `napshare-node` binary of this package with `NAPSHARE_RUNTIME` set
//! to its [`Runtime`], so one test can mix runtimes. Servers listen on `127.0.0.1:0` and
//! clients' file servers too (never the classic fixed ports 1234/1235, which a closed test
//! could leave unusable for a minute); each client gets its own temporary shared and
//! downloads folders. Standard output is read line by line on a background thread, and
//! every wait has a deadline: a test that fails says what it waited for and shows
//! everything the process printed until then. Processes are killed when dropped.
//!
//! Every process runs in the `C` locale (`LANG=C`, no `LC_ALL` or `LC_MESSAGES`), so it
//! speaks English whatever the tester's locale; [`ClientProc::start_env`] sets others.
//!
//! [`Wire`] is a raw TCP connection for speaking the classic protocol by hand.

mod client;
mod cluster;
mod command;
mod contents;
mod hits;
mod output;
mod process;
mod runtime;
mod server;
mod wire;

use std::time::Duration;

pub use client::ClientProc;
pub use cluster::{search_names, search_until, ClusterNet};
pub use command::NodeProc;
pub use contents::test_data;
pub use hits::{hit, parse_hit, Hit};
pub use output::{described, starts_with, Described, LineMatch, NoLine, Output};
pub use runtime::{c_locale, node_binary, Mix, Runtime};
pub use server::ServerProc;
pub use wire::{show, Wire, SEED_TRANSCRIPT};

/// How long any single wait may take before the test fails. Generous: a loaded machine
/// with two cores running several test binaries at once is slow, and a passing test never
/// waits this long.
pub const TIMEOUT: Duration = Duration::from_secs(20);
