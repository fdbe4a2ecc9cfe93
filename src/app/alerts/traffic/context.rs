//! The context a traffic alert carries (`../shared/spec/traffic.md`): value and normal
//! value, when it started, where it concentrates, and the change markers just before it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::figures::{Grouped, additive, metric_words, show, value};
use crate::alert::changes::{marks_json, related};
use crate::alert::rule::Condition;
use crate::alert::traffic::{Split, TrafficRule};
use crate::model::Mark;
use crate::store::{MarkQuery, Store};

pub(super) use crate::alert::changes::MARKS_BEFORE_SECS;

/// Where the excess of a firing, unsplit rule concentrates.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Concentration {
    pub(super) split: Split,
    pub(super) label: String,
    /// Its share of the excess (0..=1).
    pub(super) share: f64,
}

/// The label (of any split) that carries the largest share of the excess of `window` over
/// `normal` (rows of the baseline, `scale`d to the window for additive metrics), when one
/// carries at least half of it. For rates and percentiles a label's excess is its distance
/// from the normal value times its requests; for additive metrics, its own rise.
pub(super) fn concentration(
    rule: &TrafficRule,
    window: &Grouped,
    normal_rows: &Grouped,
    normal: Option<f64>,
    scale: f64,
) -> Option<Concentration> {
    let metric = rule.rule.metric.as_str();
    let secs = rule.window;
    // Drops move down: their excess is below normal.
    let sign = match rule.rule.condition {
        Condition::Drop(_) | Condition::Min(_) => -1.0,
        Condition::Ratio(r) if r < 1.0 => -1.0,
        _ => 1.0,
    };
    let mut best: Option<Concentration> = None;
    for (i, split) in Split::ALL.into_iter().enumerate() {
        let now = &window.by_label[i];
        if now.len() < 2 {
            continue;
        }
        let before = &normal_rows.by_label[i];
        let excess: BTreeMap<&str, f64> = now
            .iter()
            .filter_map(|(name, row)| {
                let v = value(metric, row, secs)?;
                let e = if additive(metric) {
                    let was = before
                        .get(name)
                        .and_then(|r| value(metric, r, secs))
                        .unwrap_or(0.0);
                    v - was * scale
                } else {
                    (v - normal?) * row.bucket.requests as f64
                };
                Some((name.as_str(), sign * e))
            })
            .filter(|(_, e)| *e > 0.0)
            .collect();
        let total: f64 = excess.values().sum();
        if total <= 0.0 {
            continue;
        }
        if let Some((name, e)) = excess.iter().max_by(|a, b| a.1.total_cmp(b.1)) {
            let share = e / total;
            if share >= 0.5 && best.as_ref().is_none_or(|b| share > b.share) {
                best = Some(Concentration {
                    split,
                    label: (*name).to_owned(),
                    share,
                });
            }
        }
    }
    best
}

/// `, started 15 minutes ago (window from 2026-03-02 14:45 UTC)`, or `, started at ...` when
/// it started less than a minute before `now`.
pub(super) fn started_words(started: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let ago = (now - started).num_seconds();
    let from = started.format("%Y-%m-%d %H:%M");
    if ago >= 60 {
        format!(", started {} ago (window from {from} UTC)", span(ago))
    } else {
        format!(", started at {from} UTC")
    }
}

/// The change markers an alert of `source` names: from [`MARKS_BEFORE_SECS`] before its
/// window started (`start`) to the window's end, the newest five at most. A marker narrowed
/// to a feature is named only when it is the alert's `feature` (where it concentrates, or
/// the group of a `by: feature` rule); markers for no feature always are.
pub(super) fn marks_before(
    store: &Store,
    source: &str,
    feature: Option<&str>,
    start: i64,
    end: i64,
) -> anyhow::Result<Vec<Mark>> {
    let since = super::at(start - MARKS_BEFORE_SECS);
    let until = super::at(end);
    let mut marks = store.marks(&MarkQuery {
        since: Some(&since),
        until: Some(&until),
        feature,
        source: Some(source),
        limit: None,
    })?;
    marks.retain(|m| m.feature.is_none() || m.feature.as_deref() == feature);
    let more = marks.len().saturating_sub(5);
    marks.drain(..more);
    Ok(marks)
}

/// The feature an alert concerns, for the markers it names: the group of a `by: feature`
/// rule, else the feature its excess concentrates in.
pub(super) fn alert_feature<'a>(
    rule: &TrafficRule,
    group: &'a str,
    concentration: Option<&'a Concentration>,
) -> Option<&'a str> {
    match rule.by {
        Some(Split::Feature) => Some(group),
        Some(_) => None,
        None => concentration
            .filter(|c| c.split == Split::Feature)
            .map(|c| c.label.as_str()),
    }
}

/// `15 minutes`, `3 hours`, `2 days`.
pub(super) fn span(secs: i64) -> String {
    let (n, unit) = if secs < 3_600 {
        (secs / 60, "minute")
    } else if secs < 86_400 {
        (secs / 3_600, "hour")
    } else {
        (secs / 86_400, "day")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// What an alert says and sends.
pub(super) struct Context<'a> {
    pub(super) rule: &'a TrafficRule,
    /// `*`, or the split's label.
    pub(super) group: &'a str,
    pub(super) value: f64,
    pub(super) normal: Option<f64>,
    pub(super) started: DateTime<Utc>,
    pub(super) now: DateTime<Utc>,
    pub(super) concentration: Option<Concentration>,
    pub(super) marks: Vec<Mark>,
}

impl Context<'_> {
    /// The spec's sentence: "Error rate is 8% (normally 2%), started 15 minutes ago,
    /// concentrated in the summarisation feature, possibly related to the deployment at 14:30."
    pub(super) fn sentence(&self) -> String {
        let metric = &self.rule.rule.metric;
        let mut s = metric_words(metric);
        if let Some(split) = self.rule.by {
            let _ = write!(s, " of {} `{}`", split.name(), self.group);
        }
        let _ = write!(s, " is {}", show(metric, self.value));
        match self.normal {
            Some(n) => {
                let _ = write!(s, " (normally {})", show(metric, n));
            }
            None => s.push_str(" (no earlier traffic to compare with)"),
        }
        s.push_str(&started_words(self.started, self.now));
        if let Some(c) = &self.concentration {
            let label = if c.label.is_empty() {
                "(unlabelled)"
            } else {
                &c.label
            };
            let _ = write!(
                s,
                ", concentrated in the {label} {} ({:.0}% of the excess)",
                c.split.name(),
                c.share * 100.0
            );
        }
        s.push_str(&related(&self.marks, self.started));
        s.push('.');
        s
    }

    /// The context as the notice's JSON carries it.
    pub(super) fn json(&self) -> Value {
        json!({
            "value": self.value,
            "normal": self.normal,
            "started_at": self.started.to_rfc3339_opts(SecondsFormat::Secs, true),
            "concentrated": self.concentration.as_ref().map(|c| json!({
                "by": c.split.name(), "label": c.label, "share": c.share,
            })),
            "marks": marks_json(&self.marks),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_naturally() {
        assert_eq!(span(900), "15 minutes");
        assert_eq!(span(3_600), "1 hour");
        assert_eq!(span(3 * 86_400), "3 days");
    }
}
