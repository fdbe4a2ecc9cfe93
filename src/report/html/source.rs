//! What the HTML reports read, as one interface the composer implements over the store
//! (`app::report::source`). Renderers never open the store: they ask this for plain rows
//! (`model` types), and the rows of a run stream through callbacks, one in memory at a time,
//! exactly as the store reads them (no read per row is added).

use std::collections::{BTreeMap, HashMap};

use crate::model::{
    AlertRow, CaseStatus, GateResult, GradedResult, JudgeSignature, Mark, ProviderMetrics,
    ResultRecord, RunInfo, RunLabels, Setting, TrendQuery, TrendRow,
};

/// Why a read failed (the store's error, boxed: renderers do not know the backend).
pub use super::live::ReadError;

/// Opens a reader ([`Source::another`]).
pub type OpenSource = Box<dyn FnOnce() -> Result<Box<dyn Source>, ReadError> + Send>;

/// A run's recorded settings, by setting name.
pub type RunSettings = BTreeMap<String, Setting>;

/// One run's mean human quality for one provider: (run id, provider, mean quality, grades).
pub type HumanScoreRow = (String, String, f64, u64);

/// The reads behind the index, the trend pages and the run pages. Every method reads what
/// the store method of the same name reads.
pub trait Source {
    /// How to open a second reader of the same history, for the thread that writes run
    /// pages while this one writes the trend pages (SQLite readers run side by side). It is
    /// opened there, and only when a page is to be read.
    fn another(&self) -> OpenSource;
    /// Names of the suites that have at least one run, sorted.
    fn suite_names(&self) -> Result<Vec<String>, ReadError>;
    /// Runs of a suite (or all) that started at or after `since`, oldest first; at most
    /// `limit` of the newest (0: no limit).
    fn run_infos(
        &self,
        suite: Option<&str>,
        since: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RunInfo>, ReadError>;
    /// One run, if stored.
    fn run(&self, run_id: &str) -> Result<Option<RunInfo>, ReadError>;
    /// The newest complete run of `suite` that started before `before` (RFC 3339).
    fn previous_complete_run(
        &self,
        suite: &str,
        before: &str,
    ) -> Result<Option<RunInfo>, ReadError>;
    fn run_metrics(&self, run_id: &str) -> Result<Vec<ProviderMetrics>, ReadError>;
    fn run_gates(&self, run_id: &str) -> Result<Vec<GateResult>, ReadError>;
    /// Alerts run `run_id` opened, resolved or saw still firing, oldest first.
    fn alerts_of_run(&self, run_id: &str) -> Result<Vec<AlertRow>, ReadError>;
    /// Open alerts of one suite or all.
    fn open_alerts(&self, suite: Option<&str>) -> Result<Vec<AlertRow>, ReadError>;
    /// Alerts of one suite or all, newest opened first; at most `limit` (0: no limit).
    fn alert_history(&self, suite: Option<&str>, limit: usize) -> Result<Vec<AlertRow>, ReadError>;
    fn trend(&self, q: &TrendQuery<'_>) -> Result<Vec<TrendRow>, ReadError>;
    /// For each run of `suite` with judged results, its judges (sorted), oldest run first.
    fn suite_run_judges(
        &self,
        suite: &str,
    ) -> Result<Vec<(String, Vec<JudgeSignature>)>, ReadError>;
    /// The change markers at or after `since` (RFC 3339) that concern every traffic source
    /// (`evalwatch mark`, model versions seen to change), oldest first.
    fn general_marks(&self, since: Option<&str>) -> Result<Vec<Mark>, ReadError>;
    /// The labels of run `run_id` (`run --label`).
    fn run_labels(&self, run_id: &str) -> Result<RunLabels, ReadError>;
    /// The labels of the labelled runs of `suite`, by run id.
    fn suite_run_labels(&self, suite: &str) -> Result<HashMap<String, RunLabels>, ReadError>;
    /// The recorded settings of the runs of `suite` that have them, by run id.
    fn suite_run_settings(&self, suite: &str) -> Result<HashMap<String, RunSettings>, ReadError>;
    /// Case ids of `suite` whose content version first appeared at `started_at`, sorted.
    fn cases_first_seen_at(
        &self,
        suite: &str,
        started_at: &str,
        limit: usize,
    ) -> Result<Vec<String>, ReadError>;
    /// Status of each (case id, provider, sample) of a run, in plan order.
    fn result_statuses(&self, run_id: &str) -> Result<Vec<super::StatusRow>, ReadError>;
    /// The known-flaky cases of `suite`: (provider, case id, run id), by provider and case.
    fn known_flaky(&self, suite: &str) -> Result<Vec<(String, String, String)>, ReadError>;
    /// Stream the status of each result of several runs, run by run in the order of
    /// `run_ids`, each in plan order: `f` is given the run's position in `run_ids`, then the
    /// result's case, provider, sample and status (strings borrowed from the row being
    /// read). A store may read the runs at once.
    fn for_each_status_of(
        &self,
        run_ids: &[&str],
        f: &mut dyn FnMut(usize, &str, &str, u32, CaseStatus),
    ) -> Result<(), ReadError>;
    /// Stream a run's results in plan order; an error from `f` stops the walk and is
    /// returned as it is.
    fn for_each_result(
        &self,
        run_id: &str,
        f: &mut dyn FnMut(ResultRecord) -> Result<(), ReadError>,
    ) -> Result<(), ReadError>;
    /// Stream the current grades of `suite`, oldest run first.
    fn for_each_graded(
        &self,
        suite: &str,
        f: &mut dyn FnMut(GradedResult),
    ) -> Result<(), ReadError>;
    /// The mean human quality of each run and provider of `suite`.
    fn human_scores(&self, suite: &str) -> Result<Vec<HumanScoreRow>, ReadError>;
}
