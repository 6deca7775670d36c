//! The posting lists' unit tests: packing at every width, cursors and seeks, the filter
//! against candidates, the two-ended merge and rewrites spread over many calls.

use fastrand::Rng;

use super::cursor::intersect;
use super::*;

fn list(ids: &[u32]) -> Postings {
    let mut p = Postings::default();
    for &id in ids {
        p.push(id);
    }
    p
}

#[test]
fn round_trips_and_seeks_across_blocks() {
    let ids: Vec<u32> = (0..1000u32)
        .map(|i| i * 7 + (i % 3) * 1000 * u32::from(i > 500))
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    let p = list(&sorted);
    assert_eq!(p.check(), sorted);
    for target in [0, 1, 6, 7, 700, 896, 897, 3000, 7000, 100_000] {
        let want = sorted.iter().copied().find(|&i| i >= target);
        assert_eq!(p.cursor().seek(target), want, "seek {target}");
    }
    // Seeks from a position already taken only move forward.
    let mut c = p.cursor();
    assert_eq!(c.seek(900), Some(903));
    assert_eq!(c.seek(10), Some(903));
    assert_eq!(c.next(), Some(910));
    // Every seek and next agrees with a plain search, from any position.
    let mut c = p.cursor();
    let mut at = 0;
    for step in (0..4000u32).map(|s| (s * 37) % 11) {
        let target = sorted
            .get(at)
            .copied()
            .unwrap_or(u32::MAX)
            .saturating_add(step);
        let want = sorted[at..].iter().position(|&i| i >= target);
        assert_eq!(c.seek(target), want.map(|k| sorted[at + k]));
        match want {
            Some(k) => at += k + 1,
            None => break,
        }
        if step % 2 == 0 {
            assert_eq!(c.next(), sorted.get(at).copied());
            at += 1;
        }
    }
}

#[test]
fn seeks_to_every_id_and_past_it() {
    let ids: Vec<u32> = (0..5000u32).map(|i| i * 3 + i % 7 * (i / 1000)).collect();
    let mut sorted = ids;
    sorted.sort_unstable();
    sorted.dedup();
    let p = list(&sorted);
    for from in [0, 1, 127, 128, 129, 1000, 2560] {
        for (k, &id) in sorted.iter().enumerate().skip(from) {
            for (target, want) in [(id, Some(id)), (id + 1, sorted.get(k + 1).copied())] {
                let mut c = p.cursor();
                if from > 0 {
                    assert_eq!(c.seek(sorted[from - 1]), Some(sorted[from - 1]));
                }
                assert_eq!(c.seek(target), want, "from {from} to {target}");
            }
        }
    }
}

#[test]
fn all_widths_and_extreme_ids() {
    // Gaps of every width from 0 to 32 bits, one width a block.
    let mut ids = Vec::new();
    let mut id = 0u32;
    for w in 0..=31u32 {
        for k in 0..BLOCK as u32 {
            let gap = if w == 0 { 1 } else { (1u32 << (w - 1)) + k % 2 };
            match id.checked_add(gap) {
                Some(next) if next < u32::MAX => {
                    id = next;
                    ids.push(id);
                }
                _ => break,
            }
        }
    }
    ids.push(u32::MAX - 1);
    let p = list(&ids);
    assert_eq!(p.check(), ids);
    let p = list(&[0, 1, u32::MAX - 1]);
    assert_eq!(p.check(), [0, 1, u32::MAX - 1]);
    // A first gap of 2^32 - 1 (id u32::MAX - 1 alone) fills 32 bits.
    let p = list(&[u32::MAX - 1; 1]);
    assert_eq!(p.check(), [u32::MAX - 1]);
    let mut big = vec![u32::MAX - 1 - BLOCK as u32];
    big.extend((1..BLOCK as u32).map(|k| u32::MAX - 1 - BLOCK as u32 + k));
    big[0] = 0;
    let p = list(&big);
    assert_eq!(p.check(), big);
}

