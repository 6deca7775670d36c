//! Entry points for the fuzz targets in `fuzz/` and for the corpus replay test that runs
//! them on stable (`tests/tests/fuzz_corpus.rs`).
//!
//! Each function takes arbitrary bytes, must never panic on any of them, and asserts the
//! properties the rest of the crate promises: a panic here is a bug in the core (or in the
//! property written here), never bad input.
//!
//! - [`codec`]: the line framing and message parsers agree with themselves however the
//!   bytes are split, and everything that decodes re-encodes to the same message.
//! - [`server`]: the index server, driven by several connections, replies byte for byte
//!   and reports events as the reference [`model`] says, keeps its index consistent and
//!   equal to the model's, only ever sends well-formed replies that were asked for, and
//!   forgets every file once every connection is closed. It takes the time of the run as
//!   an argument, like every state machine here: the core reads no clock.
//! - [`cluster`]: the cluster's binary codec decodes any bytes without panicking, and
//!   what it decodes re-encodes to exactly those bytes and decodes to the same value.
//! - [`get_request`]: `GET` lines parse without panicking and their ranges clamp inside the
//!   file.
//!
//! [`model`] is public: `tests/tests/server_model.rs` checks the server against it too.

mod cluster;
mod codec;
mod get_request;
pub mod model;
mod server;

pub use cluster::cluster;
pub use codec::codec;
pub use get_request::get_request;
pub use server::{server, SESSION_MAGIC};

/// The seed's transcript (PROTOCOL-classic.md), which every target must take.
#[cfg(test)]
const TRANSCRIPT: &[u8] = b"JOIN 127.0.0.1\nCREATEFILE alpha.txt 100\nSEARCH alpha\n\
    SEARCH nomatch\nDELETEFILE never.txt\nLEAVE\n";
