//! The gateway's merge of the partitions' answers to one search.
//!
//! Deterministic: the same answers give the same list, whatever order they arrived in, so
//! a search repeated on a quiet network gives the same results. Fair: hits are taken from
//! the partitions in turn (the first hit of each partition, then the second of each, ...),
//! so a cap that one busy partition could fill alone still shows files from all of them;
//! plain concatenation in partition order would show only partition 0's clients for a
//! common word. Within a partition its own order is kept. No hit is dropped as a
//! duplicate: a session's files live in exactly one partition, so two equal hits are two
//! copies that the user may want to see (and the swarm download uses).

use super::{Answer, RemoteHit};

/// The answer a gateway gives its client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Merged {
    /// At most the cap.
    pub hits: Vec<RemoteHit>,
    /// Every partition answered, and no match was left out (by a partition's limit or by
    /// the cap); `false` is a partial result, which the gateway still sends at the deadline.
    pub complete: bool,
}

/// Merges `answers`, one per partition in partition order (`None`: the partition did not
/// answer before the deadline), keeping at most `cap` hits.
pub fn merge(answers: Vec<Option<Answer>>, cap: usize) -> Merged {
    let mut complete = answers.iter().all(|a| a.as_ref().is_some_and(|a| !a.more));
    let mut lists: Vec<std::vec::IntoIter<RemoteHit>> = answers
        .into_iter()
        .flatten()
        .map(|a| a.hits.into_iter())
        .collect();
    let mut hits = Vec::new();
    'rounds: loop {
        let mut took = false;
        for list in &mut lists {
            let Some(hit) = list.next() else { continue };
            if hits.len() == cap {
                complete = false;
                break 'rounds;
            }
            hits.push(hit);
            took = true;
        }
        if !took {
            break;
        }
    }
    Merged { hits, complete }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn hit(name: &str) -> RemoteHit {
        RemoteHit {
            name: name.into(),
            size: 1,
            peer: "10.0.0.1".into(),
            hash: None,
        }
    }

    fn answer(names: &[&str], more: bool) -> Option<Answer> {
        let hits = names.iter().map(|n| hit(n)).collect();
        Some(Answer { hits, more })
    }

    fn names(m: &Merged) -> Vec<&str> {
        m.hits.iter().map(|h| h.name.as_str()).collect()
    }

    #[test]
    fn partitions_take_turns_and_keep_their_own_order() {
        let m = merge(
            vec![
                answer(&["a1", "a2", "a3"], false),
                answer(&["b1"], false),
                answer(&[], false),
            ],
            10,
        );
        assert_eq!(names(&m), ["a1", "b1", "a2", "a3"]);
        assert!(m.complete);
    }

    #[test]
    fn the_cap_samples_every_partition() {
        let busy: Vec<String> = (0..100).map(|i| format!("a{i}")).collect();
        let busy: Vec<&str> = busy.iter().map(String::as_str).collect();
        let m = merge(vec![answer(&busy, true), answer(&["b1", "b2"], false)], 4);
        assert_eq!(names(&m), ["a0", "b1", "a1", "b2"]);
        assert!(!m.complete, "partition 0 had more");
        // Exactly the cap, with nothing left anywhere: complete.
        let m = merge(vec![answer(&["a1"], false), answer(&["b1"], false)], 2);
        assert_eq!((m.hits.len(), m.complete), (2, true));
        // One hit past the cap: not.
        let m = merge(
            vec![answer(&["a1", "a2"], false), answer(&["b1"], false)],
            2,
        );
        assert_eq!((names(&m), m.complete), (vec!["a1", "b1"], false));
    }

    #[test]
    fn a_partition_that_did_not_answer_makes_a_partial_result() {
        let m = merge(
            vec![answer(&["a1"], false), None, answer(&["c1"], false)],
            10,
        );
        assert_eq!(names(&m), ["a1", "c1"]);
        assert!(!m.complete);
        assert_eq!(merge(vec![None, None], 10), Merged::default());
        assert!(
            merge(Vec::new(), 10).complete,
            "no partition has nothing to miss"
        );
    }

    proptest! {
        /// Never more than the cap; every hit comes from some answer and keeps its
        /// partition's order; nothing is left out below the cap.
        #[test]
        fn merged_hits_are_a_fair_bounded_sample(
            sizes in prop::collection::vec(prop::option::of(0usize..20), 0..6),
            cap in 0usize..40,
        ) {
            let answers: Vec<Option<Answer>> = sizes
                .iter()
                .enumerate()
                .map(|(p, n)| n.map(|n| Answer {
                    hits: (0..n).map(|i| hit(&format!("{p}.{i}"))).collect(),
                    more: false,
                }))
                .collect();
            let total: usize = sizes.iter().flatten().sum();
            let m = merge(answers, cap);
            prop_assert_eq!(m.hits.len(), total.min(cap));
            prop_assert_eq!(m.complete, total <= cap && sizes.iter().all(Option::is_some));
            for p in 0..sizes.len() {
                let from_p: Vec<usize> = m
                    .hits
                    .iter()
                    .filter_map(|h| h.name.split_once('.').filter(|(q, _)| *q == p.to_string()))
                    .map(|(_, i)| i.parse().unwrap())
                    .collect();
                let expected: Vec<usize> = (0..from_p.len()).collect();
                prop_assert_eq!(from_p, expected);
            }
        }
    }
}
