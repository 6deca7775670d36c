//! The wire format: line framing, index-server messages and peer `GET` requests.
//!
//! Every parser is pure and borrowing: fields point into the caller's buffer. Every encoder
//! appends to a caller's `Vec<u8>`.

mod escape;
mod ext;
mod get;
mod line;
mod message;
mod peer;

pub use escape::{escape, unescape};
pub use ext::{split_join, ExtReply, ExtRequest, PeerError, PeerReply, PeerRequest, EXT_TOKEN};
pub use get::{ByteRange, Get, GetLine};
pub use line::{decode_line, LineBuf, LineError, MAX_LINE};
pub use message::{encode_file, has_control, parse_size, ParseError, Reply, Request};
pub use peer::{PeerAddr, CLASSIC_PEER_PORT, CLASSIC_SERVER_PORT};
