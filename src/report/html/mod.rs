//! HTML reports: the index, one trend page per suite, run pages. Templates are embedded.
//!
//! Every page is one self-contained file: inline CSS, inline SVG charts (hover a point for
//! its exact value: an SVG `<title>`), no script, no font, no image, no link outside the
//! reports folder. Every string from a suite or a model output goes through the template
//! engine's HTML escaping. Pages are bounded: charts average long series into at most
//! [`chart::MAX_POINTS`] points, the heat map and tables are capped, and run pages paginate.

mod changes;
pub mod chart;
mod heat;
mod human;
pub use heat::{HeatFeed, HeatHistory};
pub mod live;
mod run_page;
#[cfg(test)]
pub(crate) use run_page::TEST_ROWS_IN_MEMORY;
pub use run_page::truncation_note;
pub mod stats;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use self::chart::{MarkerIn, Sample, SeriesIn, ThresholdIn, Unit, line_chart, sparkline};
use crate::model::{CaseStatus, RunStatus, Suite};
use crate::store::{Store, StoreError};
use crate::store::{TrendQuery, TrendRow};

/// Failures of report generation. Messages read after "failed to ...".
#[derive(Debug, thiserror::Error)]
pub enum HtmlError {
    #[error("{0}")]
    Store(#[from] StoreError),
    /// What the composer read for a page could not be read.
    #[error("{0}")]
    Read(#[source] live::ReadError),
    #[error("render the {page} page: {message}")]
    Template { page: String, message: String },
    #[error("write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// Runs of each suite that get a run page on every refresh (the newest).
pub const RUN_PAGES: usize = 5;
/// Results per run page.
pub const RESULTS_PER_PAGE: usize = 100;
/// Characters of a prompt, expected answer or output shown; the rest is cut with a note.
pub const MAX_TEXT: usize = 6000;
/// Runs (columns) of the flip heat map.
pub const HEAT_RUNS: usize = 20;
/// Results (rows) of the flip heat map.
pub const HEAT_ROWS: usize = 40;
/// Rows of the tag table and of the flaky table.
pub const TABLE_ROWS: usize = 60;
/// Flips listed on a run page.
pub const FLIPS_SHOWN: usize = 200;
/// Runs listed under "Recent runs".
pub const RECENT_RUNS: usize = 20;
/// Alerts listed on the alert history page (and marked on a suite's charts).
pub const ALERTS_SHOWN: usize = 500;

const CSS: &str = include_str!("templates/style.css");

/// A time window of history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// As written: `24h`, `7d`, `all`.
    pub label: String,
    /// None: all of history.
    pub span: Option<chrono::Duration>,
}

impl Window {
    /// Parse `24h`, `7d`, `2w`, `all`.
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("all") {
            return Some(Self {
                label: "all".into(),
                span: None,
            });
        }
        let split = t.len().checked_sub(1)?;
        let (num, unit) = t.split_at(split);
        let n: i64 = num.parse().ok().filter(|n| *n > 0 && *n <= 100_000)?;
        let span = match unit {
            "h" => chrono::Duration::hours(n),
            "d" => chrono::Duration::days(n),
            "w" => chrono::Duration::weeks(n),
            _ => return None,
        };
        Some(Self {
            label: t.to_string(),
            span: Some(span),
        })
    }

    /// The RFC 3339 start of the window ending at `now`, None for all of history.
    #[must_use]
    pub fn start(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.span.and_then(|s| now.checked_sub_signed(s))
    }

    fn title(&self) -> String {
        match &self.span {
            None => "all time".into(),
            Some(_) => format!("last {}", self.label),
        }
    }
}

/// (content hash, expected answer, context passages) of a case.
type CaseShown = (String, Option<String>, Vec<String>);

/// The expected answers of the suites on disk, to show beside stored results (the store
/// keeps prompts and outputs, not the expected answer). A case whose content hash changed
/// since a run says so.
#[derive(Debug, Default, Clone)]
pub struct Expected {
    /// suite -> case id -> (content hash, expected, context)
    cases: HashMap<String, HashMap<String, CaseShown>>,
}

impl Expected {
    /// From suites in file order: a later suite of the same name overrides an earlier one.
    pub fn from_suites<'a, I: IntoIterator<Item = &'a Suite>>(suites: I) -> Self {
        let mut out = Self::default();
        for s in suites {
            out.cases
                .entry(s.name.clone())
                .or_default()
                .reserve(s.cases.len());
            for c in &s.cases {
                out.add(&s.name, &c.id, &c.hash, c.expected.as_deref());
                out.add_context(&s.name, &c.id, &c.context);
            }
        }
        out
    }

