//! The settings of the suite each run ran with (`run_settings`, schema version 8).

use std::collections::{BTreeMap, HashMap};

use super::db::params;

use super::{Store, StoreError, codec};
use crate::model::Setting;

/// A run's settings, by setting name.
pub type RunSettings = BTreeMap<String, Setting>;

impl Store {
    /// Record the settings a run ran with. A run that has them keeps them: a resumed run
    /// ran its first part with the settings recorded then.
    pub fn record_run_settings(
        &mut self,
        run_id: &str,
        settings: &RunSettings,
    ) -> Result<(), StoreError> {
        let run_ref = self.run_ref(run_id)?;
        self.conn.execute(
            "INSERT INTO run_settings (run_ref, settings) VALUES (?1, ?2)
             ON CONFLICT (run_ref) DO NOTHING",
            params![run_ref, codec::to_json(settings)?],
        )?;
        Ok(())
    }

    /// The recorded settings of every run of `suite` that has them, by run id. Runs stored
    /// before schema version 8 have none. A row that does not read is left out (told as not
    /// recorded) rather than failing the report.
    pub fn suite_run_settings(
        &self,
        suite: &str,
    ) -> Result<HashMap<String, RunSettings>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT r.run_id, x.settings FROM run_settings x
             JOIN runs r ON r.id = x.run_ref JOIN suites s ON s.id = r.suite_ref
             WHERE s.name = ?1",
        )?;
        let rows = st.query_map([suite], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = HashMap::new();
        for row in rows {
            let (run_id, text) = row?;
            if let Ok(settings) = serde_json::from_str::<RunSettings>(&text) {
                out.insert(run_id, settings);
            }
        }
        Ok(out)
    }
}
