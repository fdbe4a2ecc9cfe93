//! The traffic page of one source (`traffic-<id>.html`): volume and error rate, latency
//! percentiles, daily cost by feature and by model, quality on the sample, and usage, over
//! 24h / 7d / 30d, with change markers on the charts. The composer fills [`TrafficPage`]
//! from stored buckets; this file only lays it out.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;

pub use self::drift::{DriftCell, DriftHistory};
use super::chart::{self, MarkerIn, Sample, SeriesIn, Unit, line_chart};
use super::{CSS, HtmlError, Written, engine_of, file_stem, render, write};

/// The figures of a window (or of the window before it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrafficFigures {
    pub volume: u64,
    pub error_rate: Option<f64>,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub cost_usd: f64,
    /// Records kept whole and scored by the source's `monitor`.
    pub sampled: u64,
    pub scored: u64,
    pub pass_rate: Option<f64>,
    pub hallucination_rate: Option<f64>,
    pub refusal_rate: Option<f64>,
}

/// One bucket's figures, all labels merged.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrafficPoint {
    /// Start (unix seconds).
    pub t: i64,
    pub figures: TrafficFigures,
}

/// Volume of a window by hour of day and by label.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrafficUsage {
    /// Requests per hour of day (UTC); absent when the window is counted in day buckets.
    pub by_hour: Option<BTreeMap<u32, u64>>,
    pub by_feature: BTreeMap<String, u64>,
    pub by_segment: BTreeMap<String, u64>,
    pub by_region: BTreeMap<String, u64>,
}

/// One window (24h, 7d, 30d) of a source.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrafficWindow {
    /// `24h`, `7d`, `30d`.
    pub label: String,
    /// What a point of the charts is: `hour`, `day`.
    pub bucket: String,
    /// Its length in seconds.
    pub bucket_secs: i64,
    pub current: TrafficFigures,
    pub previous: TrafficFigures,
    /// One per bucket that has traffic, in time order.
    pub points: Vec<TrafficPoint>,
    /// Cost per day (day start, USD) by feature and by model.
    pub cost_by_feature: BTreeMap<String, Vec<(i64, f64)>>,
    pub cost_by_model: BTreeMap<String, Vec<(i64, f64)>>,
    pub usage: TrafficUsage,
    /// (current, previous) when the source's monitor calls a judge.
    pub judge: Option<(TrafficJudge, TrafficJudge)>,
}

/// What judge monitors did for a window's sampled records.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrafficJudge {
    /// Judge calls made (not answered by the judge cache).
    pub calls: u64,
    /// Their cost, apart from the traffic's.
    pub cost_usd: f64,
    /// Sampled records still awaiting the judge, and why the newest waits.
    pub pending: u64,
    pub why: Option<String>,
}

/// A change marker (`evalwatch mark`) to draw on the charts.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficMarker {
    /// Unix seconds.
    pub t: i64,
    pub text: String,
}

/// An open traffic alert to list above the charts.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficAlert {
    pub severity: String,
    pub text: String,
}

/// What an alert rule of the source made of the last window it judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficRuleState {
    pub rule: String,
    /// `window A..B: quiet`, `window A..B: not judged: 15m window holds 1 request, ...`.
    pub verdict: String,
}

/// Everything the page of one source shows.
#[derive(Debug, Clone)]
pub struct TrafficPage {
    pub source: String,
    pub generated: DateTime<Utc>,
    /// Said above the windows when the source has gone quiet and they end at its last
    /// record instead of now: `no records since 2026-12-01 14:02 UTC (5 days ago); ...`.
    pub quiet: Option<String>,
    /// The source's alert rules that have judged a window, by name.
    pub rules: Vec<TrafficRuleState>,
    pub windows: Vec<TrafficWindow>,
    /// In time order.
    pub markers: Vec<TrafficMarker>,
    pub alerts: Vec<TrafficAlert>,
    /// Drift per day (the drift section).
    pub drift: DriftHistory,
    /// Confidence per day, when the source's records carry one (the confidence section).
    pub confidence: Option<ConfidenceHistory>,
}

/// The confidence of one day's sampled records (those carrying one).
#[derive(Debug, Clone, PartialEq)]
pub struct ConfidenceDay {
    /// Unix seconds of the day's start.
    pub day: i64,
    pub n: u64,
    /// Below the threshold.
    pub low: u64,
    pub median: f64,
}

/// Confidence per day, oldest first, under the source's `low_confidence:` threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfidenceHistory {
    pub threshold: f64,
    pub days: Vec<ConfidenceDay>,
}

