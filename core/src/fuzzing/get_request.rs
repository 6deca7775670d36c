//! The `get_request` target: `GET` lines parse without panicking and their ranges clamp
//! inside the file.

use arbitrary::Unstructured;

use crate::wire::{ByteRange, Get, GetLine};

/// Reads `data` as `GET` lines (lossily as UTF-8, one a line, each also with `GET `
/// put in front) and clamps every reading to file lengths around its own numbers; reads
/// the same bytes with [`Unstructured`] as byte ranges and lengths and clamps those too.
/// A clamped span always lies within the file, and a range is refused only when it starts
/// past the end or ends before it starts.
pub fn get_request(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let lens: [u64; 2] = u.arbitrary().unwrap_or_default();
    let lens = [lens[0], lens[1], lens[0] % 4096, 0, 1, u64::MAX];
    for _ in 0..4 {
        let Ok(r) = u.arbitrary::<ByteRange>() else {
            break;
        };
        for len in lens {
            check_clamp(&r, len);
        }
    }
    let text = String::from_utf8_lossy(data);
    for line in text.split('\n').take(1024) {
        let line = line.strip_suffix('\r').unwrap_or(line);
        check_get_line(line, &lens);
        // The same line with the `GET ` a peer may have left out.
        if !line.starts_with("GET ") {
            check_get_line(&format!("GET {line}"), &lens);
        }
    }
}

pub(super) fn check_get_line(line: &str, lens: &[u64]) {
    let Ok(get) = GetLine::parse(line) else {
        return;
    };
    let readings: Vec<Get<'_>> = get.readings().collect();
    assert!(!readings.is_empty() && readings.len() <= 2);
    for r in &readings {
        assert!(
            !r.name.is_empty(),
            "a GET reading with an empty name: {line:?}"
        );
        assert!(!r.name.contains('\n'));
        assert!(line.contains(r.name));
        // Lengths at the edges of this range, and the caller's.
        let ByteRange { start, end } = r.range;
        let mut edges = vec![start.saturating_sub(1), start, start.saturating_add(1)];
        if let Some(end) = end {
            edges.extend([end.saturating_sub(1), end, end.saturating_add(1)]);
            edges.push(end.saturating_add(2));
        }
        for &len in lens.iter().chain(&edges) {
            check_clamp(&r.range, len);
        }
        // What we would send for this reading is read back with the same reading.
        let mut out = Vec::new();
        r.encode(&mut out);
        assert_eq!(out.last(), Some(&b'\n'));
        let text = std::str::from_utf8(&out[..out.len() - 1]).expect("encoded from a str");
        let again = GetLine::parse(text)
            .unwrap_or_else(|e| panic!("{r:?} encoded as {text:?} does not parse: {e}"));
        assert!(
            again.readings().any(|a| a == *r),
            "{r:?} encoded as {text:?} reads back as {again:?}"
        );
    }
}

fn check_clamp(r: &ByteRange, len: u64) {
    match r.clamp(len) {
        Some((start, stop)) => {
            assert_eq!(start, r.start, "{r:?} clamped to {len}");
            assert!(
                start <= stop && stop <= len,
                "{r:?} clamped to {len}: {start}..{stop}"
            );
            match r.end {
                Some(end) => {
                    assert!(end >= r.start);
                    assert_eq!(stop, end.saturating_add(1).min(len), "{r:?} / {len}");
                }
                None => assert_eq!(stop, len, "{r:?} / {len}"),
            }
        }
        None => assert!(
            r.start > len || r.end.is_some_and(|e| e < r.start),
            "{r:?} refused for a file of {len} bytes"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_request_takes_every_range_form() {
        get_request(b"GET a.txt 3-9\nGET b 1 2\nGET c 5-\nGET d 7\nGET e 9-1\n");
        get_request(&[0xff; 40]);
    }
}
