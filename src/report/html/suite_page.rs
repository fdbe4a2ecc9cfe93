//! The trend page of one suite: charts per provider and window, the flip heat map, tags,
//! flaky cases, recent runs and human review.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::Source;
use super::chart::MarkerIn;
use super::chart::SeriesIn;
use super::chart::ThresholdIn;
use super::chart::Unit;
use super::chart::line_chart;
use super::index::samples_of;
use super::index::spark;
use super::{
    ALERTS_SHOWN, CSS, HEAT_RUNS, HtmlError, Options, RECENT_RUNS, TABLE_ROWS, Window, changes,
    chart, epoch, file_stem, heat, human, render, run_file, show_time,
};
use crate::model::{MarkOrigin, RunLabels, RunStatus};
use crate::model::{TrendQuery, TrendRow};

#[derive(Serialize)]
struct WindowView {
    key: String,
    label: String,
    title: String,
    checked: bool,
    runs: usize,
    same_as: Option<String>,
    providers: Vec<ProviderCharts>,
}

#[derive(Serialize)]
struct ProviderCharts {
    provider: String,
    charts: Vec<String>,
}

#[derive(Serialize)]
struct MarkerView {
    run_id: String,
    started: String,
    label: String,
}

#[derive(Serialize)]
struct TagRow {
    tag: String,
    provider: String,
    cases: u64,
    pass_rate: String,
    mean_score: String,
    spark: String,
}

#[derive(Serialize)]
struct FlakyRow {
    case: String,
    provider: String,
    runs: usize,
    /// The run whose alert evaluation counted the case as known-flaky, if it did.
    alerts: Option<String>,
}

#[derive(Serialize)]
struct RecentRun {
    run_id: String,
    /// `run-<stem>`: heat-map columns of runs without a page link here.
    anchor: String,
    href: Option<String>,
    started: String,
    status: String,
    values: Vec<String>,
}

#[derive(Serialize)]
struct SuitePage {
    css: &'static str,
    window_css: String,
    name: String,
    description: Option<String>,
    generated: String,
    run_count: usize,
    providers: Vec<String>,
    windows: Vec<WindowView>,
    markers: Vec<MarkerView>,
    window: String,
    tags: Vec<TagRow>,
    tags_more: usize,
    heat: heat::Heat,
    flaky: Vec<FlakyRow>,
    recent: Vec<RecentRun>,
    run_pages: usize,
    human: human::HumanReview,
}

/// The windows a suite page offers: the standard ones and the chosen one, shortest first.
pub(super) fn windows_for(chosen: &Window) -> Vec<Window> {
    let mut out: Vec<Window> = ["24h", "7d", "30d", "90d", "all"]
        .iter()
        .filter_map(|w| Window::parse(w))
        .collect();
    if !out.iter().any(|w| w.span == chosen.span) {
        out.push(chosen.clone());
    }
    out.sort_by_key(|w| w.span.map_or(i64::MAX, |s| s.num_seconds()));
    out
}

