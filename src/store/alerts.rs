//! Alert state and the queue of undelivered notices.
//!
//! An alert is an episode: opened when a rule starts firing for a (suite, rule, provider,
//! tag), closed when it stops. Opening and closing each write a notice (the JSON payload the
//! sinks receive) and one pending delivery per sink, in one transaction, so that a notice is
//! never lost between being decided and being sent.

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::codec::{self, RUN_SELECT, RawRun};
use super::{Store, StoreError};
use crate::model::RunInfo;

pub(super) const ALERT_SELECT: &str =
    "SELECT id, suite, rule, metric, provider, tag, severity, opened_at,
    opened_run, last_seen_at, last_run, value, baseline_value, message, resolved_at,
    resolved_run FROM alerts";

pub(super) fn alert_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AlertRow> {
    let tag: String = r.get(5)?;
    Ok(AlertRow {
        id: r.get(0)?,
        suite: r.get(1)?,
        rule: r.get(2)?,
        metric: r.get(3)?,
        provider: r.get(4)?,
        tag: (!tag.is_empty()).then_some(tag),
        severity: r.get(6)?,
        opened_at: r.get(7)?,
        opened_run: r.get(8)?,
        last_seen_at: r.get(9)?,
        last_run: r.get(10)?,
        value: r.get(11)?,
        baseline_value: r.get(12)?,
        message: r.get(13)?,
        resolved_at: r.get(14)?,
        resolved_run: r.get(15)?,
    })
}

fn add_notice(
    tx: &rusqlite::Transaction<'_>,
    alert: i64,
    kind: &str,
    at: &str,
    payload: &str,
    sinks: &[String],
) -> Result<(), StoreError> {
    let notice: i64 = tx.query_row(
        "INSERT INTO alert_notices (alert_ref, kind, created_at, payload) VALUES (?1, ?2, ?3, ?4)
         RETURNING id",
        params![alert, kind, at, payload],
        |r| r.get(0),
    )?;
    let mut add = tx.prepare_cached(
        "INSERT INTO alert_deliveries (notice_ref, sink) VALUES (?1, ?2)
         ON CONFLICT (notice_ref, sink) DO NOTHING",
    )?;
    for sink in sinks {
        add.execute(params![notice, sink])?;
    }
    Ok(())
}

impl Store {
    /// Complete runs of `suite` started before `before` (RFC 3339), newest first, at most
    /// `limit`.
    pub fn complete_runs_before(
        &self,
        suite: &str,
        before: &str,
        limit: usize,
    ) -> Result<Vec<RunInfo>, StoreError> {
        let sql = format!(
            "{RUN_SELECT} WHERE s.name = ?1 AND r.status = 'complete'
               AND julianday(r.started_at) < julianday(?2)
             ORDER BY julianday(r.started_at) DESC, r.id DESC LIMIT ?3"
        );
        let raws: Vec<RawRun> = self
            .conn
            .prepare_cached(&sql)?
            .query_map(
                params![suite, before, codec::usize_to_i64(limit)],
                RawRun::from_row,
            )?
            .collect::<Result<_, _>>()?;
        raws.into_iter().map(RawRun::into_info).collect()
    }

    /// The newest complete run of `suite`.
    pub fn latest_complete_run(&self, suite: &str) -> Result<Option<RunInfo>, StoreError> {
        let sql = format!(
            "{RUN_SELECT} WHERE s.name = ?1 AND r.status = 'complete'
             ORDER BY julianday(r.started_at) DESC, r.id DESC LIMIT 1"
        );
        self.conn
            .prepare_cached(&sql)?
            .query_row([suite], RawRun::from_row)
            .optional()?
            .map(RawRun::into_info)
            .transpose()
    }

