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
mod index;
mod refresh;
mod suite_page;
pub use heat::{HeatFeed, HeatHistory};
pub use refresh::{
    drop_later, run_discarded, run_resumed, write_reports, write_reports_with, write_run_pages,
};
pub mod live;
mod run_page;
mod source;
#[cfg(test)]
pub(crate) use run_page::TEST_ROWS_IN_MEMORY;
pub use run_page::truncation_note;
pub use source::{HumanScoreRow, OpenSource, ReadError, RunSettings, Source};
pub mod stats;
pub mod traffic;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::model::{CaseStatus, Suite};
use crate::provider::common::Secrets;

/// Failures of report generation. Messages read after "failed to ...".
#[derive(Debug, thiserror::Error)]
pub enum HtmlError {
    /// What a page reads ([`Source`]) could not be read.
    #[error("{0}")]
    Read(#[from] live::ReadError),
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
    /// As written, without spaces: `24h`, `7d`, `1h30m`, `all`.
    pub label: String,
    /// None: all of history.
    pub span: Option<chrono::Duration>,
}

impl Window {
    /// Parse `all` or a duration of at least a minute (`24h`, `7d`, `2w`, `36h`, `1d12h`: the
    /// forms of [`crate::model::duration`]), at most 100,000 weeks.
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("all") {
            return Some(Self {
                label: "all".into(),
                span: None,
            });
        }
        let span = crate::model::duration::parse(t)
            .filter(|d| d.as_secs() >= 60 && d.as_secs() <= 100_000 * 604_800)
            .and_then(|d| chrono::Duration::from_std(d).ok())?;
        Some(Self {
            // As written, without its spaces (`1h 30m` is shown `1h30m`).
            label: t.split_whitespace().collect(),
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
///
/// Secret values (`${VAR}`s expanded into a case, keys) are hidden from what it shows: the
/// prompt and output of a result are redacted before they are stored, but the expected answer
/// and context are read from the suite files as expanded.
#[derive(Debug, Default, Clone)]
pub struct Expected {
    /// suite -> case id -> (content hash, expected, context)
    cases: HashMap<String, HashMap<String, CaseShown>>,
    secrets: Secrets,
}

impl Expected {
    /// An empty set that hides `secrets` from what is added to it.
    #[must_use]
    pub fn hiding(secrets: Secrets) -> Self {
        Self {
            cases: HashMap::new(),
            secrets,
        }
    }

    /// From suites in file order: a later suite of the same name overrides an earlier one;
    /// `secrets` hidden.
    pub fn from_suites<'a, I: IntoIterator<Item = &'a Suite>>(suites: I, secrets: Secrets) -> Self {
        let mut out = Self::hiding(secrets);
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
        let expected = expected.map(|e| self.secrets.redact(e));
        of_suite.insert(id.to_owned(), (hash.to_owned(), expected, Vec::new()));
    }

    /// The context passages of a case [`Expected::add`]ed.
    pub fn add_context(&mut self, suite: &str, id: &str, context: &[String]) {
        if let Some(c) = self.cases.get_mut(suite).and_then(|s| s.get_mut(id)) {
            c.2 = context.iter().map(|p| self.secrets.redact(p)).collect();
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
    /// The traffic pages the index links to.
    pub traffic: Vec<traffic::TrafficLink>,
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
/// [`Source::result_statuses`] gives them.
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

/// Whether a change of status from `a` to `b` is a flip (to or from passed).
fn is_flip(a: CaseStatus, b: CaseStatus) -> bool {
    a != b && (a == CaseStatus::Passed || b == CaseStatus::Passed)
}

#[cfg(test)]
mod tests;
