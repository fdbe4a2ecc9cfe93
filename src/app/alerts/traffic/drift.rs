//! Drift figures of a traffic source: each drift metric of one window against a baseline
//! window, read from the store. Mixes of feature, model and region come from buckets (every
//! record); lengths, latency, confidence and language from the sampled records. Fewer than
//! the minimum of records in either window gives "not enough data" instead of a p-value.
//! `evalwatch traffic`, the drift rules ([`super::drift_alerts`]) and the traffic page all
//! read drift through [`figures`].

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::alert::drift::{self, Drift, MIX, NUMERIC};
use crate::report::html::traffic::{DriftCell, DriftHistory};
use crate::store::{SampleRow, Store, StoreError};
use crate::traffic::Resolution;

/// What a window holds for drift: of its sampled records, only the values the tests read
/// (a month of a busy source's sample is millions of records; 32 bytes each here).
#[derive(Debug, Default)]
pub(crate) struct Data {
    /// Sampled records read.
    sampled: u64,
    /// Each numeric metric's values, in the records' order: input length, output length,
    /// latency (of successful requests), confidence ([`numeric_values`]).
    values: [Vec<f64>; 4],
    /// The sampled inputs' languages, counted.
    languages: BTreeMap<String, u64>,
    /// Requests per label: feature, model, region (all records, from buckets).
    mixes: [BTreeMap<String, u64>; 3],
}

impl Data {
    /// Keeps what drift reads of one sampled record.
    fn add(&mut self, r: &SampleRow) {
        self.sampled += 1;
        let values = [
            r.input_chars.map(|n| n as f64),
            r.output_chars.map(|n| n as f64),
            r.latency_ms,
            r.confidence,
        ];
        for (to, v) in self.values.iter_mut().zip(values) {
            to.extend(v);
        }
        if let Some(l) = &r.language {
            match self.languages.get_mut(l) {
                Some(n) => *n += 1,
                None => {
                    self.languages.insert(l.clone(), 1);
                }
            }
        }
    }
}

/// The buckets that tile `[from, to)`: the coarsest resolution both ends fall on.
fn tiling(from: i64, to: i64) -> Resolution {
    [Resolution::Day, Resolution::Hour]
        .into_iter()
        .find(|r| from % r.seconds() == 0 && to % r.seconds() == 0)
        .unwrap_or(Resolution::Minute)
}

/// Reads `[from, to)` (unix seconds) of `source`.
pub(crate) fn load(store: &Store, source: &str, from: i64, to: i64) -> Result<Data, StoreError> {
    let mut data = Data::default();
    store.each_traffic_sample(source, from, to, |row| {
        data.add(&row);
        Ok(())
    })?;
    // One bucket at a time: a window of minutes can hold more rows than fit in memory.
    store.each_traffic_bucket(source, tiling(from, to), from, to, |key, row| {
        for (mix, label) in data
            .mixes
            .iter_mut()
            .zip([&key.feature, &key.model, &key.region])
        {
            let name = if label.is_empty() { "(none)" } else { label };
            *mix.entry(name.to_owned()).or_default() += row.bucket.requests;
        }
        Ok(())
    })?;
    Ok(data)
}

/// Too few records for a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Short {
    pub(crate) current_n: u64,
    pub(crate) baseline_n: u64,
    pub(crate) needs: u64,
}

impl Short {
    /// "not enough data: n=12, needs 50 (this window)".
    pub(crate) fn message(&self) -> String {
        let (n, which) = if self.current_n < self.needs {
            (self.current_n, "this window")
        } else {
            (self.baseline_n, "baseline window")
        };
        format!("not enough data: n={n}, needs {} ({which})", self.needs)
    }
}

/// One drift metric of a window against its baseline.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Figure {
    pub(crate) metric: &'static str,
    pub(crate) result: Result<Drift, Short>,
}

impl Figure {
    /// Whether the test ran and its p-value is below `max_p`.
    pub(crate) fn drifted(&self, max_p: f64) -> bool {
        self.result.as_ref().is_ok_and(|d| d.p_value < max_p)
    }

    /// The figure as JSON: the test's figures, or `not_enough_data`.
    pub(crate) fn json(&self) -> Value {
        match &self.result {
            Ok(d) => json!({
                "metric": self.metric,
                "test": d.test,
                "statistic": d.statistic,
                "df": d.df,
                "p_value": d.p_value,
                "current_n": d.current_n,
                "baseline_n": d.baseline_n,
                "moved": d.moved,
            }),
            Err(s) => json!({
                "metric": self.metric,
                "not_enough_data": {"current_n": s.current_n, "baseline_n": s.baseline_n, "needs": s.needs},
                "message": s.message(),
            }),
        }
    }

