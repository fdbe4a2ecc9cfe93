//! Run pages: `runs/<run>.html`, then `-p2`, `-p3`... of [`RESULTS_PER_PAGE`] results each.
//!
//! What stands above the results (metrics, gates, the flips against the baseline) is the same
//! on every page of a run: it is rendered once per run through the `run.html` template. The
//! results are the bulk of the pages (10,000 results make 100 pages) and are written here
//! directly, every string through tera's own HTML escaping ([`tera::escape_html`]), byte for
//! byte as the template wrote them (a test renders both and compares).
//!
//! The results of a run `run` just ran were rendered as they were scored ([`super::live`]).
//! Otherwise a run's results are read once: each is rendered as it is read, while the flips
//! are found. A run too large to hold rendered in memory ([`ROWS_IN_MEMORY`]) is read twice
//! instead (statuses first, for the flips above the results), one page in memory at a time.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

mod escape;
mod result;
mod stored;

pub(super) use self::escape::{escape_visible, push_escaped};
pub use self::result::truncation_note;
pub(super) use self::result::{push_context, push_expected, push_result_head, push_result_tail};
pub(super) use self::stored::write_run;
pub(super) use super::StatusRow;
use super::chart::Unit;
use super::{
    CSS, FLIPS_SHOWN, HtmlError, RESULTS_PER_PAGE, Written, is_flip, render, run_file, show_time,
    suite_href, write,
};
use crate::model::{CaseStatus, GateResult, ProviderMetrics, RunInfo, RunStatus};

/// Bytes of rendered results a run may hold in memory to be written in one read of its
/// results (about 15,000 results of ordinary size).
pub(super) const ROWS_IN_MEMORY: usize = 16 << 20;

/// Bytes of an ordinary rendered result, to tell ahead whether a run fits in
/// [`ROWS_IN_MEMORY`].
const ROW_BYTES: usize = 1100;

/// [`ROWS_IN_MEMORY`]; tests lower it to take the two-read path (which writes the same pages,
/// so that other tests running meanwhile are not affected).
#[cfg(test)]
pub(crate) static TEST_ROWS_IN_MEMORY: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(ROWS_IN_MEMORY);

fn rows_in_memory() -> usize {
    #[cfg(test)]
    {
        TEST_ROWS_IN_MEMORY.load(std::sync::atomic::Ordering::Relaxed)
    }
    #[cfg(not(test))]
    {
        ROWS_IN_MEMORY
    }
}

/// A run's results rendered ahead, in plan order, to be written into its pages as they are
/// (`live::LiveRun`, the rows `run` rendered as the run went). Run pages take them through
/// this, so that they need not know where the rows are kept.
pub(super) trait RenderedRows: Sync {
    /// Whether the rows are exactly the run's results against `baseline`, its baseline now.
    fn usable(&self, baseline: Option<&RunInfo>) -> bool;
    /// How many results the rows are of.
    fn len(&self) -> usize;
    /// The pages already written from these rows that can be kept (sorted).
    fn written_early(&self) -> &[usize];
    /// Append the rendered results `range` (positions in plan order) to `html`.
    fn push_rows(&self, range: std::ops::Range<usize>, html: &mut String) -> std::io::Result<()>;
    /// The flips found against the baseline while the rows were rendered.
    fn flips(&self) -> &Flips;
}

/// Pages of a run from which the writing is shared with a second thread.
const PARALLEL_PAGES: usize = 8;

/// The statuses of one run, looked up by (case, provider, sample): by position first (runs
/// of one suite list their results in the same plan order), through a map built on the first
/// miss otherwise. A run has one result per (case, provider, sample).
pub(super) struct StatusIndex<'a> {
    rows: &'a [StatusRow],
    map: OnceCell<HashMap<(&'a str, &'a str, u32), CaseStatus>>,
}

impl<'a> StatusIndex<'a> {
    pub(super) fn new(rows: &'a [StatusRow]) -> Self {
        Self {
            rows,
            map: OnceCell::new(),
        }
    }

