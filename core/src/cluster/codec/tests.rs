//! The codec's errors one by one, round trips of any value, and the pinned bytes of
//! version 1.

use proptest::prelude::*;

use super::*;

fn share_list() -> ShareList {
    ShareList {
        peer: "10.0.0.7".into(),
        files: vec![
            SharedFile {
                name: "a.mp3".into(),
                size: 300,
                hash: None,
            },
            SharedFile {
                name: "b".into(),
                size: 1,
                hash: Some(ContentHash([0xab; 32])),
            },
        ],
    }
}

fn search() -> SearchRequest {
    SearchRequest {
        pattern: "ab".into(),
        limit: 5,
    }
}

fn answer() -> Answer {
    Answer {
        hits: vec![RemoteHit {
            name: "x".into(),
            size: 2,
            peer: "10.0.0.7:4000".into(),
            hash: None,
        }],
        more: true,
    }
}

fn bytes_of<T>(value: &T, encode: fn(&T, &mut Vec<u8>) -> Result<(), CodecError>) -> Vec<u8> {
    let mut out = Vec::new();
    encode(value, &mut out).expect("encodes");
    out
}

/// The exact bytes of version 1. If this fails, the format changed: bump [`VERSION`] (and
/// keep reading the old one, or say why not) rather than edit these bytes.
#[test]
fn golden_bytes_of_version_1() {
    let mut want = vec![1, 1, 8, 0];
    want.extend_from_slice(b"10.0.0.7");
    want.extend_from_slice(&[2, 0, 0, 0, 5, 0]);
    want.extend_from_slice(b"a.mp3");
    want.extend_from_slice(&[0x2c, 1, 0, 0, 0, 0, 0, 0, 0]);
    want.extend_from_slice(&[1, 0, b'b', 1, 0, 0, 0, 0, 0, 0, 0, 1]);
    want.extend_from_slice(&[0xab; 32]);
    assert_eq!(bytes_of(&share_list(), ShareList::encode), want);
    assert_eq!(ShareList::decode(&want), Ok(share_list()));

    let want = [2, 1, 2, 0, b'a', b'b', 5, 0, 0, 0];
    assert_eq!(bytes_of(&search(), SearchRequest::encode), want);
    assert_eq!(SearchRequest::decode(&want), Ok(search()));

    let mut want = vec![
        3, 1, 1, 1, 0, 0, 0, 1, 0, b'x', 2, 0, 0, 0, 0, 0, 0, 0, 13, 0,
    ];
    want.extend_from_slice(b"10.0.0.7:4000");
    want.push(0);
    assert_eq!(bytes_of(&answer(), Answer::encode), want);
    assert_eq!(Answer::decode(&want), Ok(answer()));
}

#[test]
fn encoders_append() {
    let mut out = vec![0xee];
    search().encode(&mut out).unwrap();
    assert_eq!(out[0], 0xee);
    assert_eq!(SearchRequest::decode(&out[1..]), Ok(search()));
}

#[test]
fn every_strict_prefix_is_truncated_and_an_extra_byte_is_trailing() {
    let values = [
        bytes_of(&share_list(), ShareList::encode),
        bytes_of(&search(), SearchRequest::encode),
        bytes_of(&answer(), Answer::encode),
    ];
    for v in &values {
        for n in 0..v.len() {
            let p = &v[..n];
            let e = CodecError::Truncated;
            match v[0] {
                1 => assert_eq!(ShareList::decode(p), Err(e), "{n}"),
                2 => assert_eq!(SearchRequest::decode(p), Err(e), "{n}"),
                _ => assert_eq!(Answer::decode(p), Err(e), "{n}"),
            }
        }
        let mut long = v.clone();
        long.push(0);
        let e = CodecError::TrailingBytes;
        match v[0] {
            1 => assert_eq!(ShareList::decode(&long), Err(e)),
            2 => assert_eq!(SearchRequest::decode(&long), Err(e)),
            _ => assert_eq!(Answer::decode(&long), Err(e)),
        }
    }
}