#[allow(clippy::items_after_statements)]
fn provider_charts(
    t: &tera::Tera,
    provider: &str,
    rows: &[&TrendRow],
    markers: &[MarkerIn],
    alerts: &[(String, MarkerIn)],
    gates: &[crate::model::GateResult],
    labels: &HashMap<String, RunLabels>,
) -> Result<Vec<String>, HtmlError> {
    type Get = fn(&TrendRow) -> Option<f64>;
    type Spec<'a> = (&'a str, Unit, Vec<(&'a str, Get)>);
    // The gate metrics each chart draws, in chart order.
    const GATE_METRICS: [&[&str]; 8] = [
        &["pass_rate", "case_pass_rate"],
        &["mean_score"],
        &[
            "hallucination_rate",
            "contradiction_rate",
            "unsupported_rate",
        ],
        &["error_rate"],
        &["latency_p50_ms", "latency_p95_ms", "latency_p99_ms"],
        &["tokens_in", "tokens_out"],
        &["cost_usd"],
        &["cost_per_case_usd"],
    ];
    let specs: Vec<Spec<'_>> = vec![
        (
            "Pass rate",
            Unit::Rate,
            vec![("pass rate", |r| r.pass_rate)],
        ),
        (
            "Mean score",
            Unit::Score,
            vec![("mean score", |r| r.mean_score)],
        ),
        (
            "Hallucination",
            Unit::Rate,
            vec![
                ("hallucination", |r| r.hallucination_rate),
                ("contradiction", |r| {
                    r.metrics.as_ref().and_then(|m| m.contradiction_rate)
                }),
                ("unsupported", |r| {
                    r.metrics.as_ref().and_then(|m| m.unsupported_rate)
                }),
            ],
        ),
        (
            "Error rate",
            Unit::Rate,
            vec![("error rate", |r| r.error_rate)],
        ),
        (
            "Latency",
            Unit::Ms,
            vec![
                ("p50", |r| r.metrics.as_ref().and_then(|m| m.latency_p50_ms)),
                ("p95", |r| r.latency_p95_ms),
                ("p99", |r| r.metrics.as_ref().and_then(|m| m.latency_p99_ms)),
            ],
        ),
        (
            "Tokens per run",
            Unit::Count,
            vec![
                ("in", |r| r.metrics.as_ref().map(|m| m.tokens_in as f64)),
                ("out", |r| r.metrics.as_ref().map(|m| m.tokens_out as f64)),
            ],
        ),
        ("Cost per run", Unit::Usd, vec![("cost", |r| r.cost_usd)]),
        (
            "Cost per case",
            Unit::Usd,
            vec![("cost per case", |r| {
                r.metrics.as_ref().and_then(|m| m.cost_per_case_usd)
            })],
        ),
    ];
    let mut out = Vec::with_capacity(specs.len());
    for ((title, unit, series), metrics) in specs.into_iter().zip(GATE_METRICS) {
        let thresholds: Vec<ThresholdIn> = gates
            .iter()
            .filter(|g| g.provider == provider && metrics.contains(&g.metric.as_str()))
            .flat_map(|g| {
                gate_limits(&g.limit).into_iter().map(|v| ThresholdIn {
                    value: v,
                    label: format!("gate {} {}", g.metric, g.limit),
                })
            })
            .collect();
        // Alerts on a metric no chart draws (a human score, a named metric) go on the first.
        let charted = |metric: &str| GATE_METRICS.iter().any(|l| l.contains(&metric));
        let mine: Vec<MarkerIn> = markers
            .iter()
            .cloned()
            .chain(
                alerts
                    .iter()
                    .filter(|(metric, _)| {
                        metrics.contains(&metric.as_str())
                            || (title == "Pass rate" && !charted(metric))
                    })
                    .map(|(_, m)| m.clone()),
            )
            .collect();
        let series: Vec<SeriesIn> = series
            .into_iter()
            .map(|(name, get)| SeriesIn {
                name: name.to_string(),
                samples: labelled(samples_of(rows, get), rows, labels),
            })
            .collect();
        #[derive(Serialize)]
        struct ChartView {
            c: chart::Chart,
        }
        let c = line_chart(
            &format!("{title} · {provider}"),
            unit,
            &series,
            &mine,
            &thresholds,
            (600.0, 220.0),
        );
        out.push(render(t, "chart.html", &ChartView { c })?);
    }
    Ok(out)
}

/// The samples of `rows`, each run's labels added to its hover text.
fn labelled(
    mut samples: Vec<chart::Sample>,
    rows: &[&TrendRow],
    labels: &HashMap<String, RunLabels>,
) -> Vec<chart::Sample> {
    for (s, r) in samples.iter_mut().zip(rows) {
        if let Some(l) = labels.get(&r.run_id).filter(|l| !l.is_empty()) {
            let _ = write!(s.label, " [{}]", labels_text(l));
        }
    }
    samples
}

/// `release=v2, branch=main`.
fn labels_text(labels: &RunLabels) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The numbers of a gate's limit as the store keeps it (`>= 0.9`, `<= 4000`, `0.5..0.9`).
fn gate_limits(limit: &str) -> Vec<f64> {
    limit
        .trim_start_matches(">=")
        .trim_start_matches("<=")
        .split("..")
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite())
        .collect()
}