    /// The status of (case, provider, sample), `at` the position where it is expected.
    pub(super) fn get(
        &self,
        at: usize,
        case: &str,
        provider: &str,
        sample: u32,
    ) -> Option<CaseStatus> {
        if let Some(r) = self.rows.get(at)
            && r.2 == sample
            && r.0 == case
            && r.1 == provider
        {
            return Some(r.3);
        }
        self.map
            .get_or_init(|| {
                self.rows
                    .iter()
                    .map(|r| ((r.0.as_str(), r.1.as_str(), r.2), r.3))
                    .collect()
            })
            .get(&(case, provider, sample))
            .copied()
    }
}

#[derive(Serialize)]
struct MetricRow {
    provider: String,
    cases: u64,
    pass_rate: String,
    mean_score: String,
    errors: u64,
    halluc: String,
    p50: String,
    p95: String,
    p99: String,
    tokens: String,
    cost: String,
}

#[derive(Serialize)]
struct GateRow {
    metric: String,
    provider: String,
    limit: String,
    value: String,
    ok: bool,
}

#[derive(Serialize)]
struct FlipRow {
    case: String,
    provider: String,
    sample: u32,
    from: &'static str,
    to: &'static str,
}

/// An alert the run opened, resolved or saw still firing.
#[derive(Serialize)]
pub(super) struct AlertView {
    pub(super) id: i64,
    /// `opened`, `resolved`, `still open`.
    pub(super) state: &'static str,
    pub(super) severity: String,
    pub(super) rule: String,
    pub(super) metric: String,
    pub(super) provider: String,
    pub(super) message: String,
}

pub(super) fn alert_views(rows: Vec<crate::model::AlertRow>, run_id: &str) -> Vec<AlertView> {
    rows.into_iter()
        .map(|a| AlertView {
            id: a.id,
            state: a.state_in(run_id),
            severity: a.severity,
            rule: a.rule,
            metric: a.metric,
            provider: a.provider,
            message: a.message,
        })
        .collect()
}

/// What `run.html` renders: everything above the results.
#[derive(Serialize)]
struct RunHead<'a> {
    css: &'static str,
    run_id: &'a str,
    suite: &'a str,
    suite_href: String,
    started: String,
    finished: Option<String>,
    status: &'static str,
    status_class: &'static str,
    total: usize,
    metrics: &'a [MetricRow],
    gates: &'a [GateRow],
    alerts: &'a [AlertView],
    labels: &'a [String],
    baseline: Option<&'a str>,
    baseline_href: Option<String>,
    flips: &'a [FlipRow],
    flips_more: usize,
}

/// The flip of one result against the baseline, if it flipped.
fn flip_of(
    before: Option<&StatusIndex<'_>>,
    at: usize,
    case: &str,
    provider: &str,
    sample: u32,
    now: CaseStatus,
) -> Option<(CaseStatus, CaseStatus)> {
    let from = before?.get(at, case, provider, sample)?;
    is_flip(from, now).then_some((from, now))
}

/// The flips listed above the results, and how many there are.
#[derive(Default)]
pub(super) struct Flips {
    shown: Vec<FlipRow>,
    pub(super) total: usize,
}

impl Flips {
    pub(super) fn add(
        &mut self,
        case: &str,
        provider: &str,
        sample: u32,
        flip: (CaseStatus, CaseStatus),
    ) {
        self.total += 1;
        if self.shown.len() < FLIPS_SHOWN {
            self.shown.push(FlipRow {
                case: case.to_owned(),
                provider: provider.to_owned(),
                sample,
                from: flip.0.as_str(),
                to: flip.1.as_str(),
            });
        }
    }
}

/// Everything of a run's pages but the results.
struct Pages<'a> {
    info: &'a RunInfo,
    runs_dir: &'a Path,
    metrics: Vec<MetricRow>,
    gates: Vec<GateRow>,
    /// The alerts the run opened, resolved or saw still firing (none on pages written before
    /// the alerts were decided: the refresh writes those again, [`super::write_reports_with`]).
    alerts: Vec<AlertView>,
    /// `key=value` of each label the run was given (none on pages written as it ran: the
    /// refresh writes them again, as for the alerts).
    labels: Vec<String>,
    baseline: Option<String>,
    baseline_href: Option<String>,
}

