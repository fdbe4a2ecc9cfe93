//! Per-minute aggregates of traffic, keyed by (start, model, feature, segment, region), with a
//! mergeable latency sketch (DDSketch, 1% relative error), so that a week's p95 is computed from
//! stored buckets and not from raw records. Minutes roll up into hours and days by merging.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use sketches_ddsketch::{Config, DDSketch};

use super::record::{Record, Vote};

/// The largest token total a bucket keeps: the store's largest integer. A record's own count
/// above it is refused by the mapping; sums that would pass it stop there (saturate), and
/// `evalwatch traffic` says so when a window's total is at it.
pub const TOKENS_MAX: u64 = i64::MAX.unsigned_abs();

/// `sum + n`, stopping at [`TOKENS_MAX`] rather than wrapping or passing what the store keeps.
fn add_tokens(sum: u64, n: u64) -> u64 {
    sum.saturating_add(n).min(TOKENS_MAX)
}

/// How long a bucket spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resolution {
    Minute,
    Hour,
    Day,
}

impl Resolution {
    pub fn seconds(self) -> i64 {
        match self {
            Self::Minute => 60,
            Self::Hour => 3_600,
            Self::Day => 86_400,
        }
    }

    /// The start of the bucket holding `unix` seconds (UTC).
    pub fn floor(self, unix: i64) -> i64 {
        unix.div_euclid(self.seconds()) * self.seconds()
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }
}

/// Which bucket a record counts in. Absent labels are empty strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BucketKey {
    /// Unix seconds of the bucket's start.
    pub start: i64,
    pub resolution: Resolution,
    pub model: String,
    pub feature: String,
    pub segment: String,
    pub region: String,
}

/// The minute bucket a record counts in, borrowing its labels: what a batch groups its records
/// by without copying four strings a record ([`MinuteOf::to_key`] owns them, once a bucket).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MinuteOf<'r> {
    pub start: i64,
    pub model: &'r str,
    pub feature: &'r str,
    pub segment: &'r str,
    pub region: &'r str,
}

impl<'r> MinuteOf<'r> {
    #[must_use]
    pub fn of(r: &'r Record) -> Self {
        let label = |l: &'r Option<String>| l.as_deref().unwrap_or_default();
        Self {
            start: Resolution::Minute.floor(r.time.timestamp()),
            model: label(&r.model),
            feature: label(&r.feature),
            segment: label(&r.segment),
            region: label(&r.region),
        }
    }

    #[must_use]
    pub fn to_key(self) -> BucketKey {
        BucketKey {
            start: self.start,
            resolution: Resolution::Minute,
            model: self.model.to_owned(),
            feature: self.feature.to_owned(),
            segment: self.segment.to_owned(),
            region: self.region.to_owned(),
        }
    }
}

impl BucketKey {
    /// The minute bucket a record counts in.
    #[must_use]
    pub fn minute_of(r: &Record) -> Self {
        MinuteOf::of(r).to_key()
    }

    /// The same labels in the coarser bucket that holds this one.
    #[must_use]
    pub fn rolled_up(&self, to: Resolution) -> Self {
        Self {
            start: to.floor(self.start),
            resolution: to,
            ..self.clone()
        }
    }
}

/// What one bucket counts. Every field adds up when buckets merge.
#[derive(Clone)]
pub struct Bucket {
    pub requests: u64,
    pub errors: u64,
    /// Failed requests by the kind their log named; `""` for none.
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Latency of successful requests, in ms.
    pub latency: DDSketch,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub cost_usd: f64,
    /// Requests whose cost was logged or could be computed.
    pub costed: u64,
    pub feedback_positive: u64,
    pub feedback_negative: u64,
    pub feedback_neutral: u64,
    /// Records kept whole in the sample.
    pub sampled: u64,
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket")
            .field("requests", &self.requests)
            .field("errors", &self.errors)
            .field("latency_count", &self.latency.count())
            .field("latency_p95", &self.latency_quantile(0.95))
            .field("cost_usd", &self.cost_usd)
            .finish_non_exhaustive()
    }
}