/// A link from the index to a source's page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrafficLink {
    pub source: String,
    pub href: String,
}

/// Series with more labels than this show the largest and fold the rest into `other`.
pub const TRAFFIC_SERIES: usize = 6;
/// Rows of each usage table.
pub const TRAFFIC_ROWS: usize = 30;

/// The file name of a source's page.
#[must_use]
pub fn traffic_href(source: &str) -> String {
    format!("traffic-{}.html", file_stem(source))
}

const TEMPLATES: [(&str, &str); 2] = [
    ("chart.html", include_str!("templates/chart.html")),
    ("traffic.html", include_str!("templates/traffic.html")),
];

#[derive(Serialize)]
struct Figure {
    name: &'static str,
    value: String,
    previous: String,
}

#[derive(Serialize)]
struct Row {
    label: String,
    value: String,
    share: String,
}

#[derive(Serialize)]
struct Table {
    title: String,
    rows: Vec<Row>,
    more: usize,
}

#[derive(Serialize)]
struct WindowView {
    key: String,
    label: String,
    checked: bool,
    volume: u64,
    figures: Vec<Figure>,
    /// Why sampled records still await the judge, when some do.
    judge_note: Option<String>,
    charts: Vec<String>,
    tables: Vec<Table>,
}

#[derive(Serialize)]
struct ConfidenceDayView {
    day: String,
    share: String,
    counts: String,
    median: String,
}

#[derive(Serialize)]
struct ConfidenceView {
    threshold: f64,
    days: Vec<ConfidenceDayView>,
}

fn confidence_view(h: &ConfidenceHistory) -> ConfidenceView {
    ConfidenceView {
        threshold: h.threshold,
        days: h
            .days
            .iter()
            .map(|d| ConfidenceDayView {
                day: chrono::DateTime::from_timestamp(d.day, 0)
                    .map_or_else(String::new, |t| t.format("%Y-%m-%d").to_string()),
                share: format!("{:.1}%", d.low as f64 * 100.0 / d.n.max(1) as f64),
                counts: format!("{}/{}", d.low, d.n),
                median: format!("{:.3}", d.median),
            })
            .collect(),
    }
}

#[derive(Serialize)]
struct MarkerView {
    at: String,
    text: String,
}

#[derive(Serialize)]
struct AlertView {
    severity: String,
    text: String,
}

#[derive(Serialize)]
struct RuleView {
    rule: String,
    verdict: String,
    /// The rule could not judge its last window (too little data, no baseline).
    unjudged: bool,
}

#[derive(Serialize)]
struct PageView {
    source: String,
    css: &'static str,
    window_css: String,
    generated: String,
    quiet: Option<String>,
    rules: Vec<RuleView>,
    windows: Vec<WindowView>,
    markers: Vec<MarkerView>,
    alerts: Vec<AlertView>,
    drift: String,
    confidence: Option<ConfidenceView>,
}

fn figures(cur: &TrafficFigures, prev: &TrafficFigures) -> Vec<Figure> {
    let f = |name, unit: Unit, get: &dyn Fn(&TrafficFigures) -> Option<f64>| Figure {
        name,
        value: unit.show(get(cur)),
        previous: unit.show(get(prev)),
    };
    vec![
        f("requests", Unit::Count, &|x| Some(x.volume as f64)),
        f("error rate", Unit::Rate, &|x| x.error_rate),
        f("latency p50", Unit::Ms, &|x| x.latency_p50_ms),
        f("latency p95", Unit::Ms, &|x| x.latency_p95_ms),
        f("latency p99", Unit::Ms, &|x| x.latency_p99_ms),
        f("cost", Unit::Usd, &|x| Some(x.cost_usd)),
        f("sampled", Unit::Count, &|x| Some(x.sampled as f64)),
        f("monitor pass rate", Unit::Rate, &|x| x.pass_rate),
        f("hallucination rate", Unit::Rate, &|x| x.hallucination_rate),
        f("refusal rate", Unit::Rate, &|x| x.refusal_rate),
    ]
}

/// The judge monitors' figures: calls, their cost, records awaiting the judge.
fn judge_figures(cur: &TrafficJudge, prev: &TrafficJudge) -> Vec<Figure> {
    let f = |name, unit: Unit, get: &dyn Fn(&TrafficJudge) -> f64| Figure {
        name,
        value: unit.show(Some(get(cur))),
        previous: unit.show(Some(get(prev))),
    };
    vec![
        f("judge calls", Unit::Count, &|x| x.calls as f64),
        f("judge cost", Unit::Usd, &|x| x.cost_usd),
        f("awaiting the judge", Unit::Count, &|x| x.pending as f64),
    ]
}