/// What stands above the results: on page 1, the run's summary (metrics, gates, flips); on
/// the pages after it, what is known as the run starts, so that they can be written while it
/// goes ([`super::live`]).
pub(super) struct Heads {
    first: String,
    more: String,
}

impl Heads {
    fn of(&self, page: usize) -> &str {
        if page <= 1 { &self.first } else { &self.more }
    }
}

impl Pages<'_> {
    /// The parts above the results of a run of `total` results.
    fn heads(&self, t: &tera::Tera, total: usize, flips: &Flips) -> Result<Heads, HtmlError> {
        let (status_class, status) = match self.info.status {
            RunStatus::Complete => ("ok", "complete"),
            other => ("bad", other.as_str()),
        };
        let first = render(
            t,
            "run.html",
            &RunHead {
                css: CSS,
                run_id: &self.info.run_id,
                suite: &self.info.suite,
                suite_href: suite_href(&self.info.suite),
                started: show_time(&self.info.started_at),
                finished: self.info.finished_at.as_deref().map(show_time),
                status,
                status_class,
                total,
                metrics: &self.metrics,
                gates: &self.gates,
                alerts: &self.alerts,
                labels: &self.labels,
                baseline: self.baseline.as_deref(),
                baseline_href: self.baseline_href.clone(),
                flips: &flips.shown,
                flips_more: flips.total - flips.shown.len(),
            },
        )?;
        let more = more_head(
            &self.info.run_id,
            &self.info.suite,
            &self.info.started_at,
            total,
        );
        Ok(Heads { first, more })
    }

    /// Write page `page` of `pages`.
    fn write_page(
        &self,
        html: &mut String,
        heads: &Heads,
        page: usize,
        pages: usize,
        results: &dyn Fn(&mut String),
        out: &mut Written,
    ) -> Result<(), HtmlError> {
        page_html(
            html,
            heads.of(page),
            &self.info.run_id,
            page,
            pages,
            results,
        );
        write_page_file(self.runs_dir, &self.info.run_id, page, html, out)
    }
}

/// The part above the results on a run's pages after the first: the run and its suite, its
/// start and how many results it has, and a link to page 1 for its summary. Nothing of it
/// waits for the run's end.
pub(super) fn more_head(run_id: &str, suite: &str, started_at: &str, total: usize) -> String {
    let mut out = String::with_capacity(CSS.len() + 1024);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>evalwatch: run ");
    push_escaped(&mut out, run_id);
    out.push_str("</title><style>");
    out.push_str(CSS);
    out.push_str("</style></head>\n<body><header><p><a href=\"../index.html\">all suites</a> · <a href=\"../");
    push_escaped(&mut out, &suite_href(suite));
    out.push_str("\">");
    push_escaped(&mut out, suite);
    out.push_str("</a></p><h1>Run <code>");
    push_escaped(&mut out, run_id);
    out.push_str("</code></h1>\n<p class=\"muted\">");
    push_escaped(&mut out, suite);
    out.push_str(" · started ");
    push_escaped(&mut out, &show_time(started_at));
    let _ = write!(
        out,
        " · {total} result(s) · metrics, gates and flips on <a href=\""
    );
    push_escaped(&mut out, &run_file(run_id, 1));
    out.push_str("\">page 1</a></p></header>\n<main>\n");
    out
}

/// The links to the `pages` pages of run `run_id`, `page` the current one.
fn pager(run_id: &str, page: usize, pages: usize) -> String {
    let mut out = String::from("<nav class=\"pager\">");
    for n in 1..=pages {
        if n == page {
            let _ = write!(out, "<b>{n}</b>");
        } else {
            out.push_str("<a href=\"");
            push_escaped(&mut out, &run_file(run_id, n));
            let _ = write!(out, "\">{n}</a>");
        }
        out.push(' ');
    }
    out.push_str("</nav>");
    out
}

