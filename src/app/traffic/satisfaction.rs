//! Users' feedback as figures of a window: `traffic.satisfaction` (positive share of the rated
//! requests), `traffic.thumbs_down_rate` (negative votes per request) and
//! `traffic.feedback_rate` (rated share of requests), from the buckets' vote counts (inline
//! and imported feedback, sampled records or not). `pillars` adds them to a window's figures;
//! the traffic page and traffic alerts can read them here directly.

use serde::Serialize;

use crate::store::BucketRow;

/// A window's feedback figures. Rates are `None` with nothing to divide by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Satisfaction {
    /// Requests a user voted on (positive, negative or neutral).
    pub rated: u64,
    pub positive: u64,
    pub negative: u64,
    /// Positive votes over rated requests.
    pub satisfaction: Option<f64>,
    /// Negative votes over requests.
    pub thumbs_down_rate: Option<f64>,
    /// Rated requests over requests.
    pub feedback_rate: Option<f64>,
}

/// The feedback figures of `rows` merged.
#[must_use]
pub fn satisfaction<'a>(rows: impl IntoIterator<Item = &'a BucketRow>) -> Satisfaction {
    let (mut requests, mut positive, mut negative, mut neutral) = (0u64, 0u64, 0u64, 0u64);
    for r in rows {
        let b = &r.bucket;
        requests += b.requests;
        positive += b.feedback_positive;
        negative += b.feedback_negative;
        neutral += b.feedback_neutral;
    }
    let rated = positive + negative + neutral;
    let ratio = |n: u64, d: u64| (d > 0).then(|| n as f64 / d as f64);
    Satisfaction {
        rated,
        positive,
        negative,
        satisfaction: ratio(positive, rated),
        thumbs_down_rate: ratio(negative, requests),
        feedback_rate: ratio(rated, requests),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(requests: u64, pos: u64, neg: u64, neutral: u64) -> BucketRow {
        let mut r = BucketRow::default();
        r.bucket.requests = requests;
        r.bucket.feedback_positive = pos;
        r.bucket.feedback_negative = neg;
        r.bucket.feedback_neutral = neutral;
        r
    }

    #[test]
    fn satisfaction_is_the_positive_share_of_rated_and_rates_are_per_request() {
        let rows = [row(100, 6, 2, 0), row(100, 0, 1, 1)];
        let s = satisfaction(&rows);
        assert_eq!((s.rated, s.positive, s.negative), (10, 6, 3));
        assert_eq!(s.satisfaction, Some(0.6));
        assert_eq!(s.thumbs_down_rate, Some(0.015));
        assert_eq!(s.feedback_rate, Some(0.05));
        let none = satisfaction(&[row(0, 0, 0, 0)]);
        assert_eq!((none.satisfaction, none.feedback_rate), (None, None));
        assert_eq!(satisfaction(&[row(5, 0, 0, 0)]).satisfaction, None);
    }
}