    /// One case of suite `suite` (a later one of the same id overrides an earlier one).
    pub fn add(&mut self, suite: &str, id: &str, hash: &str, expected: Option<&str>) {
        let of_suite = match self.cases.get_mut(suite) {
            Some(m) => m,
            None => self.cases.entry(suite.to_owned()).or_default(),
        };
        of_suite.insert(
            id.to_owned(),
            (hash.to_owned(), expected.map(str::to_owned), Vec::new()),
        );
    }

    /// The context passages of a case [`Expected::add`]ed.
    pub fn add_context(&mut self, suite: &str, id: &str, context: &[String]) {
        if let Some(c) = self.cases.get_mut(suite).and_then(|s| s.get_mut(id)) {
            c.2 = context.to_vec();
        }
    }

    /// The context passages of a case, when the case has not changed since the run (none
    /// otherwise: the expected answer says why).
    fn context(&self, suite: &str, case_id: &str, hash: &str) -> &[String] {
        self.cases
            .get(suite)
            .and_then(|s| s.get(case_id))
            .filter(|c| c.0 == hash)
            .map_or(&[], |c| c.2.as_slice())
    }

    /// The expected answer, or why there is none to show.
    fn lookup(&self, suite: &str, case_id: &str, hash: &str) -> Result<&str, &'static str> {
        expected_answer(
            self.cases
                .get(suite)
                .and_then(|s| s.get(case_id))
                .map(|(h, e, _)| (h.as_str(), e.as_deref())),
            hash,
        )
    }
}

/// [`Expected`] made only when a page needs it (reading the suites is the costly part of a
/// refresh whose run pages were written as the runs went).
pub struct LazyExpected<'a> {
    cell: std::sync::OnceLock<Expected>,
    load: Option<&'a (dyn Fn() -> Expected + Sync)>,
}

impl<'a> LazyExpected<'a> {
    /// Made by `load` on first use.
    #[must_use]
    pub fn new(load: &'a (dyn Fn() -> Expected + Sync)) -> Self {
        Self {
            cell: std::sync::OnceLock::new(),
            load: Some(load),
        }
    }

    /// Made already.
    #[must_use]
    pub fn ready(expected: Expected) -> Self {
        Self {
            cell: std::sync::OnceLock::from(expected),
            load: None,
        }
    }

    fn get(&self) -> &Expected {
        self.cell
            .get_or_init(|| self.load.map(|load| load()).unwrap_or_default())
    }
}