    /// `KS D = 0.412, p = 3.1e-12` or `chi-square 45.20 (df 2), p = 0.0004`, or why not.
    pub(crate) fn test_words(&self) -> String {
        match &self.result {
            Ok(d) => match d.test {
                drift::DriftTest::Ks => {
                    format!("KS D = {:.3}, p = {}", d.statistic, p_value(d.p_value))
                }
                drift::DriftTest::ChiSquare => format!(
                    "chi-square {:.2} (df {}), p = {}",
                    d.statistic,
                    d.df,
                    p_value(d.p_value)
                ),
            },
            Err(s) => s.message(),
        }
    }

    /// The text line `evalwatch traffic` prints.
    pub(crate) fn line(&self) -> String {
        match &self.result {
            Ok(d) => format!(
                "  {:<22} {}; n = {} vs {}{}",
                self.metric,
                self.test_words(),
                d.current_n,
                d.baseline_n,
                if d.moved.is_empty() {
                    String::new()
                } else {
                    format!("; {}", d.moved.join(", "))
                }
            ),
            Err(_) => format!("  {:<22} {}", self.metric, self.test_words()),
        }
    }
}

/// `0.0312`, `3.1e-12`.
pub(crate) fn p_value(p: f64) -> String {
    if p >= 0.001 {
        format!("{p:.4}")
    } else {
        format!("{p:.1e}")
    }
}

fn numeric_values<'d>(data: &'d Data, metric: &str) -> &'d [f64] {
    let i = match metric {
        "drift.input_length" => 0,
        "drift.output_length" => 1,
        "drift.latency" => 2,
        _ => 3,
    };
    &data.values[i]
}

fn mix_counts(data: &Data, metric: &str) -> BTreeMap<String, u64> {
    match metric {
        "drift.feature_mix" => data.mixes[0].clone(),
        "drift.model_mix" => data.mixes[1].clone(),
        "drift.region_mix" => data.mixes[2].clone(),
        _ => data.languages.clone(),
    }
}

/// One drift metric of `cur` against `base`, needing `min` records in each.
pub(crate) fn figure(metric: &'static str, cur: &Data, base: &Data, min: u64) -> Figure {
    let short = |c: u64, b: u64| {
        (c < min || b < min).then_some(Short {
            current_n: c,
            baseline_n: b,
            needs: min,
        })
    };
    let result = if let Some((_, what, unit)) = NUMERIC.iter().find(|m| m.0 == metric) {
        let (c, b) = (numeric_values(cur, metric), numeric_values(base, metric));
        match short(c.len() as u64, b.len() as u64) {
            Some(s) => Err(s),
            None => Ok(drift::numeric(metric, what, unit, c, b)),
        }
    } else {
        let of = MIX
            .iter()
            .find(|m| m.0 == metric)
            .map_or("requests", |m| m.1);
        let (c, b) = drift::pooled(&mix_counts(cur, metric), &mix_counts(base, metric));
        match short(c.values().sum(), b.values().sum()) {
            Some(s) => Err(s),
            None => Ok(drift::mix(metric, of, &c, &b)),
        }
    };
    Figure { metric, result }
}

/// Every drift metric of `cur` against `base`, in the spec's order.
pub(crate) fn figures(cur: &Data, base: &Data, min: u64) -> Vec<Figure> {
    crate::alert::drift_rule::metrics()
        .map(|m| figure(m, cur, base, min))
        .collect()
}

/// Every drift metric of `source` over `[from, to)` against `[base_from, base_to)`, with
/// the default minimum of records ([`crate::alert::drift_rule::MIN_RECORDS`]).
pub(crate) fn between(
    store: &Store,
    source: &str,
    (from, to): (i64, i64),
    (base_from, base_to): (i64, i64),
) -> anyhow::Result<Vec<Figure>> {
    let cur = load(store, source, from, to)?;
    let base = load(store, source, base_from, base_to)?;
    Ok(figures(&cur, &base, crate::alert::drift_rule::MIN_RECORDS))
}

/// Days the traffic page shows drift for.
pub(crate) const PAGE_DAYS: i64 = 14;

