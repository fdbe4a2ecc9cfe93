//! The traffic pages of `report`: one per source of evalwatch.yaml, filled from stored
//! buckets with two reads per source (hour buckets for the last 14 days: the 24h and 7d
//! windows and the windows before them; day buckets for the last 60 days: 30d and the 30
//! days before) and one read of change markers.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::app::alerts::traffic::confidence::spread;
use crate::app::traffic::pillars::{Pillars, pillars, usage};
use crate::model::ProjectConfig;
use crate::report::html::Written;
use crate::report::html::traffic::{
    ConfidenceDay, ConfidenceHistory, TrafficAlert, TrafficFigures, TrafficJudge, TrafficLink,
    TrafficMarker, TrafficPage, TrafficPoint, TrafficRuleState, TrafficUsage, TrafficWindow,
    traffic_href, write_traffic,
};
use crate::store::{BucketRow, MarkQuery, Store};
use crate::traffic::{BucketKey, Resolution};

const DAY: i64 = 86_400;

/// The windows of the page: label, length, the resolution counted in.
const WINDOWS: [(&str, i64, Resolution); 3] = [
    ("24h", DAY, Resolution::Hour),
    ("7d", 7 * DAY, Resolution::Hour),
    ("30d", 30 * DAY, Resolution::Day),
];

fn figures(p: &Pillars) -> TrafficFigures {
    TrafficFigures {
        volume: p.volume,
        error_rate: p.error_rate,
        latency_p50_ms: p.latency_p50_ms,
        latency_p95_ms: p.latency_p95_ms,
        latency_p99_ms: p.latency_p99_ms,
        cost_usd: p.cost_usd,
        sampled: p.sampled,
        scored: p.scored,
        pass_rate: p.pass_rate,
        hallucination_rate: p.hallucination_rate,
        refusal_rate: p.refusal_rate,
    }
}

type Rows = [(BucketKey, BucketRow)];
/// Buckets read at one resolution: the resolution, where its windows end, the rows.
type Read = (Resolution, i64, Vec<(BucketKey, BucketRow)>);

/// The window `[end - secs, end)` of `rows` (sorted by start), beside the one before it.
fn window(label: &str, rows: &Rows, end: i64, secs: i64, res: Resolution) -> TrafficWindow {
    let within = |from: i64, to: i64| {
        rows.iter()
            .filter(move |(k, _)| k.start >= from && k.start < to)
            .map(|(k, r)| (k, r))
    };
    let from = end - secs;
    let mut per_start: BTreeMap<i64, Vec<(&BucketKey, &BucketRow)>> = BTreeMap::new();
    let mut cost_by_feature: BTreeMap<String, BTreeMap<i64, f64>> = BTreeMap::new();
    let mut cost_by_model: BTreeMap<String, BTreeMap<i64, f64>> = BTreeMap::new();
    for (k, r) in within(from, end) {
        per_start.entry(k.start).or_default().push((k, r));
        let day = k.start.div_euclid(DAY) * DAY;
        *cost_by_feature
            .entry(k.feature.clone())
            .or_default()
            .entry(day)
            .or_default() += r.bucket.cost_usd;
        *cost_by_model
            .entry(k.model.clone())
            .or_default()
            .entry(day)
            .or_default() += r.bucket.cost_usd;
    }
    let flat = |m: BTreeMap<String, BTreeMap<i64, f64>>| {
        m.into_iter()
            .map(|(k, days)| (k, days.into_iter().collect()))
            .collect()
    };
    let u = usage(within(from, end), res.seconds());
    TrafficWindow {
        label: label.to_string(),
        bucket: res.name().to_string(),
        bucket_secs: res.seconds(),
        current: figures(&pillars(within(from, end), secs, res.seconds())),
        previous: figures(&pillars(within(from - secs, from), secs, res.seconds())),
        points: per_start
            .into_iter()
            .map(|(t, rows)| TrafficPoint {
                t,
                figures: figures(&pillars(rows, res.seconds(), res.seconds())),
            })
            .collect(),
        cost_by_feature: flat(cost_by_feature),
        cost_by_model: flat(cost_by_model),
        usage: TrafficUsage {
            by_hour: u.by_hour,
            by_feature: u.by_feature,
            by_segment: u.by_segment,
            by_region: u.by_region,
        },
        // Filled by the caller when the monitor calls a judge.
        judge: None,
    }
}