fn time_label(t: i64, bucket: &str) -> String {
    DateTime::from_timestamp(t, 0).map_or_else(String::new, |d| {
        if bucket == "day" {
            d.format("%Y-%m-%d").to_string()
        } else {
            d.format("%Y-%m-%d %H:%M UTC").to_string()
        }
    })
}

fn series(name: &str, w: &TrafficWindow, get: impl Fn(&TrafficFigures) -> Option<f64>) -> SeriesIn {
    SeriesIn {
        name: name.to_string(),
        samples: w
            .points
            .iter()
            .map(|p| Sample {
                t: p.t as f64,
                value: get(&p.figures),
                label: time_label(p.t, &w.bucket),
            })
            .collect(),
    }
}

/// The largest `TRAFFIC_SERIES - 1` labels by total cost, the rest summed as `other`.
fn cost_series(by: &BTreeMap<String, Vec<(i64, f64)>>) -> Vec<SeriesIn> {
    let mut totals: Vec<(&String, f64)> = by
        .iter()
        .map(|(k, v)| (k, v.iter().map(|(_, c)| c).sum()))
        .collect();
    totals.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let keep = if totals.len() > TRAFFIC_SERIES {
        TRAFFIC_SERIES - 1
    } else {
        totals.len()
    };
    let to_samples = |days: &BTreeMap<i64, f64>| {
        days.iter()
            .map(|(t, c)| Sample {
                t: *t as f64,
                value: Some(*c),
                label: time_label(*t, "day"),
            })
            .collect()
    };
    let mut out = Vec::new();
    let mut other: BTreeMap<i64, f64> = BTreeMap::new();
    for (i, (name, _)) in totals.iter().enumerate() {
        let days = &by[*name];
        if i < keep {
            let m: BTreeMap<i64, f64> = days.iter().copied().collect();
            out.push(SeriesIn {
                name: shown_label(name),
                samples: to_samples(&m),
            });
        } else {
            for (t, c) in days {
                *other.entry(*t).or_default() += c;
            }
        }
    }
    if !other.is_empty() {
        out.push(SeriesIn {
            name: "other".into(),
            samples: to_samples(&other),
        });
    }
    out
}

/// An empty label (the record had none) reads as `(none)`.
fn shown_label(l: &str) -> String {
    if l.is_empty() {
        "(none)".into()
    } else {
        l.to_string()
    }
}

fn table(title: &str, counts: &BTreeMap<String, u64>) -> Table {
    let total: u64 = counts.values().sum();
    let mut rows: Vec<(&String, u64)> = counts.iter().map(|(k, v)| (k, *v)).collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let more = rows.len().saturating_sub(TRAFFIC_ROWS);
    Table {
        title: title.to_string(),
        rows: rows
            .into_iter()
            .take(TRAFFIC_ROWS)
            .map(|(k, v)| Row {
                label: shown_label(k),
                value: Unit::Count.format(v as f64),
                share: Unit::Rate.show((total > 0).then(|| v as f64 / total as f64)),
            })
            .collect(),
        more,
    }
}

fn chart_html(
    t: &tera::Tera,
    title: &str,
    unit: Unit,
    series: &[SeriesIn],
    markers: &[MarkerIn],
) -> Result<String, HtmlError> {
    #[derive(Serialize)]
    struct ChartView {
        c: chart::Chart,
    }
    let c = line_chart(title, unit, series, markers, &[], (600.0, 220.0));
    render(t, "chart.html", &ChartView { c })
}