/// The traffic page's drift: each of the last [`PAGE_DAYS`] closed days against the same day
/// a week earlier (the drift rules' default baseline), flagged under their default `max_p`.
pub(crate) fn history(
    store: &Store,
    source: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<DriftHistory, StoreError> {
    const DAY: i64 = 86_400;
    let min = crate::alert::drift_rule::MIN_RECORDS;
    let end = now.timestamp().div_euclid(DAY) * DAY;
    let first = end - PAGE_DAYS * DAY;
    // Each day is read once: day d is the current window of d and the baseline of d + 7.
    let mut data = BTreeMap::new();
    for d in (first - 7 * DAY..end).step_by(DAY as usize) {
        data.insert(d, load(store, source, d, d + DAY)?);
    }
    let with_traffic = |d: &i64| {
        data.get(d)
            .is_some_and(|x| x.sampled > 0 || x.mixes[0].values().any(|n| *n > 0))
    };
    let days: Vec<i64> = (first..end)
        .step_by(DAY as usize)
        .filter(with_traffic)
        .collect();
    let empty = Data::default();
    let mut metrics: Vec<(String, Vec<DriftCell>)> = crate::alert::drift_rule::metrics()
        .map(|m| (m.to_owned(), Vec::new()))
        .collect();
    for d in &days {
        let cur = data.get(d).unwrap_or(&empty);
        let base = data.get(&(d - 7 * DAY)).unwrap_or(&empty);
        for (f, (_, cells)) in figures(cur, base, min).into_iter().zip(&mut metrics) {
            let cell = match &f.result {
                Ok(x) => DriftCell::Tested {
                    p_value: x.p_value,
                    test: f.test_words(),
                    moved: x.moved.clone(),
                },
                Err(s) => DriftCell::Short(s.message()),
            };
            cells.push(cell);
        }
    }
    Ok(DriftHistory {
        max_p: crate::alert::drift_rule::DEFAULT_MAX_P,
        needs: min,
        days,
        metrics,
    })
}

/// The drift section of `evalwatch traffic`'s text: each figure, flagged `!` when its p-value
/// is below the drift rules' default `max_p`.
pub(crate) fn text_section(figures: &[Figure]) -> String {
    let max_p = crate::alert::drift_rule::DEFAULT_MAX_P;
    let mut out = format!("drift (this window against the one before; ! = p < {max_p})\n");
    for f in figures {
        out.push_str(if f.drifted(max_p) { "!" } else { " " });
        out.push_str(&f.line()[1..]);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn langs(pairs: &[(&str, usize)]) -> Data {
        let mut d = Data::default();
        for (l, n) in pairs {
            for _ in 0..*n {
                d.add(&SampleRow {
                    language: Some((*l).to_owned()),
                    input_chars: Some(100),
                    ..SampleRow::default()
                });
            }
        }
        d
    }

    #[test]
    fn a_language_shift_is_found_and_too_little_data_is_said() {
        let base = langs(&[("English", 970), ("Spanish", 30), ("Tagalog", 2)]);
        let cur = langs(&[("English", 790), ("Spanish", 210), ("Tagalog", 1)]);
        let f = figure("drift.language_mix", &cur, &base, 50);
        assert!(f.drifted(0.001), "{f:?}");
        let d = f.result.as_ref().unwrap();
        assert_eq!(d.moved[0], "Spanish 3% -> 21% of inputs");
        // Tagalog, seen three times, is pooled: chi-square has two categories plus (other).
        assert_eq!(d.df, 2);
        let f = figure("drift.input_length", &langs(&[("English", 12)]), &base, 50);
        assert_eq!(
            f.result.as_ref().unwrap_err().message(),
            "not enough data: n=12, needs 50 (this window)"
        );
        assert!(!f.drifted(0.5));
        assert!(f.line().contains("not enough data: n=12, needs 50"));
        assert_eq!(f.json()["not_enough_data"]["needs"], 50);
    }

    #[test]
    fn windows_are_read_in_the_coarsest_buckets_that_tile_them() {
        assert_eq!(tiling(86_400, 2 * 86_400), Resolution::Day);
        assert_eq!(tiling(3_600, 86_400), Resolution::Hour);
        assert_eq!(tiling(900, 1_800), Resolution::Minute);
        assert_eq!(p_value(0.0312), "0.0312");
        assert_eq!(p_value(3.1e-12), "3.1e-12");
    }
}
