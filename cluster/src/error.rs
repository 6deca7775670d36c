//! What can stop a gateway or a replica from starting or running. Bad input from NATS
//! (a malformed value or request) is never an error here: it is logged and skipped.

/// Why a gateway or replica could not start (or a replica stopped).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no NATS server URL given")]
    NoUrls,
    #[error("NATS: {0}")]
    Connect(String),
    #[error("KV bucket {bucket}: {message}")]
    Bucket { bucket: String, message: String },
    #[error("partition {partition}/{partitions}: K must be below P, and P at least 1")]
    BadPartition { partition: u32, partitions: u32 },
    #[error(
        "the cluster has {existing} partitions (key `partitions` in bucket `napshare`), \
         not {wanted}: start every replica with the same P, or empty the buckets first"
    )]
    PartitionsMismatch { existing: String, wanted: u32 },
    #[error("KV: {0}")]
    Kv(String),
    #[error("subscribe to {subject}: {message}")]
    Subscribe { subject: String, message: String },
    #[error("runtime: {0}")]
    Runtime(#[from] std::io::Error),
}
