//! Reads that PostgreSQL answers in one statement where SQLite, in process, takes one a
//! run: every statement to the server is a round trip (two for its first use on a
//! connection), and a report's heat map reads the statuses of twenty runs.

use crate::store::db::{Db, DbError};

/// The statuses of several runs' results: each row's run (`ord`, from 1, in the order
/// given) and result id, by which [`statuses_of_runs`] puts them in order (the server's
/// sort of the ~8,000 rows of a report's heat map took 5-8 ms of the statement's 13, in a
/// server process just started: `docs/store.md`). A run id not stored gives one row without
/// `ref` (the caller says which); a run without results gives one row without a result. A
/// run's results are the ids `ref << 32` to `(ref << 32) | u32::MAX`
/// (`codec::result_range`), read by the primary key one run at a time.
const STATUSES_OF_RUNS: &str = "SELECT k.ord, r.id, c.case_id, x.provider, x.sample, x.status, x.id
     FROM unnest($1::text[]) WITH ORDINALITY AS k (run_id, ord)
     LEFT JOIN runs r ON r.run_id = k.run_id
     LEFT JOIN LATERAL (
       SELECT id, case_ref, provider, sample, status FROM results
       WHERE id BETWEEN r.id * 4294967296 AND r.id * 4294967296 + 4294967295
     ) AS x ON true
     LEFT JOIN cases c ON c.id = x.case_ref";

/// One row of [`statuses_of_runs`]: the run's position in the list asked for (from 0), and
/// its result's `(case id, provider, sample, status)` when it has one; `known` is false for
/// a run id not stored.
pub struct StatusOfRun {
    pub run: usize,
    pub known: bool,
    pub result: Option<(String, String, i64, String)>,
}

/// The statuses of the results of `run_ids`, run by run in that order, each in plan order,
/// in one statement.
pub fn statuses_of_runs(db: &Db, run_ids: Vec<String>) -> Result<Vec<StatusOfRun>, DbError> {
    db.pg_call(move |c| {
        let rows = c.query(STATUSES_OF_RUNS, &[&run_ids])?;
        let mut keyed = rows
            .iter()
            .map(|r| {
                let ord: i64 = r.try_get(0)?;
                let known = r.try_get::<_, Option<i64>>(1)?.is_some();
                let case: Option<String> = r.try_get(2)?;
                let result = match case {
                    Some(case) => Some((case, r.try_get(3)?, r.try_get(4)?, r.try_get(5)?)),
                    None => None,
                };
                let row = StatusOfRun {
                    run: usize::try_from(ord - 1).unwrap_or(usize::MAX),
                    known,
                    result,
                };
                Ok(((ord, r.try_get::<_, Option<i64>>(6)?), row))
            })
            .collect::<Result<Vec<_>, postgres::Error>>()?;
        keyed.sort_unstable_by_key(|(key, _)| *key);
        Ok(keyed.into_iter().map(|(_, row)| row).collect())
    })
}
