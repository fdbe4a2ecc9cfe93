//! `evalwatch export`: runs and results as json, csv, junit or prometheus.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Ctx, Failure, exit, open, parse_window};
use crate::cli::report::ExportArgs;
use crate::model::{RunInfo, RunStatus};
use crate::report::RunView;
use crate::report::html::Window;
use crate::report::junit::JunitWriter;
use crate::store::{Store, StoreError};

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
    args: &ExportSettings,
    newest_only: bool,
) -> anyhow::Result<Vec<RunInfo>> {
    let since = match &args.since {
        None => None,
        Some(w) => w.start(chrono::Utc::now()).map(|d| d.to_rfc3339()),
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

fn export_to(store: &Store, args: &ExportSettings, w: &mut dyn Write) -> anyhow::Result<()> {
    let werr = |e: std::io::Error| StoreError::Other(format!("write the export: {e}"));
    match args.format {
        ExportFormat::Prometheus => {
            w.write_all(prometheus(store, args.suite.as_deref())?.as_bytes())?;
        }
        ExportFormat::Json => {
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
        ExportFormat::Csv => {
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
        ExportFormat::Junit => {
            let runs = runs_for_export(store, args, true)?;
            let mut j = JunitWriter::begin(w)?;
            for r in &runs {
                let metrics = store.run_metrics(&r.run_id)?;
                let gates = store.run_gates(&r.run_id)?;
                let wall_secs = r.wall_secs();
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
    }
    Ok(())
}

/// The formats `export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Json,
    Csv,
    Junit,
    Prometheus,
}

impl ExportFormat {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "json" => Self::Json,
            "csv" => Self::Csv,
            "junit" => Self::Junit,
            "prometheus" => Self::Prometheus,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Csv => "csv",
            Self::Junit => "junit",
            Self::Prometheus => "prometheus",
        }
    }
}

/// What `export` does, from its arguments.
#[derive(Debug, Clone)]
pub struct ExportSettings {
    pub format: ExportFormat,
    /// The file to write (absolute), else stdout.
    pub out: Option<PathBuf>,
    /// The Prometheus textfile to write (absolute: `DIR/evalwatch.prom`).
    pub textfile: Option<PathBuf>,
    /// Only this suite.
    pub suite: Option<String>,
    /// Only runs that started in this window.
    pub since: Option<Window>,
}

impl ExportSettings {
    pub fn resolve(ctx: &Ctx, args: &ExportArgs) -> anyhow::Result<Self> {
        let format = ExportFormat::parse(&args.format).ok_or_else(|| {
            Failure::invalid(format!(
                "export: unknown --format `{}`; use json, csv, junit or prometheus",
                args.format
            ))
        })?;
        let since = args.since.as_deref().map(parse_window).transpose()?;
        let textfile = match &args.textfile {
            None => None,
            Some(_) if format != ExportFormat::Prometheus => {
                return Err(Failure::invalid(format!(
                    "export: --textfile is for --format prometheus (node_exporter's textfile collector), not {}; use --out FILE",
                    format.as_str()
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
        let out = args.out.as_ref().map(|path| {
            if path.is_absolute() {
                path.clone()
            } else {
                ctx.cwd.join(path)
            }
        });
        Ok(Self {
            format,
            out,
            textfile,
            suite: args.suite.clone(),
            since,
        })
    }
}

pub fn export(ctx: &Ctx, args: &ExportArgs) -> anyhow::Result<u8> {
    let args = ExportSettings::resolve(ctx, args)?;
    let project = ctx.project()?;
    let store = open(ctx, &project)?;
    if let Some(suite) = &args.suite {
        super::suite_in_history(&store, suite, "export")?;
    }
    if let Some(path) = &args.textfile {
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
            let tmp = tmp_path(path);
            let file = std::fs::File::create(&tmp)
                .map_err(|e| Failure::invalid(format!("write {}: {e}", tmp.display())))?;
            let mut w = std::io::BufWriter::new(file);
            export_to(&store, &args, &mut w)?;
            w.flush()?;
            drop(w);
            std::fs::rename(&tmp, path)?;
        }
    } else {
        {
            let mut w = crate::output::stdout_writer();
            export_to(&store, &args, &mut w)?;
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
