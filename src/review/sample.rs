//! Stratified, seeded, reproducible sampling of results for review.
//!
//! Each result falls in one stratum, the first that applies in [`Stratum::ALL`] order. Per
//! stratum a reservoir (Algorithm R, seeded) keeps a uniform random subset of at most `n`
//! results, so memory is O(strata x n) however many results are offered. The sheet then
//! takes a random share of passes (so that graders measure the false-pass rate) and spreads
//! the rest evenly over the other strata, round robin, filling from whatever is left.
//! The same candidates in the same order with the same seed give the same sample: the
//! generator is SplitMix64 (`rand_xoshiro`, a fixed algorithm with published reference values,
//! which a test pins) with an unbiased `below` of our own, so no upgrade changes a sample.

use serde::Serialize;

use crate::model::{AssertionOutcome, CaseStatus};

/// Judge confidence below which a judged assertion is worth a second look.
pub const LOW_CONFIDENCE: f64 = 0.6;

/// Share of a sheet given to passes when there are enough of them.
pub const PASS_SHARE: f64 = 0.2;

/// Why a result was sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stratum {
    /// The verdict changed against the baseline run.
    Flip,
    /// A failed `hallucination` or `factuality` assertion.
    Hallucination,
    /// A judged assertion whose judge was unsure.
    LowConfidence,
    Unscorable,
    Fail,
    Pass,
}

impl Stratum {
    /// In priority order: a result belongs to the first that applies.
    pub const ALL: [Self; 6] = [
        Self::Flip,
        Self::Hallucination,
        Self::LowConfidence,
        Self::Unscorable,
        Self::Fail,
        Self::Pass,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Flip => "flip",
            Self::Hallucination => "hallucination",
            Self::LowConfidence => "low_confidence",
            Self::Unscorable => "unscorable",
            Self::Fail => "fail",
            Self::Pass => "pass",
        }
    }
}

/// A set of strata in priority order: a candidate belongs to the first that applies, and the
/// last is the plain share (passes of a suite, random records of traffic).
pub trait Strata: Copy + Eq + 'static {
    /// Every stratum, in priority order.
    const ORDER: &'static [Self];

    /// The name shown and stored.
    fn name(self) -> &'static str;

    /// Position in [`Strata::ORDER`].
    fn index(self) -> usize {
        Self::ORDER.iter().position(|s| *s == self).unwrap_or(0)
    }
}

impl Strata for Stratum {
    const ORDER: &'static [Self] = &Self::ALL;

    fn name(self) -> &'static str {
        self.as_str()
    }
}

/// Whether an assertion is a judged one whose judge reported a confidence below
/// [`LOW_CONFIDENCE`]: `details.confidence` (or `details.judge.confidence`) with a
/// `details.judge` object naming the judge.
#[must_use]
pub fn low_confidence(a: &AssertionOutcome) -> bool {
    let d = &a.details;
    if !d.get("judge").is_some_and(serde_json::Value::is_object) {
        return false;
    }
    let confidence = d
        .get("confidence")
        .and_then(serde_json::Value::as_f64)
        .or_else(|| {
            d.pointer("/judge/confidence")
                .and_then(serde_json::Value::as_f64)
        });
    confidence.is_some_and(|c| c < LOW_CONFIDENCE)
}

/// Whether an assertion flags a hallucination: a scored, failed `hallucination` or
/// `factuality` assertion.
#[must_use]
pub fn hallucination_flagged(a: &AssertionOutcome) -> bool {
    matches!(a.type_name.as_str(), "hallucination" | "factuality") && !a.pass && !a.unscorable
}

/// The stratum of a result, or None when it has nothing to grade (a provider error).
/// `baseline` is the status of the same (case, provider, sample) in the baseline run.
#[must_use]
pub fn classify(
    status: CaseStatus,
    assertions: &[AssertionOutcome],
    baseline: Option<CaseStatus>,
) -> Option<Stratum> {
    if status == CaseStatus::Error {
        return None;
    }
    if let Some(before) = baseline
        && before != status
        && (before == CaseStatus::Passed || status == CaseStatus::Passed)
    {
        return Some(Stratum::Flip);
    }
    if assertions.iter().any(hallucination_flagged) {
        return Some(Stratum::Hallucination);
    }
    if assertions.iter().any(low_confidence) {
        return Some(Stratum::LowConfidence);
    }
    Some(match status {
        CaseStatus::Unscorable => Stratum::Unscorable,
        CaseStatus::Failed => Stratum::Fail,
        CaseStatus::Passed | CaseStatus::Error => Stratum::Pass,
    })
}

/// SplitMix64: small, fast, and fixed forever, so that a seed always means the same sample.
#[derive(Debug, Clone)]
pub struct SplitMix64(rand_xoshiro::SplitMix64);

impl SplitMix64 {
    #[must_use]
    pub fn new(seed: u64) -> Self {
        use rand_xoshiro::rand_core::SeedableRng;
        Self(rand_xoshiro::SplitMix64::seed_from_u64(seed))
    }

