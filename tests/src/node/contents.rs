//! File contents for the tests to share and download.

/// Deterministic pseudo-random bytes, for file contents: the same `seed` gives the same
/// bytes, and different seeds different ones.
pub fn test_data(len: usize, seed: u64) -> Vec<u8> {
    let mut data = vec![0; len];
    fastrand::Rng::with_seed(seed).fill(&mut data);
    data
}