    /// When `suite` first appeared in history (its first run), if ever.
    pub fn suite_first_seen(&self, suite: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT first_seen FROM suites WHERE name = ?1")?
            .query_row([suite], |r| r.get(0))
            .optional()?)
    }

    /// Pin `run_id` as the baseline of `suite` (replacing any earlier pin).
    pub fn pin_baseline(&mut self, suite: &str, run_id: &str, at: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO baseline_pins (suite, run_id, pinned_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (suite) DO UPDATE SET run_id = excluded.run_id,
                 pinned_at = excluded.pinned_at",
            params![suite, run_id, at],
        )?;
        Ok(())
    }

    /// The pinned baseline run of `suite`.
    pub fn pinned_baseline(&self, suite: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT run_id FROM baseline_pins WHERE suite = ?1")?
            .query_row([suite], |r| r.get(0))
            .optional()?)
    }

    /// The open alert of a (suite, rule, provider, tag), if any.
    pub fn open_alert(
        &self,
        suite: &str,
        rule: &str,
        provider: &str,
        tag: Option<&str>,
    ) -> Result<Option<AlertRow>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "{ALERT_SELECT} WHERE suite = ?1 AND rule = ?2 AND provider = ?3 AND tag = ?4
                 AND resolved_at IS NULL"
            ))?
            .query_row(params![suite, rule, provider, tag.unwrap_or("")], alert_row)
            .optional()?)
    }

    /// Open alerts, of one suite or all, oldest first.
    pub fn open_alerts(&self, suite: Option<&str>) -> Result<Vec<AlertRow>, StoreError> {
        let rows = self
            .conn
            .prepare_cached(&format!(
                "{ALERT_SELECT} WHERE resolved_at IS NULL AND (?1 IS NULL OR suite = ?1)
                 ORDER BY id"
            ))?
            .query_map([suite], alert_row)?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Open an alert: the episode, its `alert` notice (built by `payload` from the new
    /// alert's id) and a pending delivery per sink, in one transaction. Returns the id.
    pub fn open_new_alert(
        &mut self,
        new: &NewAlert<'_>,
        payload: impl FnOnce(i64) -> String,
        sinks: &[String],
    ) -> Result<i64, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let id: i64 = tx.query_row(
            "INSERT INTO alerts (suite, rule, metric, provider, tag, severity, opened_at,
                 opened_run, last_seen_at, last_run, value, baseline_value, message)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?7, ?8, ?9, ?10, ?11) RETURNING id",
            params![
                new.suite,
                new.rule,
                new.metric,
                new.provider,
                new.tag.unwrap_or(""),
                new.severity,
                new.at,
                new.run_id,
                new.value,
                new.baseline_value,
                new.message
            ],
            |r| r.get(0),
        )?;
        add_notice(&tx, id, "alert", new.at, &payload(id), sinks)?;
        tx.commit()?;
        Ok(id)
    }

    /// An open alert still fires: remember when and its latest numbers (no notice).
    pub fn touch_alert(
        &mut self,
        id: i64,
        run_id: Option<&str>,
        at: &str,
        value: Option<f64>,
        baseline_value: Option<f64>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE alerts SET last_seen_at = ?2, last_run = ?3, value = ?4, baseline_value = ?5
             WHERE id = ?1",
            params![id, at, run_id, value, baseline_value],
        )?;
        Ok(())
    }

    /// Close an alert with its `resolved` notice and a pending delivery per sink.
    pub fn resolve_alert(
        &mut self,
        id: i64,
        run_id: Option<&str>,
        at: &str,
        payload: &str,
        sinks: &[String],
    ) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let changed = tx.execute(
            "UPDATE alerts SET resolved_at = ?2, resolved_run = ?3
             WHERE id = ?1 AND resolved_at IS NULL",
            params![id, at, run_id],
        )?;
        if changed == 1 {
            add_notice(&tx, id, "resolved", at, payload, sinks)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Deliveries not yet made, oldest first.
    pub fn pending_deliveries(&self) -> Result<Vec<PendingDelivery>, StoreError> {
        let rows = self
            .conn
            .prepare_cached(
                "SELECT d.id, d.sink, d.attempts, n.kind, n.payload, n.created_at
                 FROM alert_deliveries d JOIN alert_notices n ON n.id = d.notice_ref
                 WHERE d.delivered_at IS NULL ORDER BY d.id",
            )?
            .query_map([], |r| {
                Ok(PendingDelivery {
                    id: r.get(0)?,
                    sink: r.get(1)?,
                    attempts: codec::to_u32(r.get(2)?),
                    kind: r.get(3)?,
                    payload: r.get(4)?,
                    created_at: r.get(5)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Record a delivery attempt: delivered (`error` None) or failed with a reason (which
    /// must not contain a secret).
    pub fn record_delivery(
        &mut self,
        id: i64,
        at: &str,
        error: Option<&str>,
        attempts: u32,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE alert_deliveries SET attempts = attempts + ?4, last_attempt = ?2,
                 last_error = ?3, delivered_at = CASE WHEN ?3 IS NULL THEN ?2 END
             WHERE id = ?1",
            params![id, at, error, attempts],
        )?;
        Ok(())
    }

    /// Open alerts, then alerts resolved or opened since `since` (RFC 3339), newest first.
    pub fn recent_alerts(&self, since: &str, limit: usize) -> Result<Vec<AlertRow>, StoreError> {
        let rows = self
            .conn
            .prepare_cached(&format!(
                "{ALERT_SELECT} WHERE resolved_at IS NULL
                    OR julianday(resolved_at) >= julianday(?1)
                    OR julianday(opened_at) >= julianday(?1)
                 ORDER BY resolved_at IS NOT NULL, julianday(opened_at) DESC, id DESC
                 LIMIT ?2"
            ))?
            .query_map(params![since, codec::usize_to_i64(limit)], alert_row)?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Undelivered notices per sink.
    pub fn pending_by_sink(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let rows = self
            .conn
            .prepare_cached(
                "SELECT sink, count(*) FROM alert_deliveries WHERE delivered_at IS NULL
                 GROUP BY sink ORDER BY sink",
            )?
            .query_map([], |r| Ok((r.get(0)?, codec::to_u64(r.get(1)?))))?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_alert<'a>(rule: &'a str, at: &'a str) -> NewAlert<'a> {
        NewAlert {
            suite: "s",
            rule,
            metric: "pass_rate",
            provider: "p",
            tag: None,
            severity: "critical",
            run_id: Some("r1"),
            at,
            value: Some(0.8),
            baseline_value: Some(0.9),
            message: "dropped",
        }
    }

    #[test]
    fn alert_lifecycle_and_delivery_queue() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("h.db")).unwrap();
        assert!(store.open_alert("s", "r", "p", None).unwrap().is_none());
        let sinks = vec!["hook".to_owned(), "file".to_owned()];
        let id = store
            .open_new_alert(
                &new_alert("r", "2025-01-01T00:00:00Z"),
                |id| format!("{{\"alert_id\":{id}}}"),
                &sinks,
            )
            .unwrap();
        // One open episode per key: a second insert is refused by the unique index.
        assert!(
            store
                .open_new_alert(
                    &new_alert("r", "2025-01-01T00:00:01Z"),
                    |_| String::new(),
                    &sinks
                )
                .is_err()
        );
        let open = store.open_alert("s", "r", "p", None).unwrap().unwrap();
        assert_eq!(open.id, id);
        assert_eq!(open.tag, None);
        let pending = store.pending_deliveries().unwrap();
        assert_eq!(pending.len(), 2);
        assert_eq!(pending[0].payload, format!("{{\"alert_id\":{id}}}"));
        assert_eq!(pending[0].kind, "alert");
        store
            .record_delivery(pending[0].id, "2025-01-01T00:00:02Z", None, 1)
            .unwrap();
        store
            .record_delivery(pending[1].id, "2025-01-01T00:00:02Z", Some("refused"), 3)
            .unwrap();
        let left = store.pending_deliveries().unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].sink, "file");
        assert_eq!(left[0].attempts, 3);
        assert_eq!(
            store.pending_by_sink().unwrap(),
            vec![("file".to_owned(), 1)]
        );
        store
            .touch_alert(id, Some("r2"), "2025-01-02T00:00:00Z", Some(0.7), Some(0.9))
            .unwrap();
        store
            .resolve_alert(id, Some("r3"), "2025-01-03T00:00:00Z", "{}", &sinks)
            .unwrap();
        // Resolving twice writes one notice.
        store
            .resolve_alert(id, Some("r4"), "2025-01-04T00:00:00Z", "{}", &sinks)
            .unwrap();
        assert!(store.open_alert("s", "r", "p", None).unwrap().is_none());
        assert_eq!(store.pending_deliveries().unwrap().len(), 3);
        let recent = store.recent_alerts("2025-01-01T00:00:00Z", 10).unwrap();
        assert_eq!(recent.len(), 1);
        assert_eq!(recent[0].resolved_run.as_deref(), Some("r3"));
        assert_eq!(recent[0].last_run.as_deref(), Some("r2"));
        assert_eq!(recent[0].value, Some(0.7));
        // A new episode may open once the old one is closed.
        store
            .open_new_alert(
                &new_alert("r", "2025-01-05T00:00:00Z"),
                |_| "{}".into(),
                &[],
            )
            .unwrap();
        assert_eq!(store.open_alerts(Some("s")).unwrap().len(), 1);
        assert!(store.open_alerts(Some("other")).unwrap().is_empty());
    }

    #[test]
    fn pins_replace_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("h.db")).unwrap();
        assert_eq!(store.pinned_baseline("s").unwrap(), None);
        store
            .pin_baseline("s", "a", "2025-01-01T00:00:00Z")
            .unwrap();
        store
            .pin_baseline("s", "b", "2025-01-02T00:00:00Z")
            .unwrap();
        assert_eq!(store.pinned_baseline("s").unwrap().as_deref(), Some("b"));
        assert_eq!(store.suite_first_seen("s").unwrap(), None);
        assert!(store.latest_complete_run("s").unwrap().is_none());
    }
}

// Rows of alert state.

/// One alert episode.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    pub id: i64,
    pub suite: String,
    pub rule: String,
    pub metric: String,
    pub provider: String,
    pub tag: Option<String>,
    pub severity: String,
    pub opened_at: String,
    pub opened_run: Option<String>,
    pub last_seen_at: String,
    pub last_run: Option<String>,
    pub value: Option<f64>,
    pub baseline_value: Option<f64>,
    pub message: String,
    pub resolved_at: Option<String>,
    pub resolved_run: Option<String>,
}

/// What opening an alert records.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlert<'a> {
    pub suite: &'a str,
    pub rule: &'a str,
    pub metric: &'a str,
    pub provider: &'a str,
    pub tag: Option<&'a str>,
    pub severity: &'a str,
    pub run_id: Option<&'a str>,
    pub at: &'a str,
    pub value: Option<f64>,
    pub baseline_value: Option<f64>,
    pub message: &'a str,
}

/// A notice not yet delivered to one sink.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingDelivery {
    pub id: i64,
    pub sink: String,
    pub attempts: u32,
    /// `alert` or `resolved`.
    pub kind: String,
    pub payload: String,
    pub created_at: String,
}
