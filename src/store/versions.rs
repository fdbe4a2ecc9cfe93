//! The model versions providers reported in each run: `run_version_batches` (schema version
//! 24), counted by the run's writer batch by batch, and `run_versions` (schema version 15),
//! the counts of runs stored before, added when a run ended.

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
            "SELECT provider, model, fingerprint, CAST(sum(answers) AS BIGINT) AS n
             FROM (SELECT provider, model, fingerprint, answers FROM run_versions
                   WHERE run_ref = (SELECT id FROM runs WHERE run_id = ?1)
                   UNION ALL
                   SELECT provider, model, fingerprint, answers FROM run_version_batches
                   WHERE run_ref = (SELECT id FROM runs WHERE run_id = ?1)) AS v
             GROUP BY provider, model, fingerprint
             ORDER BY provider, n DESC, model, fingerprint",
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
    /// buckets only: an hour or day bucket starts before the change it holds.
    pub fn traffic_models_first_seen(
        &self,
        source: &str,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT model, MIN(start) AS first FROM traffic_buckets
             WHERE source = ?1 AND resolution = 'minute' AND model <> '' GROUP BY model ORDER BY first, model",
        )?;
        let rows = st.query_map([source], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
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
                   AND (EXISTS (SELECT 1 FROM run_versions v
                                WHERE v.run_ref = r.id AND v.provider = ?2)
                        OR EXISTS (SELECT 1 FROM run_version_batches v
                                   WHERE v.run_ref = r.id AND v.provider = ?2))
                 ORDER BY r.started_ms DESC, r.id DESC LIMIT 1",
            )?
            .query_row(params![suite, provider, run_id], |r| r.get(0))
            .optional()?)
    }
}
