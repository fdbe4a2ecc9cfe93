//! The store as the HTML reports read it ([`html::Source`]): every read of the renderers is
//! one store read here, rows handed over as the store gives them.

use std::collections::HashMap;

use crate::model::{
    AlertRow, CaseStatus, GateResult, GradedResult, JudgeSignature, Mark, ProviderMetrics,
    ResultRecord, RunInfo, RunLabels, TrendQuery, TrendRow,
};
use crate::report::html::{self, HumanScoreRow, ReadError, RunSettings, StatusRow};
use crate::store::{Store, StoreError};

/// The stop a callback asked for, kept while the store's walk unwinds, then given back as
/// the callback's own error.
fn stopped(e: StoreError, stop: Option<ReadError>) -> ReadError {
    stop.unwrap_or_else(|| e.into())
}

impl html::Source for Store {
    fn another(&self) -> html::OpenSource {
        let reopen = self.reopener();
        Box::new(move || -> Result<Box<dyn html::Source>, ReadError> { Ok(Box::new(reopen()?)) })
    }

    fn suite_names(&self) -> Result<Vec<String>, ReadError> {
        Ok(Store::suite_names(self)?)
    }

    fn run_infos(
        &self,
        suite: Option<&str>,
        since: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RunInfo>, ReadError> {
        Ok(Store::run_infos(self, suite, since, limit)?)
    }

    fn run(&self, run_id: &str) -> Result<Option<RunInfo>, ReadError> {
        Ok(Store::run(self, run_id)?)
    }

    fn previous_complete_run(
        &self,
        suite: &str,
        before: &str,
    ) -> Result<Option<RunInfo>, ReadError> {
        Ok(Store::previous_complete_run(self, suite, before)?)
    }

    fn run_metrics(&self, run_id: &str) -> Result<Vec<ProviderMetrics>, ReadError> {
        Ok(Store::run_metrics(self, run_id)?)
    }

    fn run_gates(&self, run_id: &str) -> Result<Vec<GateResult>, ReadError> {
        Ok(Store::run_gates(self, run_id)?)
    }

    fn alerts_of_run(&self, run_id: &str) -> Result<Vec<AlertRow>, ReadError> {
        Ok(Store::alerts_of_run(self, run_id)?)
    }

    fn open_alerts(&self, suite: Option<&str>) -> Result<Vec<AlertRow>, ReadError> {
        Ok(Store::open_alerts(self, suite)?)
    }

    fn alert_history(&self, suite: Option<&str>, limit: usize) -> Result<Vec<AlertRow>, ReadError> {
        Ok(Store::alert_history(self, suite, limit)?)
    }

    fn trend(&self, q: &TrendQuery<'_>) -> Result<Vec<TrendRow>, ReadError> {
        Ok(Store::trend(self, q)?)
    }

    fn suite_run_judges(
        &self,
        suite: &str,
    ) -> Result<Vec<(String, Vec<JudgeSignature>)>, ReadError> {
        Ok(Store::suite_run_judges(self, suite)?)
    }

    fn general_marks(&self, since: Option<&str>) -> Result<Vec<Mark>, ReadError> {
        let mut marks = Store::marks(
            self,
            &crate::store::MarkQuery {
                since,
                ..crate::store::MarkQuery::default()
            },
        )?;
        marks.retain(|m| m.source.is_none());
        Ok(marks)
    }

    fn run_labels(&self, run_id: &str) -> Result<RunLabels, ReadError> {
        Ok(Store::run_labels(self, run_id)?)
    }

    fn suite_run_labels(&self, suite: &str) -> Result<HashMap<String, RunLabels>, ReadError> {
        Ok(Store::suite_run_labels(self, suite)?)
    }

    fn suite_run_settings(&self, suite: &str) -> Result<HashMap<String, RunSettings>, ReadError> {
        Ok(Store::suite_run_settings(self, suite)?)
    }

    fn cases_first_seen_at(
        &self,
        suite: &str,
        started_at: &str,
        limit: usize,
    ) -> Result<Vec<String>, ReadError> {
        Ok(Store::cases_first_seen_at(self, suite, started_at, limit)?)
    }

    fn known_flaky(&self, suite: &str) -> Result<Vec<(String, String, String)>, ReadError> {
        Ok(Store::known_flaky(self, suite)?)
    }

    fn result_statuses(&self, run_id: &str) -> Result<Vec<StatusRow>, ReadError> {
        Ok(Store::result_statuses(self, run_id)?)
    }

    fn for_each_status_of(
        &self,
        run_ids: &[&str],
        f: &mut dyn FnMut(usize, &str, &str, u32, CaseStatus),
    ) -> Result<(), ReadError> {
        Ok(Store::for_each_status_of(self, run_ids, f)?)
    }

    fn for_each_result(
        &self,
        run_id: &str,
        f: &mut dyn FnMut(ResultRecord) -> Result<(), ReadError>,
    ) -> Result<(), ReadError> {
        let mut stop = None;
        Store::for_each_result(self, run_id, |rec| {
            f(rec).map_err(|e| {
                stop = Some(e);
                StoreError::Other("stopped by the page being written".into())
            })
        })
        .map_err(|e| stopped(e, stop.take()))
    }

    fn for_each_graded(
        &self,
        suite: &str,
        f: &mut dyn FnMut(GradedResult),
    ) -> Result<(), ReadError> {
        Ok(Store::for_each_graded(self, Some(suite), None, |g| {
            f(g);
            Ok(())
        })?)
    }

    fn human_scores(&self, suite: &str) -> Result<Vec<HumanScoreRow>, ReadError> {
        Ok(Store::human_scores(self, Some(suite), None)?
            .into_iter()
            .map(|h| (h.run_id, h.provider, h.mean_quality, h.n))
            .collect())
    }
}