impl Default for Bucket {
    fn default() -> Self {
        Self {
            requests: 0,
            errors: 0,
            errors_by_kind: BTreeMap::new(),
            latency: DDSketch::new(Config::defaults()),
            tokens_in: 0,
            tokens_out: 0,
            cost_usd: 0.0,
            costed: 0,
            feedback_positive: 0,
            feedback_negative: 0,
            feedback_neutral: 0,
            sampled: 0,
        }
    }
}

impl Bucket {
    /// Counts one record (`sampled`: it was kept whole).
    pub fn add(&mut self, r: &Record, sampled: bool) {
        self.requests += 1;
        if let Some(e) = &r.error {
            self.errors += 1;
            *self
                .errors_by_kind
                .entry(e.kind.clone().unwrap_or_default())
                .or_default() += 1;
        } else if let Some(ms) = r.latency_ms {
            self.latency.add(ms);
        }
        self.tokens_in = add_tokens(self.tokens_in, r.tokens_in.unwrap_or(0));
        self.tokens_out = add_tokens(self.tokens_out, r.tokens_out.unwrap_or(0));
        if let Some(c) = r.cost_usd {
            self.cost_usd += c;
            self.costed += 1;
        }
        if let Some(f) = &r.feedback {
            self.add_vote(f.vote, 1);
        }
        self.sampled += u64::from(sampled);
    }

    /// Counts `vote` (`sign` 1), or takes it back out (-1; never below 0).
    pub fn add_vote(&mut self, vote: Vote, sign: i8) {
        let slot = match vote {
            Vote::Positive => &mut self.feedback_positive,
            Vote::Negative => &mut self.feedback_negative,
            Vote::Neutral => &mut self.feedback_neutral,
        };
        *slot = if sign > 0 {
            *slot + 1
        } else {
            slot.saturating_sub(1)
        };
    }

    /// Adds another bucket's counts to this one.
    pub fn merge(&mut self, o: &Self) {
        self.requests += o.requests;
        self.errors += o.errors;
        for (kind, n) in &o.errors_by_kind {
            *self.errors_by_kind.entry(kind.clone()).or_default() += n;
        }
        // Both sketches use the default configuration: merging cannot fail.
        let _ = self.latency.merge(&o.latency);
        self.tokens_in = add_tokens(self.tokens_in, o.tokens_in);
        self.tokens_out = add_tokens(self.tokens_out, o.tokens_out);
        self.cost_usd += o.cost_usd;
        self.costed += o.costed;
        self.feedback_positive += o.feedback_positive;
        self.feedback_negative += o.feedback_negative;
        self.feedback_neutral += o.feedback_neutral;
        self.sampled += o.sampled;
    }

    /// Latency at quantile `q` (0.95 for p95) within 1% relative error; `None` with no
    /// successful request.
    pub fn latency_quantile(&self, q: f64) -> Option<f64> {
        self.latency.quantile(q).ok().flatten()
    }

    /// Failed share of requests; `None` with none.
    pub fn error_rate(&self) -> Option<f64> {
        (self.requests > 0).then(|| self.errors as f64 / self.requests as f64)
    }

    /// Positive share of rated requests (`traffic.satisfaction`); `None` with no rating.
    pub fn satisfaction(&self) -> Option<f64> {
        let rated = self.feedback_positive + self.feedback_negative + self.feedback_neutral;
        (rated > 0).then(|| self.feedback_positive as f64 / rated as f64)
    }

    /// The sketch in DDSketch's portable binary encoding, for the store.
    pub fn latency_bytes(&self) -> Vec<u8> {
        self.latency.to_java_bytes()
    }

    /// Reads a sketch written by [`Bucket::latency_bytes`].
    pub fn latency_from_bytes(bytes: &[u8]) -> Result<DDSketch, String> {
        DDSketch::from_java_bytes(bytes).map_err(|e| format!("latency sketch unreadable: {e:?}"))
    }
}

