//! `evalwatch compare`: the paired comparison of two runs, with significance.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::json;

use super::{Ctx, Failure, exit, open};
use crate::cli::report::CompareArgs;
use crate::model::{CaseStatus, RunInfo};
use crate::report::html::stats::{self, Interval};
use crate::report::terminal;
use crate::store::{ScoredResult, Store, StoreError};

/// Characters of an output `compare` shows in text (JSON keeps up to `FLIP_OUTPUT_JSON`).
const FLIP_OUTPUT_TEXT: usize = 120;
const FLIP_OUTPUT_JSON: usize = 2000;
/// Flipped results listed in text, per direction (JSON lists them all).
const FLIPS_SHOWN: usize = 50;

/// The paired comparison of two runs.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Comparison {
    pub run_a: String,
    pub run_b: String,
    /// Results present in both runs with a pass/fail verdict in both.
    pub paired: usize,
    pub pass_to_fail: Vec<FlipOut>,
    pub fail_to_pass: Vec<FlipOut>,
    /// Exact two-sided McNemar p-value on the discordant pairs.
    pub mcnemar_p: f64,
    /// B - A, paired.
    pub score_delta: Option<Interval>,
    pub latency_delta_ms: Option<Interval>,
    /// Mean latency of run A over the paired results, milliseconds.
    pub latency_a_mean_ms: Option<f64>,
    /// The smallest change called significant: max(--min-latency-change-ms, --min-latency-change-pct
    /// of `latency_a_mean_ms`).
    pub latency_threshold_ms: Option<f64>,
    /// The interval excludes zero and the change is at least the threshold.
    pub latency_significant: bool,
    pub metric_deltas: Vec<MetricDelta>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FlipOut {
    pub case_id: String,
    pub provider: String,
    pub sample: u32,
    pub from: CaseStatus,
    pub to: CaseStatus,
    /// Why the failing side failed: its failed assertions (`type: reason`) or its error.
    pub reason: String,
    /// The outputs of run A and run B (cut at 2,000 characters, marked with "...").
    pub output_a: Option<String>,
    pub output_b: Option<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MetricDelta {
    pub provider: String,
    pub metric: String,
    pub a: Option<f64>,
    pub b: Option<f64>,
    pub delta: Option<f64>,
}

/// Significance level the text output marks.
pub const ALPHA: f64 = 0.05;

const DELTA_METRICS: [&str; 12] = [
    "pass_rate",
    "case_pass_rate",
    "agreement",
    "mean_score",
    "error_rate",
    "hallucination_rate",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "tokens_in",
    "tokens_out",
    "cost_usd",
];

/// Pair the results of two runs by (case, provider, sample) and test the change.
#[must_use]
pub fn pair_results(
    run_a: &str,
    run_b: &str,
    a: &[ScoredResult],
    b: &[ScoredResult],
) -> Comparison {
    let before: HashMap<(&str, &str, u32), &ScoredResult> = a
        .iter()
        .map(|r| ((r.case_id.as_str(), r.provider.as_str(), r.sample), r))
        .collect();
    let (mut paired, mut ptf, mut ftp) = (0usize, Vec::new(), Vec::new());
    let (mut score_d, mut lat_d, mut lat_a) = (Vec::new(), Vec::new(), 0.0);
    for rb in b {
        let Some(ra) = before.get(&(rb.case_id.as_str(), rb.provider.as_str(), rb.sample)) else {
            continue;
        };
        if let (Some(x), Some(y)) = (ra.score, rb.score) {
            score_d.push(y - x);
        }
        if let (Some(x), Some(y)) = (ra.latency_ms, rb.latency_ms) {
            lat_d.push(y - x);
            lat_a += x;
        }
        let decided = |s: CaseStatus| matches!(s, CaseStatus::Passed | CaseStatus::Failed);
        if !(decided(ra.status) && decided(rb.status)) {
            continue;
        }
        paired += 1;
        let flip = FlipOut {
            case_id: rb.case_id.clone(),
            provider: rb.provider.clone(),
            sample: rb.sample,
            from: ra.status,
            to: rb.status,
            reason: String::new(),
            output_a: None,
            output_b: None,
        };
        match (ra.status, rb.status) {
            (CaseStatus::Passed, CaseStatus::Failed) => ptf.push(flip),
            (CaseStatus::Failed, CaseStatus::Passed) => ftp.push(flip),
            _ => {}
        }
    }
    Comparison {
        run_a: run_a.to_string(),
        run_b: run_b.to_string(),
        paired,
        mcnemar_p: stats::mcnemar_exact(ptf.len() as u64, ftp.len() as u64),
        pass_to_fail: ptf,
        fail_to_pass: ftp,
        score_delta: stats::bootstrap_mean(&score_d, stats::RESAMPLES, stats::SEED),
        latency_delta_ms: stats::bootstrap_mean(&lat_d, stats::RESAMPLES, stats::SEED),
        latency_a_mean_ms: (!lat_d.is_empty()).then(|| lat_a / lat_d.len() as f64),
        latency_threshold_ms: None,
        latency_significant: false,
        metric_deltas: Vec::new(),
    }
}

impl Comparison {
    /// Call the latency change significant only when it is both statistically (the 95%
    /// interval excludes zero) and practically significant (at least `min_ms` and `min_pct`
    /// percent of run A's mean latency).
    pub fn judge_latency(&mut self, min_ms: f64, min_pct: f64) {
        let threshold = self
            .latency_a_mean_ms
            .map(|m| min_ms.max(m.abs() * min_pct / 100.0));
        self.latency_threshold_ms = threshold;
        self.latency_significant = match (&self.latency_delta_ms, threshold) {
            (Some(i), Some(t)) => i.significant() && i.mean.abs() >= t,
            _ => false,
        };
    }
}

/// Text cut to `max` characters, marked with "..." when cut.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max).collect();
    out.push_str("...");
    out
}

