//! The read side: history, one run, its metrics, gates and results.

use super::db::{OptionalExtension, params};

use super::alerts::{ALERT_SELECT, alert_row};
use super::codec::{self, RUN_SELECT, RawRun};
use super::{AlertRow, RunRow, Store, StoreError};
use crate::model::{
    CaseStatus, GateResult, Job, LabelPair, Metrics, ProviderMetrics, ResultRecord, RunInfo,
};

/// How many matching ids an ambiguous-prefix error lists.
const AMBIGUOUS_SHOWN: usize = 5;

const RESULT_SELECT: &str = "SELECT x.id, x.seq, x.case_index, c.case_id, x.provider_index,
    x.provider, x.sample, c.hash, coalesce(x.tags, c.tags), p.text, x.status, x.score,
    x.output, x.error, x.error_kind, x.latency_ms, x.tokens_in, x.tokens_out, x.cost_usd,
    x.finish_reason, x.attempts, x.label_expected, x.label_predicted, x.assertions,
    x.output_bytes, x.truncated
    FROM results x
    JOIN cases c ON c.id = x.case_ref
    LEFT JOIN prompts p ON p.id = x.prompt_ref
    WHERE x.id BETWEEN ?1 AND ?2
    ORDER BY x.id";

impl Store {
    /// Alerts, open and resolved, of one suite or all, newest opened first; at most `limit`
    /// (0: no limit). The alert history page and the charts' alert markers read these.
    pub fn alert_history(
        &self,
        suite: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AlertRow>, StoreError> {
        let limit = codec::row_limit(limit);
        let rows = self
            .conn
            .prepare_cached(&format!(
                "{ALERT_SELECT} WHERE (CAST(?1 AS TEXT) IS NULL OR suite = ?1)
                 ORDER BY julianday(opened_at) DESC NULLS LAST, id DESC LIMIT ?2"
            ))?
            .query_map(params![suite, limit], alert_row)?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Alerts run `run_id` opened, resolved or saw still firing, oldest first.
    pub fn alerts_of_run(&self, run_id: &str) -> Result<Vec<AlertRow>, StoreError> {
        let rows = self
            .conn
            .prepare_cached(&format!(
                "{ALERT_SELECT} WHERE opened_run = ?1 OR resolved_run = ?1 OR last_run = ?1
                 ORDER BY id"
            ))?
            .query_map([run_id], alert_row)?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// History, newest first, optionally of one suite; at most `limit` runs (0: no limit).
    pub fn runs(&self, suite: Option<&str>, limit: usize) -> Result<Vec<RunRow>, StoreError> {
        self.runs_labelled(suite, None, limit)
    }

    /// [`Store::runs`], of the runs labelled `key=value` when `label` is given.
    pub fn runs_labelled(
        &self,
        suite: Option<&str>,
        label: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<RunRow>, StoreError> {
        let limit = codec::row_limit(limit);
        let sql = format!(
            "{RUN_SELECT} WHERE (CAST(?1 AS TEXT) IS NULL OR s.name = ?1)
               AND (CAST(?3 AS TEXT) IS NULL OR EXISTS (SELECT 1 FROM run_labels l
                    WHERE l.run_ref = r.id AND l.key = ?3 AND l.value = ?4))
             ORDER BY r.started_ms DESC NULLS LAST, r.id DESC LIMIT ?2"
        );
        let (key, value) = label.unzip();
        let raws: Vec<RawRun> = self
            .conn
            .prepare_cached(&sql)?
            .query_map(params![suite, limit, key, value], RawRun::from_row)?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(raws.len());
        for raw in raws {
            let metrics = self.metrics_of(raw.id, false)?;
            out.push(RunRow {
                info: raw.into_info()?,
                metrics,
            });
        }
        Ok(out)
    }

    /// One run's header; accepts a unique prefix of the id. An exact id always wins; a
    /// prefix that matches several runs is [`StoreError::AmbiguousRun`]; an empty id or a
    /// prefix that matches nothing is `None`.
    pub fn run(&self, run_id: &str) -> Result<Option<RunInfo>, StoreError> {
        if run_id.is_empty() {
            return Ok(None);
        }
        let exact = self
            .conn
            .prepare_cached(&format!("{RUN_SELECT} WHERE r.run_id = ?1"))?
            .query_row([run_id], RawRun::from_row)
            .optional()?;
        if let Some(raw) = exact {
            return self.info_of(raw).map(Some);
        }
        let mut found: Vec<RawRun> = self
            .conn
            .prepare_cached(&format!(
                "{RUN_SELECT} WHERE substr(r.run_id, 1, length(?1)) = ?1
                 ORDER BY r.run_id LIMIT ?2"
            ))?
            .query_map(
                params![run_id, codec::usize_to_i64(AMBIGUOUS_SHOWN)],
                RawRun::from_row,
            )?
            .collect::<Result<_, _>>()?;
        match found.len() {
            0 => Ok(None),
            1 => found.pop().map(RawRun::into_info).transpose(),
            _ => {
                let mut matches = Vec::with_capacity(found.len());
                for raw in found {
                    matches.push(raw.into_info()?.run_id);
                }
                Err(StoreError::AmbiguousRun {
                    prefix: run_id.to_owned(),
                    matches,
                })
            }
        }
    }

    /// All stored metrics of a run (per provider, and per provider and tag), in the order
    /// they were stored.
    pub fn run_metrics(&self, run_id: &str) -> Result<Vec<ProviderMetrics>, StoreError> {
        let run_ref = self.run_ref(run_id)?;
        self.metrics_of(run_ref, true)
    }

    fn metrics_of(
        &self,
        run_ref: i64,
        with_tags: bool,
    ) -> Result<Vec<ProviderMetrics>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT provider, tag, metrics FROM run_metrics
             WHERE run_ref = ?1 AND (?2 OR tag IS NULL) ORDER BY id",
        )?;
        let rows: Vec<(String, Option<String>, String)> = st
            .query_map(params![run_ref, with_tags], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(|(provider, tag, json)| {
                let metrics: Metrics = serde_json::from_str(&json).map_err(|e| {
                    StoreError::Other(format!(
                        "read the metrics of provider {provider}: they are not valid JSON: {e}"
                    ))
                })?;
                Ok(ProviderMetrics {
                    provider,
                    tag,
                    metrics,
                })
            })
            .collect()
    }

    /// The gate results of a run, in the order they were stored.
    pub fn run_gates(&self, run_id: &str) -> Result<Vec<GateResult>, StoreError> {
        let run_ref = self.run_ref(run_id)?;
        let mut st = self.conn.prepare_cached(
            "SELECT metric, provider, bound, value, ok FROM run_gates
             WHERE run_ref = ?1 ORDER BY idx",
        )?;
        let rows = st.query_map([run_ref], |r| {
            Ok(GateResult {
                metric: r.get(0)?,
                provider: r.get(1)?,
                limit: r.get(2)?,
                value: r.get(3)?,
                ok: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Stream a run's results in plan order, with their assertions and prompt. One result is
    /// in memory at a time; an error from `f` stops the walk and is returned.
    pub fn for_each_result<F>(&self, run_id: &str, mut f: F) -> Result<(), StoreError>
    where
        F: FnMut(ResultRecord) -> Result<(), StoreError>,
    {
        let run_ref = self.run_ref(run_id)?;
        let mut st = self.conn.prepare_cached(RESULT_SELECT)?;
        let (lo, hi) = codec::result_range(run_ref);
        let mut rows = st.query([lo, hi])?;
        while let Some(r) = rows.next()? {
            let tags: String = r.get(8)?;
            let tags: Vec<String> = serde_json::from_str(&tags).map_err(|e| {
                StoreError::Other(format!(
                    "read run {run_id}: the tags of a result are not valid JSON: {e}"
                ))
            })?;
            let status: String = r.get(10)?;
            let assertions: Option<String> = r.get(23)?;
            let error_kind: Option<String> = r.get(14)?;
            let label_expected: Option<String> = r.get(21)?;
            let label = label_expected.map(|expected| -> Result<LabelPair, super::db::DbError> {
                Ok(LabelPair {
                    expected,
                    predicted: r.get(22)?,
                })
            });
            let record = ResultRecord {
                job: Job {
                    seq: codec::to_usize(r.get(1)?),
                    case_index: codec::to_usize(r.get(2)?),
                    case_id: r.get(3)?,
                    provider_index: codec::to_usize(r.get(4)?),
                    provider_id: r.get(5)?,
                    sample: codec::to_u32(r.get(6)?),
                    case: crate::model::CaseRef::default(),
                },
                case_hash: r.get(7)?,
                tags,
                prompt: r.get::<_, Option<String>>(9)?.unwrap_or_default(),
                status: codec::case_status(&status, run_id)?,
                score: r.get(11)?,
                output: r.get(12)?,
                error: r.get(13)?,
                error_kind: error_kind.as_deref().and_then(codec::error_kind_parse),
                latency_ms: r.get(15)?,
                tokens_in: r.get::<_, Option<i64>>(16)?.map(codec::to_u64),
                tokens_out: r.get::<_, Option<i64>>(17)?.map(codec::to_u64),
                cost_usd: r.get(18)?,
                finish_reason: r.get(19)?,
                output_bytes: r.get::<_, Option<i64>>(24)?.map(codec::to_u64),
                truncated: r.get(25)?,
                attempts: codec::to_u32(r.get(20)?),
                assertions: codec::assertions_from_json(assertions.as_deref(), run_id)?,
                label: label.transpose()?,
                // Counted per run (`Store::run_versions`), not stored with each result.
                reported: None,
            };
            f(record)?;
        }
        Ok(())
    }

    /// Status of each (case id, provider, sample) of a run, for flips against a baseline,
    /// in plan order.
    pub fn result_statuses(
        &self,
        run_id: &str,
    ) -> Result<Vec<(String, String, u32, CaseStatus)>, StoreError> {
        Ok(self
            .result_scores(run_id)?
            .into_iter()
            .map(|r| (r.case_id, r.provider, r.sample, r.status))
            .collect())
    }

    /// Stream the status of each (case id, provider, sample) of a run, in plan order: only
    /// those columns are read, and nothing is allocated per result (the strings given to `f`
    /// are borrowed from the row being read).
    pub fn for_each_status<F>(&self, run_id: &str, mut f: F) -> Result<(), StoreError>
    where
        F: FnMut(&str, &str, u32, CaseStatus),
    {
        let run_ref = self.run_ref(run_id)?;
        let mut st = self.conn.prepare_cached(
            "SELECT c.case_id, x.provider, x.sample, x.status
             FROM results x JOIN cases c ON c.id = x.case_ref
             WHERE x.id BETWEEN ?1 AND ?2 ORDER BY x.id",
        )?;
        let (lo, hi) = codec::result_range(run_ref);
        let mut rows = st.query([lo, hi])?;
        while let Some(r) = rows.next()? {
            let text = |i: usize| r.str(i);
            let (case, provider) = (text(0)?, text(1)?);
            let status = codec::case_status(text(3)?, run_id)?;
            f(case, provider, codec::to_u32(r.get(2)?), status);
        }
        Ok(())
    }

    /// [`Self::for_each_status`] for several runs, run by run in the order of `run_ids`:
    /// `f` is given the run's position in `run_ids` first. On PostgreSQL one statement
    /// reads them all (a statement is a round trip to the server there; a report's heat
    /// map reads twenty runs); on SQLite, one a run.
    pub fn for_each_status_of<F>(&self, run_ids: &[&str], mut f: F) -> Result<(), StoreError>
    where
        F: FnMut(usize, &str, &str, u32, CaseStatus),
    {
        if !self.conn.is_pg() {
            for (i, run_id) in run_ids.iter().enumerate() {
                self.for_each_status(run_id, |case, provider, sample, status| {
                    f(i, case, provider, sample, status);
                })?;
            }
            return Ok(());
        }
        let asked = run_ids.iter().map(|&r| r.to_owned()).collect();
        for row in super::pg::read::statuses_of_runs(&self.conn, asked)? {
            let run_id = run_ids.get(row.run).copied().unwrap_or_default();
            if !row.known {
                return Err(StoreError::UnknownRun {
                    run_id: run_id.to_owned(),
                });
            }
            if let Some((case, provider, sample, status)) = &row.result {
                let status = codec::case_status(status, run_id)?;
                f(row.run, case, provider, codec::to_u32(*sample), status);
            }
        }
        Ok(())
    }

    /// The newest complete run of the whole `suite` (not filtered) that started before
    /// `before` (RFC 3339): a run's baseline.
    pub fn previous_complete_run(
        &self,
        suite: &str,
        before: &str,
    ) -> Result<Option<RunInfo>, StoreError> {
        let Some(before) = codec::time_ms(before) else {
            return Err(StoreError::Other(format!(
                "find the run before {before}: that is not an RFC 3339 time"
            )));
        };
        self.conn
            .prepare_cached(&format!(
                "{RUN_SELECT} WHERE s.name = ?1 AND r.status = 'complete' AND r.case_filter IS NULL
                   AND r.started_ms < ?2
                 ORDER BY r.started_ms DESC NULLS LAST, r.id DESC LIMIT 1"
            ))?
            .query_row(params![suite, before], RawRun::from_row)
            .optional()?
            .map(|raw| self.info_of(raw))
            .transpose()
    }
}