    pub fn next_u64(&mut self) -> u64 {
        use rand_xoshiro::rand_core::Rng;
        self.0.next_u64()
    }

    /// Uniform in `0..bound` (bound > 0), without modulo bias.
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound <= 1 {
            return 0;
        }
        let zone = u64::MAX - (u64::MAX % bound);
        loop {
            let v = self.next_u64();
            if v < zone {
                return v % bound;
            }
        }
    }

    /// Fisher-Yates.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// The reservoirs of one sample, one per stratum of `S`.
#[derive(Debug)]
pub struct Sampler<S, T> {
    n: usize,
    rng: SplitMix64,
    seen: Vec<u64>,
    kept: Vec<Vec<T>>,
    strata: std::marker::PhantomData<S>,
}

/// How many candidates each stratum had and gave, in [`Strata::ORDER`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StratumCount<S> {
    pub stratum: S,
    pub available: u64,
    pub taken: usize,
}

impl<S: Strata, T> Sampler<S, T> {
    /// A sampler of at most `n` results with `seed`.
    #[must_use]
    pub fn new(n: usize, seed: u64) -> Self {
        Self {
            n,
            rng: SplitMix64::new(seed),
            seen: vec![0; S::ORDER.len()],
            kept: S::ORDER.iter().map(|_| Vec::new()).collect(),
            strata: std::marker::PhantomData,
        }
    }

    /// Offer one candidate (Algorithm R per stratum).
    pub fn offer(&mut self, stratum: S, item: T) {
        let i = stratum.index();
        self.seen[i] += 1;
        if self.kept[i].len() < self.n {
            self.kept[i].push(item);
            return;
        }
        let j = self.rng.below(self.seen[i]);
        if let Some(slot) = usize::try_from(j)
            .ok()
            .and_then(|j| self.kept[i].get_mut(j))
        {
            *slot = item;
        }
    }

    /// The sample, in a seeded random order, with the counts per stratum.
    pub fn finish(mut self) -> (Vec<(S, T)>, Vec<StratumCount<S>>) {
        let avail: Vec<usize> = self.kept.iter().map(Vec::len).collect();
        let quota = allocate(self.n, &avail);
        let mut out = Vec::with_capacity(self.n);
        let mut counts = Vec::with_capacity(S::ORDER.len());
        for (i, stratum) in S::ORDER.iter().enumerate() {
            let mut kept = std::mem::take(&mut self.kept[i]);
            self.rng.shuffle(&mut kept);
            kept.truncate(quota[i]);
            counts.push(StratumCount {
                stratum: *stratum,
                available: self.seen[i],
                taken: kept.len(),
            });
            out.extend(kept.into_iter().map(|t| (*stratum, t)));
        }
        self.rng.shuffle(&mut out);
        (out, counts)
    }
}

