//! `evalwatch report`, `compare` and `export`, and the report refresh at the end of `run`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;

use super::{Ctx, Failure, exit};
use crate::model::{CaseStatus, ProjectConfig, RunInfo, RunStatus, Suite};
use crate::report::html::stats::{self, Interval};
use crate::report::html::{self, Expected, Options, Window};
use crate::report::junit::JunitWriter;
use crate::report::{RunView, terminal};
use crate::store::ScoredResult;
use crate::store::{Store, StoreError};

mod live;
pub use live::{
    baseline_run, early_baseline_reader, live_baseline, live_baseline_reader, remove_leftovers,
};

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Window of history to chart (e.g. 24h, 7d, 30d, 90d, all)
    #[arg(long, default_value = "30d")]
    pub since: String,
    /// Also write the page of this run (any run; the newest of each suite always get one)
    #[arg(long = "run", value_name = "RUN_ID")]
    pub runs: Vec<String>,
    /// Folder to write (default: `reports:` of evalwatch.yaml, else reports/)
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The earlier run (a unique prefix is enough)
    pub run_a: String,
    /// The later run
    pub run_b: String,
    /// text or json
    #[arg(long, default_value = "text")]
    pub format: String,
    /// A latency change is called significant only when its 95% interval excludes zero and it
    /// is at least this many milliseconds ...
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_MIN_LATENCY_MS)]
    pub min_latency_change_ms: f64,
    /// ... and at least this percentage of the earlier run's mean latency
    #[arg(long, value_name = "PCT", default_value_t = DEFAULT_MIN_LATENCY_PCT)]
    pub min_latency_change_pct: f64,
}

/// Smallest latency change `compare` calls significant, milliseconds (practical threshold).
pub const DEFAULT_MIN_LATENCY_MS: f64 = 50.0;
/// Smallest latency change `compare` calls significant, percent of the earlier run's mean.
pub const DEFAULT_MIN_LATENCY_PCT: f64 = 10.0;
/// Characters of an output `compare` shows in text (JSON keeps up to `FLIP_OUTPUT_JSON`).
const FLIP_OUTPUT_TEXT: usize = 120;
const FLIP_OUTPUT_JSON: usize = 2000;
/// Flipped results listed in text, per direction (JSON lists them all).
const FLIPS_SHOWN: usize = 50;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// json, csv, junit or prometheus
    #[arg(long)]
    pub format: String,
    /// Write here instead of stdout
    #[arg(long, conflicts_with = "textfile")]
    pub out: Option<PathBuf>,
    /// Prometheus only: write DIR/evalwatch.prom for node_exporter's textfile collector
    /// (atomically: a temporary file renamed into place)
    #[arg(long, value_name = "DIR")]
    pub textfile: Option<PathBuf>,
    /// Only this suite
    #[arg(long)]
    pub suite: Option<String>,
    /// Only runs that started in this window (24h, 7d, all). Default: every run for json and
    /// csv, the newest run of each suite for junit; prometheus always reads the newest
    #[arg(long)]
    pub since: Option<String>,
}

pub(crate) fn reports_dir(project: &ProjectConfig) -> PathBuf {
    match &project.reports {
        Some(p) if p.is_absolute() => p.clone(),
        Some(p) => project.root.join(p),
        None => project.root.join("reports"),
    }
}

/// The suites on disk (`suites/` of the project), in file order, each name once (the first
/// file wins, as `load_suites` has it); best effort: a suite that does not load only loses
/// its expected answers and description on the pages.
fn suites_on_disk(ctx: &Ctx, project: &ProjectConfig) -> Vec<Suite> {
    let Ok(files) = super::suite_files(ctx, project, &[]) else {
        return Vec::new();
    };
    crate::suite::load_suites(&files, project).0
}

/// The descriptions of suites, keyed by name.
fn descriptions_of<'a>(suites: impl IntoIterator<Item = &'a Suite>) -> HashMap<String, String> {
    suites
        .into_iter()
        .filter_map(|s| s.description.clone().map(|d| (s.name.clone(), d)))
        .collect()
}

fn open(ctx: &Ctx, project: &ProjectConfig) -> anyhow::Result<Store> {
    let db = ctx.db_path(project);
    if !db.exists() {
        return Err(Failure::invalid(format!(
            "read history: no store at {}; run `evalwatch run` first or point --db at it",
            db.display()
        )));
    }
    ctx.open_store(&db)
}

fn parse_window(text: &str) -> anyhow::Result<Window> {
    Window::parse(text).ok_or_else(|| {
        Failure::invalid(format!(
            "read --since `{text}`: give a window such as 24h, 7d, 30d, 2w or all"
        ))
    })
}

