//! Trend and report queries: pre-aggregated metrics over time.
//!
//! Reports read `run_metrics` (one row per run and provider, and per run, provider and tag),
//! never the raw results, except for bounded reads of result statuses (the flip heat map)
//! and the results of the one run a run page shows.

use super::db::params;

use super::codec::{self, RUN_SELECT, RawRun};
use super::{Store, StoreError};
use crate::model::{CaseStatus, Metrics, RunInfo, RunStatus, TrendQuery, TrendRow};

/// A trend row's place: its run's start (none first), its run's key, its own key.
type TrendKey = (Option<i64>, i64, i64);

impl Store {
    /// Names of the suites that have at least one run, sorted.
    pub fn suite_names(&self) -> Result<Vec<String>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT s.name FROM suites s
             WHERE EXISTS (SELECT 1 FROM runs r WHERE r.suite_ref = s.id)
             ORDER BY s.name",
        )?;
        let rows = st.query_map((), |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Metric history of a suite, oldest run first; within a run, rows in stored order.
    /// Runs still `running` are left out (their metrics are not written yet), and so are
    /// filtered runs (`--case`, `--tag`): a spot check of a few cases is no point of the
    /// suite's trend.
    ///
    /// On PostgreSQL the rows are put in that order here, not by the statement: the server's
    /// sort carried each row's metrics JSON, a few ms of a report in a server process just
    /// started (`docs/store.md`). SQLite, in process, sorts them itself.
    pub fn trend(&self, q: &TrendQuery<'_>) -> Result<Vec<TrendRow>, StoreError> {
        const SELECT: &str =
            "SELECT r.run_id, r.started_at, r.status, r.suite_hash, m.provider, m.tag,
                    m.pass_rate, m.mean_score, m.error_rate, m.latency_p95_ms, m.cost_usd,
                    m.hallucination_rate, CASE WHEN ?4 AND m.tag IS NULL THEN m.metrics END,
                    r.started_ms, r.id, m.id
             FROM runs r
             JOIN suites s ON s.id = r.suite_ref
             JOIN run_metrics m ON m.run_ref = r.id
             WHERE s.name = ?1 AND r.status != 'running' AND r.case_filter IS NULL
               AND (CAST(?2 AS BIGINT) IS NULL OR r.started_ms >= ?2)
               AND (?3 OR m.tag IS NULL)";
        let sort_here = self.conn.is_pg();
        let ordered;
        let sql = if sort_here {
            SELECT
        } else {
            ordered = format!("{SELECT} ORDER BY r.started_ms NULLS FIRST, r.id, m.id");
            &ordered
        };
        let since = codec::since_ms(q.since, "read trends")?;
        let mut st = self.conn.prepare_cached(sql)?;
        let mut rows = st.query(params![q.suite, since, q.tags, q.full])?;
        // (start, run, row): the order asked for; a start that is not a time first, as
        // `NULLS FIRST` has it.
        let mut keyed: Vec<(TrendKey, TrendRow)> = Vec::new();
        while let Some(r) = rows.next()? {
            let run_id: String = r.get(0)?;
            let status: String = r.get(2)?;
            let status = RunStatus::parse(&status).ok_or_else(|| {
                StoreError::Other(format!(
                    "read run {run_id}: unknown status `{status}` in the store"
                ))
            })?;
            let json: Option<String> = r.get(12)?;
            let metrics = match json {
                Some(text) => Some(serde_json::from_str::<Metrics>(&text).map_err(|e| {
                    StoreError::Other(format!(
                        "read the metrics of run {run_id}: they are not valid JSON: {e}"
                    ))
                })?),
                None => None,
            };
            let started_ms = r.get(13)?;
            keyed.push((
                (started_ms, r.get(14)?, r.get(15)?),
                TrendRow {
                    run_id,
                    started_at: r.get(1)?,
                    started_ms,
                    status,
                    suite_hash: r.get(3)?,
                    provider: r.get(4)?,
                    tag: r.get(5)?,
                    pass_rate: r.get(6)?,
                    mean_score: r.get(7)?,
                    error_rate: r.get(8)?,
                    latency_p95_ms: r.get(9)?,
                    cost_usd: r.get(10)?,
                    hallucination_rate: r.get(11)?,
                    metrics,
                },
            ));
        }
        if sort_here {
            keyed.sort_unstable_by_key(|(key, _)| *key);
        }
        Ok(keyed.into_iter().map(|(_, row)| row).collect())
    }

    /// Case ids of a suite whose content version first appeared at `started_at` (the start
    /// of the run that introduced it), sorted; at most `limit`.
    pub fn cases_first_seen_at(
        &self,
        suite: &str,
        started_at: &str,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT c.case_id FROM cases c JOIN suites s ON s.id = c.suite_ref
             WHERE s.name = ?1 AND c.first_seen = ?2 ORDER BY c.case_id LIMIT ?3",
        )?;
        let rows = st.query_map(
            params![suite, started_at, codec::usize_to_i64(limit)],
            |r| r.get(0),
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The tags of every case of a suite, from the newest version of each stored.
    pub fn case_tags(
        &self,
        suite: &str,
    ) -> Result<std::collections::HashMap<String, Vec<String>>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT c.case_id, c.tags FROM cases c JOIN suites s ON s.id = c.suite_ref
             WHERE s.name = ?1 ORDER BY c.id",
        )?;
        let mut out = std::collections::HashMap::new();
        let rows = st.query_map([suite], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        for row in rows {
            let (id, tags) = row?;
            out.insert(id, serde_json::from_str(&tags).unwrap_or_default());
        }
        Ok(out)
    }

    /// Runs of a suite (or of every suite) that started at or after `since`, oldest first,
    /// without their metrics; at most `limit` of the newest (0: no limit).
    pub fn run_infos(
        &self,
        suite: Option<&str>,
        since: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RunInfo>, StoreError> {
        let limit = codec::row_limit(limit);
        let sql = format!(
            "{RUN_SELECT} WHERE (CAST(?1 AS TEXT) IS NULL OR s.name = ?1)
               AND (CAST(?2 AS BIGINT) IS NULL OR r.started_ms >= ?2)
             ORDER BY r.started_ms DESC NULLS LAST, r.id DESC LIMIT ?3"
        );
        let since = codec::since_ms(since, "read runs")?;
        let raws: Vec<RawRun> = self
            .conn
            .prepare_cached(&sql)?
            .query_map(params![suite, since, limit], RawRun::from_row)?
            .collect::<Result<_, _>>()?;
        // Newest first as selected (for the limit), oldest first as returned.
        raws.into_iter()
            .rev()
            .map(|raw| self.info_of(raw))
            .collect()
    }

    /// Status and score of each (case id, provider, sample) of a run, in plan order, with
    /// the result's latency: what `compare` pairs.
    pub fn result_scores(&self, run_id: &str) -> Result<Vec<ScoredResult>, StoreError> {
        let run_ref = self.run_ref(run_id)?;
        let mut st = self.conn.prepare_cached(
            "SELECT c.case_id, x.provider, x.sample, x.status, x.score, x.latency_ms
             FROM results x JOIN cases c ON c.id = x.case_ref
             WHERE x.id BETWEEN ?1 AND ?2 ORDER BY x.id",
        )?;
        let (lo, hi) = codec::result_range(run_ref);
        let mut rows = st.query([lo, hi])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let status: String = r.get(3)?;
            out.push(ScoredResult {
                case_id: r.get(0)?,
                provider: r.get(1)?,
                sample: codec::to_u32(r.get(2)?),
                status: codec::case_status(&status, run_id)?,
                score: r.get(4)?,
                latency_ms: r.get(5)?,
            });
        }
        Ok(out)
    }
}

// Rows the report queries return.

/// One result's verdict, score and latency, keyed by case, provider and sample.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredResult {
    pub case_id: String,
    pub provider: String,
    pub sample: u32,
    pub status: CaseStatus,
    pub score: Option<f64>,
    pub latency_ms: Option<f64>,
}