#[test]
fn kinds_and_versions_are_checked_never_guessed() {
    let list = bytes_of(&share_list(), ShareList::encode);
    assert_eq!(SearchRequest::decode(&list), Err(CodecError::BadKind(1)));
    assert_eq!(Answer::decode(&list), Err(CodecError::BadKind(1)));
    assert_eq!(Kind::of(&list), Ok(Kind::ShareList));
    assert_eq!(Kind::of(&[9, 1]), Err(CodecError::BadKind(9)));
    assert_eq!(Kind::of(&[]), Err(CodecError::Truncated));
    let mut newer = list.clone();
    newer[1] = 2;
    assert_eq!(ShareList::decode(&newer), Err(CodecError::BadVersion(2)));
    newer[1] = 0;
    assert_eq!(ShareList::decode(&newer), Err(CodecError::BadVersion(0)));
}

#[test]
fn text_must_be_utf8_and_fit() {
    let bad = [2, 1, 1, 0, 0xff, 0, 0, 0, 0];
    assert_eq!(SearchRequest::decode(&bad), Err(CodecError::NotUtf8));
    // A string length over the limit is refused before its bytes are looked for.
    let over = (MAX_STRING as u16 + 1).to_le_bytes();
    let bad = [2, 1, over[0], over[1]];
    assert_eq!(SearchRequest::decode(&bad), Err(CodecError::TooLong));
    let long = SearchRequest {
        pattern: "x".repeat(MAX_STRING + 1),
        limit: 1,
    };
    assert_eq!(long.encode(&mut Vec::new()), Err(CodecError::TooLong));
    let mut list = share_list();
    list.peer = "1".repeat(MAX_PEER + 1);
    assert_eq!(list.encode(&mut Vec::new()), Err(CodecError::TooLong));
    let bad = [1, 1, MAX_PEER as u8 + 1, 0];
    assert_eq!(ShareList::decode(&bad), Err(CodecError::TooLong));
}

#[test]
fn a_value_is_at_most_max_value_bytes() {
    assert_eq!(
        ShareList::decode(&vec![1; MAX_VALUE + 1]),
        Err(CodecError::TooLong)
    );
    // 400 files of 4,000-byte names: 1.6 MB, under MAX_FILES but over MAX_VALUE.
    let files = (0..400)
        .map(|i| SharedFile {
            name: format!("{i:04}{}", "n".repeat(3996)),
            size: 1,
            hash: None,
        })
        .collect();
    let big = ShareList {
        peer: "10.0.0.7".into(),
        files,
    };
    let mut out = vec![7];
    assert_eq!(big.encode(&mut out), Err(CodecError::TooLong));
    assert_eq!(out, [7], "a failed encode leaves the buffer as it was");
}

#[test]
fn counts_are_capped_and_checked_against_the_bytes_left() {
    let file = SharedFile {
        name: "a".into(),
        size: 0,
        hash: None,
    };
    let list = ShareList {
        peer: "p".into(),
        files: vec![file; MAX_FILES + 1],
    };
    assert_eq!(list.encode(&mut Vec::new()), Err(CodecError::TooManyFiles));
    let mut bad = vec![1, 1, 1, 0, b'p'];
    bad.extend_from_slice(&(MAX_FILES as u32 + 1).to_le_bytes());
    assert_eq!(ShareList::decode(&bad), Err(CodecError::TooManyFiles));
    // A huge count with a few bytes behind it is refused before any allocation.
    let mut bad = vec![3, 1, 0];
    bad.extend_from_slice(&(MAX_FILES as u32).to_le_bytes());
    bad.extend_from_slice(&[0; 64]);
    assert_eq!(Answer::decode(&bad), Err(CodecError::Truncated));
    bad = vec![3, 1, 0];
    bad.extend_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(Answer::decode(&bad), Err(CodecError::TooManyFiles));
}