/// The page of source `id` at `now` (windows end now, or at the source's last record when it
/// has been silent for longer than a day: [`crate::app::traffic::quiet::anchor`]).
pub fn traffic_page(
    store: &Store,
    id: &str,
    now: DateTime<Utc>,
) -> Result<TrafficPage, crate::store::StoreError> {
    // A source silent for longer than the shortest window: its windows end at its last record.
    let shortest = WINDOWS.iter().map(|w| w.1).min().unwrap_or(DAY);
    let (anchored, quiet) =
        crate::app::traffic::quiet::anchor(now, store.traffic_latest(id)?, shortest);
    let unix = anchored.timestamp();
    let mut windows = Vec::new();
    let mut reads: Vec<Read> = Vec::new();
    for (label, secs, res) in WINDOWS {
        // The window ends with the bucket that holds now, so the current hour counts.
        let end = res.floor(unix) + res.seconds();
        // One read per resolution, as long as its longest window and the one before.
        if !reads.iter().any(|(r, _, _)| *r == res) {
            let longest = WINDOWS
                .iter()
                .filter(|w| w.2 == res)
                .map(|w| w.1)
                .max()
                .unwrap_or(secs);
            let rows = store.traffic_buckets(id, res, end - 2 * longest, end)?;
            reads.push((res, end, rows));
        }
        if let Some((_, end, rows)) = reads.iter().find(|(r, _, _)| *r == res) {
            windows.push(window(label, rows, *end, secs, res));
        }
    }
    let since = (anchored - chrono::Duration::days(30)).to_rfc3339();
    let mut markers = store
        .marks(&MarkQuery {
            since: Some(&since),
            source: Some(id),
            ..MarkQuery::default()
        })?
        .into_iter()
        .filter_map(|m| {
            let t = DateTime::parse_from_rfc3339(&m.at).ok()?.timestamp();
            Some(TrafficMarker { t, text: m.text })
        })
        .collect::<Vec<_>>();
    markers.sort_by_key(|m| m.t);
    Ok(TrafficPage {
        source: id.to_string(),
        generated: now,
        quiet,
        rules: store
            .traffic_alert_verdicts(id)?
            .into_iter()
            .map(|(rule, _, verdict)| TrafficRuleState { rule, verdict })
            .collect(),
        windows,
        markers,
        alerts: store
            .open_alerts(Some(&crate::app::alerts::traffic::alert_suite(id)))?
            .into_iter()
            .map(|a| TrafficAlert {
                severity: a.severity,
                text: format!("{} (open since {})", a.message, a.opened_at),
            })
            .collect(),
        drift: crate::app::alerts::traffic::drift::history(store, id, now)?,
        // Filled by the caller, which knows the source's threshold.
        confidence: None,
    })
}

/// The confidence section of source `id`: each of the last 14 days (UTC, today so far
/// included) whose sampled records carry a confidence; None when no record does.
fn confidence_history(
    store: &Store,
    id: &str,
    threshold: f64,
    now: DateTime<Utc>,
) -> Result<Option<ConfidenceHistory>, crate::store::StoreError> {
    let today = now.timestamp().div_euclid(DAY) * DAY;
    let mut days: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    store.each_traffic_sample(id, today - 13 * DAY, today + DAY, |r| {
        if let Some(c) = r.confidence {
            let day = r.time_ms.div_euclid(1000).div_euclid(DAY) * DAY;
            days.entry(day).or_default().push(c);
        }
        Ok(())
    })?;
    let days: Vec<ConfidenceDay> = days
        .into_iter()
        .filter_map(|(day, values)| {
            let s = spread(values, threshold)?;
            Some(ConfidenceDay {
                day,
                n: s.n,
                low: s.low,
                median: s.p50,
            })
        })
        .collect();
    Ok((!days.is_empty()).then_some(ConfidenceHistory { threshold, days }))
}

/// Write the page of every source of the project into `dir` (`report`), or, `stored_only`,
/// of every source with traffic stored (`run` refreshing the reports).
pub fn write_traffic_pages(
    store: &Store,
    project: &ProjectConfig,
    dir: &Path,
    now: DateTime<Utc>,
    stored_only: bool,
    out: &mut Written,
) -> anyhow::Result<()> {
    for source in &project.traffic {
        if stored_only && store.traffic_latest(&source.id)?.is_none() {
            continue;
        }
        let mut page = traffic_page(store, &source.id, now)?;
        page.confidence = confidence_history(store, &source.id, source.low_confidence, now)?;
        if crate::judge::Engine::wants(&source.monitor_case()) {
            for w in &mut page.windows {
                w.judge = judge_of(store, &source.id, &w.label, now)?;
            }
        }
        write_traffic(dir, &page, out)?;
    }
    Ok(())
}

/// What judge monitors did in the window `label` ending now and the one before it, from the
/// stored sample (as far back as `retention.records` keeps it).
fn judge_of(
    store: &Store,
    source: &str,
    label: &str,
    now: DateTime<Utc>,
) -> Result<Option<(TrafficJudge, TrafficJudge)>, crate::store::StoreError> {
    let Some((_, secs, res)) = WINDOWS.iter().find(|(l, _, _)| *l == label) else {
        return Ok(None);
    };
    let end = res.floor(now.timestamp()) + res.seconds();
    let of = |from: i64, to: i64| -> Result<TrafficJudge, crate::store::StoreError> {
        let t = store.traffic_judge_totals(source, from, to)?;
        Ok(TrafficJudge {
            calls: t.calls,
            cost_usd: t.cost_usd,
            pending: t.pending,
            why: t.why,
        })
    };
    Ok(Some((
        of(end - secs, end)?,
        of(end - 2 * secs, end - secs)?,
    )))
}

/// Links to the traffic pages of the project's sources that are in `dir`, for the index.
#[must_use]
pub fn traffic_links(project: &ProjectConfig, dir: &Path) -> Vec<TrafficLink> {
    project
        .traffic
        .iter()
        .map(|s| TrafficLink {
            source: s.id.clone(),
            href: traffic_href(&s.id),
        })
        .filter(|l| dir.join(&l.href).exists())
        .collect()
}