/// Page `page` of `pages` of run `run_id` into `html`: `head`, then what `results` appends
/// (its `<details>` blocks).
pub(super) fn page_html(
    html: &mut String,
    head: &str,
    run_id: &str,
    page: usize,
    pages: usize,
    results: &dyn Fn(&mut String),
) {
    let pager = if pages > 1 {
        pager(run_id, page, pages)
    } else {
        String::new()
    };
    html.clear();
    html.push_str(head);
    html.push_str("<h2>Results ");
    if pages > 1 {
        let _ = write!(
            html,
            "<span class=\"muted small\">(page {page} of {pages})</span>"
        );
    }
    html.push_str("</h2>\n");
    html.push_str(&pager);
    html.push('\n');
    results(html);
    html.push('\n');
    html.push_str(&pager);
    html.push_str("\n</main></body></html>\n");
}

/// Write `html` as page `page` of run `run_id` into `runs_dir`.
pub(super) fn write_page_file(
    runs_dir: &Path,
    run_id: &str,
    page: usize,
    html: &str,
    out: &mut Written,
) -> Result<(), HtmlError> {
    let path = runs_dir.join(run_file(run_id, page));
    write(&path, html, out)?;
    if page == 1 {
        // Whether a run's pages are current is told by the first page's time against the
        // run's finish. File times come from a clock that can lag the one the finish was
        // read from by a tick (measured: 1.2 ms), and pages written as the run went are
        // written within a tick of its finish: the page gets the time it was written.
        std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(std::time::SystemTime::now()))
            .map_err(|source| HtmlError::Write {
                path: path.display().to_string(),
                source,
            })?;
    }
    Ok(())
}

/// Remove the pages of run `run_id` in `runs_dir` after page `pages` (left by an earlier
/// writing of it with more results: pages written as a run went, of results the store did
/// not keep when it was killed).
fn remove_pages_after(runs_dir: &Path, run_id: &str, pages: usize) {
    let mut page = pages + 1;
    while std::fs::remove_file(runs_dir.join(run_file(run_id, page))).is_ok() {
        page += 1;
    }
}

/// The metrics rows of a run's pages (the per-tag rows are the trend page's).
fn metric_rows(metrics: impl IntoIterator<Item = ProviderMetrics>) -> Vec<MetricRow> {
    metrics
        .into_iter()
        .filter(|m| m.tag.is_none())
        .map(|pm| {
            let m = pm.metrics;
            MetricRow {
                provider: pm.provider,
                cases: m.cases,
                pass_rate: Unit::Rate.show(m.pass_rate),
                mean_score: Unit::Score.show(m.mean_score),
                errors: m.errors,
                halluc: Unit::Rate.show(m.hallucination_rate),
                p50: Unit::Ms.show(m.latency_p50_ms),
                p95: Unit::Ms.show(m.latency_p95_ms),
                p99: Unit::Ms.show(m.latency_p99_ms),
                tokens: format!("{} / {}", m.tokens_in, m.tokens_out),
                cost: Unit::Usd.format(m.cost_usd),
            }
        })
        .collect()
}