/// Markers where the suite's content or settings, or the judge or rubric that scored it,
/// changed from one run to the next: each change named (a provider's model, a gate's limit,
/// `defaults.assert`, the cases edited), from the settings recorded with each run.
fn change_markers(
    store: &dyn Source,
    suite: &str,
    rows: &[TrendRow],
    run_labels: &HashMap<String, RunLabels>,
) -> Result<Vec<MarkerView>, HtmlError> {
    let judges: std::collections::HashMap<String, Vec<crate::model::JudgeSignature>> =
        store.suite_run_judges(suite)?.into_iter().collect();
    let settings = store.suite_run_settings(suite)?;
    let mut out = Vec::new();
    let mut prev: Option<&TrendRow> = None;
    let mut prev_judges: Option<&Vec<crate::model::JudgeSignature>> = None;
    let mut seen_run: Option<&str> = None;
    for r in rows {
        if seen_run == Some(r.run_id.as_str()) {
            continue;
        }
        seen_run = Some(&r.run_id);
        let mut labels = Vec::new();
        if let Some(p) = prev {
            let hash_changed = p.suite_hash != r.suite_hash;
            let named = match (settings.get(&p.run_id), settings.get(&r.run_id)) {
                (Some(before), Some(now)) => Some(changes::describe(before, now)),
                _ => None,
            };
            let cases = if hash_changed {
                store.cases_first_seen_at(suite, &r.started_at, 6)?
            } else {
                Vec::new()
            };
            match named {
                Some(named) => labels.extend(named),
                None if hash_changed && cases.is_empty() => labels.push(
                    "suite settings changed (not recorded for runs before this version)"
                        .to_string(),
                ),
                None => {}
            }
            if !cases.is_empty() {
                labels.push(if cases.len() > 5 {
                    format!("cases changed: {}, …", cases[..5].join(", "))
                } else {
                    format!("cases changed: {}", cases.join(", "))
                });
            } else if hash_changed && labels.is_empty() {
                // The settings are the same: what the suite hash covers besides them is its
                // cases' content.
                labels.push("cases changed".to_string());
            }
            let none = RunLabels::new();
            let (was, is) = (
                run_labels.get(&p.run_id).unwrap_or(&none),
                run_labels.get(&r.run_id).unwrap_or(&none),
            );
            if was != is {
                labels.push(if is.is_empty() {
                    "run labels removed".to_owned()
                } else {
                    format!("run labels: {}", labels_text(is))
                });
            }
        }
        if let Some(now) = judges.get(&r.run_id) {
            if let Some(before) = prev_judges
                && before != now
            {
                let show = |v: &Vec<crate::model::JudgeSignature>| {
                    v.iter()
                        .map(crate::model::JudgeSignature::label)
                        .collect::<Vec<_>>()
                        .join("; ")
                };
                labels.push(format!(
                    "judge or rubric changed: {} → {}",
                    show(before),
                    show(now)
                ));
            }
            prev_judges = Some(now);
        }
        if !labels.is_empty() {
            out.push(MarkerView {
                run_id: r.run_id.clone(),
                started: show_time(&r.started_at),
                label: labels.join("; "),
            });
        }
        prev = Some(r);
    }
    Ok(out)
}