/// Open minute buckets of one source, filled record by record and closed as time passes.
#[derive(Debug, Default)]
pub struct Aggregator {
    open: HashMap<BucketKey, Bucket>,
}

impl Aggregator {
    /// Counts a record in its minute.
    pub fn add(&mut self, r: &Record, sampled: bool) {
        self.open
            .entry(BucketKey::minute_of(r))
            .or_default()
            .add(r, sampled);
    }

    /// Takes every bucket that starts before `before` (a watermark: minutes that can no longer
    /// receive records), in key order.
    pub fn close_before(&mut self, before: DateTime<Utc>) -> Vec<(BucketKey, Bucket)> {
        let cut = before.timestamp();
        let keys: Vec<BucketKey> = self
            .open
            .keys()
            .filter(|k| k.start + k.resolution.seconds() <= cut)
            .cloned()
            .collect();
        let mut out: Vec<(BucketKey, Bucket)> = keys
            .into_iter()
            .filter_map(|k| self.open.remove_entry(&k))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Takes every open bucket (the end of an ingest), in key order.
    pub fn close_all(&mut self) -> Vec<(BucketKey, Bucket)> {
        let mut out: Vec<_> = self.open.drain().collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    pub fn open_buckets(&self) -> usize {
        self.open.len()
    }
}

/// Merges buckets into coarser ones with the same labels.
pub fn roll_up<'a>(
    buckets: impl IntoIterator<Item = (&'a BucketKey, &'a Bucket)>,
    to: Resolution,
) -> BTreeMap<BucketKey, Bucket> {
    let mut out: BTreeMap<BucketKey, Bucket> = BTreeMap::new();
    for (key, bucket) in buckets {
        out.entry(key.rolled_up(to)).or_default().merge(bucket);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::record::{Feedback, RecordError};
    use chrono::TimeZone;

    fn rec(secs: i64, latency: f64, feature: &str) -> Record {
        Record {
            time: Utc.timestamp_opt(secs, 0).unwrap(),
            feature: Some(feature.into()),
            latency_ms: Some(latency),
            tokens_in: Some(100),
            tokens_out: Some(10),
            cost_usd: Some(0.001),
            ..Record::default()
        }
    }

    #[test]
    fn token_sums_stop_at_what_the_store_keeps() {
        let mut huge = rec(0, 1.0, "x");
        huge.tokens_in = Some(TOKENS_MAX);
        huge.tokens_out = Some(TOKENS_MAX - 1);
        let mut b = Bucket::default();
        b.add(&huge, false);
        b.add(&huge, false);
        assert_eq!((b.tokens_in, b.tokens_out), (TOKENS_MAX, TOKENS_MAX));
        let mut all = Bucket::default();
        for _ in 0..3 {
            all.merge(&b);
        }
        assert_eq!((all.tokens_in, all.tokens_out), (TOKENS_MAX, TOKENS_MAX));
        assert_eq!(all.requests, 6);
    }

    #[test]
    fn known_traffic_gives_exactly_its_figures() {
        let mut agg = Aggregator::default();
        let t0 = 1_765_000_800; // a minute boundary
        assert_eq!(Resolution::Minute.floor(t0), t0);
        // 1,000 requests over 10 minutes, latency 1..=1000 ms, every 20th an error.
        for i in 0..1000_i64 {
            let mut r = rec(t0 + i * 600 / 1000, (i + 1) as f64, "faq");
            if i % 20 == 0 {
                r.error = Some(RecordError {
                    kind: Some(if i % 40 == 0 { "timeout" } else { "rate_limit" }.into()),
                });
            }
            if i % 10 == 1 {
                r.feedback = Feedback::from_json(&serde_json::json!(if i % 30 == 1 {
                    "down"
                } else {
                    "up"
                }));
            }
            agg.add(&r, i % 10 == 0);
        }
        let minutes = agg.close_all();
        assert_eq!(minutes.len(), 10);
        assert!(
            minutes
                .iter()
                .all(|(k, b)| k.resolution == Resolution::Minute && b.requests == 100)
        );
        let day = roll_up(minutes.iter().map(|(k, b)| (k, b)), Resolution::Day);
        assert_eq!(day.len(), 1);
        let (key, b) = day.iter().next().unwrap();
        assert_eq!(
            (key.start, key.feature.as_str()),
            (Resolution::Day.floor(t0), "faq")
        );
        assert_eq!((b.requests, b.errors), (1000, 50));
        assert_eq!(b.errors_by_kind["timeout"], 25);
        assert_eq!(b.errors_by_kind["rate_limit"], 25);
        assert_eq!(b.error_rate(), Some(0.05));
        assert_eq!(
            (b.tokens_in, b.tokens_out, b.costed, b.sampled),
            (100_000, 10_000, 1000, 100)
        );
        assert!((b.cost_usd - 1.0).abs() < 1e-9);
        assert_eq!((b.feedback_positive + b.feedback_negative), 100);
        assert_eq!(b.feedback_negative, 34);
        assert_eq!(b.satisfaction(), Some(0.66));
        // Successful latencies are 1..=1000 without every 20th (950 values): the exact p50 and
        // p95 by nearest rank, against the sketch's 1% relative accuracy.
        let ok: Vec<f64> = (0..1000)
            .filter(|i| i % 20 != 0)
            .map(|i: i32| f64::from(i + 1))
            .collect();
        for q in [0.5, 0.95, 0.99] {
            let exact = ok[((q * ok.len() as f64).ceil() as usize).saturating_sub(1)];
            let got = b.latency_quantile(q).unwrap();
            assert!(
                (got - exact).abs() <= exact * 0.0101 + 1.0,
                "q{q}: {got} vs {exact}"
            );
        }
    }

    #[test]
    fn buckets_close_by_watermark_and_keep_labels_apart() {
        let mut agg = Aggregator::default();
        let t0 = 1_765_000_800;
        agg.add(&rec(t0, 10.0, "faq"), false);
        agg.add(&rec(t0 + 30, 10.0, "search"), false);
        agg.add(&rec(t0 + 61, 10.0, "faq"), false);
        assert_eq!(agg.open_buckets(), 3);
        let closed = agg.close_before(Utc.timestamp_opt(t0 + 60, 0).unwrap());
        let features: Vec<&str> = closed.iter().map(|(k, _)| k.feature.as_str()).collect();
        assert_eq!(features, ["faq", "search"]);
        assert_eq!(agg.open_buckets(), 1);
        assert!(
            agg.close_before(Utc.timestamp_opt(t0 + 119, 0).unwrap())
                .is_empty()
        );
        assert_eq!(
            agg.close_before(Utc.timestamp_opt(t0 + 120, 0).unwrap())
                .len(),
            1
        );
    }

    #[test]
    fn sketches_survive_the_store_encoding_and_merge_like_the_raw_values() {
        let mut a = Bucket::default();
        let mut b = Bucket::default();
        for i in 1..=500 {
            a.add(&rec(0, f64::from(i), "x"), false);
            b.add(&rec(0, f64::from(i + 500), "x"), false);
        }
        let mut whole = Bucket::default();
        for i in 1..=1000 {
            whole.add(&rec(0, f64::from(i), "x"), false);
        }
        let decoded = Bucket::latency_from_bytes(&b.latency_bytes()).unwrap();
        let mut merged = a.clone();
        merged.latency.merge(&decoded).unwrap();
        for q in [0.5, 0.9, 0.99] {
            assert_eq!(
                merged.latency.quantile(q).unwrap(),
                whole.latency_quantile(q),
                "q{q}"
            );
        }
        assert!(
            b.latency_bytes().len() < 1200,
            "{}",
            b.latency_bytes().len()
        );
        assert!(Bucket::latency_from_bytes(b"\xff\x00junk").is_err());
    }

    #[test]
    fn floors_are_utc_and_handle_times_before_1970() {
        assert_eq!(Resolution::Hour.floor(7_199), 3_600);
        assert_eq!(Resolution::Day.floor(-1), -86_400);
        assert_eq!(Resolution::Minute.floor(-61), -120);
    }
}