/// `key=value` of each of a run's labels, by key.
fn labels_of(labels: &crate::model::RunLabels) -> Vec<String> {
    labels.iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// The gate rows of a run's pages.
fn gate_rows(gates: impl IntoIterator<Item = GateResult>) -> Vec<GateRow> {
    gates
        .into_iter()
        .map(|g| GateRow {
            metric: g.metric,
            provider: g.provider,
            limit: g.limit,
            value: g.value.map_or_else(|| "n/a".into(), |v| format!("{v:.4}")),
            ok: g.ok,
        })
        .collect()
}

/// The link to the first page of the baseline `id`, when that page exists.
fn baseline_href(runs_dir: &Path, id: &str) -> Option<String> {
    Some(run_file(id, 1)).filter(|f| runs_dir.join(f).exists())
}

/// Write the pages of a run `run` has just finished from the rows it rendered as it went,
/// with what it holds in memory for the part above them (`info` finished, its `metrics` and
/// `gates`), before the store has them: the pages are written while the store finishes the
/// run. `baseline` is the run's baseline as the store has it now. The pages are those the
/// store would give once the run is stored as `info`, `metrics` and `gates` say (a test
/// compares them). None when the rows cannot be used: the refresh writes the pages from the
/// store then.
pub(super) fn write_finished(
    dir: &Path,
    info: &RunInfo,
    metrics: &[ProviderMetrics],
    gates: &[GateResult],
    live: &dyn RenderedRows,
    baseline_info: Option<RunInfo>,
) -> Result<Option<Written>, HtmlError> {
    let runs_dir = dir.join("runs");
    let baseline_href = baseline_info
        .as_ref()
        .and_then(|b| baseline_href(&runs_dir, &b.run_id));
    if !live.usable(baseline_info.as_ref()) {
        return Ok(None);
    }
    let pages = Pages {
        info,
        runs_dir: &runs_dir,
        metrics: metric_rows(metrics.iter().cloned()),
        gates: gate_rows(gates.iter().cloned()),
        alerts: Vec::new(),
        labels: Vec::new(),
        baseline: baseline_info.map(|b| b.run_id),
        baseline_href,
    };
    crate::phase::phase("run pages: baseline read");
    let t = super::engine_of(&[super::RUN_TEMPLATE])?;
    write_live(&t, &pages, live)
}

/// Write the pages of `pages`' run from the rows in `live`: None when some rows could not
/// be read (the pages must then be written from the store).
fn write_live(
    t: &tera::Tera,
    pages: &Pages<'_>,
    live: &dyn RenderedRows,
) -> Result<Option<Written>, HtmlError> {
    let failed = std::sync::Mutex::new(None);
    let results = |range: std::ops::Range<usize>, html: &mut String| {
        if let Err(e) = live.push_rows(range, html)
            && let Ok(mut f) = failed.lock()
        {
            f.get_or_insert(e);
        }
    };
    let mut written = Written::default();
    // Pages written as the run went are kept when they were written for as many results as
    // it has (they then are what would be written now).
    let before = live.written_early();
    write_pages(
        t,
        pages,
        live.len(),
        &results,
        live.flips(),
        before,
        &mut written,
    )?;
    written.files.extend(
        before
            .iter()
            .map(|&page| pages.runs_dir.join(run_file(&pages.info.run_id, page))),
    );
    crate::phase::phase("run pages: written");
    let read = failed.into_inner().ok().flatten().is_none();
    Ok(read.then_some(written))
}

/// Write the pages of a run of `total` results; `results(range, html)` appends the results
/// of that range of positions (called from two threads).
fn write_pages(
    t: &tera::Tera,
    pages: &Pages<'_>,
    total: usize,
    results: &(dyn Fn(std::ops::Range<usize>, &mut String) + Sync),
    flips: &Flips,
    // Pages written already (sorted), left as they are.
    written_before: &[usize],
    out: &mut Written,
) -> Result<(), HtmlError> {
    let heads = pages.heads(t, total, flips)?;
    crate::phase::phase("run pages: head rendered");
    let page_count = total.div_ceil(RESULTS_PER_PAGE).max(1);
    let to_write: Vec<usize> = (1..=page_count)
        .filter(|p| written_before.binary_search(p).is_err())
        .collect();
    let write_pages = |these: &[usize]| -> Result<Written, HtmlError> {
        let mut written = Written::default();
        let mut html = String::new();
        for &page in these {
            let first = (page - 1) * RESULTS_PER_PAGE;
            let last = (first + RESULTS_PER_PAGE).min(total);
            pages.write_page(
                &mut html,
                &heads,
                page,
                page_count,
                &|html: &mut String| results(first..last, html),
                &mut written,
            )?;
        }
        Ok(written)
    };
    remove_pages_after(pages.runs_dir, &pages.info.run_id, page_count);
    // Writing is most of what is left (10,000 results are 10 MB of pages): the second half
    // of the pages on a thread of its own.
    let split = if to_write.len() >= PARALLEL_PAGES {
        to_write.len() / 2
    } else {
        to_write.len()
    };
    let (first_half, second_half) = to_write.split_at(split);
    std::thread::scope(|scope| -> Result<(), HtmlError> {
        let second = (!second_half.is_empty()).then(|| scope.spawn(|| write_pages(second_half)));
        let first = write_pages(first_half);
        let second = match second {
            Some(h) => Some(h.join().map_err(|_| HtmlError::Template {
                page: "run".into(),
                message: "the thread writing run pages panicked".into(),
            })?),
            None => None,
        };
        out.files.extend(first?.files);
        if let Some(second) = second {
            out.files.extend(second?.files);
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests;