/// Fill in the outputs of both runs and the reason of the failing side of every flip,
/// reading each run once (only the flipped results are kept).
fn explain_flips(store: &Store, cmp: &mut Comparison) -> Result<(), StoreError> {
    let mut index: HashMap<(String, String, u32), (bool, usize)> = HashMap::new();
    for (i, f) in cmp.pass_to_fail.iter().enumerate() {
        index.insert((f.case_id.clone(), f.provider.clone(), f.sample), (true, i));
    }
    for (i, f) in cmp.fail_to_pass.iter().enumerate() {
        index.insert(
            (f.case_id.clone(), f.provider.clone(), f.sample),
            (false, i),
        );
    }
    if index.is_empty() {
        return Ok(());
    }
    for (run, is_a) in [(cmp.run_a.clone(), true), (cmp.run_b.clone(), false)] {
        store.for_each_result(&run, |rec| {
            let key = (
                rec.job.case_id.clone(),
                rec.job.provider_id.clone(),
                rec.job.sample,
            );
            let Some(&(to_fail, i)) = index.get(&key) else {
                return Ok(());
            };
            let flip = if to_fail {
                &mut cmp.pass_to_fail[i]
            } else {
                &mut cmp.fail_to_pass[i]
            };
            let output = rec.output.as_deref().map(|o| cut(o, FLIP_OUTPUT_JSON));
            if is_a {
                flip.output_a = output;
            } else {
                flip.output_b = output;
            }
            // The failing side says why: run B for pass -> fail, run A for fail -> pass.
            if to_fail != is_a {
                flip.reason = crate::report::terminal::why_not_passed(&rec);
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// One line of text: newlines shown as spaces, cut for the terminal.
fn one_line(text: Option<&str>) -> String {
    text.map_or_else(
        || "(no output)".into(),
        |t| {
            cut(
                &t.split_whitespace().collect::<Vec<_>>().join(" "),
                FLIP_OUTPUT_TEXT,
            )
        },
    )
}

fn find_run(store: &Store, id: &str) -> anyhow::Result<RunInfo> {
    store.run(id)?.ok_or_else(|| {
        Failure::invalid(format!(
            "compare run `{id}`: no such run; `evalwatch runs` lists them"
        ))
    })
}

/// A paired mean difference with its interval, `decimals` after the point, and whether it is
/// called significant.
fn fmt_interval(i: Option<&Interval>, decimals: usize, unit: &str, significant: bool) -> String {
    i.map_or_else(
        || "n/a (no paired values)".into(),
        |i| {
            format!(
                "{:+.decimals$}{unit} (95% CI {:+.decimals$} .. {:+.decimals$}, n={}){}",
                i.mean,
                i.low,
                i.high,
                i.n,
                if significant {
                    " significant"
                } else {
                    " not significant"
                }
            )
        },
    )
}

/// What `compare` does, from its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareSettings {
    /// The earlier run and the later one, as given (unique prefixes).
    pub run_a: String,
    pub run_b: String,
    /// JSON rather than text.
    pub json: bool,
    /// Smallest latency change called significant: milliseconds, and percent of the earlier
    /// run's mean.
    pub min_latency_ms: f64,
    pub min_latency_pct: f64,
}

impl CompareSettings {
    pub fn resolve(args: &CompareArgs) -> anyhow::Result<Self> {
        let json = match args.format.as_str() {
            "text" => false,
            "json" => true,
            other => {
                return Err(Failure::invalid(format!(
                    "compare: unknown --format `{other}`; use text or json"
                )));
            }
        };
        Ok(Self {
            run_a: args.run_a.clone(),
            run_b: args.run_b.clone(),
            json,
            min_latency_ms: args.min_latency_change_ms,
            min_latency_pct: args.min_latency_change_pct,
        })
    }
}

pub fn compare(ctx: &Ctx, args: &CompareArgs) -> anyhow::Result<u8> {
    let settings = CompareSettings::resolve(args)?;
    let json_out = settings.json;
    let project = ctx.project()?;
    let store = open(ctx, &project)?;
    let a = find_run(&store, &settings.run_a)?;
    let b = find_run(&store, &settings.run_b)?;
    let mut cmp = pair_results(
        &a.run_id,
        &b.run_id,
        &store.result_scores(&a.run_id)?,
        &store.result_scores(&b.run_id)?,
    );
    cmp.judge_latency(settings.min_latency_ms, settings.min_latency_pct);
    explain_flips(&store, &mut cmp)?;
    let ma = store.run_metrics(&a.run_id)?;
    let mb = store.run_metrics(&b.run_id)?;
    for pb in mb.iter().filter(|m| m.tag.is_none()) {
        let pa = ma
            .iter()
            .find(|m| m.tag.is_none() && m.provider == pb.provider);
        for name in DELTA_METRICS {
            let va = pa.and_then(|m| m.metrics.get(name));
            let vb = pb.metrics.get(name);
            cmp.metric_deltas.push(MetricDelta {
                provider: pb.provider.clone(),
                metric: name.to_string(),
                a: va,
                b: vb,
                delta: va.zip(vb).map(|(x, y)| y - x),
            });
        }
    }
    if json_out {
        let mut v = serde_json::to_value(&cmp)?;
        v["suite_a"] = json!(a.suite);
        v["suite_b"] = json!(b.suite);
        v["significant"] = json!(cmp.mcnemar_p < ALPHA);
        ctx.printer.result(&serde_json::to_string_pretty(&v)?);
        return Ok(exit::OK);
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "compare {} ({}) -> {} ({})",
        a.run_id, a.suite, b.run_id, b.suite
    );
    if a.suite != b.suite {
        out.push_str("note: the runs are of different suites; results are paired by case id\n");
    }
    let _ = writeln!(
        out,
        "paired results: {}; pass->fail {}, fail->pass {}; McNemar exact p = {:.4}{}",
        cmp.paired,
        cmp.pass_to_fail.len(),
        cmp.fail_to_pass.len(),
        cmp.mcnemar_p,
        if cmp.mcnemar_p < ALPHA {
            " (significant at 0.05)"
        } else {
            " (not significant at 0.05)"
        }
    );
    let _ = writeln!(
        out,
        "mean score delta: {}",
        fmt_interval(
            cmp.score_delta.as_ref(),
            3,
            "",
            cmp.score_delta.as_ref().is_some_and(Interval::significant)
        )
    );
    let _ = writeln!(
        out,
        "latency delta: {}{}",
        fmt_interval(
            cmp.latency_delta_ms.as_ref(),
            0,
            " ms",
            cmp.latency_significant
        ),
        cmp.latency_threshold_ms
            .map(|t| format!(" (threshold {t:.0} ms)"))
            .unwrap_or_default()
    );
    let mut table = vec![
        ["provider", "metric", "a", "b", "delta"]
            .map(String::from)
            .to_vec(),
    ];
    for d in &cmp.metric_deltas {
        // Milliseconds and token counts are whole numbers; shares and scores keep 4 places.
        let whole = d.metric.ends_with("_ms") || d.metric.starts_with("tokens_");
        let f = |v: Option<f64>| {
            v.map_or_else(
                || "n/a".into(),
                |x| {
                    if whole {
                        format!("{x:.0}")
                    } else {
                        format!("{x:.4}")
                    }
                },
            )
        };
        table.push(vec![
            d.provider.clone(),
            d.metric.clone(),
            f(d.a),
            f(d.b),
            d.delta.map_or_else(
                || "n/a".into(),
                |x| {
                    if whole {
                        format!("{x:+.0}")
                    } else {
                        format!("{x:+.4}")
                    }
                },
            ),
        ]);
    }
    out.push_str(&terminal::table_with(&table, 2));
    for (title, list) in [
        ("pass -> fail", &cmp.pass_to_fail),
        ("fail -> pass", &cmp.fail_to_pass),
    ] {
        if !list.is_empty() {
            let _ = writeln!(out, "{title} ({}):", list.len());
            for f in list.iter().take(FLIPS_SHOWN) {
                let sample = if f.sample > 0 {
                    format!(" #{}", f.sample)
                } else {
                    String::new()
                };
                let why = if f.reason.is_empty() {
                    String::new()
                } else {
                    format!(": {}", one_line(Some(&f.reason)))
                };
                let _ = writeln!(out, "  {}{} [{}]{why}", f.case_id, sample, f.provider);
                let _ = writeln!(out, "      a: {}", one_line(f.output_a.as_deref()));
                let _ = writeln!(out, "      b: {}", one_line(f.output_b.as_deref()));
            }
            if list.len() > FLIPS_SHOWN {
                let _ = writeln!(
                    out,
                    "  ... and {} more (`--format json` lists them all)",
                    list.len() - FLIPS_SHOWN
                );
            }
        }
    }
    ctx.printer.result(out.trim_end());
    Ok(exit::OK)
}