/// Seeks that land on block boundaries (a block's first and last id, the id just past
/// a block), past the end, in a last block with no tail after it (the padded read), in
/// blocks of width 0 (consecutive ids), and backwards (never moving back).
#[test]
fn seeks_at_block_boundaries_past_the_end_and_never_back() {
    let b = BLOCK as u32;
    // Block 0: consecutive ids (width 0); block 1: gaps of 2; block 2: mixed gaps;
    // then, with and without a tail, so that the last block ends the bytes.
    let mut ids: Vec<u32> = (0..b).collect();
    ids.extend((0..b).map(|k| 2 * b + 2 * k));
    ids.extend((0..b).map(|k| 5 * b + k * k + k));
    for tail in [0, 5] {
        let mut ids = ids.clone();
        let last = *ids.last().unwrap();
        ids.extend((1..=tail).map(|k| last + 3 * k));
        let p = list(&ids);
        assert_eq!(p.check(), ids);
        let find = |from: usize, target: u32| ids[from..].iter().copied().find(|&i| i >= target);
        for k in (0..ids.len()).filter(|k| k % BLOCK < 2 || k % BLOCK > BLOCK - 3) {
            for target in [ids[k].saturating_sub(1), ids[k], ids[k] + 1] {
                assert_eq!(
                    p.cursor().seek(target),
                    find(0, target),
                    "tail {tail}, {target}"
                );
            }
        }
        let end = *ids.last().unwrap();
        for target in [end + 1, end + 1000, u32::MAX] {
            let mut c = p.cursor();
            assert_eq!(c.seek(target), None);
            assert_eq!(c.seek(target), None);
            assert_eq!(c.next(), None);
        }
        // Every id of a block in turn, then a jump to the next block's first id, then
        // back: the cursor stays where it is.
        let mut c = p.cursor();
        for (k, &id) in ids.iter().enumerate() {
            assert_eq!(c.seek(id), Some(id));
            assert_eq!(c.seek(id.saturating_sub(7)), Some(id), "backwards at {k}");
            if k % 3 == 0 {
                assert_eq!(c.next(), ids.get(k + 1).copied());
                assert_eq!(c.seek(0), ids.get(k + 1).copied().or(Some(id)));
                c = p.cursor();
                assert_eq!(c.seek(id), Some(id));
            }
        }
        // Strides that skip whole blocks and land exactly on block ends and starts.
        for stride in [1, 2, 3, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK] {
            let mut c = p.cursor();
            for k in (stride - 1..ids.len()).step_by(stride) {
                assert_eq!(c.seek(ids[k]), Some(ids[k]), "stride {stride} at {k}");
                assert_eq!(c.seek(ids[k] + 1), find(k + 1, ids[k] + 1));
            }
        }
    }
}

/// Seeks in a list that is all tail, from every position, and past its end.
#[test]
fn seeks_in_the_tail() {
    for ids in [
        vec![0],
        vec![u32::MAX - 1],
        (0..100).map(|i| i * i + 2).collect(),
    ] {
        let p = list(&ids);
        let end = *ids.last().unwrap();
        for (from, &at) in ids.iter().enumerate() {
            for target in [0, at.saturating_sub(1), at, at + 1, end, end + 1, u32::MAX] {
                let mut c = p.cursor();
                assert_eq!(c.seek(at), Some(at));
                let want = ids[from..].iter().copied().find(|&i| i >= target);
                assert_eq!(c.seek(target), want, "from {at} to {target}");
                assert_eq!(c.seek(0), Some(want.unwrap_or(end)));
            }
        }
        assert_eq!(p.cursor().seek(end + 1), None);
    }
    assert_eq!(Postings::default().cursor().seek(0), None);
}

#[test]
fn chunks_decode_every_width() {
    for w in 0..=32u32 {
        // One gap of `w` bits, the others of at most one: the first block has width `w`.
        let gap = |k: u32| match w {
            0 => 0,
            _ if k == 5 => 1u32 << (w - 1),
            _ => k % 2,
        };
        let mut ids = Vec::new();
        let mut id = 0u32;
        for k in 0..BLOCK as u32 + 3 {
            ids.push(id);
            let Some(next) = id.checked_add(gap(k)).and_then(|n| n.checked_add(1)) else {
                break;
            };
            if next == u32::MAX {
                break;
            }
            id = next;
        }
        let p = list(&ids);
        assert_eq!(p.check(), ids, "width {w}");
        let mut out = [0u32; BLOCK];
        let mut got = Vec::new();
        for j in 0.. {
            let n = p.chunk(j, &mut out);
            if n == 0 {
                break;
            }
            got.extend_from_slice(&out[..n]);
        }
        assert_eq!(got, ids, "width {w}");
        assert_eq!(usize::from(p.bytes[0]), w as usize);
        for &id in &ids {
            assert_eq!(p.cursor().seek(id), Some(id), "width {w}");
        }
        let mut c = p.cursor();
        for &id in &ids {
            assert_eq!(c.seek(id), Some(id), "width {w}");
        }
    }
}

/// Ascending ids from `from` with gaps of 1 up to `spread`, `count` of them.
fn ascending(rng: &mut Rng, from: u32, spread: u64, count: usize) -> Vec<u32> {
    let mut id = u64::from(from);
    (0..count)
        .map(|_| {
            id += 1 + rng.u64(..spread);
            id as u32
        })
        .collect()
}

