//! `traffic.low_confidence_rate`: the share of sampled records whose confidence (the
//! `confidence` field) is below the source's `low_confidence:` threshold. Buckets keep no
//! confidence, so rules on it read the sampled records of each window.

use std::collections::BTreeMap;

use crate::alert::traffic::{Split, TrafficRule, WEEK};
use crate::model::TrafficSource;
use crate::store::{SampleRow, Store};

/// The metric read from records rather than buckets.
pub(crate) const LOW_CONFIDENCE_RATE: &str = "traffic.low_confidence_rate";

fn label(r: &SampleRow, split: Split) -> String {
    let l = match split {
        Split::Feature => &r.feature,
        Split::Model => &r.model,
        Split::Segment => &r.segment,
        Split::Region => &r.region,
    };
    l.clone().unwrap_or_default()
}

/// The confidences of one window's sampled records (those carrying one): how many, how many
/// fall below the threshold, and their spread (nearest-rank percentiles).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub(crate) struct Spread {
    pub n: u64,
    pub low: u64,
    pub low_confidence_rate: f64,
    pub p10: f64,
    pub p50: f64,
    pub p90: f64,
}

/// The spread of `values` under `threshold`; None without a value.
pub(crate) fn spread(mut values: Vec<f64>, threshold: f64) -> Option<Spread> {
    values.sort_by(f64::total_cmp);
    let at = |p| crate::metrics::percentile_nearest_rank(&values, p);
    let (p10, p50, p90) = (at(10.0)?, at(50.0)?, at(90.0)?);
    let low = values.iter().filter(|c| **c < threshold).count() as u64;
    let n = values.len() as u64;
    Some(Spread {
        n,
        low,
        low_confidence_rate: low as f64 / n as f64,
        p10,
        p50,
        p90,
    })
}

/// The confidences of sampled records by label of a split (one group, `*`, without one), kept
/// as the records are read (a week of a busy source's sample is too many records to hold
/// whole).
#[derive(Debug, Default)]
struct Groups(BTreeMap<String, Vec<f64>>);

impl Groups {
    fn add(&mut self, r: &SampleRow, split: Option<Split>) {
        let Some(c) = r.confidence else { return };
        let group = split.map_or_else(|| "*".to_owned(), |s| label(r, s));
        self.0.entry(group).or_default().push(c);
    }

    /// The low-confidence share of each group under `threshold`; a group without a record
    /// carrying a confidence has none.
    fn rates(self, threshold: f64) -> BTreeMap<String, f64> {
        self.0
            .into_iter()
            .filter_map(|(g, v)| Some((g, spread(v, threshold)?.low_confidence_rate)))
            .collect()
    }
}

/// The rates of a rule's window `[start, end)` and of its baseline (the trailing week for
/// `min`/`max` rules, whose "normal" is only context).
pub(super) fn window_rates(
    store: &Store,
    source: &TrafficSource,
    rule: &TrafficRule,
    start: i64,
    end: i64,
) -> anyhow::Result<(BTreeMap<String, f64>, BTreeMap<String, f64>)> {
    let (bf, bt) = if rule.rule.condition.uses_baseline() {
        super::drift_alerts::baseline_of(rule.baseline, start, end)
    } else {
        (start - WEEK, start)
    };
    let read = |from: i64, to: i64| -> anyhow::Result<BTreeMap<String, f64>> {
        let mut groups = Groups::default();
        store.each_traffic_sample(&source.id, from, to, |r| {
            groups.add(&r, rule.by);
            Ok(())
        })?;
        Ok(groups.rates(source.low_confidence))
    };
    Ok((read(start, end)?, read(bf, bt)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(rows: &[SampleRow], threshold: f64, split: Option<Split>) -> BTreeMap<String, f64> {
        let mut groups = Groups::default();
        for r in rows {
            groups.add(r, split);
        }
        groups.rates(threshold)
    }

    #[test]
    fn the_rate_counts_records_with_a_confidence_below_the_threshold() {
        let row = |c: Option<f64>, f: &str| SampleRow {
            confidence: c,
            feature: Some(f.to_owned()),
            ..SampleRow::default()
        };
        let rows = [
            row(Some(0.2), "a"),
            row(Some(0.9), "a"),
            row(Some(0.4), "b"),
            row(None, "b"),
        ];
        let all = rates(&rows, 0.5, None);
        assert!((all["*"] - 2.0 / 3.0).abs() < 1e-12, "{all:?}");
        let by = rates(&rows, 0.5, Some(Split::Feature));
        assert!((by["a"] - 0.5).abs() < 1e-12 && (by["b"] - 1.0).abs() < 1e-12);
        assert!(rates(&[row(None, "a")], 0.5, None).is_empty());
        assert_eq!(spread(Vec::new(), 0.5), None);
        let s = spread(rows.iter().filter_map(|r| r.confidence).collect(), 0.5)
            .expect("three carry one");
        assert_eq!((s.n, s.low), (3, 2));
        assert_eq!((s.p10, s.p50, s.p90), (0.2, 0.4, 0.9));
    }
}
