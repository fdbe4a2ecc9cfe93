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

pub(super) use super::StatusRow;
use super::chart::Unit;
use super::live::LiveRun;
use super::{
    CSS, Expected, FLIPS_SHOWN, HtmlError, LazyExpected, MAX_TEXT, RESULTS_PER_PAGE, Written,
    is_flip, render, run_file, show_time, suite_href, write,
};
use crate::model::{CaseStatus, GateResult, ProviderMetrics, ResultRecord, RunInfo, RunStatus};
use crate::store::{Store, StoreError};

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

/// Pages of a run from which the writing is shared with a second thread.
const PARALLEL_PAGES: usize = 8;

/// Append `text` HTML-escaped exactly as the templates escape it (tera's escaping of
/// `&`, `<`, `>`, `"` and `'`), with control characters made visible: C0 controls but tab,
/// line feed and carriage return as their Unicode control pictures (`\x1b` as `␛`, `\x00` as
/// `␀`, DEL as `␡`), C1 controls as `\u{9b}`, so that no raw control byte reaches a page (a
/// terminal escape, a NUL or a bell in a model output is seen, not obeyed or dropped).
/// Text with none of them, most of it, is copied as it is.
pub(super) fn push_escaped(out: &mut String, text: &str) {
    let Some(first) = text.bytes().position(|b| {
        matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'' | 0x7f | 0xc2)
            || (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))
    }) else {
        out.push_str(text);
        return;
    };
    out.push_str(&text[..first]);
    let mut buf = Vec::with_capacity(text.len() - first + 16);
    // Writing into a Vec cannot fail.
    let _ = escape_visible(&text[first..], &mut buf);
    // ASCII bytes were replaced by ASCII, controls by whole characters: still UTF-8.
    out.push_str(&String::from_utf8_lossy(&buf));
}

/// The pages' escaping (the template engine's too, [`super::engine_of`]): tera's HTML
/// escaping, and control characters made visible ([`push_escaped`]).
pub(super) fn escape_visible(text: &str, buf: &mut dyn std::io::Write) -> std::io::Result<()> {
    let mut rest = text;
    while let Some((at, c)) = rest.char_indices().find(|&(_, c)| is_hidden_control(c)) {
        tera::escape_html(&rest[..at], buf)?;
        let mut symbol = String::new();
        push_control(&mut symbol, c);
        buf.write_all(symbol.as_bytes())?;
        rest = &rest[at + c.len_utf8()..];
    }
    tera::escape_html(rest, buf)
}

/// A control character a page would not show as itself (all but tab, LF and CR).
fn is_hidden_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

/// A control character as a visible symbol: C0 and DEL as their control pictures
/// (U+2400..U+2421), C1 as `\u{..}`.
fn push_control(out: &mut String, c: char) {
    let code = u32::from(c);
    let picture = match code {
        0..=0x1f => char::from_u32(0x2400 + code),
        0x7f => Some('\u{2421}'),
        _ => None,
    };
    match picture {
        Some(p) => out.push(p),
        None => {
            let _ = write!(out, "\\u{{{code:x}}}");
        }
    }
}

/// [`super::clip`], escaped, without the intermediate copy.
fn push_clipped(out: &mut String, text: &str) {
    // At most MAX_TEXT bytes is at most MAX_TEXT characters: nothing to cut.
    if text.len() <= MAX_TEXT {
        push_escaped(out, text);
        return;
    }
    match text.char_indices().nth(MAX_TEXT) {
        None => push_escaped(out, text),
        Some((at, _)) => {
            push_escaped(out, &text[..at]);
            let _ = write!(
                out,
                "\n… [{} more characters not shown]",
                text[at..].chars().count()
            );
        }
    }
}

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

