//! A traffic metric's value over merged buckets, and how a person reads it.

use std::collections::BTreeMap;

use crate::alert::traffic::{Counted, Split};
use crate::store::BucketRow;
use crate::traffic::BucketKey;

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// The value of `metric` over `row` (buckets merged over `secs` seconds); `None` when the
/// window holds nothing to compute it from (no requests, no scored sample, no rating).
#[must_use]
pub(super) fn value(metric: &str, row: &BucketRow, secs: i64) -> Option<f64> {
    let b = &row.bucket;
    let q = &row.quality;
    if b.requests == 0 {
        return None;
    }
    let rated = b.feedback_positive + b.feedback_negative + b.feedback_neutral;
    match metric.strip_prefix("traffic.")? {
        "volume" => Some(b.requests as f64),
        "throughput_rps" => Some(b.requests as f64 / secs.max(1) as f64),
        "error_rate" => b.error_rate(),
        "errors_by_kind" => Some(b.errors as f64),
        "availability" => b.error_rate().map(|e| 1.0 - e),
        "latency_p50_ms" => b.latency_quantile(0.50),
        "latency_p95_ms" => b.latency_quantile(0.95),
        "latency_p99_ms" => b.latency_quantile(0.99),
        "pass_rate" => ratio(q.passed, q.scored),
        "hallucination_rate" => ratio(q.hallucinated, q.hallucination_checked),
        "refusal_rate" => ratio(q.refused, q.refusal_checked),
        "satisfaction" => b.satisfaction(),
        "thumbs_down_rate" => ratio(b.feedback_negative, rated),
        "feedback_rate" => ratio(rated, b.requests),
        "tokens_in" => Some(b.tokens_in as f64),
        "tokens_out" => Some(b.tokens_out as f64),
        "cost_usd" => Some(b.cost_usd),
        "cost_per_request_usd" => Some(b.cost_usd / b.requests as f64),
        "users" => Some(row.users.estimate() as f64),
        // Not kept in buckets yet (confidence), or not one number (volume by hour).
        _ => None,
    }
}

/// How many of what `metric` is computed over `row` holds (requests, the records its
/// assertion scored, rated requests): what a rule's `min_requests` is compared with.
#[must_use]
pub(super) fn count(metric: &str, row: &BucketRow) -> u64 {
    let b = &row.bucket;
    let q = &row.quality;
    match Counted::of(metric) {
        Counted::Requests => b.requests,
        Counted::Scored => match metric {
            "traffic.hallucination_rate" => q.hallucination_checked,
            "traffic.refusal_rate" => q.refusal_checked,
            _ => q.scored,
        },
        Counted::Rated => b.feedback_positive + b.feedback_negative + b.feedback_neutral,
    }
}

/// `1 request`, `3 rated requests`.
#[must_use]
pub(super) fn counted(metric: &str, n: u64) -> String {
    let noun = Counted::of(metric).noun();
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// Whether the metric adds up over time (a week's is about seven days'), so that a longer
/// baseline is scaled to the window's length.
#[must_use]
pub(super) fn additive(metric: &str) -> bool {
    matches!(
        metric,
        "traffic.volume"
            | "traffic.errors_by_kind"
            | "traffic.tokens_in"
            | "traffic.tokens_out"
            | "traffic.cost_usd"
            | "traffic.users"
    )
}

/// The label of `key` a split reads.
#[must_use]
pub(super) fn label(key: &BucketKey, split: Split) -> &str {
    match split {
        Split::Feature => &key.feature,
        Split::Model => &key.model,
        Split::Segment => &key.segment,
        Split::Region => &key.region,
    }
}

/// Merges `row` into its group of `split` in `groups`.
fn merge_into(
    groups: &mut BTreeMap<String, BucketRow>,
    key: &BucketKey,
    row: &BucketRow,
    split: Option<Split>,
) {
    let name = split.map_or("*", |s| label(key, s));
    if let Some(g) = groups.get_mut(name) {
        g.merge(row);
    } else {
        let mut g = BucketRow::default();
        g.merge(row);
        groups.insert(name.to_owned(), g);
    }
}

/// A window's buckets merged as they are read, never held: by the rule's split (one group,
/// `*`, without one) and, for where a change is concentrated, by each label
/// ([`Split::ALL`]'s order; only when asked), with the earliest bucket's start.
#[derive(Debug, Default)]
pub(super) struct Grouped {
    pub(super) by_rule: BTreeMap<String, BucketRow>,
    pub(super) by_label: [BTreeMap<String, BucketRow>; 4],
    pub(super) first: Option<i64>,
}

impl Grouped {
    pub(super) fn add(
        &mut self,
        key: &BucketKey,
        row: &BucketRow,
        rule: Option<Split>,
        labels: bool,
    ) {
        merge_into(&mut self.by_rule, key, row, rule);
        if labels {
            for (groups, split) in self.by_label.iter_mut().zip(Split::ALL) {
                merge_into(groups, key, row, Some(split));
            }
        }
        self.first = Some(self.first.map_or(key.start, |f| f.min(key.start)));
    }
}

/// `Error rate`, `p95 latency`, `Cost`.
#[must_use]
pub(super) fn metric_words(metric: &str) -> String {
    let m = metric.strip_prefix("traffic.").unwrap_or(metric);
    match m {
        "latency_p50_ms" => return "p50 latency".into(),
        "latency_p95_ms" => return "p95 latency".into(),
        "latency_p99_ms" => return "p99 latency".into(),
        "cost_usd" => return "Cost".into(),
        "cost_per_request_usd" => return "Cost per request".into(),
        "throughput_rps" => return "Throughput".into(),
        "errors_by_kind" => return "Errors".into(),
        _ => {}
    }
    let words = m.replace('_', " ");
    let mut c = words.chars();
    c.next()
        .map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
}

/// A value as a person reads it: `8.0%`, `900 ms`, `$12.40`, `1,234`.
#[must_use]
pub(super) fn show(metric: &str, v: f64) -> String {
    let m = metric.strip_prefix("traffic.").unwrap_or(metric);
    if m.ends_with("_rate") || matches!(m, "availability" | "satisfaction") {
        format!("{:.1}%", v * 100.0)
    } else if m.ends_with("_ms") {
        format!("{v:.0} ms")
    } else if m.ends_with("_usd") {
        if v.abs() < 0.01 && v != 0.0 {
            format!("${v:.4}")
        } else {
            format!("${v:.2}")
        }
    } else if m == "throughput_rps" {
        format!("{v:.2} req/s")
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_as_people_write_them() {
        assert_eq!(show("traffic.error_rate", 0.08), "8.0%");
        assert_eq!(show("traffic.latency_p95_ms", 912.4), "912 ms");
        assert_eq!(show("traffic.cost_usd", 12.4), "$12.40");
        assert_eq!(show("traffic.volume", 1500.0), "1500");
        assert_eq!(metric_words("traffic.error_rate"), "Error rate");
        assert_eq!(metric_words("traffic.latency_p95_ms"), "p95 latency");
        assert!(additive("traffic.cost_usd") && !additive("traffic.error_rate"));
    }

    #[test]
    fn no_requests_is_no_data() {
        let row = BucketRow::default();
        for m in [
            "traffic.volume",
            "traffic.error_rate",
            "traffic.satisfaction",
        ] {
            assert_eq!(value(m, &row, 900), None, "{m}");
        }
    }
}
