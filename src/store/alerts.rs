//! Alert state and the queue of undelivered notices.
//!
//! An alert is an episode: opened when a rule starts firing for a (suite, rule, provider,
//! tag), closed when it stops. Opening and closing each write a notice (the JSON payload the
//! sinks receive) and one pending delivery per sink, in one transaction, so that a notice is
//! never lost between being decided and being sent.

use super::db::{OptionalExtension, TransactionBehavior, params};

use super::codec::{self, RUN_SELECT, RawRun};
use super::{Store, StoreError};
use crate::model::{AlertRow, RunInfo};

pub(super) const ALERT_SELECT: &str =
    "SELECT id, suite, rule, metric, provider, tag, severity, opened_at,
    opened_run, last_seen_at, last_run, value, baseline_value, message, resolved_at,
    resolved_run FROM alerts";

pub(super) fn alert_row(r: &super::db::Row<'_>) -> Result<AlertRow, super::db::DbError> {
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
    tx: &super::db::Tx<'_>,
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
    /// The payload of the newest notice of `kind` (`alert` or `resolved`) of alert `id`: what
    /// the sinks were told when it opened or resolved.
    pub fn alert_notice_payload(&self, id: i64, kind: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT payload FROM alert_notices WHERE alert_ref = ?1 AND kind = ?2
                 ORDER BY id DESC LIMIT 1",
            )?
            .query_row(params![id, kind], |r| r.get(0))
            .optional()?)
    }

    /// Complete runs of the whole `suite` (not filtered) started before `before` (RFC 3339),
    /// newest first, at most `limit`.
    pub fn complete_runs_before(
        &self,
        suite: &str,
        before: &str,
        limit: usize,
    ) -> Result<Vec<RunInfo>, StoreError> {
        let sql = format!(
            "{RUN_SELECT} WHERE s.name = ?1 AND r.status = 'complete' AND r.case_filter IS NULL
               AND r.started_ms < ?2
             ORDER BY r.started_ms DESC NULLS LAST, r.id DESC LIMIT ?3"
        );
        // Text that is not a time is before nothing (NULL), as `julianday` had it.
        let before = codec::time_ms(before);
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

    /// The newest complete run of the whole `suite` (not filtered).
    pub fn latest_complete_run(&self, suite: &str) -> Result<Option<RunInfo>, StoreError> {
        let sql = format!(
            "{RUN_SELECT} WHERE s.name = ?1 AND r.status = 'complete' AND r.case_filter IS NULL
             ORDER BY r.started_ms DESC NULLS LAST, r.id DESC LIMIT 1"
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

    /// Ids of the runs of `suite` during which a `pass_rate` alert of `provider` and `tag`
    /// was firing (from the run that opened it to the last run that saw it fire).
    pub fn pass_rate_alerted_runs(
        &self,
        suite: &str,
        provider: &str,
        tag: Option<&str>,
    ) -> Result<Vec<String>, StoreError> {
        let rows = self
            .conn
            .prepare_cached(
                "SELECT DISTINCT r.run_id FROM alerts a
                 JOIN runs ro ON ro.run_id = a.opened_run
                 JOIN runs rl ON rl.run_id = a.last_run
                 JOIN suites s ON s.name = a.suite
                 JOIN runs r ON r.suite_ref = s.id
                 WHERE a.suite = ?1 AND a.provider = ?2 AND a.tag = ?3 AND a.metric = 'pass_rate'
                   AND r.started_ms BETWEEN ro.started_ms AND rl.started_ms",
            )?
            .query_map(params![suite, provider, tag.unwrap_or("")], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Replace the known-flaky cases of `suite` with `cases` ((provider, case id)), as the
    /// alert evaluation of run `run_id` counted them.
    pub fn set_known_flaky(
        &mut self,
        suite: &str,
        run_id: &str,
        cases: &[(String, String)],
    ) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM alert_known_flaky WHERE suite = ?1", [suite])?;
        {
            let mut add = tx.prepare_cached(
                "INSERT INTO alert_known_flaky (suite, provider, case_id, run_id)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
            )?;
            for (provider, case) in cases {
                add.execute(params![suite, provider, case, run_id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The known-flaky cases of `suite`: (provider, case id, run id), by provider and case.
    pub fn known_flaky(&self, suite: &str) -> Result<Vec<(String, String, String)>, StoreError> {
        let rows = self
            .conn
            .prepare_cached(
                "SELECT provider, case_id, run_id FROM alert_known_flaky WHERE suite = ?1
                 ORDER BY provider, case_id",
            )?
            .query_map([suite], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Open alerts, of one suite or all, oldest first.
    pub fn open_alerts(&self, suite: Option<&str>) -> Result<Vec<AlertRow>, StoreError> {
        let rows = self
            .conn
            .prepare_cached(&format!(
                "{ALERT_SELECT} WHERE resolved_at IS NULL AND (CAST(?1 AS TEXT) IS NULL OR suite = ?1)
                 ORDER BY id"
            ))?
            .query_map([suite], alert_row)?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Open an alert: the episode, its `alert` notice (built by `payload` from the new
    /// alert's id) and a pending delivery per sink, in one transaction. Returns the id, or
    /// `None` when the alert is open already: another process (another host, on a shared
    /// store) opened it since the caller looked. The unique key on open alerts decides, in
    /// the insert itself, so that an alert is opened, and its notice sent, once.
    pub fn open_new_alert(
        &mut self,
        new: &NewAlert<'_>,
        payload: impl FnOnce(i64) -> String,
        sinks: &[String],
    ) -> Result<Option<i64>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let id: Option<i64> = tx
            .query_row(
                "INSERT INTO alerts (suite, rule, metric, provider, tag, severity, opened_at,
                 opened_run, last_seen_at, last_run, value, baseline_value, message)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (suite, rule, provider, tag) WHERE resolved_at IS NULL DO NOTHING
             RETURNING id",
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
            )
            .optional()?;
        let Some(id) = id else {
            return Ok(None);
        };
        add_notice(&tx, id, "alert", new.at, &payload(id), sinks)?;
        tx.commit()?;
        Ok(Some(id))
    }

    /// The message of the last run that saw alert `id` still firing, if one did.
    pub fn alert_last_message(&self, id: i64) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT last_message FROM alerts WHERE id = ?1")?
            .query_row([id], |r| r.get::<_, Option<String>>(0))
            .optional()?
            .flatten())
    }

    /// An open alert still fires: remember when, its latest numbers and, when a suite's run
    /// gave it one, that run's message (no notice; without a message the last one stays).
    pub fn touch_alert(
        &mut self,
        id: i64,
        run_id: Option<&str>,
        at: &str,
        (value, baseline_value): (Option<f64>, Option<f64>),
        message: Option<&str>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE alerts SET last_seen_at = ?2, last_run = ?3, value = ?4, baseline_value = ?5,
                               last_message = COALESCE(?6, last_message)
             WHERE id = ?1",
            params![id, at, run_id, value, baseline_value, message],
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
                "SELECT d.id, d.sink, d.attempts, n.kind, n.payload, n.created_at,
                     d.failed_rounds, d.next_attempt_at
                 FROM alert_deliveries d JOIN alert_notices n ON n.id = d.notice_ref
                 WHERE d.delivered_at IS NULL ORDER BY d.id",
            )?
            .query_map((), |r| {
                Ok(PendingDelivery {
                    id: r.get(0)?,
                    sink: r.get(1)?,
                    attempts: codec::to_u32(r.get(2)?),
                    kind: r.get(3)?,
                    payload: r.get(4)?,
                    created_at: r.get(5)?,
                    failed_rounds: codec::to_u32(r.get(6)?),
                    next_attempt_at: r.get(7)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Claim a pending delivery for `owner` until `until` (RFC 3339), before sending it:
    /// true when this caller may send it. Refused when it is delivered, claimed by a sender
    /// whose claim has not expired, waiting for its backoff (`next_attempt_at` after `now`,
    /// unless `ignore_backoff`), or when an earlier notice to the same sink is still
    /// pending (a sink's notices go out in order). One statement, so that of concurrent
    /// claimants exactly one wins.
    pub fn claim_delivery(
        &mut self,
        id: i64,
        owner: &str,
        now: &str,
        until: &str,
        ignore_backoff: bool,
    ) -> Result<bool, StoreError> {
        let changed = self.conn.execute(
            "UPDATE alert_deliveries SET claimed_by = ?2, claimed_until = ?4
             WHERE id = ?1 AND delivered_at IS NULL
               AND (claimed_until IS NULL
                    OR julianday(claimed_until) <= julianday(CAST(?3 AS TEXT)))
               AND (?5 OR next_attempt_at IS NULL
                    OR julianday(next_attempt_at) <= julianday(CAST(?3 AS TEXT)))
               AND NOT EXISTS (SELECT 1 FROM alert_deliveries e
                               WHERE e.sink = alert_deliveries.sink
                                 AND e.id < alert_deliveries.id AND e.delivered_at IS NULL)",
            params![id, owner, now, until, ignore_backoff],
        )?;
        Ok(changed == 1)
    }

    /// Record a delivery round of a claimed delivery and release the claim: delivered
    /// (`error` None) or failed with a reason (which must not contain a secret) and the
    /// time before which it is not tried again (`next_attempt`).
    pub fn record_delivery(
        &mut self,
        id: i64,
        at: &str,
        error: Option<&str>,
        attempts: u32,
        next_attempt: Option<&str>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE alert_deliveries SET attempts = attempts + ?4, last_attempt = ?2,
                 last_error = ?3,
                 delivered_at = CASE WHEN CAST(?3 AS TEXT) IS NULL THEN ?2 END,
                 failed_rounds = CASE WHEN CAST(?3 AS TEXT) IS NULL THEN failed_rounds
                                      ELSE failed_rounds + 1 END,
                 next_attempt_at = CASE WHEN CAST(?3 AS TEXT) IS NULL THEN NULL ELSE ?5 END,
                 claimed_by = NULL, claimed_until = NULL
             WHERE id = ?1",
            params![id, at, error, attempts, next_attempt],
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
                 ORDER BY resolved_at IS NOT NULL, julianday(opened_at) DESC NULLS LAST, id DESC
                 LIMIT ?2"
            ))?
            .query_map(params![since, codec::usize_to_i64(limit)], alert_row)?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Undelivered notices per sink, with the oldest one's last error and next attempt.
    pub fn pending_by_sink(&self) -> Result<Vec<SinkBacklog>, StoreError> {
        let rows = self
            .conn
            .prepare_cached(
                "SELECT d.sink, count(*),
                     (SELECT o.last_error FROM alert_deliveries o
                      WHERE o.sink = d.sink AND o.delivered_at IS NULL ORDER BY o.id LIMIT 1),
                     (SELECT o.next_attempt_at FROM alert_deliveries o
                      WHERE o.sink = d.sink AND o.delivered_at IS NULL ORDER BY o.id LIMIT 1)
                 FROM alert_deliveries d WHERE d.delivered_at IS NULL
                 GROUP BY d.sink ORDER BY d.sink",
            )?
            .query_map((), |r| {
                Ok(SinkBacklog {
                    sink: r.get(0)?,
                    notices: codec::to_u64(r.get(1)?),
                    last_error: r.get(2)?,
                    next_attempt_at: r.get(3)?,
                })
            })?
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
            .unwrap()
            .expect("opened");
        // One open episode per key: a second open (another process's) does nothing, and
        // sends no second notice.
        assert_eq!(
            store
                .open_new_alert(
                    &new_alert("r", "2025-01-01T00:00:01Z"),
                    |_| String::new(),
                    &sinks
                )
                .unwrap(),
            None
        );
        let open = store.open_alert("s", "r", "p", None).unwrap().unwrap();
        assert_eq!(open.id, id);
        assert_eq!(open.tag, None);
        let pending = store.pending_deliveries().unwrap();
        assert_eq!(pending.len(), 2);
        assert_eq!(pending[0].payload, format!("{{\"alert_id\":{id}}}"));
        assert_eq!(pending[0].kind, "alert");
        store
            .record_delivery(pending[0].id, "2025-01-01T00:00:02Z", None, 1, None)
            .unwrap();
        store
            .record_delivery(
                pending[1].id,
                "2025-01-01T00:00:02Z",
                Some("refused"),
                3,
                Some("2025-01-01T00:01:00Z"),
            )
            .unwrap();
        let left = store.pending_deliveries().unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].sink, "file");
        assert_eq!(left[0].attempts, 3);
        assert_eq!(left[0].failed_rounds, 1);
        assert_eq!(
            store.pending_by_sink().unwrap(),
            vec![SinkBacklog {
                sink: "file".to_owned(),
                notices: 1,
                last_error: Some("refused".into()),
                next_attempt_at: Some("2025-01-01T00:01:00Z".into()),
            }]
        );
        store
            .touch_alert(
                id,
                Some("r2"),
                "2025-01-02T00:00:00Z",
                (Some(0.7), Some(0.9)),
                None,
            )
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
    fn a_delivery_is_claimed_by_one_sender_in_order_and_after_its_backoff() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let mut a = Store::open(&path).unwrap();
        let mut b = Store::open(&path).unwrap();
        let sinks = vec!["hook".to_owned()];
        let id = a
            .open_new_alert(
                &new_alert("r", "2025-01-01T00:00:00Z"),
                |_| "{}".into(),
                &sinks,
            )
            .unwrap()
            .expect("opened");
        a.resolve_alert(id, Some("r2"), "2025-01-01T00:00:01Z", "{}", &sinks)
            .unwrap();
        let p = a.pending_deliveries().unwrap();
        let (first, second) = (p[0].id, p[1].id);
        let (now, until) = ("2025-01-01T00:00:02Z", "2025-01-01T00:01:00Z");
        // The second notice waits for the first (order per sink).
        assert!(!b.claim_delivery(second, "b", now, until, false).unwrap());
        assert!(a.claim_delivery(first, "a", now, until, false).unwrap());
        // Claimed: nobody else sends it, not even the same store again.
        assert!(!b.claim_delivery(first, "b", now, until, false).unwrap());
        // A claim that expired (its sender died) is taken over.
        assert!(
            b.claim_delivery(
                first,
                "b",
                "2025-01-01T00:02:00Z",
                "2025-01-01T00:03:00Z",
                false
            )
            .unwrap()
        );
        // A failed round releases the claim and sets the backoff.
        b.record_delivery(
            first,
            now,
            Some("timed out"),
            1,
            Some("2025-01-01T00:10:00Z"),
        )
        .unwrap();
        assert!(
            !a.claim_delivery(
                first,
                "a",
                "2025-01-01T00:05:00Z",
                "2025-01-01T00:06:00Z",
                false
            )
            .unwrap()
        );
        assert!(
            a.claim_delivery(
                first,
                "a",
                "2025-01-01T00:05:00Z",
                "2025-01-01T00:06:00Z",
                true
            )
            .unwrap()
        );
        a.record_delivery(first, now, None, 1, None).unwrap();
        // Delivered: never claimed again; the next one in line may go.
        assert!(
            !b.claim_delivery(
                first,
                "b",
                "2025-01-02T00:00:00Z",
                "2025-01-02T00:01:00Z",
                true
            )
            .unwrap()
        );
        assert!(b.claim_delivery(second, "b", now, until, false).unwrap());
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
    /// Delivery rounds that failed so far (the backoff grows with them).
    pub failed_rounds: u32,
    /// Not tried again before this (RFC 3339), after a failed round.
    pub next_attempt_at: Option<String>,
}

/// The undelivered notices of one sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkBacklog {
    pub sink: String,
    pub notices: u64,
    /// Why the oldest one is not delivered yet.
    pub last_error: Option<String>,
    /// When it is tried again, at the earliest.
    pub next_attempt_at: Option<String>,
}
