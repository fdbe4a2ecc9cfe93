//! The labels of runs (`run_labels`, schema version 14): `run --label key=value`.

use std::collections::HashMap;

use super::db::params;

use super::{Store, StoreError, codec};
use crate::model::RunLabels;

impl Store {
    /// Record the labels run `run_id` was given. A key it has already keeps its value.
    pub fn set_run_labels(&mut self, run_id: &str, labels: &RunLabels) -> Result<(), StoreError> {
        if labels.is_empty() {
            return Ok(());
        }
        let tx = self.conn.transaction()?;
        let run_ref = codec::run_ref(&tx, run_id)?;
        {
            let mut add = tx.prepare_cached(
                "INSERT INTO run_labels (run_ref, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO NOTHING",
            )?;
            for (key, value) in labels {
                add.execute(params![run_ref, key, value])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The labels of run `run_id` (none for a run stored before schema version 14).
    pub fn run_labels(&self, run_id: &str) -> Result<RunLabels, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT l.key, l.value FROM run_labels l JOIN runs r ON r.id = l.run_ref
             WHERE r.run_id = ?1",
        )?;
        let rows = st.query_map([run_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The labels of every labelled run of `suite`, by run id.
    pub fn suite_run_labels(&self, suite: &str) -> Result<HashMap<String, RunLabels>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT r.run_id, l.key, l.value FROM run_labels l
             JOIN runs r ON r.id = l.run_ref JOIN suites s ON s.id = r.suite_ref
             WHERE s.name = ?1",
        )?;
        let rows = st.query_map([suite], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out: HashMap<String, RunLabels> = HashMap::new();
        for row in rows {
            let (run_id, key, value) = row?;
            out.entry(run_id).or_default().insert(key, value);
        }
        Ok(out)
    }
}
