//! The model versions providers reported in each run (`run_version_batches`, schema version
//! 24; `run_versions` before): counted by the run's writer with each batch of results.

use super::db::{OptionalExtension, params};

use super::{Store, StoreError};
use crate::model::ReportedModel;

/// How many answers of a run's provider carried one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionCount {
    pub provider: String,
    pub version: ReportedModel,
    pub answers: u64,
}

impl Store {
    /// The versions reported in run `run_id`: by provider, the most answered first.
    pub fn run_versions(&self, run_id: &str) -> Result<Vec<VersionCount>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT v.provider, v.model, v.fingerprint, CAST(sum(v.answers) AS BIGINT) AS n
             FROM run_version_batches v JOIN runs r ON r.id = v.run_ref WHERE r.run_id = ?1
             GROUP BY v.provider, v.model, v.fingerprint
             ORDER BY v.provider, n DESC, v.model, v.fingerprint",
        )?;
        let rows = st.query_map([run_id], |r| {
            Ok(VersionCount {
                provider: r.get(0)?,
                version: ReportedModel {
                    model: r.get(1)?,
                    fingerprint: Some(r.get::<_, String>(2)?).filter(|f| !f.is_empty()),
                },
                answers: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The models of traffic source `source` with the start (unix seconds) of the first
    /// minute bucket of each, earliest first (records without a model left out). Minute
    /// buckets only: an hour or day bucket starts before the change it holds. Found through
    /// the day buckets (the first day of each model), then that day's hours and that hour's
    /// minutes: `ingest` asks after every pass, and a scan of every minute bucket grew with
    /// the history (20 ms for a day of traffic at 60 label sets, `--follow` four times a
    /// second). A minute bucket already pruned gives way to its hour's start.
    pub fn traffic_models_first_seen(
        &self,
        source: &str,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let days: Vec<(String, i64)> = self
            .conn
            .prepare_cached(
                "SELECT model, MIN(start) FROM traffic_buckets
                 WHERE source = ?1 AND resolution = 'day' AND model <> '' GROUP BY model",
            )?
            .query_map([source], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let mut firsts = Vec::with_capacity(days.len());
        for (model, day) in days {
            let mut first = day;
            for (resolution, len) in [("hour", 86_400), ("minute", 3_600)] {
                let within: Option<i64> = self
                    .conn
                    .prepare_cached(
                        "SELECT MIN(start) FROM traffic_buckets WHERE source = ?1
                         AND resolution = ?2 AND start >= ?3 AND start < ?4 AND model = ?5",
                    )?
                    .query_row(
                        params![source, resolution, first, first + len, model],
                        |r| r.get(0),
                    )?;
                first = within.unwrap_or(first);
            }
            firsts.push((model, first));
        }
        firsts.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        Ok(firsts)
    }

    /// The newest run of `suite` before run `run_id` in which `provider` reported a version.
    pub fn previous_versioned_run(
        &self,
        suite: &str,
        provider: &str,
        run_id: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT r.run_id FROM runs r JOIN suites s ON s.id = r.suite_ref
                 WHERE s.name = ?1 AND r.run_id <> ?3
                   AND r.started_ms <= (SELECT started_ms FROM runs WHERE run_id = ?3)
                   AND EXISTS (SELECT 1 FROM run_version_batches v
                               WHERE v.run_ref = r.id AND v.provider = ?2)
                 ORDER BY r.started_ms DESC NULLS LAST, r.id DESC LIMIT 1",
            )?
            .query_row(params![suite, provider, run_id], |r| r.get(0))
            .optional()?)
    }
}
