//! The index (every suite, its providers and their latest status, with sparklines) and the
//! alert history page.

use std::collections::BTreeMap;
use std::collections::HashMap;

use serde::Serialize;

use super::Source;
use super::chart::Sample;
use super::chart::Unit;
use super::chart::sparkline;
use super::{
    ALERTS_SHOWN, CSS, HtmlError, Options, chart, epoch, render, run_file, show_time, suite_href,
};
use crate::model::RunStatus;
use crate::model::{AlertRow, TrendQuery, TrendRow};

#[derive(Serialize)]
struct IndexProvider {
    provider: String,
    /// The open alert the status badge links to on the alert history page.
    alert_href: Option<String>,
    status: String,
    status_class: String,
    status_detail: String,
    last_run: String,
    last_run_status: String,
    last_run_href: Option<String>,
    pass_spark: String,
    halluc_spark: String,
    p95_spark: String,
    cost_spark: String,
}

#[derive(Serialize)]
struct IndexSuite {
    name: String,
    description: Option<String>,
    href: String,
    providers: Vec<IndexProvider>,
}

#[derive(Serialize)]
struct IndexPage {
    title: String,
    css: &'static str,
    generated: String,
    window: String,
    suites: Vec<IndexSuite>,
    traffic: Vec<super::traffic::TrafficLink>,
}

pub(super) fn spark(
    t: &tera::Tera,
    name: &str,
    unit: Unit,
    samples: &[Sample],
) -> Result<String, HtmlError> {
    #[derive(Serialize)]
    struct SparkView<'a> {
        name: &'a str,
        s: chart::Spark,
    }
    render(
        t,
        "spark.html",
        &SparkView {
            name,
            s: sparkline(name, unit, samples),
        },
    )
}

pub(super) fn samples_of(
    rows: &[&TrendRow],
    get: impl Fn(&TrendRow) -> Option<f64>,
) -> Vec<Sample> {
    rows.iter()
        .map(|r| Sample {
            t: epoch(&r.started_at),
            value: get(r),
            label: format!("{} ({})", show_time(&r.started_at), r.run_id),
        })
        .collect()
}

/// Status of a provider from its last run's gates.
fn provider_status(
    store: &dyn Source,
    last: &TrendRow,
    gates_cache: &mut HashMap<String, Vec<crate::model::GateResult>>,
) -> Result<(String, String, String), HtmlError> {
    match last.status {
        RunStatus::Failed | RunStatus::Incomplete | RunStatus::Running => {
            let s = last.status.as_str().to_string();
            return Ok((s.clone(), "bad".into(), format!("the last run is {s}")));
        }
        RunStatus::Complete => {}
    }
    if !gates_cache.contains_key(&last.run_id) {
        let g = store.run_gates(&last.run_id)?;
        gates_cache.insert(last.run_id.clone(), g);
    }
    let gates: Vec<&crate::model::GateResult> = gates_cache
        .get(&last.run_id)
        .map(|g| g.iter().filter(|g| g.provider == last.provider).collect())
        .unwrap_or_default();
    if gates.is_empty() {
        return Ok((
            "no gates".into(),
            "none".into(),
            "the suite sets no gate".into(),
        ));
    }
    let breached: Vec<String> = gates
        .iter()
        .filter(|g| !g.ok)
        .map(|g| {
            format!(
                "{} {} (value {})",
                g.metric,
                g.limit,
                g.value.map_or_else(|| "n/a".into(), |v| format!("{v:.4}"))
            )
        })
        .collect();
    if breached.is_empty() {
        Ok((
            "ok".into(),
            "ok".into(),
            format!("{} gate(s) held", gates.len()),
        ))
    } else {
        Ok((
            "breached".into(),
            "bad".into(),
            format!("breached: {}", breached.join("; ")),
        ))
    }
}