/// A suite's trend page, and the suite's overall metric rows it read (every run's, oldest
/// first), which the index then takes instead of reading them again.
#[allow(clippy::too_many_arguments)]
pub(super) fn build_suite(
    store: &dyn Source,
    t: &tera::Tera,
    name: &str,
    description: Option<String>,
    opts: &Options,
    with_pages: &HashMap<String, bool>,
    ahead: heat::Ahead<'_>,
) -> Result<(String, Vec<TrendRow>), HtmlError> {
    // One read of the suite's whole metric history (pre-aggregated: one row per run and
    // provider, and per tag), then every window is a slice of it.
    let all = store.trend(&TrendQuery {
        suite: name,
        since: None,
        tags: true,
        full: true,
    })?;
    let overall: Vec<TrendRow> = all.iter().filter(|r| r.tag.is_none()).cloned().collect();
    let mut providers: Vec<String> = Vec::new();
    for r in &overall {
        if !providers.contains(&r.provider) {
            providers.push(r.provider.clone());
        }
    }
    let run_labels = store.suite_run_labels(name)?;
    let markers = change_markers(store, name, &overall, &run_labels)?;
    let marks = match overall.first() {
        Some(first) => store.general_marks(Some(&first.started_at))?,
        None => Vec::new(),
    };
    let mut marker_in: Vec<MarkerIn> = markers
        .iter()
        .filter_map(|m| {
            overall
                .iter()
                .find(|r| r.run_id == m.run_id)
                .map(|r| MarkerIn {
                    t: epoch(&r.started_at),
                    label: format!("{}: {}", m.started, m.label),
                    class: "change",
                })
        })
        .collect();
    // The change markers (`evalwatch mark`, model versions seen to change) of the history.
    marker_in.extend(marks.iter().map(|m| MarkerIn {
        t: epoch(&m.at),
        label: format!(
            "{}: {} {}{}",
            show_time(&m.at),
            m.kind.as_str(),
            m.text,
            if m.origin == MarkOrigin::Auto {
                " (seen by evalwatch)"
            } else {
                ""
            }
        ),
        class: "mark",
    }));
    // Alert markers by provider: (metric, marker), where each alert opened and resolved.
    let mut alert_markers: HashMap<String, Vec<(String, MarkerIn)>> = HashMap::new();
    for a in store.alert_history(Some(name), ALERTS_SHOWN)? {
        let what = format!("{} alert `{}` ({})", a.severity, a.rule, a.metric);
        let list = alert_markers.entry(a.provider.clone()).or_default();
        list.push((
            a.metric.clone(),
            MarkerIn {
                t: epoch(&a.opened_at),
                label: format!("{}: {what} opened: {}", show_time(&a.opened_at), a.message),
                class: "alert",
            },
        ));
        if let Some(at) = &a.resolved_at {
            list.push((
                a.metric.clone(),
                MarkerIn {
                    t: epoch(at),
                    label: format!("{}: {what} resolved", show_time(at)),
                    class: "resolved",
                },
            ));
        }
    }
    // The gates of the newest complete run: the limits the charts draw.
    let gates = match overall
        .iter()
        .rev()
        .find(|r| r.status == RunStatus::Complete)
    {
        Some(r) => store.run_gates(&r.run_id)?,
        None => Vec::new(),
    };
    let mut runs_in: Vec<&str> = overall.iter().map(|r| r.run_id.as_str()).collect();
    runs_in.dedup();
    let run_count = runs_in.len();

    let mut windows = Vec::new();
    let mut window_css = String::new();
    // The runs of each window (windows are nested, so the same count is the same runs).
    let spans = windows_for(&opts.window);
    let rows_of = |w: &Window| -> Vec<&TrendRow> {
        let start = w
            .start(opts.now)
            .map_or(f64::NEG_INFINITY, |d| d.timestamp() as f64);
        overall
            .iter()
            .filter(|r| epoch(&r.started_at) >= start)
            .collect()
    };
    let counts: Vec<usize> = spans
        .iter()
        .map(|w| {
            let mut ids: Vec<&str> = rows_of(w).iter().map(|r| r.run_id.as_str()).collect();
            ids.dedup();
            ids.len()
        })
        .collect();
    // Windows of the same runs draw their charts once: in the window the page opens on, else
    // in the shortest of them; the others say which window holds them.
    let holders: Vec<usize> = (0..spans.len())
        .map(|i| {
            let group: Vec<usize> = (0..spans.len())
                .filter(|&j| counts[j] == counts[i])
                .collect();
            group
                .iter()
                .copied()
                .find(|&j| spans[j].span == opts.window.span)
                .or_else(|| group.first().copied())
                .unwrap_or(i)
        })
        .collect();
    for (i, w) in spans.iter().enumerate() {
        let rows = rows_of(w);
        let mut ids: Vec<&str> = rows.iter().map(|r| r.run_id.as_str()).collect();
        ids.dedup();
        let key = file_stem(&w.label);
        let checked = w.span == opts.window.span;
        let same_as = (holders[i] != i).then(|| spans[holders[i]].label.clone());
        let mut pcs = Vec::new();
        if same_as.is_none() && !ids.is_empty() {
            for p in &providers {
                let pr: Vec<&TrendRow> =
                    rows.iter().copied().filter(|r| &r.provider == p).collect();
                if pr.is_empty() {
                    continue;
                }
                pcs.push(ProviderCharts {
                    provider: p.clone(),
                    charts: provider_charts(
                        t,
                        p,
                        &pr,
                        &marker_in,
                        alert_markers.get(p).map_or(&[][..], Vec::as_slice),
                        &gates,
                        &run_labels,
                    )?,
                });
            }
        }
        let _ = write!(
            window_css,
            "#win-{key}:checked ~ #sec-{key}{{display:block}}#win-{key}:checked + label{{background:#0072b2;color:#fff}}"
        );
        windows.push(WindowView {
            key,
            label: w.label.clone(),
            title: w.title(),
            checked,
            runs: ids.len(),
            same_as,
            providers: pcs,
        });
    }

    // Tables over the chosen window.
    let start = opts.window.start(opts.now);
    let start_s = start.map_or(f64::NEG_INFINITY, |d| d.timestamp() as f64);
    let in_window = |r: &&TrendRow| epoch(&r.started_at) >= start_s;
    let mut tag_rows: BTreeMap<(&str, &str), Vec<&TrendRow>> = BTreeMap::new();
    for r in all.iter().filter(in_window) {
        if let Some(tag) = &r.tag {
            tag_rows.entry((tag, &r.provider)).or_default().push(r);
        }
    }
    let tags_more = tag_rows.len().saturating_sub(TABLE_ROWS);
    let mut tags = Vec::new();
    for ((tag, provider), rs) in tag_rows.into_iter().take(TABLE_ROWS) {
        let Some(last) = rs.last() else { continue };
        tags.push(TagRow {
            tag: tag.to_string(),
            provider: provider.to_string(),
            cases: 0,
            pass_rate: Unit::Rate.show(last.pass_rate),
            mean_score: Unit::Score.show(last.mean_score),
            spark: spark(
                t,
                "pass rate",
                Unit::Rate,
                &samples_of(&rs, |r| r.pass_rate),
            )?,
        });
    }
    // Cases per tag: from the tag rows' own metrics would need JSON; the latest overall
    // metrics are parsed already, so count from the tag row headline instead (left 0 when
    // unknown). Keep it cheap: read the latest tag metrics of the window.
    if let Some(last_run) = overall
        .iter()
        .rev()
        .find(|r| epoch(&r.started_at) >= start_s)
    {
        let tag_metrics = store.run_metrics(&last_run.run_id)?;
        for row in &mut tags {
            if let Some(m) = tag_metrics
                .iter()
                .find(|m| m.tag.as_deref() == Some(row.tag.as_str()) && m.provider == row.provider)
            {
                row.cases = m.metrics.cases;
            }
        }
    }

    let mut flaky_count: HashMap<(String, String), usize> = HashMap::new();
    for r in overall.iter().filter(|r| epoch(&r.started_at) >= start_s) {
        if let Some(m) = &r.metrics {
            for c in &m.flaky_cases {
                *flaky_count
                    .entry((c.clone(), r.provider.clone()))
                    .or_default() += 1;
            }
        }
    }
    // The cases alert rules discount as known-flaky (docs/alerts.md) are flaky cases too.
    let mut known: HashMap<(String, String), String> = store
        .known_flaky(name)?
        .into_iter()
        .map(|(provider, case, run)| ((case, provider), run))
        .collect();
    let mut flaky: Vec<FlakyRow> = flaky_count
        .into_iter()
        .map(|((case, provider), runs)| {
            let alerts = known.remove(&(case.clone(), provider.clone()));
            FlakyRow {
                case,
                provider,
                runs,
                alerts,
            }
        })
        .collect();
    flaky.extend(known.into_iter().map(|((case, provider), run)| FlakyRow {
        case,
        provider,
        runs: 0,
        alerts: Some(run),
    }));
    flaky.sort_by(|a, b| {
        b.runs
            .cmp(&a.runs)
            .then_with(|| a.case.cmp(&b.case))
            .then_with(|| a.provider.cmp(&b.provider))
    });
    flaky.truncate(TABLE_ROWS);

    let since = start.map(|d| d.to_rfc3339());
    let window_runs = store.run_infos(Some(name), since.as_deref(), HEAT_RUNS.max(RECENT_RUNS))?;
    let coming;
    let ahead = match ahead {
        heat::Ahead::Held(h) => h,
        heat::Ahead::Coming(slots) => {
            coming = slots.take(name);
            coming.as_ref()
        }
    };
    let heat = heat::heat_map(store, &window_runs, with_pages, ahead)?;
    let recent_runs = store.run_infos(Some(name), None, RECENT_RUNS)?;
    let mut recent = Vec::new();
    for r in recent_runs.iter().rev() {
        let values = providers
            .iter()
            .map(|p| {
                overall
                    .iter()
                    .find(|x| x.run_id == r.run_id && &x.provider == p)
                    .map_or_else(
                        || "–".to_string(),
                        |x| format!("pass {}", Unit::Rate.show(x.pass_rate)),
                    )
            })
            .collect();
        recent.push(RecentRun {
            run_id: r.run_id.clone(),
            anchor: format!("run-{}", file_stem(&r.run_id)),
            href: with_pages
                .get(&r.run_id)
                .map(|_| format!("runs/{}", run_file(&r.run_id, 1))),
            started: show_time(&r.started_at),
            status: r.status.as_str().into(),
            values,
        });
    }
    // The human review section: the suite's current grades tallied as they are read.
    let mut tally = human::HumanTally::default();
    store.for_each_graded(name, &mut |g| tally.add(g))?;
    let human = tally.finish(
        store
            .human_scores(name)?
            .iter()
            .map(|h| (h.0.as_str(), h.1.as_str(), h.2, h.3)),
    );
    let html = render(
        t,
        "suite.html",
        &SuitePage {
            css: CSS,
            window_css,
            name: name.to_string(),
            description,
            generated: opts.now.format("%Y-%m-%d %H:%M UTC").to_string(),
            run_count,
            providers,
            windows,
            markers,
            window: opts.window.title(),
            tags,
            tags_more,
            heat,
            flaky,
            recent,
            run_pages: opts.run_pages,
            human,
        },
    )?;
    Ok((html, overall))
}
