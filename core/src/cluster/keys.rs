//! Where a session's share list lives in the cluster: its KV key and its partition.
//!
//! A key is `<gateway>.<session>`: the gateway that holds the client's connection, then
//! the server's id for the session. Gateway ids hold no `.`, so the gateway of a key is
//! everything before its first `.`; that is how a replica drops the sessions of a gateway
//! whose lease ended.

/// The KV key of `session` on `gateway` (an id without `.`).
pub fn session_key(gateway: &str, session: u64) -> String {
    format!("{gateway}.{session}")
}

/// The gateway part of a session key; `None` for a key not made by [`session_key`].
pub fn gateway_of(key: &str) -> Option<&str> {
    let (gateway, session) = key.split_once('.')?;
    let ok =
        !gateway.is_empty() && !session.is_empty() && session.bytes().all(|b| b.is_ascii_digit());
    ok.then_some(gateway)
}

/// The partition of `key` among `partitions` (at least 1): a stable hash, the same in
/// every process and build, so that gateways and replicas agree without talking.
pub fn partition_of(key: &str, partitions: u32) -> u32 {
    let digest = blake3::hash(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_bytes()[..8]);
    (u64::from_le_bytes(first) % u64::from(partitions.max(1))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_their_gateway() {
        let key = session_key("g0123abcd", 42);
        assert_eq!(key, "g0123abcd.42");
        assert_eq!(gateway_of(&key), Some("g0123abcd"));
        for bad in ["", "g", ".1", "g.", "g.x1", "g.1.2"] {
            assert_eq!(gateway_of(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn partitions_are_stable_and_spread() {
        // Pinned: a change would send sessions to other partitions than older builds.
        let pinned: Vec<u32> = (0..6)
            .map(|s| partition_of(&session_key("g0", s), 16))
            .collect();
        assert_eq!(pinned, [6, 3, 2, 11, 4, 8]);
        let mut counts = [0usize; 4];
        for s in 0..4000 {
            counts[partition_of(&session_key("gabc", s), 4) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
        assert_eq!(partition_of("anything", 1), 0);
        assert_eq!(partition_of("anything", 0), 0);
    }
}
