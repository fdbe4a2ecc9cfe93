//! The four pillars of one source over one window, computed from stored buckets (merged, never
//! from raw records): what `traffic` prints, and what the traffic page and traffic alerts can
//! read.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::store::BucketRow;
use crate::traffic::BucketKey;

/// One window's figures. Rates are `None` when nothing was there to divide by.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Pillars {
    // performance
    pub volume: u64,
    pub throughput_rps: f64,
    /// The busiest bucket's requests per second (a minute for windows up to 24h, an hour for
    /// 7d, a day for 30d).
    pub throughput_peak_rps: f64,
    pub error_rate: Option<f64>,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub availability: Option<f64>,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    // quality (on the sample)
    pub sampled: u64,
    pub scored: u64,
    pub pass_rate: Option<f64>,
    pub hallucination_rate: Option<f64>,
    pub refusal_rate: Option<f64>,
    // quality (users' feedback, on every request)
    /// Requests a user voted on.
    pub rated: u64,
    pub satisfaction: Option<f64>,
    pub thumbs_down_rate: Option<f64>,
    pub feedback_rate: Option<f64>,
    // cost
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub tokens_in_per_request: Option<f64>,
    pub tokens_out_per_request: Option<f64>,
    pub cost_usd: f64,
    pub cost_per_request_usd: Option<f64>,
    // usage
    pub users: u64,
}

/// Usage of one window: volume per hour of day (UTC) and per label.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Usage {
    /// Absent for windows counted in day buckets.
    pub by_hour: Option<BTreeMap<u32, u64>>,
    pub by_feature: BTreeMap<String, u64>,
    pub by_model: BTreeMap<String, u64>,
    pub by_segment: BTreeMap<String, u64>,
    pub by_region: BTreeMap<String, u64>,
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// The figures of `rows` (buckets of one resolution, `bucket_secs` long) over a window of
/// `window_secs`.
#[must_use]
pub fn pillars<'a>(
    rows: impl IntoIterator<Item = (&'a BucketKey, &'a BucketRow)>,
    window_secs: i64,
    bucket_secs: i64,
) -> Pillars {
    let mut fold = Fold::default();
    for (key, row) in rows {
        fold.add(key, row);
    }
    fold.pillars(window_secs, bucket_secs)
}

/// A window's buckets added one at a time (merged into one row, and each start's volume kept
/// for the peak): [`pillars`] without holding the rows.
#[derive(Debug, Clone, Default)]
pub struct Fold {
    all: BucketRow,
    per_start: BTreeMap<i64, u64>,
}

impl Fold {
    pub fn add(&mut self, key: &BucketKey, row: &BucketRow) {
        self.all.merge(row);
        *self.per_start.entry(key.start).or_default() += row.bucket.requests;
    }

    /// The pillars of the buckets added so far.
    #[must_use]
    pub fn pillars(&self, window_secs: i64, bucket_secs: i64) -> Pillars {
        let all = &self.all;
        let b = &all.bucket;
        let q = &all.quality;
        let peak = self.per_start.values().copied().max().unwrap_or(0);
        let error_rate = b.error_rate();
        // Feedback's counts are sums: the merged row's are the window's.
        let feedback = super::satisfaction::satisfaction([all]);
        Pillars {
            volume: b.requests,
            throughput_rps: b.requests as f64 / window_secs.max(1) as f64,
            throughput_peak_rps: peak as f64 / bucket_secs.max(1) as f64,
            error_rate,
            errors_by_kind: b.errors_by_kind.clone(),
            availability: error_rate.map(|e| 1.0 - e),
            latency_p50_ms: b.latency_quantile(0.50),
            latency_p95_ms: b.latency_quantile(0.95),
            latency_p99_ms: b.latency_quantile(0.99),
            sampled: b.sampled,
            scored: q.scored,
            pass_rate: ratio(q.passed, q.scored),
            hallucination_rate: ratio(q.hallucinated, q.hallucination_checked),
            refusal_rate: ratio(q.refused, q.refusal_checked),
            rated: feedback.rated,
            satisfaction: feedback.satisfaction,
            thumbs_down_rate: feedback.thumbs_down_rate,
            feedback_rate: feedback.feedback_rate,
            tokens_in: b.tokens_in,
            tokens_out: b.tokens_out,
            tokens_in_per_request: ratio(b.tokens_in, b.requests),
            tokens_out_per_request: ratio(b.tokens_out, b.requests),
            cost_usd: b.cost_usd,
            cost_per_request_usd: (b.requests > 0).then(|| b.cost_usd / b.requests as f64),
            users: all.users.estimate(),
        }
    }
}

/// Volume by hour of day (when buckets are at most an hour long) and by each label.
#[must_use]
pub fn usage<'a>(
    rows: impl IntoIterator<Item = (&'a BucketKey, &'a BucketRow)>,
    bucket_secs: i64,
) -> Usage {
    let mut u = Usage::new(bucket_secs);
    for (key, row) in rows {
        u.add(key, row);
    }
    u
}

impl Usage {
    /// Nothing counted yet, for buckets of `bucket_secs` (by hour of day when at most an hour).
    #[must_use]
    pub fn new(bucket_secs: i64) -> Self {
        Self {
            by_hour: (bucket_secs <= 3600).then(BTreeMap::new),
            ..Self::default()
        }
    }

    /// Counts one bucket's volume.
    pub fn add(&mut self, key: &BucketKey, row: &BucketRow) {
        let n = row.bucket.requests;
        if let Some(h) = &mut self.by_hour {
            let hour = u32::try_from(key.start.rem_euclid(86_400) / 3600).unwrap_or(0);
            *h.entry(hour).or_default() += n;
        }
        *self.by_feature.entry(key.feature.clone()).or_default() += n;
        *self.by_model.entry(key.model.clone()).or_default() += n;
        *self.by_segment.entry(key.segment.clone()).or_default() += n;
        *self.by_region.entry(key.region.clone()).or_default() += n;
    }
}
