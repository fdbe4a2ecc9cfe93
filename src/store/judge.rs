//! The judge cache (read side) and the judges that scored each run. Cache entries and run
//! judges are written by the run's single writer ([`super::Writer::send_judge`]).

use std::path::Path;
use std::sync::{Mutex, PoisonError};

use super::db::{Db, OptionalExtension, params};

use super::{Store, StoreError};
use crate::model::{JudgeCacheEntry, JudgeSignature};

/// Reads cached judge answers on its own connection (WAL: never blocks the writer).
pub struct JudgeCache {
    conn: Mutex<Db>,
}

impl std::fmt::Debug for JudgeCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JudgeCache").finish_non_exhaustive()
    }
}

impl JudgeCache {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self {
            conn: Mutex::new(super::connect(path)?),
        })
    }

    /// The answer stored under `key`, if any.
    pub fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(conn
            .prepare_cached("SELECT answer FROM judge_cache WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?)
    }
}

impl Store {
    /// The judges and rubrics that scored a run, sorted.
    pub fn run_judges(&self, run_id: &str) -> Result<Vec<JudgeSignature>, StoreError> {
        let run_ref = self.run_ref(run_id)?;
        let mut st = self.conn.prepare_cached(
            "SELECT assertion, provider, model, rubric_version, rubric_hash FROM run_judges
             WHERE run_ref = ?1 ORDER BY assertion, provider, model, rubric_hash",
        )?;
        let rows = st.query_map([run_ref], signature)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// For each run of `suite` that has judged results, its judges and rubrics (sorted),
    /// oldest run first.
    pub fn suite_run_judges(
        &self,
        suite: &str,
    ) -> Result<Vec<(String, Vec<JudgeSignature>)>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT r.run_id, j.assertion, j.provider, j.model, j.rubric_version, j.rubric_hash
             FROM run_judges j JOIN runs r ON r.id = j.run_ref JOIN suites s ON s.id = r.suite_ref
             WHERE s.name = ?1
             ORDER BY r.started_ms NULLS FIRST, r.id, j.assertion, j.provider, j.model, j.rubric_hash",
        )?;
        let mut rows = st.query(params![suite])?;
        let mut out: Vec<(String, Vec<JudgeSignature>)> = Vec::new();
        while let Some(r) = rows.next()? {
            let run_id: String = r.get(0)?;
            let sig = JudgeSignature {
                assertion: r.get(1)?,
                provider: r.get(2)?,
                model: r.get(3)?,
                rubric_version: r.get(4)?,
                rubric_hash: r.get(5)?,
            };
            match out.last_mut() {
                Some((id, sigs)) if *id == run_id => sigs.push(sig),
                _ => out.push((run_id, vec![sig])),
            }
        }
        Ok(out)
    }

    /// Entries in the judge cache.
    pub fn judge_cache_len(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM judge_cache", (), |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

/// Stores judge answers in the cache (a suite run's writer, and judged traffic).
pub(super) fn put_cache(
    tx: &super::db::Tx<'_>,
    cache: &[JudgeCacheEntry],
) -> Result<(), StoreError> {
    if cache.is_empty() {
        return Ok(());
    }
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut add = tx.prepare_cached(
        "INSERT INTO judge_cache (key, judge, rubric_hash, answer, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (key) DO UPDATE SET judge = excluded.judge,
           rubric_hash = excluded.rubric_hash, answer = excluded.answer,
           created_at = excluded.created_at",
    )?;
    for e in cache {
        add.execute(params![e.key, e.judge, e.rubric_hash, e.answer, now])?;
    }
    Ok(())
}

fn signature(r: &super::db::Row<'_>) -> Result<JudgeSignature, super::db::DbError> {
    Ok(JudgeSignature {
        assertion: r.get(0)?,
        provider: r.get(1)?,
        model: r.get(2)?,
        rubric_version: r.get(3)?,
        rubric_hash: r.get(4)?,
    })
}