fn window_view(
    t: &tera::Tera,
    w: &TrafficWindow,
    markers: &[TrafficMarker],
    checked: bool,
) -> Result<WindowView, HtmlError> {
    let (from, to) = (
        w.points.first().map_or(i64::MAX, |p| p.t),
        w.points.last().map_or(i64::MIN, |p| p.t),
    );
    // A marker stands on the bucket it falls in (its hover text gives the exact time).
    let on_bucket = |t: i64| t.div_euclid(w.bucket_secs.max(1)) * w.bucket_secs.max(1);
    let marks: Vec<MarkerIn> = markers
        .iter()
        .filter(|m| on_bucket(m.t) >= from && on_bucket(m.t) <= to)
        .map(|m| MarkerIn {
            t: on_bucket(m.t) as f64,
            label: format!("{}: {}", time_label(m.t, "minute"), m.text),
            class: "change",
        })
        .collect();
    let per = &w.bucket;
    let mut charts = vec![
        chart_html(
            t,
            &format!("requests per {per}"),
            Unit::Count,
            &[series("requests", w, |f| Some(f.volume as f64))],
            &marks,
        )?,
        chart_html(
            t,
            &format!("error rate per {per}"),
            Unit::Rate,
            &[series("error rate", w, |f| f.error_rate)],
            &marks,
        )?,
        chart_html(
            t,
            "latency p50 / p95 / p99",
            Unit::Ms,
            &[
                series("p50", w, |f| f.latency_p50_ms),
                series("p95", w, |f| f.latency_p95_ms),
                series("p99", w, |f| f.latency_p99_ms),
            ],
            &marks,
        )?,
        chart_html(
            t,
            "daily cost by feature",
            Unit::Usd,
            &cost_series(&w.cost_by_feature),
            &marks,
        )?,
        chart_html(
            t,
            "daily cost by model",
            Unit::Usd,
            &cost_series(&w.cost_by_model),
            &marks,
        )?,
        chart_html(
            t,
            "quality on the sample",
            Unit::Rate,
            &[
                series("monitor pass rate", w, |f| f.pass_rate),
                series("hallucination rate", w, |f| f.hallucination_rate),
                series("refusal rate", w, |f| f.refusal_rate),
            ],
            &marks,
        )?,
    ];
    if let Some(hours) = &w.usage.by_hour {
        let day = w
            .points
            .first()
            .map_or(0, |p| p.t.div_euclid(86_400) * 86_400);
        let samples = (0..24u32)
            .map(|h| Sample {
                t: (day + i64::from(h) * 3600) as f64,
                value: Some(hours.get(&h).copied().unwrap_or(0) as f64),
                label: format!("{h:02}:00-{h:02}:59 UTC"),
            })
            .collect();
        charts.push(chart_html(
            t,
            "requests by hour of day (UTC)",
            Unit::Count,
            &[SeriesIn {
                name: "requests".into(),
                samples,
            }],
            &[],
        )?);
    }
    Ok(WindowView {
        key: w.label.clone(),
        label: w.label.clone(),
        checked,
        volume: w.current.volume,
        figures: {
            let mut f = figures(&w.current, &w.previous);
            if let Some((c, p)) = &w.judge {
                f.extend(judge_figures(c, p));
            }
            f
        },
        judge_note: w
            .judge
            .as_ref()
            .and_then(|(c, _)| c.why.clone().filter(|_| c.pending > 0)),
        charts,
        tables: vec![
            table("by feature", &w.usage.by_feature),
            table("by segment", &w.usage.by_segment),
            table("by region", &w.usage.by_region),
        ],
    })
}

/// The page of one source, as HTML.
pub fn render_traffic(page: &TrafficPage) -> Result<String, HtmlError> {
    let t = engine_of(&TEMPLATES)?;
    let mut window_css = String::new();
    let mut windows = Vec::new();
    for (i, w) in page.windows.iter().enumerate() {
        let key = &w.label;
        let _ = write!(
            window_css,
            "#win-{key}:checked ~ #sec-{key}{{display:block}}#win-{key}:checked + label{{background:#0072b2;color:#fff}}"
        );
        windows.push(window_view(&t, w, &page.markers, i == 0)?);
    }
    let view = PageView {
        source: page.source.clone(),
        css: CSS,
        window_css,
        generated: page.generated.format("%Y-%m-%d %H:%M UTC").to_string(),
        quiet: page.quiet.clone(),
        rules: page
            .rules
            .iter()
            .map(|r| RuleView {
                rule: r.rule.clone(),
                verdict: r.verdict.clone(),
                unjudged: r.verdict.contains("not judged") || r.verdict.contains("undecided"),
            })
            .collect(),
        windows,
        markers: page
            .markers
            .iter()
            .rev()
            .map(|m| MarkerView {
                at: time_label(m.t, "minute"),
                text: m.text.clone(),
            })
            .collect(),
        alerts: page
            .alerts
            .iter()
            .map(|a| AlertView {
                severity: a.severity.clone(),
                text: a.text.clone(),
            })
            .collect(),
        drift: drift::drift_html(&page.drift)?,
        confidence: page.confidence.as_ref().map(confidence_view),
    };
    render(&t, "traffic.html", &view)
}

/// Render and write the page of one source into `dir`.
pub fn write_traffic(dir: &Path, page: &TrafficPage, out: &mut Written) -> Result<(), HtmlError> {
    let html = render_traffic(page)?;
    write(&dir.join(traffic_href(&page.source)), &html, out)
}

mod drift;
#[cfg(test)]
mod tests;