/// How many to take from each stratum (in [`Strata::ORDER`], the plain share last) out of
/// `avail`: [`PASS_SHARE`] of `n` (at least one) from passes, the rest round robin over the
/// other strata, then whatever is left from any stratum that still has results.
#[must_use]
pub fn allocate(n: usize, avail: &[usize]) -> Vec<usize> {
    let k = avail.len();
    let mut quota = vec![0usize; k];
    if k == 0 || n == 0 {
        return quota;
    }
    let pass = k - 1;
    let share = ((n as f64) * PASS_SHARE).ceil() as usize;
    quota[pass] = share.max(1).min(avail[pass]).min(n);
    let mut left = n - quota[pass];
    // Round robin over the other strata, then over everything (passes included).
    for pool in [&(0..pass).collect::<Vec<_>>(), &(0..k).collect::<Vec<_>>()] {
        while left > 0 {
            let mut gave = false;
            for &i in pool {
                if left > 0 && quota[i] < avail[i] {
                    quota[i] += 1;
                    left -= 1;
                    gave = true;
                }
            }
            if !gave {
                break;
            }
        }
    }
    quota
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn outcome(type_name: &str, pass: bool, details: serde_json::Value) -> AssertionOutcome {
        AssertionOutcome {
            type_name: type_name.into(),
            pass,
            score: if pass { 1.0 } else { 0.0 },
            reason: String::new(),
            details,
            weight: 1.0,
            metric: None,
            unscorable: false,
        }
    }

    #[test]
    fn strata_follow_their_priority() {
        use CaseStatus::{Error, Failed, Passed, Unscorable};
        let plain = [outcome("contains", true, json!(null))];
        assert_eq!(classify(Passed, &plain, None), Some(Stratum::Pass));
        assert_eq!(classify(Failed, &plain, None), Some(Stratum::Fail));
        assert_eq!(
            classify(Unscorable, &plain, None),
            Some(Stratum::Unscorable)
        );
        assert_eq!(classify(Error, &plain, None), None, "nothing to grade");
        // Flips against the baseline, either way; failed -> unscorable is no flip.
        assert_eq!(classify(Failed, &plain, Some(Passed)), Some(Stratum::Flip));
        assert_eq!(classify(Passed, &plain, Some(Failed)), Some(Stratum::Flip));
        assert_eq!(
            classify(Unscorable, &plain, Some(Failed)),
            Some(Stratum::Unscorable)
        );
        assert_eq!(classify(Passed, &plain, Some(Passed)), Some(Stratum::Pass));
        let halluc = [outcome("hallucination", false, json!({"score": 0.5}))];
        assert_eq!(
            classify(Failed, &halluc, None),
            Some(Stratum::Hallucination)
        );
        assert_eq!(
            classify(Failed, &[outcome("factuality", false, json!(null))], None),
            Some(Stratum::Hallucination)
        );
        let judge = json!({"provider": "j", "model": "m", "rubric_version": 1, "rubric_hash": "h"});
        let unsure = [outcome(
            "llm-rubric",
            true,
            json!({"judge": judge, "confidence": 0.4}),
        )];
        assert_eq!(
            classify(Passed, &unsure, None),
            Some(Stratum::LowConfidence)
        );
        let sure = [outcome(
            "llm-rubric",
            true,
            json!({"judge": judge, "confidence": 0.9}),
        )];
        assert_eq!(classify(Passed, &sure, None), Some(Stratum::Pass));
        // A confidence without a judge is not a judge's confidence.
        let unjudged = [outcome("similarity", true, json!({"confidence": 0.1}))];
        assert_eq!(classify(Passed, &unjudged, None), Some(Stratum::Pass));
        // A flip outranks a hallucination flag.
        assert_eq!(classify(Failed, &halluc, Some(Passed)), Some(Stratum::Flip));
    }

    #[test]
    fn allocation_gives_passes_their_share_and_spreads_the_rest() {
        // flip, halluc, lowconf, unscorable, fail, pass
        assert_eq!(
            allocate(10, &[100, 100, 100, 100, 100, 100]),
            [2, 2, 2, 1, 1, 2]
        );
        assert_eq!(allocate(10, &[1, 0, 0, 0, 3, 100]), [1, 0, 0, 0, 3, 6]);
        assert_eq!(allocate(10, &[50, 0, 0, 0, 50, 0]), [5, 0, 0, 0, 5, 0]);
        assert_eq!(allocate(3, &[0, 0, 0, 0, 0, 2]), [0, 0, 0, 0, 0, 2]);
        assert_eq!(allocate(1, &[5, 0, 0, 0, 0, 5]), [0, 0, 0, 0, 0, 1]);
        assert_eq!(allocate(0, &[5, 0, 0, 0, 0, 5]), [0; 6]);
    }

    fn sample(seed: u64, n: usize) -> Vec<(Stratum, u32)> {
        let mut s: Sampler<Stratum, u32> = Sampler::new(n, seed);
        for i in 0..1000u32 {
            let stratum = match i % 10 {
                0 => Stratum::Fail,
                1 => Stratum::Flip,
                _ => Stratum::Pass,
            };
            s.offer(stratum, i);
        }
        s.finish().0
    }

    #[test]
    fn the_same_seed_gives_the_same_sample_and_another_seed_another() {
        let a = sample(7, 20);
        assert_eq!(a, sample(7, 20));
        assert_ne!(a, sample(8, 20));
        assert_eq!(a.len(), 20);
        let mut ids: Vec<u32> = a.iter().map(|(_, i)| *i).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 20, "no result twice");
        // 4 passes (20%), 8 flips and 8 failures; each item in its own stratum.
        let count = |s: Stratum| a.iter().filter(|(x, _)| *x == s).count();
        assert_eq!(count(Stratum::Pass), 4);
        assert_eq!(count(Stratum::Flip), 8);
        assert_eq!(count(Stratum::Fail), 8);
        for (s, i) in &a {
            let want = match i % 10 {
                0 => Stratum::Fail,
                1 => Stratum::Flip,
                _ => Stratum::Pass,
            };
            assert_eq!(*s, want);
        }
    }

    #[test]
    fn reservoirs_are_uniform_over_the_stream() {
        // Every candidate of a stratum has the same chance, late ones included.
        let mut hits = [0u32; 100];
        for seed in 0..2000 {
            let mut s: Sampler<Stratum, usize> = Sampler::new(10, seed);
            for i in 0..100usize {
                s.offer(Stratum::Fail, i);
            }
            for (_, i) in s.finish().0 {
                hits[i] += 1;
            }
        }
        // No passes: all 10 come from the one stratum; expected 2000 * 10/100 = 200 each.
        let (lo, hi) = (hits.iter().min().copied(), hits.iter().max().copied());
        assert!(
            lo.is_some_and(|l| l > 140) && hi.is_some_and(|h| h < 260),
            "{hits:?}"
        );
    }

    #[test]
    fn splitmix_is_fixed() {
        // Reference values of SplitMix64 seeded with 0.
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        let mut r = SplitMix64::new(1);
        for _ in 0..1000 {
            assert!(r.below(7) < 7);
        }
    }
}
