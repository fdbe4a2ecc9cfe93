//! Significance of a change between two runs: the exact McNemar test on paired verdicts and
//! a seeded bootstrap interval for the mean of paired differences.

use serde::Serialize;

/// Two-sided exact McNemar p-value: under no change, each of the `b + c` discordant pairs
/// (pass->fail `b`, fail->pass `c`) goes either way with probability 1/2. No discordant pair
/// is p = 1.
#[must_use]
pub fn mcnemar_exact(b: u64, c: u64) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let k = b.min(c);
    // P(X <= k) for X ~ Binomial(n, 1/2), summed in log space so large n never overflows.
    let ln_half_n = n as f64 * 0.5f64.ln();
    let mut ln_choose = 0.0; // ln C(n, 0)
    let mut tail = 0.0;
    for i in 0..=k {
        if i > 0 {
            ln_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        tail += (ln_choose + ln_half_n).exp();
    }
    (2.0 * tail).min(1.0)
}

/// A deterministic generator (SplitMix64, a fixed algorithm), so that an interval is the same
/// on every run.
struct SplitMix(rand_xoshiro::SplitMix64);

impl SplitMix {
    fn new(seed: u64) -> Self {
        use rand_xoshiro::rand_core::SeedableRng;
        Self(rand_xoshiro::SplitMix64::seed_from_u64(seed))
    }

    fn below(&mut self, n: usize) -> usize {
        use rand_xoshiro::rand_core::Rng;
        (self.0.next_u64() % n as u64) as usize
    }
}

/// Seed of every bootstrap: results are reproducible.
pub const SEED: u64 = 0x00E7_A1A7_C4E5;

/// Resamples drawn.
pub const RESAMPLES: usize = 2000;

/// Mean of paired differences with a 95% percentile bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    pub n: usize,
    pub mean: f64,
    pub low: f64,
    pub high: f64,
}

impl Interval {
    /// The interval excludes zero.
    #[must_use]
    pub fn significant(&self) -> bool {
        self.low > 0.0 || self.high < 0.0
    }
}

/// Bootstrap the mean of `diffs` (`resamples` draws with replacement, seeded). None when
/// there is nothing to resample.
#[must_use]
pub fn bootstrap_mean(diffs: &[f64], resamples: usize, seed: u64) -> Option<Interval> {
    let n = diffs.len();
    if n == 0 || resamples == 0 {
        return None;
    }
    let mean = diffs.iter().sum::<f64>() / n as f64;
    let mut rng = SplitMix::new(seed);
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| (0..n).map(|_| diffs[rng.below(n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[((q * (resamples - 1) as f64).round() as usize).min(resamples - 1)];
    Some(Interval {
        n,
        mean,
        low: at(0.025),
        high: at(0.975),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcnemar_matches_the_binomial_tail() {
        assert!((mcnemar_exact(0, 0) - 1.0).abs() < 1e-12);
        // 5 vs 0: 2 * 0.5^5 = 0.0625.
        assert!((mcnemar_exact(5, 0) - 0.0625).abs() < 1e-12);
        assert!((mcnemar_exact(0, 5) - 0.0625).abs() < 1e-12);
        // 1 vs 9: 2 * (1 + 10) / 1024.
        assert!((mcnemar_exact(1, 9) - 22.0 / 1024.0).abs() < 1e-12);
        // Balanced is never significant.
        assert!((mcnemar_exact(7, 7) - 1.0).abs() < 1e-12);
        // Large counts do not overflow.
        let p = mcnemar_exact(600, 400);
        assert!(p > 0.0 && p < 1e-8, "{p}");
    }

    #[test]
    fn bootstrap_is_seeded_and_brackets_the_mean() {
        let diffs: Vec<f64> = (0..50).map(|i| f64::from(i % 5) * 0.1 - 0.1).collect();
        let a = bootstrap_mean(&diffs, RESAMPLES, SEED).expect("interval");
        let b = bootstrap_mean(&diffs, RESAMPLES, SEED).expect("interval");
        assert_eq!(a, b, "same seed, same interval");
        assert!(a.low <= a.mean && a.mean <= a.high, "{a:?}");
        assert!((a.mean - 0.1).abs() < 1e-9);
        assert!(a.significant(), "{a:?}");
        let flat = bootstrap_mean(&[0.1, -0.1, 0.1, -0.1], RESAMPLES, SEED).expect("interval");
        assert!(!flat.significant(), "{flat:?}");
        assert!(bootstrap_mean(&[], RESAMPLES, SEED).is_none());
        let one = bootstrap_mean(&[2.0], RESAMPLES, SEED).expect("interval");
        assert!((one.low - 2.0).abs() < 1e-12 && (one.high - 2.0).abs() < 1e-12);
    }
}