/// Refresh the reports of the suites `run` just ran (unless `--no-reports`). `ran` are the
/// suites as checked (their cases need not be there: a run streams them); `prepared` is what
/// was done while they ran: the run pages of each run, rendered as its results were scored
/// ([`html::live::LivePages`]).
///
/// Suite files are read only for what the pages need of them: the descriptions of the suites
/// that did not run (their heads, read while the pages are written), and the expected answers
/// of a run whose pages are written from the store (a run that was not rendered as it went:
/// one resumed, or one whose page is missing), read then, one case at a time.
pub fn after_run(
    ctx: &Ctx,
    store: &Store,
    project: &ProjectConfig,
    ran: &[&Suite],
    prepared: html::Prepared,
) -> anyhow::Result<()> {
    if ran.is_empty() {
        return Ok(());
    }
    let dir = reports_dir(project);
    let opts = Options {
        window: Window::parse("30d").ok_or_else(|| anyhow::anyhow!("default window"))?,
        now: chrono::Utc::now(),
        run_pages: html::RUN_PAGES,
    };
    let mut names: Vec<String> = Vec::new();
    for s in ran {
        if !names.contains(&s.name) {
            names.push(s.name.clone());
        }
    }
    let files = super::suite_files(ctx, project, &[]).unwrap_or_default();
    let descriptions = descriptions_of(ran.iter().copied());
    let load_expected = || expected_on_disk(&files, project, &names);
    let expected = html::LazyExpected::new(&load_expected);
    let written = std::thread::scope(|scope| {
        // The index (the last page written) shows every suite's description.
        let heads = scope.spawn(|| {
            let mut all = descriptions_of(&heads_on_disk(&files, project));
            all.extend(descriptions.clone());
            all
        });
        let heads = std::cell::Cell::new(Some(heads));
        html::write_reports_with(
            store,
            &dir,
            Some(&names),
            &descriptions,
            &expected,
            &opts,
            prepared,
            || heads.take().and_then(|h| h.join().ok()),
        )
    })?;
    ctx.printer.detail(&format!(
        "reports: {} file(s) refreshed in {}",
        written.files.len(),
        dir.display()
    ));
    Ok(())
}

/// The heads (no cases) of the suites in `files`, in file order, each name once (the first
/// file wins, as `load_suites` has it); a file that does not load is left out.
fn heads_on_disk(files: &[PathBuf], project: &ProjectConfig) -> Vec<Suite> {
    let mut out: Vec<Suite> = Vec::new();
    for f in files {
        if let Some(head) = crate::suite::suite_head(f, project)
            && !out.iter().any(|s| s.name == head.name)
        {
            out.push(head);
        }
    }
    out
}

/// The expected answers of the suites named `names` in `files` (the first file of a name
/// wins), read one case at a time: only id, content hash, expected answer and context are kept.
fn expected_on_disk(files: &[PathBuf], project: &ProjectConfig, names: &[String]) -> Expected {
    let mut expected = Expected::default();
    let mut seen: Vec<String> = Vec::new();
    for f in files {
        let current: std::cell::RefCell<Option<String>> = std::cell::RefCell::new(None);
        let mut on_head = |head: &Suite| {
            if !seen.contains(&head.name) {
                seen.push(head.name.clone());
                if names.contains(&head.name) {
                    *current.borrow_mut() = Some(head.name.clone());
                }
            }
        };
        let mut on_case = |case: crate::model::Case| {
            if let Some(name) = current.borrow().as_deref() {
                expected.add(name, &case.id, &case.hash, case.expected.as_deref());
                expected.add_context(name, &case.id, &case.context);
            }
        };
        crate::suite::feed_suite(f, project, &mut on_head, &mut on_case);
    }
    expected
}

pub fn report(ctx: &Ctx, args: &ReportArgs) -> anyhow::Result<u8> {
    let project = ctx.project()?;
    let window = parse_window(&args.since)?;
    let store = open(ctx, &project)?;
    let dir = match &args.out {
        Some(p) if p.is_absolute() => p.clone(),
        Some(p) => ctx.cwd.join(p),
        None => reports_dir(&project),
    };
    let suites = suites_on_disk(ctx, &project);
    let (expected, descriptions) = (Expected::from_suites(&suites), descriptions_of(&suites));
    // Rows that runs killed while they went left behind (`run` cleans up too).
    remove_leftovers(&store, &dir)?;
    let mut extra = html::Written::default();
    for id in &args.runs {
        let info = store.run(id)?.ok_or_else(|| {
            Failure::invalid(format!(
                "write the page of run `{id}`: no such run; `evalwatch runs` lists them"
            ))
        })?;
        html::write_run_pages(&store, &dir, &info.run_id, &expected, &mut extra)?;
    }
    let opts = Options {
        window,
        now: chrono::Utc::now(),
        run_pages: html::RUN_PAGES,
    };
    let written = html::write_reports(&store, &dir, None, &descriptions, &expected, &opts)?;
    ctx.printer.result(&format!(
        "wrote {} page(s) to {} (open {})",
        written.files.len() + extra.files.len(),
        dir.display(),
        dir.join("index.html").display()
    ));
    Ok(exit::OK)
}

// ---------------------------------------------------------------------------------------
// compare

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

