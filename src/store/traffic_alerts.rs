//! How far each traffic alert rule has judged its source's windows.

use super::db::{OptionalExtension, params};

use super::{Store, StoreError};

impl Store {
    /// The end (unix seconds) of the last window rule `rule` of `source` judged.
    pub fn traffic_alert_cursor(
        &self,
        source: &str,
        rule: &str,
    ) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT evaluated_until FROM traffic_alert_cursor WHERE source = ?1 AND rule = ?2",
            )?
            .query_row(params![source, rule], |r| r.get(0))
            .optional()?)
    }

    /// Remember that rule `rule` of `source` judged every window ending at or before `until`.
    pub fn set_traffic_alert_cursor(
        &mut self,
        source: &str,
        rule: &str,
        until: i64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO traffic_alert_cursor (source, rule, evaluated_until) VALUES (?1, ?2, ?3)
             ON CONFLICT (source, rule) DO UPDATE SET evaluated_until =
                 CASE WHEN traffic_alert_cursor.evaluated_until > excluded.evaluated_until
                      THEN traffic_alert_cursor.evaluated_until
                      ELSE excluded.evaluated_until END",
            params![source, rule, until],
        )?;
        Ok(())
    }

    /// Remember what rule `rule` of `source` made of the last window it judged.
    pub fn set_traffic_alert_verdict(
        &mut self,
        source: &str,
        rule: &str,
        verdict: &str,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE traffic_alert_cursor SET last_verdict = ?3 WHERE source = ?1 AND rule = ?2",
            params![source, rule, verdict],
        )?;
        Ok(())
    }

    /// Each rule of `source` that has judged a window: its name, the end of the last window
    /// it judged (unix seconds) and what it made of it, by rule name.
    pub fn traffic_alert_verdicts(
        &self,
        source: &str,
    ) -> Result<Vec<(String, i64, String)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT rule, evaluated_until, coalesce(last_verdict, '') FROM traffic_alert_cursor
             WHERE source = ?1 ORDER BY rule",
        )?;
        let rows = stmt.query_map(params![source], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Have rule `rule` of `source` judge again the windows ending after `until` (votes
    /// imported after the fact changed them); a cursor already before it stays.
    pub fn rewind_traffic_alert_cursor(
        &mut self,
        source: &str,
        rule: &str,
        until: i64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE traffic_alert_cursor SET evaluated_until = ?3
             WHERE source = ?1 AND rule = ?2 AND evaluated_until > ?3",
            params![source, rule, until],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_only_moves_forward() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("h.db")).unwrap();
        assert_eq!(store.traffic_alert_cursor("s", "r").unwrap(), None);
        store.set_traffic_alert_cursor("s", "r", 900).unwrap();
        store.set_traffic_alert_cursor("s", "r", 600).unwrap();
        assert_eq!(store.traffic_alert_cursor("s", "r").unwrap(), Some(900));
        assert_eq!(store.traffic_alert_cursor("s", "other").unwrap(), None);
        store
            .set_traffic_alert_verdict("s", "r", "window a..b: quiet")
            .unwrap();
        assert_eq!(
            store.traffic_alert_verdicts("s").unwrap(),
            vec![("r".to_owned(), 900, "window a..b: quiet".to_owned())]
        );
    }

    #[test]
    fn a_rewind_only_moves_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("h.db")).unwrap();
        store.rewind_traffic_alert_cursor("s", "r", 600).unwrap();
        assert_eq!(store.traffic_alert_cursor("s", "r").unwrap(), None);
        store.set_traffic_alert_cursor("s", "r", 900).unwrap();
        store.rewind_traffic_alert_cursor("s", "r", 1200).unwrap();
        assert_eq!(store.traffic_alert_cursor("s", "r").unwrap(), Some(900));
        store.rewind_traffic_alert_cursor("s", "r", 600).unwrap();
        assert_eq!(store.traffic_alert_cursor("s", "r").unwrap(), Some(600));
    }
}