#[test]
fn flags_are_0_or_1() {
    let mut bad = bytes_of(&answer(), Answer::encode);
    bad[2] = 2;
    assert_eq!(Answer::decode(&bad), Err(CodecError::BadFlag));
    let mut bad = bytes_of(&answer(), Answer::encode);
    *bad.last_mut().unwrap() = 2;
    assert_eq!(Answer::decode(&bad), Err(CodecError::BadFlag));
}

#[test]
fn names_peers_and_patterns_are_checked_both_ways() {
    // Any name a client may register is carried (unsafe ones are the downloader's to
    // refuse); only an empty one is not a name.
    for name in ["..", "a/b", "a\nb"] {
        let mut list = share_list();
        list.files[0].name = name.into();
        let bytes = bytes_of(&list, ShareList::encode);
        assert_eq!(ShareList::decode(&bytes), Ok(list));
    }
    let mut list = share_list();
    list.files[0].name = String::new();
    assert_eq!(list.encode(&mut Vec::new()), Err(CodecError::BadName));
    // The same bytes forged past the encoder.
    let mut bad = vec![1, 1, 1, 0, b'p', 1, 0, 0, 0, 0, 0];
    bad.extend_from_slice(&[0; 9]);
    assert_eq!(ShareList::decode(&bad), Err(CodecError::BadName));
    for peer in ["", "a b", "a\n", "é"] {
        let mut a = answer();
        a.hits[0].peer = peer.into();
        assert_eq!(a.encode(&mut Vec::new()), Err(CodecError::BadPeer));
        let mut bad = vec![1, 1, peer.len() as u8, 0];
        bad.extend_from_slice(peer.as_bytes());
        bad.extend_from_slice(&[0; 4]);
        assert_eq!(
            ShareList::decode(&bad),
            Err(CodecError::BadPeer),
            "{peer:?}"
        );
    }
    let p = SearchRequest {
        pattern: "a\rb".into(),
        limit: 1,
    };
    assert_eq!(p.encode(&mut Vec::new()), Err(CodecError::BadPattern));
    let bad = [2, 1, 3, 0, b'a', b'\r', b'b', 0, 0, 0, 0];
    assert_eq!(SearchRequest::decode(&bad), Err(CodecError::BadPattern));
}

fn name() -> impl Strategy<Value = String> {
    ".{1,24}".prop_filter("a name", |n| check_name(n).is_ok())
}

fn peer() -> impl Strategy<Value = String> {
    "[0-9a-f.:\\[\\]]{1,47}"
}

fn hash() -> impl Strategy<Value = Option<ContentHash>> {
    prop::option::of(prop::array::uniform32(any::<u8>()).prop_map(ContentHash))
}

proptest! {
    #[test]
    fn share_lists_round_trip(
        peer in peer(),
        files in prop::collection::vec((name(), any::<u64>(), hash()), 0..20),
    ) {
        let files = files
            .into_iter()
            .map(|(name, size, hash)| SharedFile { name, size, hash })
            .collect();
        let v = ShareList { peer, files };
        let bytes = bytes_of(&v, ShareList::encode);
        prop_assert_eq!(ShareList::decode(&bytes), Ok(v));
    }

    #[test]
    fn search_requests_round_trip(pattern in "\\PC{0,40}", limit in any::<u32>()) {
        let v = SearchRequest { pattern, limit };
        let bytes = bytes_of(&v, SearchRequest::encode);
        prop_assert_eq!(SearchRequest::decode(&bytes), Ok(v));
    }

    #[test]
    fn answers_round_trip(
        more in any::<bool>(),
        hits in prop::collection::vec((name(), any::<u64>(), peer(), hash()), 0..20),
    ) {
        let hits = hits
            .into_iter()
            .map(|(name, size, peer, hash)| RemoteHit { name, size, peer, hash })
            .collect();
        let v = Answer { hits, more };
        let bytes = bytes_of(&v, Answer::encode);
        prop_assert_eq!(Answer::decode(&bytes), Ok(v));
    }
}