/// A provider's status, overridden by its open alerts (the most severe first): an open
/// regression is what the morning look should see, even when the gates hold.
fn with_open_alerts(
    status: (String, String, String),
    open: &[AlertRow],
    provider: &str,
) -> (String, String, String) {
    let mut mine: Vec<&AlertRow> = open.iter().filter(|a| a.provider == provider).collect();
    if mine.is_empty() {
        return status;
    }
    let rank = |s: &str| match s {
        "critical" => 2,
        "warning" => 1,
        _ => 0,
    };
    mine.sort_by_key(|a| std::cmp::Reverse(rank(&a.severity)));
    let worst = mine[0].severity.clone();
    let class = if worst == "critical" { "bad" } else { "none" };
    let detail = mine
        .iter()
        .map(|a| {
            format!(
                "{} since {}: {}",
                a.severity,
                show_time(&a.opened_at),
                a.message
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    (
        format!(
            "{} alert{} ({worst})",
            mine.len(),
            if mine.len() == 1 { "" } else { "s" }
        ),
        class.into(),
        format!("{detail}; {}", status.2),
    )
}

/// The index page. `read`: the overall metric rows (every run's, oldest first) of the
/// suites whose trend pages were just built; the rows of the others are read here.
pub(super) fn build_index(
    store: &dyn Source,
    t: &tera::Tera,
    suites: &[String],
    descriptions: &HashMap<String, String>,
    opts: &Options,
    with_pages: &HashMap<String, bool>,
    read: &HashMap<String, Vec<TrendRow>>,
) -> Result<String, HtmlError> {
    let since = opts.window.start(opts.now).map(|d| d.to_rfc3339());
    // The window's start as the store bounds runs by it (`TrendRow::started_ms`).
    let since_ms = since.as_deref().and_then(crate::store::time_ms);
    let held = since.is_none() || since_ms.is_some();
    let mut gates_cache = HashMap::new();
    let mut out = Vec::new();
    for name in suites {
        let asked;
        let rows: Vec<&TrendRow> = if let Some(all) = read.get(name).filter(|_| held) {
            all.iter()
                .filter(|r| since_ms.is_none_or(|s| r.started_ms.is_some_and(|ms| ms >= s)))
                .collect()
        } else {
            asked = store.trend(&TrendQuery {
                suite: name,
                since: since.as_deref(),
                tags: false,
                full: false,
            })?;
            asked.iter().collect()
        };
        let mut by_provider: BTreeMap<&str, Vec<&TrendRow>> = BTreeMap::new();
        for r in rows {
            by_provider.entry(&r.provider).or_default().push(r);
        }
        let open = store.open_alerts(Some(name))?;
        let mut providers = Vec::new();
        for (provider, rs) in by_provider {
            let Some(last) = rs.last() else { continue };
            let (status, status_class, status_detail) = with_open_alerts(
                provider_status(store, last, &mut gates_cache)?,
                &open,
                provider,
            );
            // The most severe open alert (the one the status names), else the oldest.
            let alert_href = open
                .iter()
                .filter(|a| a.provider == provider)
                .min_by_key(|a| (a.severity != "critical", a.id))
                .map(|a| format!("alerts.html#alert-{}", a.id));
            providers.push(IndexProvider {
                alert_href,
                provider: provider.to_string(),
                status,
                status_class,
                status_detail,
                last_run: show_time(&last.started_at),
                last_run_status: last.status.as_str().into(),
                last_run_href: with_pages
                    .get(&last.run_id)
                    .map(|_| format!("runs/{}", run_file(&last.run_id, 1))),
                pass_spark: spark(
                    t,
                    "pass rate",
                    Unit::Rate,
                    &samples_of(&rs, |r| r.pass_rate),
                )?,
                halluc_spark: spark(
                    t,
                    "hallucination rate",
                    Unit::Rate,
                    &samples_of(&rs, |r| r.hallucination_rate),
                )?,
                p95_spark: spark(
                    t,
                    "p95 latency",
                    Unit::Ms,
                    &samples_of(&rs, |r| r.latency_p95_ms),
                )?,
                cost_spark: spark(t, "cost", Unit::Usd, &samples_of(&rs, |r| r.cost_usd))?,
            });
        }
        out.push(IndexSuite {
            name: name.clone(),
            description: descriptions.get(name).cloned(),
            href: suite_href(name),
            providers,
        });
    }
    render(
        t,
        "index.html",
        &IndexPage {
            title: "trend report".into(),
            css: CSS,
            generated: opts.now.format("%Y-%m-%d %H:%M UTC").to_string(),
            window: opts.window.title(),
            suites: out,
            traffic: opts.traffic.clone(),
        },
    )
}

// ---------------------------------------------------------------------------------------
// Alert history

#[derive(Serialize)]
struct AlertEntry {
    id: i64,
    open: bool,
    severity: String,
    suite: String,
    suite_href: String,
    provider: String,
    tag: Option<String>,
    rule: String,
    metric: String,
    opened: String,
    opened_run: Option<String>,
    opened_href: Option<String>,
    resolved: Option<String>,
    resolved_run: Option<String>,
    resolved_href: Option<String>,
    last_seen: String,
    message: String,
}

#[derive(Serialize)]
struct AlertsPage {
    css: &'static str,
    generated: String,
    open: usize,
    more: usize,
    alerts: Vec<AlertEntry>,
}

/// `alerts.html`: every alert, open and resolved, newest opened first (at most
/// [`ALERTS_SHOWN`]), linked to the runs that opened and resolved it where they have a page.
pub(super) fn build_alerts(
    store: &dyn Source,
    t: &tera::Tera,
    opts: &Options,
    with_pages: &HashMap<String, bool>,
) -> Result<String, HtmlError> {
    let mut rows = store.alert_history(None, ALERTS_SHOWN + 1)?;
    let more = if rows.len() > ALERTS_SHOWN {
        rows.truncate(ALERTS_SHOWN);
        store.alert_history(None, 0)?.len() - ALERTS_SHOWN
    } else {
        0
    };
    let href = |run: &Option<String>| {
        run.as_ref()
            .filter(|r| with_pages.contains_key(r.as_str()))
            .map(|r| format!("runs/{}", run_file(r, 1)))
    };
    let alerts: Vec<AlertEntry> = rows
        .into_iter()
        .map(|a| AlertEntry {
            id: a.id,
            open: a.resolved_at.is_none(),
            opened_href: href(&a.opened_run),
            resolved_href: href(&a.resolved_run),
            suite_href: suite_href(&a.suite),
            opened: show_time(&a.opened_at),
            resolved: a.resolved_at.as_deref().map(show_time),
            last_seen: show_time(&a.last_seen_at),
            severity: a.severity,
            suite: a.suite,
            provider: a.provider,
            tag: a.tag,
            rule: a.rule,
            metric: a.metric,
            opened_run: a.opened_run,
            resolved_run: a.resolved_run,
            message: a.message,
        })
        .collect();
    render(
        t,
        "alerts.html",
        &AlertsPage {
            css: CSS,
            generated: opts.now.format("%Y-%m-%d %H:%M UTC").to_string(),
            open: store.open_alerts(None)?.len(),
            more,
            alerts,
        },
    )
}