/// `retain` keeps exactly the candidates the list holds, chunk after chunk, whichever
/// way it takes (merging decoded blocks where the list is dense around the candidates,
/// seeking where it is sparse), mixed with plain seeks, and says the list ended only
/// when it holds nothing past the chunk.
#[test]
fn retain_keeps_exactly_the_candidates_the_list_holds() {
    let mut rng = Rng::with_seed(0x9E37_79B9_7F4A_7C15);
    for round in 0..400 {
        let spread = [1, 2, 3, 40, 900, 30_000][round % 6];
        let len = [0, 1, 5, 127, 128, 129, 300, 2000][rng.usize(..8)];
        let from = rng.u32(..50);
        let ids = ascending(&mut rng, from, spread, len);
        let held: std::collections::BTreeSet<u32> = ids.iter().copied().collect();
        let p = list(&ids);
        let top = ids.last().map_or(1000, |&l| u64::from(l) + 500);
        let cand_spread = [1, 4, 64, 5000][rng.usize(..4)].min(top);
        let count = (top / cand_spread) as usize;
        let mut candidates = ascending(&mut rng, 0, cand_spread, count.min(3000));
        // Half the candidates of some rounds are the list's own ids.
        if round % 3 == 0 {
            candidates.extend(ids.iter().step_by(2));
            candidates.sort_unstable();
            candidates.dedup();
        }
        let mut c = p.cursor();
        let mut floor = 0;
        let mut rest = &candidates[..];
        while !rest.is_empty() {
            let n = (1 + rng.usize(..BLOCK)).min(rest.len());
            let (chunk, after) = rest.split_at(n);
            rest = after;
            if rng.u32(..4) == 0 {
                // A plain seek between chunks, to a target at or below the chunk's (and
                // above the last chunk's: a cursor never goes back).
                let target = chunk[0].saturating_sub(rng.u32(..3)).max(floor);
                let want = held.range(target..).next().copied();
                assert_eq!(c.seek(target), want, "round {round}");
            }
            floor = chunk[n - 1] + 1;
            let mut got = chunk.to_vec();
            let (kept, more) = c.retain(&mut got);
            let want: Vec<u32> = chunk.iter().copied().filter(|i| held.contains(i)).collect();
            assert_eq!(&got[..kept], &want[..], "round {round}");
            if !more {
                let last = *chunk.last().expect("a chunk");
                assert!(held.range(last + 1..).next().is_none(), "round {round}");
                break;
            }
        }
    }
}

/// The two-ended merge keeps exactly the common ids, in order, whatever the lengths
/// and wherever the ends meet.
#[test]
fn intersect_keeps_the_common_ids_in_order() {
    let mut rng = Rng::with_seed(77);
    for round in 0..3000 {
        let (na, nb) = (rng.usize(..40), rng.usize(..60));
        let (sa, sb) = (1 + rng.u64(..4), 1 + rng.u64(..4));
        let a = ascending(&mut rng, 0, sa, na);
        let from = rng.u32(..3);
        let b = ascending(&mut rng, from, sb, nb);
        let want: Vec<u32> = a.iter().copied().filter(|x| b.contains(x)).collect();
        let mut got = a.clone();
        let kept = intersect(&mut got, &b);
        assert_eq!(&got[..kept], &want[..], "round {round}: {a:?} and {b:?}");
    }
}

/// A tail re-packed wider as its gaps grow (and a full block after it) stores and reads
/// the same ids as a list built in one go.
#[test]
fn the_tail_repacks_as_its_gaps_widen() {
    let mut ids = Vec::new();
    let mut id = 0u32;
    for k in 0..(3 * BLOCK as u32 + 17) {
        id += 1 + (1 << (k % 29)) / 3;
        ids.push(id);
        let p = list(&ids);
        assert_eq!(p.check(), ids);
        assert_eq!(p.cursor().seek(id), Some(id));
        assert_eq!(p.cursor().seek(id + 1), None);
    }
}

#[test]
fn rewrites_in_steps_while_the_list_grows() {
    let ids: Vec<u32> = (0..1000).map(|i| i * 2).collect();
    let mut p = list(&ids);
    let keep = |id: u32| id.is_multiple_of(6) || id >= 2000;
    let mut rw = Rewrite::default();
    let mut want: Vec<u32> = ids.iter().copied().filter(|&id| keep(id)).collect();
    let mut next = 2000;
    let mut steps = 0;
    loop {
        let (read, done) = p.rewrite(&mut rw, keep, 200);
        assert!(read > 0);
        steps += 1;
        if done {
            break;
        }
        // Appends between steps, some packing the tail into a block.
        for _ in 0..90 {
            p.push(next);
            want.push(next);
            next += 3;
        }
    }
    assert!(steps > 3);
    assert_eq!(p.check(), want);
    assert_eq!(p.count() as usize, want.len());
}
