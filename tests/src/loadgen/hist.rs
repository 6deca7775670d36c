//! A latency histogram with bounded memory and about 0.8% relative error (HDR-style:
//! logarithmic buckets, each split into 128 linear sub-buckets).

/// Values below this are counted exactly.
const EXACT: u64 = 256;
const SUB_BITS: u32 = 7;
const SUB: usize = 1 << SUB_BITS;
/// 256 exact buckets, then 128 per power of two from 2^8 to 2^63.
const BUCKETS: usize = EXACT as usize + (64 - 8) * SUB;

/// Counts of nanosecond values.
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    count: u64,
    sum: u128,
    max: u64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("max", &self.max)
            .finish()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

fn bucket(v: u64) -> usize {
    if v < EXACT {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros(); // >= 8
    let sub = ((v >> (exp - SUB_BITS)) as usize) & (SUB - 1);
    EXACT as usize + (exp as usize - 8) * SUB + sub
}

/// The highest value counted in bucket `b`.
fn bucket_high(b: usize) -> u64 {
    if b < EXACT as usize {
        return b as u64;
    }
    let exp = (b - EXACT as usize) / SUB + 8;
    let sub = ((b - EXACT as usize) % SUB) as u64;
    let low = (SUB as u64 + sub) << (exp as u32 - SUB_BITS);
    low + ((1u64 << (exp as u32 - SUB_BITS)) - 1)
}

impl Histogram {
    pub fn new() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            count: 0,
            sum: 0,
            max: 0,
        }
    }

    pub fn record(&mut self, v: u64) {
        self.counts[bucket(v)] += 1;
        self.count += 1;
        self.sum += u128::from(v);
        self.max = self.max.max(v);
    }

    pub fn add(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    pub fn mean(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            (self.sum / u128::from(self.count)) as u64
        }
    }

    /// The value at quantile `q` (0..=1): the smallest bucket bound with at least
    /// `q * count` values at or below it (never above the maximum).
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return bucket_high(b).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_ordered_and_tight() {
        let mut last = 0;
        for v in 0..100_000u64 {
            let b = bucket(v);
            assert!(b >= last, "{v}");
            last = b;
        }
        for v in (0..5000u64)
            .chain((0..64).map(|e| 1u64 << e))
            .chain((1..64).map(|e| (1u64 << e) - 1))
            .chain([u64::MAX, 123_456_789, 987_654_321_000])
        {
            let b = bucket(v);
            assert!(b < BUCKETS, "{v}");
            assert!(bucket_high(b) >= v, "{v}");
            if v >= EXACT {
                let err = (bucket_high(b) - v) as f64 / v as f64;
                assert!(err < 0.008, "{v}: {err}");
            } else {
                assert_eq!(bucket_high(b), v);
            }
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::new();
        for v in 1..=10_000u64 {
            h.record(v * 1000);
        }
        let p50 = h.quantile(0.5) as f64;
        assert!((p50 - 5_000_000.0).abs() / 5_000_000.0 < 0.01, "{p50}");
        let p99 = h.quantile(0.99) as f64;
        assert!((p99 - 9_900_000.0).abs() / 9_900_000.0 < 0.01, "{p99}");
        assert_eq!(h.quantile(1.0), 10_000_000);
        assert_eq!(h.count(), 10_000);
    }
}
