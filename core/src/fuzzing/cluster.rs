//! The `cluster` target: the cluster's binary codec (`cluster::codec`) never panics, and
//! what it decodes is canonical; a replica takes any bytes as a KV value or a search.

use std::fmt::Debug;

use crate::cluster::codec::{CodecError, SearchRequest, ShareList, MAX_VALUE, VERSION};
use crate::cluster::{Answer, Replica};

type Decode<T> = fn(&[u8]) -> Result<T, CodecError>;
type Encode<T> = fn(&T, &mut Vec<u8>) -> Result<(), CodecError>;

/// Decodes `data` as each kind of value, then again behind a valid header of the kind its
/// first byte picks (so that the fuzzer reaches the fields without finding the header).
/// For every decode that succeeds:
///
/// - the value re-encodes, to exactly the input (the format has one encoding per value, so
///   every accepted input is canonical), and that decodes to the same value;
/// - every strict prefix of the input is `Truncated`, the input plus a byte is
///   `TrailingBytes`.
///
/// For every decode that fails, a header of another kind is `BadKind` and an unknown
/// version `BadVersion`: the decoder never guesses.
pub fn cluster(data: &[u8]) {
    check_all(data);
    if let Some((&pick, rest)) = data.split_first() {
        let mut framed = vec![1 + pick % 3, VERSION];
        framed.extend_from_slice(rest);
        check_all(&framed);
        replica(&framed);
    }
    replica(data);
}

/// A replica given `data` as a session's KV value and as a search request: it never
/// panics, a value it refuses changes nothing, and one it takes is found.
fn replica(data: &[u8]) {
    let mut replica = Replica::new();
    match replica.put("g.1", data) {
        Ok(n) => {
            assert_eq!(replica.files(), n);
            let all = SearchRequest {
                pattern: String::new(),
                limit: u32::MAX,
            };
            assert_eq!(replica.search(&all).hits.len(), n);
            assert_eq!(replica.delete("g.1"), n);
        }
        Err(_) => assert_eq!(replica.files(), 0),
    }
    let _ = replica.answer(data, &mut Vec::new());
}

fn check_all(data: &[u8]) {
    check(data, 1, ShareList::decode, ShareList::encode);
    check(data, 2, SearchRequest::decode, SearchRequest::encode);
    check(data, 3, Answer::decode, Answer::encode);
}

fn check<T: PartialEq + Debug>(data: &[u8], kind: u8, decode: Decode<T>, encode: Encode<T>) {
    let value = match decode(data) {
        Ok(v) => v,
        Err(e) => {
            match data {
                _ if data.len() > MAX_VALUE => assert_eq!(e, CodecError::TooLong),
                [] => assert_eq!(e, CodecError::Truncated),
                [k, ..] if *k != kind => assert_eq!(e, CodecError::BadKind(*k)),
                [_] => assert_eq!(e, CodecError::Truncated),
                [_, v, ..] if *v != VERSION => assert_eq!(e, CodecError::BadVersion(*v)),
                _ => {}
            }
            return;
        }
    };
    assert!(data.len() >= 2 && data[0] == kind && data[1] == VERSION);
    let mut out = Vec::new();
    encode(&value, &mut out).unwrap_or_else(|e| panic!("{value:?} decoded but encodes as {e}"));
    assert_eq!(out, data, "{value:?} re-encodes to other bytes");
    assert_eq!(decode(&out).as_ref(), Ok(&value), "decode(encode(x)) != x");
    for n in [0, 1, 2, data.len() / 2, data.len() - 1] {
        assert_eq!(
            decode(&data[..n]).err(),
            Some(CodecError::Truncated),
            "a prefix of {n} bytes"
        );
    }
    if data.len() < MAX_VALUE {
        out.push(0);
        assert_eq!(decode(&out).err(), Some(CodecError::TrailingBytes));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::codec::SharedFile;
    use crate::cluster::RemoteHit;
    use crate::hash::ContentHash;

    #[test]
    fn cluster_takes_real_values_and_junk() {
        let mut out = Vec::new();
        let list = ShareList {
            peer: "[::1]:4000".into(),
            files: vec![SharedFile {
                name: "ação.ogg".into(),
                size: u64::MAX,
                hash: Some(ContentHash([7; 32])),
            }],
        };
        list.encode(&mut out).unwrap();
        cluster(&out);
        out.clear();
        let answer = Answer {
            hits: vec![RemoteHit {
                name: "a b".into(),
                size: 0,
                peer: "10.0.0.1".into(),
                hash: None,
            }],
            more: false,
        };
        answer.encode(&mut out).unwrap();
        cluster(&out);
        cluster(&[]);
        cluster(&[2]);
        cluster(&[2, 1, 0, 0, 1, 0, 0, 0]);
        cluster(&[0xff; 64]);
    }
}
