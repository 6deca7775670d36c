//! A KV bucket read in order with direct gets, without a consumer.
//!
//! Why not a KV watch: a watch is an ephemeral consumer, and nats-server 2.9.10 may place
//! a new one on a server that is down. After one of three servers died, every watch and
//! key listing created afterwards stayed silent (missed heartbeats, recreated every 10 s)
//! until that server came back: a replica whose watch had to be recreated saw no change
//! at all (measured with the three-node cluster of `tests/tests/cluster.rs`). A direct get
//! is answered by any live server holding the stream, leader or not, so reading the stream
//! by sequence keeps working with one server lost. It costs one request per change, and a
//! poll while nothing changes.

use async_nats::jetstream::kv::Operation;
use async_nats::jetstream::message::StreamMessage;
use async_nats::jetstream::stream::{DirectGetErrorKind, Stream};
use async_nats::jetstream::{self};
use bytes::Bytes;

use crate::Error;

/// One change of the bucket.
pub(crate) struct Change {
    pub key: String,
    pub operation: Operation,
    pub value: Bytes,
}

/// Reads bucket `bucket`'s changes in order, from its first message on.
pub(crate) struct Tail {
    stream: Stream<()>,
    /// Every key's subject: `$KV.<bucket>.>`.
    filter: String,
    /// What a key's subject starts with: `$KV.<bucket>.`.
    prefix: String,
    /// The sequence to read from next.
    next: u64,
}

impl Tail {
    pub async fn open(js: &jetstream::Context, bucket: &str) -> Result<Tail, Error> {
        let stream = js
            .get_stream_no_info(format!("KV_{bucket}"))
            .await
            .map_err(|e| Error::Kv(format!("stream of bucket {bucket}: {e}")))?;
        Ok(Tail {
            stream,
            filter: format!("$KV.{bucket}.>"),
            prefix: format!("$KV.{bucket}."),
            next: 1,
        })
    }

    /// The next change, or `None` when there is none yet (the reader is caught up).
    pub async fn next(&mut self) -> Result<Option<Change>, Error> {
        let found = self
            .stream
            .direct_get_next_for_subject(&self.filter, Some(self.next))
            .await;
        let message = match found {
            Ok(m) => m,
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::Kv(format!("read of {}: {e}", self.filter))),
        };
        let message = StreamMessage::try_from(message.message)
            .map_err(|e| Error::Kv(format!("read of {}: {e}", self.filter)))?;
        self.next = message.sequence + 1;
        let key = message
            .subject
            .strip_prefix(self.prefix.as_str())
            .unwrap_or(&message.subject)
            .to_owned();
        let operation = match message.headers.get("KV-Operation").map(|v| v.as_str()) {
            Some("DEL") => Operation::Delete,
            Some("PURGE") => Operation::Purge,
            _ => Operation::Put,
        };
        Ok(Some(Change {
            key,
            operation,
            value: message.payload,
        }))
    }
}