pub fn compare(ctx: &Ctx, args: &CompareArgs) -> anyhow::Result<u8> {
    let json_out = match args.format.as_str() {
        "text" => false,
        "json" => true,
        other => {
            return Err(Failure::invalid(format!(
                "compare: unknown --format `{other}`; use text or json"
            )));
        }
    };
    let project = ctx.project()?;
    let store = open(ctx, &project)?;
    let a = find_run(&store, &args.run_a)?;
    let b = find_run(&store, &args.run_b)?;
    let mut cmp = pair_results(
        &a.run_id,
        &b.run_id,
        &store.result_scores(&a.run_id)?,
        &store.result_scores(&b.run_id)?,
    );
    cmp.judge_latency(args.min_latency_change_ms, args.min_latency_change_pct);
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

// ---------------------------------------------------------------------------------------
// export

/// Escape a Prometheus label value: backslash, double quote and newline.
#[must_use]
pub fn prom_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The metrics the Prometheus export writes: (name in the store, exposition name, scale,
/// help). Names follow Prometheus conventions: base units (`_seconds`), `_ratio` for shares
/// in [0, 1]; the figures of one run are gauges.
const PROM_METRICS: [(&str, &str, f64, &str); 17] = [
    (
        "pass_rate",
        "pass_ratio",
        1.0,
        "Share of scored results that passed (passed / (passed + failed)) in the newest run.",
    ),
    (
        "case_pass_rate",
        "case_pass_ratio",
        1.0,
        "Share of case verdicts (under repeat_policy) that passed in the newest run.",
    ),
    (
        "agreement",
        "sample_agreement_ratio",
        1.0,
        "Mean share of a repeated case's samples that agree with its majority outcome.",
    ),
    (
        "mean_score",
        "mean_score",
        1.0,
        "Mean score of the results of the newest run.",
    ),
    (
        "error_rate",
        "error_ratio",
        1.0,
        "Share of results of the newest run that failed with a provider error.",
    ),
    (
        "hallucination_rate",
        "hallucination_ratio",
        1.0,
        "Share of checked results of the newest run flagged as hallucinating.",
    ),
    (
        "contradiction_rate",
        "contradiction_ratio",
        1.0,
        "Share of checked results of the newest run that contradict the context.",
    ),
    (
        "unsupported_rate",
        "unsupported_ratio",
        1.0,
        "Share of checked results of the newest run with unsupported additions.",
    ),
    (
        "latency_p50_ms",
        "latency_p50_seconds",
        0.001,
        "Median latency of the newest run, seconds.",
    ),
    (
        "latency_p95_ms",
        "latency_p95_seconds",
        0.001,
        "95th percentile latency of the newest run, seconds.",
    ),
    (
        "latency_p99_ms",
        "latency_p99_seconds",
        0.001,
        "99th percentile latency of the newest run, seconds.",
    ),
    ("cases", "run_results", 1.0, "Results in the newest run."),
    (
        "errors",
        "run_errors",
        1.0,
        "Results of the newest run that ended in a provider error.",
    ),
    (
        "flaky_cases",
        "run_flaky_cases",
        1.0,
        "Cases of the newest run with mixed outcomes across samples.",
    ),
    (
        "tokens_in",
        "run_input_tokens",
        1.0,
        "Input tokens of the newest run.",
    ),
    (
        "tokens_out",
        "run_output_tokens",
        1.0,
        "Output tokens of the newest run.",
    ),
    (
        "cost_usd",
        "run_cost_usd",
        1.0,
        "Cost of the newest run, US dollars.",
    ),
];

/// Name of the file `export --format prometheus --textfile DIR` writes.
pub const TEXTFILE_NAME: &str = "evalwatch.prom";

/// The label set `{suite="..",provider=".."[,tag=".."]}` with escaped values.
fn prom_labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", prom_label(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// A sample value as the exposition format writes it.
fn prom_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// Prometheus text exposition of the newest finished run of each suite and provider.
///
/// Series are labelled by `suite`, `provider` and, for the per-tag figures, `tag`; never by
/// run id (each run would start new series). The run id of each newest run is the
/// `evalwatch_run_info` series (value 1), its start `evalwatch_last_run_timestamp_seconds`,
/// and `evalwatch_runs_total` counts the runs of each suite in the store.
pub fn prometheus(store: &Store, suite: Option<&str>) -> Result<String, StoreError> {
    let names = store.suite_names()?;
    // (suite, provider) -> (run, started_at, status)
    let mut latest: BTreeMap<(String, String), (String, String, RunStatus)> = BTreeMap::new();
    let mut runs_total: BTreeMap<String, usize> = BTreeMap::new();
    for name in names
        .iter()
        .filter(|n| suite.is_none_or(|s| s == n.as_str()))
    {
        runs_total.insert(name.clone(), store.run_infos(Some(name), None, 0)?.len());
        let rows = store.trend(&crate::store::TrendQuery {
            suite: name,
            since: None,
            tags: false,
            full: true,
        })?;
        for r in rows {
            if r.metrics.is_some() {
                latest.insert(
                    (name.clone(), r.provider.clone()),
                    (r.run_id, r.started_at, r.status),
                );
            }
        }
    }
    // The metrics of each newest run (overall and per tag), read once per run.
    let mut by_run: HashMap<String, Vec<crate::model::ProviderMetrics>> = HashMap::new();
    for (run, _, _) in latest.values() {
        if !by_run.contains_key(run) {
            by_run.insert(run.clone(), store.run_metrics(run)?);
        }
    }
    let mut out = String::new();
    for (key, name, scale, help) in PROM_METRICS {
        let _ = writeln!(
            out,
            "# HELP evalwatch_{name} {help}\n# TYPE evalwatch_{name} gauge"
        );
        for ((s, p), (run, _, _)) in &latest {
            let metrics = by_run.get(run).map(Vec::as_slice).unwrap_or_default();
            for m in metrics.iter().filter(|m| &m.provider == p) {
                let Some(v) = m.metrics.get(key).filter(|v| v.is_finite()) else {
                    continue;
                };
                let labels = match &m.tag {
                    None => prom_labels(&[("suite", s), ("provider", p)]),
                    Some(t) => prom_labels(&[("suite", s), ("provider", p), ("tag", t)]),
                };
                let _ = writeln!(out, "evalwatch_{name}{labels} {}", prom_value(v * scale));
            }
        }
    }
    out.push_str("# HELP evalwatch_run_info The newest finished run of each suite and provider (value 1; the run id is a label here only).\n# TYPE evalwatch_run_info gauge\n");
    for ((s, p), (run, _, status)) in &latest {
        let labels = prom_labels(&[
            ("suite", s),
            ("provider", p),
            ("run_id", run),
            ("status", status.as_str()),
        ]);
        let _ = writeln!(out, "evalwatch_run_info{labels} 1");
    }
    out.push_str("# HELP evalwatch_last_run_timestamp_seconds Start of the newest finished run, Unix seconds.\n# TYPE evalwatch_last_run_timestamp_seconds gauge\n");
    for ((s, p), (_, started, _)) in &latest {
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(started) {
            let labels = prom_labels(&[("suite", s), ("provider", p)]);
            let _ = writeln!(
                out,
                "evalwatch_last_run_timestamp_seconds{labels} {}",
                t.timestamp()
            );
        }
    }
    out.push_str("# HELP evalwatch_runs_total Runs of the suite in the store.\n# TYPE evalwatch_runs_total counter\n");
    for (s, n) in &runs_total {
        let _ = writeln!(
            out,
            "evalwatch_runs_total{} {n}",
            prom_labels(&[("suite", s)])
        );
    }
    Ok(out)
}

fn runs_for_export(
    store: &Store,
    args: &ExportArgs,
    newest_only: bool,
) -> anyhow::Result<Vec<RunInfo>> {
    let since = match &args.since {
        None => None,
        Some(s) => parse_window(s)?
            .start(chrono::Utc::now())
            .map(|d| d.to_rfc3339()),
    };
    if newest_only && args.since.is_none() {
        let mut out = Vec::new();
        for name in store.suite_names()? {
            if args.suite.as_ref().is_some_and(|s| s != &name) {
                continue;
            }
            if let Some(r) = store
                .run_infos(Some(&name), None, 0)?
                .into_iter()
                .rev()
                .find(|r| r.status != RunStatus::Running)
            {
                out.push(r);
            }
        }
        return Ok(out);
    }
    Ok(store.run_infos(args.suite.as_deref(), since.as_deref(), 0)?)
}

const CSV_HEADER: [&str; 23] = [
    "run_id",
    "suite",
    "started_at",
    "finished_at",
    "run_status",
    "case_id",
    "provider",
    "sample",
    "status",
    "score",
    "latency_ms",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "attempts",
    "error_kind",
    "error",
    "finish_reason",
    "output_bytes",
    "truncated",
    "tags",
    "failed_assertions",
    "output",
];

/// A text cell of the CSV export made safe to open in a spreadsheet (OWASP "CSV injection"):
/// text that starts with `=`, `+`, `-`, `@`, a tab or a carriage return would be read as a
/// formula, so it gets a leading `'`. Number columns are written as numbers and never pass
/// through here.
#[must_use]
pub fn csv_text(v: String) -> String {
    if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{v}")
    } else {
        v
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

fn export_to(store: &Store, args: &ExportArgs, w: &mut dyn Write) -> anyhow::Result<()> {
    let werr = |e: std::io::Error| StoreError::Other(format!("write the export: {e}"));
    match args.format.as_str() {
        "prometheus" => {
            w.write_all(prometheus(store, args.suite.as_deref())?.as_bytes())?;
        }
        "json" => {
            let runs = runs_for_export(store, args, false)?;
            w.write_all(b"{\"runs\": [")?;
            for (i, r) in runs.iter().enumerate() {
                if i > 0 {
                    w.write_all(b",")?;
                }
                let metrics = store.run_metrics(&r.run_id)?;
                let gates = store.run_gates(&r.run_id)?;
                let mut head = serde_json::to_value(r)?;
                head["metrics"] = serde_json::to_value(&metrics)?;
                head["gates"] = serde_json::to_value(&gates)?;
                let text = serde_json::to_string(&head)?;
                // Stream the results into the run object: one result in memory at a time.
                w.write_all(&text.as_bytes()[..text.len() - 1])?;
                w.write_all(b",\"results\":[")?;
                let mut first = true;
                store.for_each_result(&r.run_id, |rec| {
                    if !first {
                        w.write_all(b",").map_err(werr)?;
                    }
                    first = false;
                    serde_json::to_writer(&mut *w, &rec)
                        .map_err(|e| StoreError::Other(format!("write the export: {e}")))
                })?;
                w.write_all(b"]}")?;
            }
            w.write_all(b"]}\n")?;
        }
        "csv" => {
            let runs = runs_for_export(store, args, false)?;
            let mut c = csv::Writer::from_writer(w);
            c.write_record(CSV_HEADER)?;
            for r in &runs {
                store.for_each_result(&r.run_id, |rec| {
                    let failed: Vec<String> = rec
                        .assertions
                        .iter()
                        .filter(|a| !a.pass)
                        .map(|a| a.type_name.clone())
                        .collect();
                    c.write_record([
                        csv_text(r.run_id.clone()),
                        csv_text(r.suite.clone()),
                        csv_text(r.started_at.clone()),
                        csv_text(r.finished_at.clone().unwrap_or_default()),
                        csv_text(r.status.as_str().into()),
                        csv_text(rec.job.case_id.clone()),
                        csv_text(rec.job.provider_id.clone()),
                        rec.job.sample.to_string(),
                        csv_text(rec.status.as_str().into()),
                        opt(rec.score),
                        opt(rec.latency_ms),
                        opt(rec.tokens_in),
                        opt(rec.tokens_out),
                        opt(rec.cost_usd),
                        rec.attempts.to_string(),
                        csv_text(opt(rec.error_kind.map(crate::model::ErrorKind::as_str))),
                        csv_text(rec.error.clone().unwrap_or_default()),
                        csv_text(rec.finish_reason.clone().unwrap_or_default()),
                        opt(rec.output_bytes),
                        rec.truncated.to_string(),
                        csv_text(rec.tags.join(";")),
                        csv_text(failed.join(";")),
                        csv_text(rec.output.clone().unwrap_or_default()),
                    ])
                    .map_err(|e| StoreError::Other(format!("write the export: {e}")))
                })?;
            }
            c.flush()?;
        }
        "junit" => {
            let runs = runs_for_export(store, args, true)?;
            let mut j = JunitWriter::begin(w)?;
            for r in &runs {
                let metrics = store.run_metrics(&r.run_id)?;
                let gates = store.run_gates(&r.run_id)?;
                let wall_secs = r
                    .finished_at
                    .as_deref()
                    .and_then(|f| chrono::DateTime::parse_from_rfc3339(f).ok())
                    .zip(chrono::DateTime::parse_from_rfc3339(&r.started_at).ok())
                    .map(|(f, s)| (f - s).num_milliseconds() as f64 / 1000.0);
                j.suite(&RunView {
                    info: r,
                    metrics: &metrics,
                    gates: &gates,
                    wall_secs,
                })?;
                store.for_each_result(&r.run_id, |rec| j.case(&r.suite, &rec).map_err(werr))?;
                j.end_suite()?;
            }
            j.end()?;
        }
        other => {
            return Err(Failure::invalid(format!(
                "export: unknown --format `{other}`; use json, csv, junit or prometheus"
            )));
        }
    }
    Ok(())
}

pub fn export(ctx: &Ctx, args: &ExportArgs) -> anyhow::Result<u8> {
    if !["json", "csv", "junit", "prometheus"].contains(&args.format.as_str()) {
        return Err(Failure::invalid(format!(
            "export: unknown --format `{}`; use json, csv, junit or prometheus",
            args.format
        )));
    }
    if let Some(s) = &args.since {
        parse_window(s)?;
    }
    let textfile = match &args.textfile {
        None => None,
        Some(_) if args.format != "prometheus" => {
            return Err(Failure::invalid(format!(
                "export: --textfile is for --format prometheus (node_exporter's textfile collector), not {}; use --out FILE",
                args.format
            )));
        }
        Some(dir) => {
            let abs = if dir.is_absolute() {
                dir.clone()
            } else {
                ctx.cwd.join(dir)
            };
            if !abs.is_dir() {
                return Err(Failure::invalid(format!(
                    "export: --textfile {} is not a folder; give the folder node_exporter reads (--collector.textfile.directory)",
                    dir.display()
                )));
            }
            Some(abs.join(TEXTFILE_NAME))
        }
    };
    let project = ctx.project()?;
    let store = open(ctx, &project)?;
    if let Some(path) = &textfile {
        // node_exporter reads only `*.prom`: the temporary name is never read half-written.
        let tmp = path.with_file_name(format!(".{TEXTFILE_NAME}.{}.tmp", std::process::id()));
        let text = prometheus(&store, args.suite.as_deref())?;
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                Failure {
                    code: exit::INCOMPLETE,
                    message: format!("export: write {}: {e}", path.display()),
                }
            })?;
        ctx.printer.info(&format!("wrote {}", path.display()));
    } else if let Some(path) = &args.out {
        {
            let path = if path.is_absolute() {
                path.clone()
            } else {
                ctx.cwd.join(path)
            };
            let tmp = tmp_path(&path);
            let file = std::fs::File::create(&tmp)
                .map_err(|e| Failure::invalid(format!("write {}: {e}", tmp.display())))?;
            let mut w = std::io::BufWriter::new(file);
            export_to(&store, args, &mut w)?;
            w.flush()?;
            drop(w);
            std::fs::rename(&tmp, &path)?;
        }
    } else {
        {
            let mut w = crate::output::stdout_writer();
            export_to(&store, args, &mut w)?;
            w.flush()?;
        }
    }
    Ok(exit::OK)
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(std::ffi::OsStr::to_os_string)
        .unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A project with one suite (`suites/s.yaml`, plus `suites/t.yaml` that is never run) and
    /// `runs` complete runs of `s` in which results flip from run to run.
    pub(in crate::app) fn history(
        runs: usize,
    ) -> (tempfile::TempDir, Ctx, ProjectConfig, Vec<RunInfo>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let suites = dir.path().join("suites");
        std::fs::create_dir_all(&suites).expect("mkdir");
        let mut yaml = String::from(
            "suite: s\ndescription: \"Refunds & <returns>\"\nproviders:\n  - id: echo\n    type: echo\nprompt: \"Q: {{ q }}\"\ncases:\n",
        );
        for i in 0..830 {
            let _ = writeln!(
                yaml,
                "  - id: c{i}\n    vars: {{q: \"question {i} <b>'&'</b>\"}}\n    expected: \"right {i}\"\n    assert: [{{type: icontains, value: right}}]"
            );
        }
        std::fs::write(suites.join("s.yaml"), yaml).expect("write");
        std::fs::write(
            suites.join("t.yaml"),
            "suite: t\ndescription: never run\nproviders:\n  - id: echo\n    type: echo\nprompt: \"Q\"\ncases:\n  - id: a\n    assert: [{type: icontains, value: Q}]\n",
        )
        .expect("write");
        let ctx = Ctx {
            machine_stdout: std::cell::Cell::new(false),
            printer: crate::output::Printer::new(crate::output::Verbosity::Quiet, true),
            db: Some(dir.path().join("h.db")),
            config: None,
            cwd: dir.path().to_path_buf(),
        };
        let project = ctx.project().expect("project");
        let files = super::super::suite_files(&ctx, &project, &[]).expect("files");
        let (loaded, diags) = crate::suite::load_suites(&files, &project);
        assert!(diags.is_empty(), "{diags:?}");
        let db = dir.path().join("h.db");
        let mut store = Store::open(&db).expect("store");
        let now = chrono::Utc::now();
        let mut infos = Vec::new();
        // One run of `t` first (the index lists suites with runs), then the runs of `s`.
        let t = loaded.iter().find(|s| s.name == "t").expect("suite t");
        store_run(
            &mut store,
            &db,
            t,
            "t-0",
            now - chrono::Duration::hours(30),
            |_| true,
        );
        let suite = loaded.iter().find(|s| s.name == "s").expect("suite s");
        for r in 0..runs {
            let started = now - chrono::Duration::hours(i64::try_from(runs - r).expect("hours"));
            infos.push(store_run(
                &mut store,
                &db,
                suite,
                &format!("run-{r}"),
                started,
                |i| (i + r) % 3 != 0,
            ));
        }
        (dir, ctx, project, infos)
    }

    /// A job, built through serde (which leaves out what is not part of a job's identity).
    pub(crate) fn job(seq: usize, case_id: &str, provider: &str, sample: u32) -> crate::model::Job {
        serde_json::from_value(json!({
            "seq": seq, "case_index": seq, "case_id": case_id,
            "provider_index": 0, "provider_id": provider, "sample": sample,
        }))
        .expect("a job")
    }

    /// Store a complete run of `suite` in which case i passes when `pass(i)`.
    pub(in crate::app) fn store_run(
        store: &mut Store,
        db: &Path,
        suite: &Suite,
        run_id: &str,
        started: chrono::DateTime<chrono::Utc>,
        pass: impl Fn(usize) -> bool,
    ) -> RunInfo {
        use crate::metrics::RunAccumulator;
        use crate::model::{AssertionOutcome, ResultRecord};
        let info = RunInfo {
            run_id: run_id.into(),
            suite: suite.name.clone(),
            suite_hash: suite.hash.clone(),
            started_at: started.to_rfc3339(),
            finished_at: None,
            status: RunStatus::Running,
            providers: vec!["echo".into()],
            planned: suite.cases.len() as u64,
        };
        store.begin_run(&info, suite, 1, "test").expect("begin");
        let writer = crate::store::Writer::spawn(db, &info.run_id, 50).expect("writer");
        let mut acc = RunAccumulator::new();
        for (i, case) in suite.cases.iter().enumerate() {
            let pass = pass(i);
            let mut rec = ResultRecord::new(
                job(i, &case.id, "echo", 0),
                if pass {
                    CaseStatus::Passed
                } else {
                    CaseStatus::Failed
                },
            );
            rec.case_hash = case.hash.clone();
            rec.prompt = format!("Q: question {i}");
            rec.output = Some(if pass { "right" } else { "<wrong> & 'so'" }.into());
            rec.score = Some(if pass { 1.0 } else { 0.0 });
            rec.latency_ms = Some(10.0 + i as f64);
            rec.assertions = vec![AssertionOutcome {
                type_name: "icontains".into(),
                pass,
                score: if pass { 1.0 } else { 0.0 },
                reason: "checked \"right\"".into(),
                details: serde_json::Value::Null,
                weight: 1.0,
                metric: None,
                unscorable: false,
            }];
            acc.add(&rec);
            writer.send(rec).expect("send");
        }
        writer.finish().expect("writer");
        let finished = (started + chrono::Duration::minutes(1)).to_rfc3339();
        store
            .finish_run(
                &info.run_id,
                RunStatus::Complete,
                &finished,
                &acc.finish(Some(60.0)),
                &[],
            )
            .expect("finish");
        store.run(&info.run_id).expect("read").expect("run")
    }

    /// Every file under `dir`, with the generation time (minutes) taken out.
    fn pages(dir: &Path) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).expect("read dir").flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let text = std::fs::read_to_string(&p).expect("read page");
                    let text = match text.find("Generated ") {
                        Some(at) => format!("{}{}", &text[..at], &text[at + 30..]),
                        None => text,
                    };
                    let name = p
                        .strip_prefix(dir)
                        .expect("under dir")
                        .display()
                        .to_string();
                    out.insert(name, text);
                }
            }
        }
        out
    }

    #[test]
    fn every_way_of_refreshing_writes_the_same_pages() {
        let (dir, ctx, project, infos) = history(4);
        let reports = dir.path().join("reports");
        let mut store = Store::open(&dir.path().join("h.db")).expect("store");
        let files = super::super::suite_files(&ctx, &project, &[]).expect("files");
        let (loaded, _) = crate::suite::load_suites(&files, &project);
        let s = loaded.iter().find(|x| x.name == "s").expect("s");
        // `run` hands over the suite as checked, without its cases.
        let head = Suite {
            cases: Vec::new(),
            ..s.clone()
        };
        let ran = vec![&head];

        after_run(&ctx, &store, &project, &ran, html::Prepared::default()).expect("from disk");
        let from_disk = pages(&reports);
        assert!(
            from_disk.contains_key("runs/run-3-p9.html"),
            "{:?}",
            from_disk.keys()
        );
        let index = &from_disk["index.html"];
        assert!(
            index.contains("never run"),
            "the suite not run keeps its description"
        );
        assert!(index.contains("Refunds &amp; &lt;returns&gt;"));
        let run = &from_disk["runs/run-3.html"];
        assert!(run.contains("<pre>right 1</pre>"), "expected answers");
        assert!(run.contains("flip: passed -&gt; failed"), "flips");

        // A run too large to hold rendered is read twice, one page in memory at a time.
        std::fs::remove_dir_all(&reports).expect("clean");
        let budget = &html::TEST_ROWS_IN_MEMORY;
        let before = budget.swap(1, std::sync::atomic::Ordering::Relaxed);
        let streamed = after_run(&ctx, &store, &project, &ran, html::Prepared::default());
        budget.store(before, std::sync::atomic::Ordering::Relaxed);
        streamed.expect("streamed");
        assert_eq!(pages(&reports), from_disk, "two reads");

        // The newest run's results rendered as they were scored (in another order than the
        // plan's), expected answers from the cases: the same pages, without the store's
        // results read back. The rendered rows are what is shown (a changed output shows);
        // rows that miss a result are not used. No file of rows is left behind.
        let newest = infos.last().expect("newest");
        let mut records = Vec::new();
        store
            .for_each_result(&newest.run_id, |r| {
                records.push(r);
                Ok(())
            })
            .expect("results");
        records.reverse();
        let expected_of = |id: &str| {
            s.cases
                .iter()
                .find(|c| c.id == id)
                .and_then(|c| c.expected.clone())
        };
        // Every other result first: a page's rows lie apart in the file.
        let interleaved: Vec<_> = records
            .iter()
            .step_by(2)
            .chain(records.iter().skip(1).step_by(2))
            .cloned()
            .collect();
        // `total`: the run's number of results, known as it goes (pages after the first are
        // then written as their rows come), or wrong (more than it has: they are written
        // again at the end).
        // `known_after`: results fed before the total is known.
        let n = records.len();
        for (how, tamper, skip, order, total, known_after) in [
            ("rendered as scored", None, false, &records, 0, 0),
            (
                "rendered as scored, pages written as it went",
                None,
                false,
                &records,
                n,
                0,
            ),
            ("rendered interleaved", None, false, &interleaved, 0, 0),
            (
                "rendered interleaved, pages written as it went",
                None,
                false,
                &interleaved,
                n,
                0,
            ),
            (
                "rendered interleaved, total known late",
                None,
                false,
                &interleaved,
                n,
                n * 3 / 4,
            ),
            ("rendered, total wrong", None, false, &records, n + 150, 0),
            (
                "rendered, changed",
                Some("a changed &lt;output&gt;"),
                false,
                &records,
                n,
                0,
            ),
            (
                "rendered, one missing",
                Some("not shown"),
                true,
                &records,
                n,
                0,
            ),
        ] {
            std::fs::remove_dir_all(&reports).expect("clean");
            // A page past the run's last, as a killed run whose last results were not
            // stored would leave: removed.
            std::fs::create_dir_all(reports.join("runs")).expect("mkdir");
            std::fs::write(reports.join("runs/run-3-p10.html"), "left").expect("write");
            store
                .set_run_status(&newest.run_id, RunStatus::Running)
                .expect("status");
            let running = store.run(&newest.run_id).expect("read").expect("run");
            let known =
                std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(if known_after == 0 {
                    total
                } else {
                    0
                }));
            let mut live = html::live::LivePages::new(
                &running,
                live_baseline_reader(&dir.path().join("h.db"), &running),
                &reports,
            )
            .with_total(std::sync::Arc::clone(&known));
            for (i, rec) in order.iter().enumerate() {
                if i == known_after {
                    known.store(total, std::sync::atomic::Ordering::Relaxed);
                }
                if skip && i == 5 {
                    continue;
                }
                let mut rec = rec.clone();
                if let (Some(t), 0) = (tamper, rec.job.seq) {
                    rec.output = Some(t.replace("&lt;", "<").replace("&gt;", ">"));
                }
                live.add(&rec, expected_of(&rec.job.case_id).as_deref(), &[]);
            }
            let made = reports
                .join("runs")
                .join(format!("{}.html.tmp", html::file_stem(&newest.run_id)));
            assert!(made.exists(), "{how}: page 1's file made as its rows came");
            let runs = reports.join("runs");
            assert!(
                !runs.join("run-3.html").exists(),
                "{how}: page 1 waits for the end"
            );
            assert_eq!(
                runs.join("run-3-p2.html").exists(),
                total > 0,
                "{how}: page 2 written as its rows came when the total is known"
            );
            if total == n && !skip {
                // Every page after the first, those complete before the total was known too.
                let pages = n.div_ceil(html::RESULTS_PER_PAGE);
                let missing: Vec<usize> = (2..=pages)
                    .filter(|p| !runs.join(format!("run-3-p{p}.html")).exists())
                    .collect();
                assert!(missing.is_empty(), "{how}: pages not written: {missing:?}");
            }
            store
                .set_run_status(&newest.run_id, RunStatus::Complete)
                .expect("status");
            let mut prepared = html::Prepared::default();
            prepared
                .live
                .insert(newest.run_id.clone(), live.finish(records.len()));
            after_run(&ctx, &store, &project, &ran, prepared).expect(how);
            let got = pages(&reports);
            match tamper {
                Some(t) if !skip => {
                    let page = &got["runs/run-3.html"];
                    assert!(page.contains(t), "{how}: the rendered rows are shown");
                    assert_ne!(got, from_disk, "{how}");
                }
                _ => assert_eq!(got, from_disk, "{how}"),
            }
            assert!(
                !got.keys()
                    .any(|k| k.starts_with("runs/.") || k.contains(".html.tmp")),
                "{how}: no rows, no page's file made ahead left: {:?}",
                got.keys()
            );
        }
    }

    #[test]
    fn rows_left_by_runs_no_longer_running_are_removed() {
        let (dir, _ctx, _project, infos) = history(2);
        let mut store = Store::open(&dir.path().join("h.db")).expect("store");
        let reports = dir.path().join("reports");
        let runs = reports.join("runs");
        std::fs::create_dir_all(&runs).expect("mkdir");
        // run-0 was killed while it went (the store has it incomplete); run-1 is running.
        store
            .set_run_status(&infos[1].run_id, RunStatus::Running)
            .expect("status");
        let left = runs.join(format!(".{}.rows", html::file_stem(&infos[0].run_id)));
        let going = runs.join(format!(".{}.rows", html::file_stem(&infos[1].run_id)));
        let page = runs.join(".notes.html");
        for f in [&left, &going, &page] {
            std::fs::write(f, "<details>").expect("write");
        }
        // Pages' files made ahead (empty): of the killed run, a minute old (removed) and
        // just made; of the running run; and one being written.
        let made = |run: usize, page: usize, text: &str, age: u64| {
            let name = format!("{}-p{page}.html.tmp", html::file_stem(&infos[run].run_id));
            let path = runs.join(name);
            std::fs::write(&path, text).expect("write");
            let then = std::time::SystemTime::now() - std::time::Duration::from_secs(age);
            std::fs::File::options()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_modified(then))
                .expect("age");
            path
        };
        let old_made = made(0, 2, "", 120);
        let new_made = made(0, 3, "", 0);
        let going_made = made(1, 2, "", 120);
        let writing = made(0, 4, "<html>", 120);
        assert_eq!(remove_leftovers(&store, &reports).expect("clean"), 2);
        assert!(!left.exists(), "left by a run no longer running");
        assert!(!old_made.exists(), "made for a run no longer running");
        assert!(going.exists(), "a running run's rows are kept");
        assert!(going_made.exists(), "a running run's pages' files are kept");
        assert!(new_made.exists(), "a file made under a minute ago is kept");
        assert!(writing.exists(), "a page being written is kept");
        assert!(page.exists(), "other files are not touched");
        assert_eq!(
            remove_leftovers(&store, &dir.path().join("nowhere")).expect("none"),
            0
        );
    }

    #[test]
    fn a_run_finished_again_gets_its_pages_again_once() {
        let (dir, ctx, project, infos) = history(2);
        let reports = dir.path().join("reports");
        let mut store = Store::open(&dir.path().join("h.db")).expect("store");
        let files = super::super::suite_files(&ctx, &project, &[]).expect("files");
        let (loaded, _) = crate::suite::load_suites(&files, &project);
        let s = loaded.iter().find(|x| x.name == "s").expect("s");
        after_run(&ctx, &store, &project, &[s], html::Prepared::default()).expect("first");
        // The newest run finishes (again) now, and its pages are written at once, as `run`
        // does: within a tick of the file clock, which lags the one the finish is read from.
        let newest = infos.last().expect("newest");
        let metrics = store.run_metrics(&newest.run_id).expect("metrics");
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        store
            .finish_run(&newest.run_id, RunStatus::Complete, &now, &metrics, &[])
            .expect("finish");
        let opts = Options {
            window: Window::parse("30d").expect("window"),
            now: chrono::Utc::now(),
            run_pages: html::RUN_PAGES,
        };
        let write = || {
            html::write_reports(
                &store,
                &reports,
                None,
                &HashMap::new(),
                &Expected::default(),
                &opts,
            )
            .expect("write")
        };
        let run_pages = |w: &html::Written| {
            w.files
                .iter()
                .filter(|f| f.to_string_lossy().contains(&newest.run_id))
                .count()
        };
        assert!(run_pages(&write()) > 0, "finished again: written again");
        assert_eq!(run_pages(&write()), 0, "current: not written again");
    }

    fn r(case: &str, status: CaseStatus, score: f64, lat: f64) -> ScoredResult {
        ScoredResult {
            case_id: case.into(),
            provider: "p".into(),
            sample: 0,
            status,
            score: Some(score),
            latency_ms: Some(lat),
        }
    }

    #[test]
    fn pairs_results_and_counts_flips_both_ways() {
        use CaseStatus::{Error, Failed, Passed};
        let a = vec![
            r("a", Passed, 1.0, 100.0),
            r("b", Passed, 1.0, 100.0),
            r("c", Failed, 0.0, 100.0),
            r("d", Error, 0.0, 100.0),
            r("gone", Passed, 1.0, 100.0),
        ];
        let b = vec![
            r("a", Failed, 0.0, 150.0),
            r("b", Passed, 1.0, 150.0),
            r("c", Passed, 1.0, 150.0),
            r("d", Passed, 1.0, 150.0),
            r("new", Failed, 0.0, 150.0),
        ];
        let c = pair_results("A", "B", &a, &b);
        assert_eq!(
            c.paired, 3,
            "error results and unpaired ones are not paired"
        );
        assert_eq!(c.pass_to_fail.len(), 1);
        assert_eq!(c.pass_to_fail[0].case_id, "a");
        assert_eq!(c.fail_to_pass.len(), 1);
        assert!((c.mcnemar_p - 1.0).abs() < 1e-12);
        let lat = c.latency_delta_ms.expect("latency");
        assert!((lat.mean - 50.0).abs() < 1e-9 && lat.significant());
    }

    #[test]
    fn a_clear_regression_is_significant() {
        let a: Vec<ScoredResult> = (0..20)
            .map(|i| r(&format!("c{i}"), CaseStatus::Passed, 1.0, 100.0))
            .collect();
        let b: Vec<ScoredResult> = (0..20)
            .map(|i| {
                let st = if i < 10 {
                    CaseStatus::Failed
                } else {
                    CaseStatus::Passed
                };
                r(&format!("c{i}"), st, if i < 10 { 0.0 } else { 1.0 }, 100.0)
            })
            .collect();
        let c = pair_results("A", "B", &a, &b);
        assert!(c.mcnemar_p < 0.01, "{}", c.mcnemar_p);
        let s = c.score_delta.expect("score");
        assert!(s.high < 0.0, "{s:?}");
        assert!(!c.latency_delta_ms.expect("lat").significant());
    }

    #[test]
    fn prometheus_labels_are_escaped() {
        assert_eq!(prom_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(prom_label("plain"), "plain");
    }

    #[test]
    fn windows_parse_and_reject() {
        assert!(parse_window("7d").is_ok());
        assert!(parse_window("all").is_ok());
        assert!(parse_window("7x").is_err());
        assert!(parse_window("").is_err());
        assert!(parse_window("-3d").is_err());
    }
}