/// The expected answer of a result whose case had content hash `hash`, from the case of the
/// suite on disk (its hash and expected answer) if there is one; or why there is none.
fn expected_answer<'a>(
    found: Option<(&'a str, Option<&'a str>)>,
    hash: &str,
) -> Result<&'a str, &'static str> {
    match found {
        None => Err("not stored with the run, and the case is not in the suite files read"),
        Some((h, _)) if h != hash => Err(
            "not shown: the case has been edited since this run (the store keeps no expected answer)",
        ),
        Some((_, None)) => Err("the case sets no expected answer"),
        Some((_, Some(e))) => Ok(e),
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct Options {
    /// The window the index and the tables use, and the one a suite page opens on.
    pub window: Window,
    pub now: DateTime<Utc>,
    /// Newest runs of each suite that get a run page.
    pub run_pages: usize,
}

/// What was written.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Written {
    pub files: Vec<PathBuf>,
}

/// Work done ahead of a refresh, while the runs went.
#[derive(Debug, Default)]
pub struct Prepared {
    /// Results rendered while their runs ran ([`live::LivePages`]), by run id.
    pub live: HashMap<String, live::LiveRun>,
    /// The heat-map statuses of suites, read ahead, by suite name.
    pub heat: HashMap<String, HeatHistory>,
    /// Run pages being written since their runs finished, by run id.
    pub early: HashMap<String, live::EarlyPages>,
}

/// One result's status in a run: (case id, provider, sample, status), as
/// [`Store::result_statuses`] gives them.
pub type StatusRow = (String, String, u32, CaseStatus);

/// The templates of the trend pages and the index.
const TREND_TEMPLATES: [(&str, &str); 5] = [
    ("alerts.html", include_str!("templates/alerts.html")),
    ("chart.html", include_str!("templates/chart.html")),
    ("spark.html", include_str!("templates/spark.html")),
    ("index.html", include_str!("templates/index.html")),
    ("suite.html", include_str!("templates/suite.html")),
];

/// The template of the part of a run page above its results.
const RUN_TEMPLATE: (&str, &str) = ("run.html", include_str!("templates/run.html"));

/// The tera engine with every template, HTML autoescaping on.
fn engine() -> Result<tera::Tera, HtmlError> {
    let mut all = TREND_TEMPLATES.to_vec();
    all.push(RUN_TEMPLATE);
    engine_of(&all)
}

/// The tera engine with these templates, HTML autoescaping on.
fn engine_of(templates: &[(&str, &str)]) -> Result<tera::Tera, HtmlError> {
    let mut t = tera::Tera::new();
    t.autoescape_on([".html"]);
    t.set_escape_fn(run_page::escape_visible);
    t.add_raw_templates(templates.iter().copied())
        .map_err(|e| HtmlError::Template {
            page: "templates".into(),
            message: format!("{e:#}"),
        })?;
    Ok(t)
}

fn render<T: Serialize>(t: &tera::Tera, name: &str, data: &T) -> Result<String, HtmlError> {
    let ctx = tera::Context::from_serialize(data).map_err(|e| HtmlError::Template {
        page: name.into(),
        message: e.to_string(),
    })?;
    t.render(name, &ctx).map_err(|e| HtmlError::Template {
        page: name.into(),
        message: format!("{e:?}"),
    })
}

fn write(path: &Path, text: &str, out: &mut Written) -> Result<(), HtmlError> {
    let err = |source| HtmlError::Write {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    // Write then rename, so that a browser never reads half a page.
    let tmp = tmp_of(path);
    std::fs::write(&tmp, text).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)?;
    out.files.push(path.to_path_buf());
    Ok(())
}

/// Where page `path` is written before it is renamed into place. `run` makes these (empty)
/// for its run's pages while it goes ([`live::LivePages`]): creating a file can cost a
/// tenth of a millisecond, and a run's hundred pages are written when it ends.
fn tmp_of(path: &Path) -> PathBuf {
    path.with_extension("html.tmp")
}

/// A file name for a suite or run id: the name itself when it is plain (letters, digits,
/// `-`, `_`, `.`), else the plain characters and a short hash, so that two names never share
/// a file and no name escapes the folder.
#[must_use]
pub fn file_stem(name: &str) -> String {
    let plain: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    if plain == name && !name.is_empty() && !name.starts_with('.') && name != "index" {
        return plain;
    }
    let digest = Sha256::digest(name.as_bytes());
    format!(
        "{}-{}",
        plain.trim_start_matches('.'),
        hex::encode(&digest[..4])
    )
}

fn suite_href(name: &str) -> String {
    format!("{}.html", file_stem(name))
}

fn run_file(run_id: &str, page: usize) -> String {
    if page <= 1 {
        format!("{}.html", file_stem(run_id))
    } else {
        format!("{}-p{page}.html", file_stem(run_id))
    }
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

fn epoch(s: &str) -> f64 {
    parse_time(s).map_or(0.0, |d| d.timestamp() as f64)
}

/// `2024-05-01 06:00 UTC`, or the text as stored when it does not parse.
fn show_time(s: &str) -> String {
    parse_time(s).map_or_else(
        || s.to_string(),
        |d| d.format("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

fn short_time(s: &str) -> String {
    parse_time(s).map_or_else(|| s.to_string(), |d| d.format("%m-%d %H:%M").to_string())
}

#[cfg(test)]
fn clip(text: &str) -> String {
    match text.char_indices().nth(MAX_TEXT) {
        None => text.to_string(),
        Some((at, _)) => format!(
            "{}\n… [{} more characters not shown]",
            &text[..at],
            text[at..].chars().count()
        ),
    }
}

// ---------------------------------------------------------------------------------------
// Index

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
}

fn spark(t: &tera::Tera, name: &str, unit: Unit, samples: &[Sample]) -> Result<String, HtmlError> {
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

fn samples_of(rows: &[&TrendRow], get: impl Fn(&TrendRow) -> Option<f64>) -> Vec<Sample> {
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
    store: &Store,
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
    open: &[crate::store::AlertRow],
    provider: &str,
) -> (String, String, String) {
    let mut mine: Vec<&crate::store::AlertRow> =
        open.iter().filter(|a| a.provider == provider).collect();
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

fn build_index(
    store: &Store,
    t: &tera::Tera,
    suites: &[String],
    descriptions: &HashMap<String, String>,
    opts: &Options,
    with_pages: &HashMap<String, bool>,
) -> Result<String, HtmlError> {
    let since = opts.window.start(opts.now).map(|d| d.to_rfc3339());
    let mut gates_cache = HashMap::new();
    let mut out = Vec::new();
    for name in suites {
        let rows = store.trend(&TrendQuery {
            suite: name,
            since: since.as_deref(),
            tags: false,
            full: false,
        })?;
        let mut by_provider: BTreeMap<&str, Vec<&TrendRow>> = BTreeMap::new();
        for r in &rows {
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
fn build_alerts(
    store: &Store,
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

// ---------------------------------------------------------------------------------------
// Suite page

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
fn windows_for(chosen: &Window) -> Vec<Window> {
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
                samples: samples_of(rows, get),
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
    store: &Store,
    suite: &str,
    rows: &[TrendRow],
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

fn is_flip(a: CaseStatus, b: CaseStatus) -> bool {
    a != b && (a == CaseStatus::Passed || b == CaseStatus::Passed)
}

#[allow(clippy::too_many_arguments)]
fn build_suite(
    store: &Store,
    t: &tera::Tera,
    name: &str,
    description: Option<String>,
    opts: &Options,
    with_pages: &HashMap<String, bool>,
    ahead: Option<&HeatHistory>,
) -> Result<String, HtmlError> {
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
    let markers = change_markers(store, name, &overall)?;
    let marker_in: Vec<MarkerIn> = markers
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
    let mut last_count: Option<(usize, String)> = None;
    for w in windows_for(&opts.window) {
        let start = w
            .start(opts.now)
            .map_or(f64::NEG_INFINITY, |d| d.timestamp() as f64);
        let rows: Vec<&TrendRow> = overall
            .iter()
            .filter(|r| epoch(&r.started_at) >= start)
            .collect();
        let mut ids: Vec<&str> = rows.iter().map(|r| r.run_id.as_str()).collect();
        ids.dedup();
        let key = file_stem(&w.label);
        let checked = w.span == opts.window.span;
        let same_as = match &last_count {
            Some((n, label)) if *n == ids.len() && !checked => Some(label.clone()),
            _ => None,
        };
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
                    )?,
                });
            }
        }
        if same_as.is_none() {
            last_count = Some((ids.len(), w.label.clone()));
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
    render(
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
            human: human::human_review(store, name)?,
        },
    )
}

// ---------------------------------------------------------------------------------------
// Run pages

/// Write the pages of one run (`runs/<run>.html`, then `-p2`, `-p3`... of
/// [`RESULTS_PER_PAGE`] results each).
pub fn write_run_pages(
    store: &Store,
    dir: &Path,
    run_id: &str,
    expected: &Expected,
    out: &mut Written,
) -> Result<(), HtmlError> {
    let t = engine()?;
    let expected = LazyExpected::ready(expected.clone());
    run_page::write_run(store, &t, dir, run_id, &expected, None, out)
}

// ---------------------------------------------------------------------------------------
// Entry point

/// Write `index.html`, the trend page of each suite in `only` (every suite with runs when
/// None) and the run pages of their newest runs, into `dir`.
#[allow(clippy::implicit_hasher)]
pub fn write_reports(
    store: &Store,
    dir: &Path,
    only: Option<&[String]>,
    descriptions: &HashMap<String, String>,
    expected: &Expected,
    opts: &Options,
) -> Result<Written, HtmlError> {
    write_reports_with(
        store,
        dir,
        only,
        descriptions,
        &LazyExpected::ready(expected.clone()),
        opts,
        Prepared::default(),
        || None,
    )
}

/// [`write_reports`] where the descriptions the index shows may still be loading:
/// `index_descriptions` is called once, right before the index (the last page) is built, and
/// what it returns, when Some, replaces `descriptions` there. `descriptions` must then hold
/// those of the suites in `only` (their trend pages come first). `prepared` is work done
/// while the runs went (`run`); `expected` is read only for run pages written from the store.
#[allow(clippy::implicit_hasher, clippy::too_many_arguments)]
pub fn write_reports_with(
    store: &Store,
    dir: &Path,
    only: Option<&[String]>,
    descriptions: &HashMap<String, String>,
    expected: &LazyExpected<'_>,
    opts: &Options,
    prepared: Prepared,
    index_descriptions: impl FnOnce() -> Option<HashMap<String, String>>,
) -> Result<Written, HtmlError> {
    let mut out = Written::default();
    let suites = store.suite_names()?;
    let chosen: Vec<String> = match only {
        None => suites.clone(),
        Some(list) => suites
            .iter()
            .filter(|s| list.contains(s))
            .cloned()
            .collect(),
    };
    // Which run pages exist (or will), so that the trend pages link only to those.
    let mut with_pages: HashMap<String, bool> = HashMap::new();
    let mut to_write: Vec<String> = Vec::new();
    let runs_dir = dir.join("runs");
    for name in &suites {
        let newest = store.run_infos(Some(name), None, RECENT_RUNS.max(HEAT_RUNS))?;
        for (i, r) in newest.iter().rev().enumerate() {
            // A finished run's page does not change: write it once, not on every report
            // (again only when the run finished after the page was written: a resumed run).
            let page = runs_dir.join(run_file(&r.run_id, 1));
            let exists = page.exists();
            // Pages being written now are taken as they are (or written from the store
            // when they could not be), whatever the folder holds meanwhile.
            let current = exists
                && !prepared.early.contains_key(&r.run_id)
                && page_newer_than(&page, r.finished_at.as_deref());
            let refresh = chosen.contains(name)
                && i < opts.run_pages
                && r.status != RunStatus::Running
                && !current;
            if refresh {
                to_write.push(r.run_id.clone());
            }
            if refresh || exists {
                with_pages.insert(r.run_id.clone(), true);
            }
        }
    }
    // Run pages on a second thread with its own connection and template (SQLite readers run
    // side by side), while this one builds the trend pages and the index.
    let db_path = store.path().to_path_buf();
    let Prepared {
        live,
        heat,
        mut early,
    } = prepared;
    let (to_write, live) = (&to_write, &live);
    let done = std::thread::scope(|scope| -> Result<(), HtmlError> {
        let pages = scope.spawn(move || -> Result<Written, HtmlError> {
            let mut written = Written::default();
            let mut from_store = Vec::new();
            let mut early_done = Vec::new();
            for run_id in to_write {
                match early.remove(run_id).map(live::EarlyPages::join) {
                    Some(Ok(Some(w))) => early_done.push((run_id, w)),
                    Some(Err(e)) => return Err(e),
                    Some(Ok(None)) | None => from_store.push(run_id),
                }
            }
            // Pages being written for runs not refreshed here are waited for too.
            drop(early);
            if from_store.is_empty() && early_done.is_empty() {
                return Ok(written);
            }
            let own = Store::open(&db_path)?;
            // Pages written as the run ended were written before its alerts were decided:
            // those of a run that opened or resolved one are written again, with them.
            for (run_id, w) in early_done {
                if own.alerts_of_run(run_id)?.is_empty() {
                    written.files.extend(w.files);
                } else {
                    from_store.push(run_id);
                }
            }
            if from_store.is_empty() {
                return Ok(written);
            }
            let t = engine_of(&[RUN_TEMPLATE])?;
            for run_id in from_store {
                let live = live.get(run_id);
                run_page::write_run(&own, &t, dir, run_id, expected, live, &mut written)?;
            }
            crate::phase::phase("reports: run pages");
            Ok(written)
        });
        let t = engine_of(&TREND_TEMPLATES)?;
        for name in &chosen {
            let html = build_suite(
                store,
                &t,
                name,
                descriptions.get(name).cloned(),
                opts,
                &with_pages,
                heat.get(name),
            )?;
            write(&dir.join(suite_href(name)), &html, &mut out)?;
        }
        crate::phase::phase("reports: trend pages");
        let late = index_descriptions();
        let html = build_index(
            store,
            &t,
            &suites,
            late.as_ref().unwrap_or(descriptions),
            opts,
            &with_pages,
        )?;
        write(&dir.join("index.html"), &html, &mut out)?;
        let html = build_alerts(store, &t, opts, &with_pages)?;
        write(&dir.join("alerts.html"), &html, &mut out)?;
        crate::phase::phase("reports: index");
        let written = pages.join().map_err(|_| HtmlError::Template {
            page: "run".to_string(),
            message: "the thread writing run pages panicked".to_string(),
        })??;
        out.files.extend(written.files);
        Ok(())
    });
    done?;
    Ok(out)
}

/// Drop `value` on a thread of its own: freeing a large value (millions of strings) takes
/// milliseconds that the caller need not wait for.
pub fn drop_later<T: Send + 'static>(value: T) {
    // When no thread can be started, the closure, and the value with it, is dropped here.
    let _ = std::thread::Builder::new()
        .name("evalwatch-free".into())
        .spawn(move || drop(value));
}

/// Whether a run's page is current: written after the run finished (a resumed run finishes
/// again). A run that never finished (killed) has not changed since it stopped: its page, once
/// written, is current, unless the run is resumed, which removes it ([`run_resumed`]).
fn page_newer_than(page: &Path, finished_at: Option<&str>) -> bool {
    let Some(finished) = finished_at else {
        return true;
    };
    let Ok(finished) = chrono::DateTime::parse_from_rfc3339(finished) else {
        return false;
    };
    std::fs::metadata(page)
        .and_then(|m| m.modified())
        .is_ok_and(|t| chrono::DateTime::<chrono::Utc>::from(t) > finished)
}

/// A run is being resumed: its pages in `dir` are out of date from now on. Its first page is
/// removed, so that the next refresh writes them again, even if the run is killed before it
/// finishes (and has no finish time to tell). So are the file of rows and the empty page
/// files the killed run left behind: the resumed run writes its pages from the store, and
/// while it runs no clean-up takes them (they belong to a running run).
pub fn run_resumed(dir: &Path, run_id: &str) -> std::io::Result<()> {
    let runs = dir.join("runs");
    let gone = |path: PathBuf| match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    };
    gone(runs.join(run_file(run_id, 1)))?;
    gone(live::rows_path(&runs, run_id))?;
    let stem = file_stem(run_id);
    if let Ok(entries) = std::fs::read_dir(&runs) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(page) = name.strip_suffix(".html.tmp") else {
                continue;
            };
            let of_run = page == stem
                || page
                    .strip_prefix(stem.as_str())
                    .and_then(|rest| rest.strip_prefix("-p"))
                    .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
            if of_run && entry.metadata().is_ok_and(|m| m.len() == 0) {
                gone(entry.path())?;
            }
        }
    }
    Ok(())
}

/// A run was discarded (its suite was not judged whole): every page written for it as its
/// results came, and its file of rows, are removed from `dir`.
pub fn run_discarded(dir: &Path, run_id: &str) -> std::io::Result<()> {
    let runs = dir.join("runs");
    let stem = file_stem(run_id);
    match std::fs::remove_file(live::rows_path(&runs, run_id)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let Ok(entries) = std::fs::read_dir(&runs) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(page) = name
            .strip_suffix(".html")
            .or_else(|| name.strip_suffix(".html.tmp"))
        else {
            continue;
        };
        let of_run = page == stem
            || page
                .strip_prefix(stem.as_str())
                .and_then(|rest| rest.strip_prefix("-p"))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if of_run {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