pub(super) fn alert_views(rows: Vec<crate::store::AlertRow>, run_id: &str) -> Vec<AlertView> {
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

/// Append one result as the `<details>` block of a run page.
fn push_result(
    out: &mut String,
    rec: &ResultRecord,
    suite: &str,
    expected: &Expected,
    flip: Option<(CaseStatus, CaseStatus)>,
    scratch: &mut String,
) {
    push_result_head(out, rec, flip);
    push_expected(
        out,
        expected.lookup(suite, &rec.job.case_id, &rec.case_hash),
    );
    push_context(
        out,
        expected.context(suite, &rec.job.case_id, &rec.case_hash),
    );
    push_result_tail(out, rec, scratch);
}

/// A result's block up to its expected answer.
pub(super) fn push_result_head(
    out: &mut String,
    rec: &ResultRecord,
    flip: Option<(CaseStatus, CaseStatus)>,
) {
    let status = rec.status.as_str();
    out.push_str("<details class=\"result\"");
    if rec.status != CaseStatus::Passed {
        out.push_str(" open");
    }
    out.push_str("><summary><span class=\"badge ");
    push_escaped(out, status);
    out.push_str("\">");
    push_escaped(out, status);
    out.push_str("</span> <code>");
    push_escaped(out, &rec.job.case_id);
    out.push_str("</code> · ");
    push_escaped(out, &rec.job.provider_id);
    if rec.job.sample > 0 {
        let _ = write!(out, " · sample {}", rec.job.sample);
    }
    out.push_str(" · score ");
    push_escaped(out, &Unit::Score.show(rec.score));
    out.push_str(" · ");
    push_escaped(out, &Unit::Ms.show(rec.latency_ms));
    if let Some((from, to)) = flip {
        out.push_str(" · <b class=\"flip\">flip: ");
        push_escaped(out, from.as_str());
        out.push_str(" -&gt; ");
        push_escaped(out, to.as_str());
        out.push_str("</b>");
    }
    out.push_str("</summary>\n<div class=\"body\"><h4>Prompt</h4><pre>");
    push_clipped(out, &rec.prompt);
    out.push_str("</pre><h4>Expected</h4>");
}

/// A result's expected answer, or why there is none.
pub(super) fn push_expected(out: &mut String, exp: Result<&str, &'static str>) {
    match exp {
        Ok(e) if !e.is_empty() => {
            out.push_str("<pre>");
            push_clipped(out, e);
            out.push_str("</pre>");
        }
        Ok(_) => out.push_str("<p class=\"muted\"></p>"),
        Err(note) => {
            out.push_str("<p class=\"muted\">");
            push_escaped(out, note);
            out.push_str("</p>");
        }
    }
}

/// The grounding passages of a result's case (`context:`), when it has any.
pub(super) fn push_context(out: &mut String, context: &[String]) {
    if context.is_empty() {
        return;
    }
    out.push_str("<h4>Context</h4>");
    for passage in context {
        out.push_str("<pre class=\"context\">");
        push_clipped(out, passage);
        out.push_str("</pre>");
    }
}

/// What the hallucination check flagged in an output: spans (byte offsets into it, in
/// order, not overlapping) to mark, and flagged claims it could not place.
#[derive(Default)]
struct Flagged {
    /// (start, end, contradiction)
    spans: Vec<(usize, usize, bool)>,
    unplaced: Vec<(String, bool)>,
}

impl Flagged {
    /// From the `unsupported` and `contradictions` details of the result's assertions (the
    /// lexical pass and the judge both give `{text, start, end}`).
    fn of(rec: &ResultRecord, output: &str) -> Self {
        let mut out = Self::default();
        for a in &rec.assertions {
            for (key, contradiction) in [("contradictions", true), ("unsupported", false)] {
                let Some(list) = a.details.get(key).and_then(serde_json::Value::as_array) else {
                    continue;
                };
                for item in list {
                    let at = |k: &str| {
                        item.get(k)
                            .and_then(serde_json::Value::as_u64)
                            .and_then(|v| usize::try_from(v).ok())
                    };
                    match (at("start"), at("end")) {
                        (Some(start), Some(end))
                            if start < end
                                && end <= output.len()
                                && output.is_char_boundary(start)
                                && output.is_char_boundary(end) =>
                        {
                            out.spans.push((start, end, contradiction));
                        }
                        _ => {
                            let text = item
                                .get("text")
                                .and_then(serde_json::Value::as_str)
                                .or_else(|| item.as_str());
                            if let Some(t) = text
                                && !out.unplaced.iter().any(|(u, _)| u == t)
                            {
                                out.unplaced.push((t.to_owned(), contradiction));
                            }
                        }
                    }
                }
            }
        }
        // Contradictions first at a start, then the longest; overlaps keep the first.
        out.spans
            .sort_by_key(|&(start, end, c)| (start, !c, std::cmp::Reverse(end)));
        let mut kept: Vec<(usize, usize, bool)> = Vec::with_capacity(out.spans.len());
        for span in out.spans.drain(..) {
            if kept.last().is_none_or(|last| span.0 >= last.1) {
                kept.push(span);
            }
        }
        out.spans = kept;
        out
    }

    /// The legend under a marked output, and the flagged claims not found in it.
    fn push_note(&self, out: &mut String) {
        if self.spans.is_empty() && self.unplaced.is_empty() {
            return;
        }
        out.push_str("<p class=\"muted small\">");
        if !self.spans.is_empty() {
            out.push_str("Flagged by the hallucination check: <mark class=\"unsupported\">unsupported</mark> (not in the expected answer, context or prompt), <mark class=\"contradiction\">contradicted</mark> (the support says otherwise).");
        }
        for (text, contradiction) in &self.unplaced {
            out.push_str(if *contradiction {
                " Contradicted claim, not found word for word in the output: "
            } else {
                " Unsupported claim, not found word for word in the output: "
            });
            out.push_str("<q>");
            push_clipped(out, text);
            out.push_str("</q>");
        }
        out.push_str("</p>");
    }
}

/// `text` escaped and cut as [`push_clipped`] cuts it, with `spans` (sorted, apart, on
/// character boundaries) wrapped in `<mark>`.
fn push_marked(out: &mut String, text: &str, spans: &[(usize, usize, bool)]) {
    let cut = text.char_indices().nth(MAX_TEXT).map(|(at, _)| at);
    let shown = &text[..cut.unwrap_or(text.len())];
    let mut at = 0;
    for &(start, end, contradiction) in spans {
        if start >= shown.len() {
            break;
        }
        let end = end.min(shown.len());
        push_escaped(out, &shown[at..start]);
        out.push_str(if contradiction {
            "<mark class=\"contradiction\" title=\"contradicted\">"
        } else {
            "<mark class=\"unsupported\" title=\"unsupported\">"
        });
        push_escaped(out, &shown[start..end]);
        out.push_str("</mark>");
        at = end;
    }
    push_escaped(out, &shown[at..]);
    if let Some(c) = cut {
        let _ = write!(
            out,
            "\n… [{} more characters not shown]",
            text[c..].chars().count()
        );
    }
}

/// "truncated: N bytes, showing the first M" for an output cut at `max_output_bytes` (M: the
/// bytes kept, before the truncation mark; N: the answer's length, or the bytes read of an
/// `exec` command stopped at its cap).
#[must_use]
pub fn truncation_note(rec: &ResultRecord) -> Option<String> {
    if !rec.truncated {
        return None;
    }
    let output = rec.output.as_deref().unwrap_or_default();
    let kept = output
        .rfind("\n[evalwatch: output truncated")
        .unwrap_or(output.len());
    Some(match rec.output_bytes {
        Some(n) => format!("truncated: {n} bytes, showing the first {kept}"),
        None => format!("truncated: showing the first {kept} bytes"),
    })
}

/// A result's block after its expected answer.
pub(super) fn push_result_tail(out: &mut String, rec: &ResultRecord, scratch: &mut String) {
    out.push_str("\n<h4>Output</h4>");
    if let Some(note) = truncation_note(rec) {
        let _ = write!(out, "<p class=\"muted truncated\">{note}</p>");
    }
    match rec.output.as_deref() {
        Some(o) if !o.is_empty() => {
            let flagged = Flagged::of(rec, o);
            out.push_str("<pre>");
            if flagged.spans.is_empty() {
                push_clipped(out, o);
            } else {
                push_marked(out, o, &flagged.spans);
            }
            out.push_str("</pre>");
            flagged.push_note(out);
        }
        _ => out.push_str("<p class=\"muted\">no output</p>"),
    }
    if let Some(e) = rec.error.as_deref().filter(|e| !e.is_empty()) {
        out.push_str("<h4>Error</h4><pre>");
        push_clipped(out, e);
        out.push_str("</pre>");
    }
    out.push('\n');
    if !rec.assertions.is_empty() {
        out.push_str("<table><thead><tr><th>Assertion</th><th>Verdict</th><th>Score</th><th>Reason</th></tr></thead><tbody>");
        for a in &rec.assertions {
            let (verdict, class) = if a.unscorable {
                ("unscorable", "unscorable")
            } else if a.pass {
                ("pass", "passed")
            } else {
                ("fail", "failed")
            };
            out.push_str("<tr><td>");
            push_escaped(out, &a.type_name);
            out.push_str("</td><td><span class=\"badge ");
            out.push_str(class);
            out.push_str("\">");
            out.push_str(verdict);
            out.push_str("</span></td><td>");
            scratch.clear();
            let _ = write!(scratch, "{:.3}", a.score);
            push_escaped(out, scratch);
            out.push_str("</td><td>");
            push_clipped(out, &a.reason);
            out.push_str("</td></tr>");
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("\n<p class=\"muted small\">");
    meta(scratch, rec);
    push_escaped(out, scratch);
    out.push_str("</p></div></details>\n");
}

/// The line under a result: attempts, tokens, cost, finish reason, tags, label, case hash.
fn meta(out: &mut String, rec: &ResultRecord) {
    out.clear();
    let _ = write!(out, "attempts {}", rec.attempts);
    if let (Some(i), Some(o)) = (rec.tokens_in, rec.tokens_out) {
        let _ = write!(out, " · tokens {i} in / {o} out");
    }
    if let Some(c) = rec.cost_usd {
        let _ = write!(out, " · cost {}", Unit::Usd.format(c));
    }
    if let Some(f) = &rec.finish_reason {
        let _ = write!(out, " · finish {f}");
    }
    if !rec.tags.is_empty() {
        let _ = write!(out, " · tags {}", rec.tags.join(", "));
    }
    if let Some(l) = &rec.label {
        let _ = write!(
            out,
            " · label expected {} predicted {}",
            l.expected,
            l.predicted.as_deref().unwrap_or("none")
        );
    }
    out.push_str(" · case hash ");
    out.extend(rec.case_hash.chars().take(12));
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

/// The run `info`'s baseline (its previous complete run), and the link to its first page
/// when that page exists.
fn baseline_of(
    store: &Store,
    info: &RunInfo,
    runs_dir: &Path,
) -> Result<(Option<RunInfo>, Option<String>), StoreError> {
    let Some(id) = store.previous_complete_run(&info.suite, &info.started_at)? else {
        return Ok((None, None));
    };
    Ok((store.run(&id)?, baseline_href(runs_dir, &id)))
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
    live: &LiveRun,
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
    live: &LiveRun,
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
        &live.flips,
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

/// Write the pages of one run: from the rows `run` wrote as it went ([`LiveRun`]) when they
/// are exactly its stored results, from the store otherwise.
pub(super) fn write_run(
    store: &Store,
    t: &tera::Tera,
    dir: &Path,
    run_id: &str,
    expected: &LazyExpected<'_>,
    live: Option<&LiveRun>,
    out: &mut Written,
) -> Result<(), HtmlError> {
    let info = store.run(run_id)?.ok_or_else(|| StoreError::UnknownRun {
        run_id: run_id.to_string(),
    })?;
    let metrics = metric_rows(store.run_metrics(&info.run_id)?);
    let gates = gate_rows(store.run_gates(&info.run_id)?);
    let runs_dir = dir.join("runs");
    let (baseline_info, baseline_href) = baseline_of(store, &info, &runs_dir)?;
    let pages = Pages {
        info: &info,
        runs_dir: &runs_dir,
        metrics,
        gates,
        alerts: alert_views(store.alerts_of_run(&info.run_id)?, &info.run_id),
        baseline: baseline_info.as_ref().map(|b| b.run_id.clone()),
        baseline_href,
    };
    crate::phase::phase("run pages: run, metrics and baseline read");
    // Rendered while the run ran: used when they are exactly its stored results. Pages with
    // rows missing (the file could not be read) are written again from the store.
    if let Some(live) = live
        && live.usable(baseline_info.as_ref())
        && let Some(written) = write_live(t, &pages, live)?
    {
        out.files.extend(written.files);
        return Ok(());
    }
    crate::phase::phase(&format!(
        "run {run_id}: pages written from the store{}",
        if live.is_some() {
            " (the rows rendered as it ran are not used: baseline changed or unreadable)"
        } else {
            ""
        }
    ));
    let expected = expected.get();
    let before_rows = match &baseline_info {
        Some(b) => Some(store.result_statuses(&b.run_id)?),
        None => None,
    };
    let before = before_rows.as_deref().map(StatusIndex::new);
    // A run too large to hold rendered is read twice, one page in memory at a time.
    let planned = usize::try_from(info.planned).unwrap_or(usize::MAX);
    if planned.saturating_mul(ROW_BYTES) > rows_in_memory() {
        return write_run_streaming(store, t, &pages, before.as_ref(), expected, out);
    }

    // One read: every result rendered as it is read, the flips found on the way.
    let mut rows = String::with_capacity(planned.saturating_mul(ROW_BYTES).min(rows_in_memory()));
    let mut ends: Vec<usize> = Vec::new();
    let mut flips = Flips::default();
    let mut scratch = String::new();
    let mut too_big = false;
    let read = store.for_each_result(&info.run_id, |rec| {
        let (case, provider, sample) = (&rec.job.case_id, &rec.job.provider_id, rec.job.sample);
        let flip = flip_of(
            before.as_ref(),
            ends.len(),
            case,
            provider,
            sample,
            rec.status,
        );
        if let Some(f) = flip {
            flips.add(case, provider, sample, f);
        }
        push_result(&mut rows, &rec, &info.suite, expected, flip, &mut scratch);
        ends.push(rows.len());
        if rows.len() > rows_in_memory() {
            too_big = true;
            return Err(StoreError::Other("too large to hold".into()));
        }
        Ok(())
    });
    match read {
        Ok(()) => {}
        Err(_) if too_big => {
            drop((rows, ends));
            return write_run_streaming(store, t, &pages, before.as_ref(), expected, out);
        }
        Err(e) => return Err(e.into()),
    }
    let results = |range: std::ops::Range<usize>, html: &mut String| {
        let from = if range.start == 0 {
            0
        } else {
            ends[range.start - 1]
        };
        let to = if range.end == 0 {
            0
        } else {
            ends[range.end - 1]
        };
        html.push_str(&rows[from..to]);
    };
    write_pages(t, &pages, ends.len(), &results, &flips, &[], out)
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

/// [`write_run`] for a run too large to hold rendered: the statuses first (for the flips
/// above the results), then one page of results in memory at a time.
fn write_run_streaming(
    store: &Store,
    t: &tera::Tera,
    pages: &Pages<'_>,
    before: Option<&StatusIndex<'_>>,
    expected: &Expected,
    out: &mut Written,
) -> Result<(), HtmlError> {
    let info = pages.info;
    let statuses = store.result_statuses(&info.run_id)?;
    let total = statuses.len();
    let mut flips = Flips::default();
    for (at, (case, provider, sample, now)) in statuses.iter().enumerate() {
        if let Some(f) = flip_of(before, at, case, provider, *sample, *now) {
            flips.add(case, provider, *sample, f);
        }
    }
    drop(statuses);
    let heads = pages.heads(t, total, &flips)?;
    let page_count = total.div_ceil(RESULTS_PER_PAGE).max(1);
    remove_pages_after(pages.runs_dir, &info.run_id, page_count);
    let mut html = String::new();
    let mut rows = String::new();
    let mut scratch = String::new();
    let (mut at, mut in_page, mut page) = (0usize, 0usize, 1usize);
    let mut failure: Option<HtmlError> = None;
    store
        .for_each_result(&info.run_id, |rec| {
            let (case, provider, sample) = (&rec.job.case_id, &rec.job.provider_id, rec.job.sample);
            let flip = flip_of(before, at, case, provider, sample, rec.status);
            push_result(&mut rows, &rec, &info.suite, expected, flip, &mut scratch);
            at += 1;
            in_page += 1;
            if in_page == RESULTS_PER_PAGE {
                let results = |html: &mut String| html.push_str(&rows);
                if let Err(e) = pages.write_page(&mut html, &heads, page, page_count, &results, out)
                {
                    failure = Some(e);
                    return Err(StoreError::Other("write a run page".into()));
                }
                rows.clear();
                in_page = 0;
                page += 1;
            }
            Ok(())
        })
        .map_err(|e| failure.take().unwrap_or(HtmlError::Store(e)))?;
    if in_page > 0 || page == 1 {
        let results = |html: &mut String| html.push_str(&rows);
        pages.write_page(&mut html, &heads, page, page_count, &results, out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
