//! Scheduler leases (a suite never overlaps itself), window claims (a window runs once
//! among many schedulers) and fire records.
//!
//! A lease is one row per suite. It is read, then written by one statement that only
//! succeeds when the row is still what was read: an insert that does nothing when a row
//! appeared meanwhile, or an update of the token that was read. On SQLite the immediate
//! transaction already lets one process at a time through; on PostgreSQL (READ COMMITTED,
//! many hosts) the statement is what decides, and of two takers exactly one gets the row.
//! A row whose holder is gone (the caller decides, from pid and host) or whose heartbeat
//! expired is taken over. On PostgreSQL every time in these rows is the database server's
//! ([`Store::clock_now`]), so that hosts whose clocks disagree still agree on expiry.

use std::time::Duration;

use super::db::{OptionalExtension, TransactionBehavior, params};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};

use super::{Store, StoreError};
use crate::model::RunStatus;

/// A lease as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    pub suite: String,
    pub token: String,
    pub pid: u32,
    pub host: String,
    pub acquired_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What [`Store::take_lease`] came to: `Ok(replaced)` when taken (`replaced` is the lease
/// of a holder that died or stopped its heartbeat), `Err(holder)` when a live holder has it.
/// (A plain `Result`, so that callers outside the store need not name a type.)
pub type LeaseTake = Result<Option<LeaseRow>, LeaseRow>;

/// A fire record as stored: what happened to one scheduled window of one suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FireRow {
    pub suite: String,
    pub scheduled_for: DateTime<Utc>,
    pub fired_at: DateTime<Utc>,
    /// `ran`, `missed`, `skipped`, `busy`, `failed` or `interrupted`.
    pub outcome: String,
    pub run_id: Option<String>,
    pub detail: Option<String>,
}

/// A window claim as stored: which scheduler handles one window of one suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRow {
    pub suite: String,
    pub scheduled_for: DateTime<Utc>,
    pub token: String,
    pub host: String,
    pub pid: u32,
    pub claimed_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Its fire record is written: the window is done with.
    pub done: bool,
}

/// What [`Store::claim_window`] came to: `Ok(replaced)` when this caller handles the window
/// (`replaced`: the claim of a holder that died), `Err(holder)` when another has it.
pub type ClaimTake = Result<Option<ClaimRow>, ClaimRow>;

type RawClaim = (String, String, String, String, i64, String, String, i64);

fn claim_of(raw: RawClaim) -> Result<ClaimRow, StoreError> {
    let (suite, window, token, host, pid, claimed, expires, done) = raw;
    Ok(ClaimRow {
        scheduled_for: parse_ts(&window, "a claim's window")?,
        claimed_at: parse_ts(&claimed, "a claim's time")?,
        expires_at: parse_ts(&expires, "a claim's expiry")?,
        suite,
        token,
        host,
        pid: u32::try_from(pid).unwrap_or(0),
        done: done != 0,
    })
}

const CLAIM_SELECT: &str =
    "SELECT suite, scheduled_for, token, host, pid, claimed_at, expires_at, done
     FROM schedule_claims";

fn raw_claim(r: &super::db::Row<'_>) -> Result<RawClaim, super::db::DbError> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

/// The latest run of a suite, as the scheduler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunStart {
    pub run_id: String,
    pub started_at: DateTime<Utc>,
    pub status: RunStatus,
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_ts(s: &str, what: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Other(format!("read {what}: `{s}` is not an RFC 3339 time: {e}")))
}

fn ttl_delta(ttl: Duration) -> TimeDelta {
    TimeDelta::from_std(ttl).unwrap_or(TimeDelta::days(1))
}

/// Raw columns of a lease row.
type RawLease = (String, String, i64, String, String, String, String);

fn lease_of(raw: RawLease) -> Result<LeaseRow, StoreError> {
    let (suite, token, pid, host, acquired, heartbeat, expires) = raw;
    Ok(LeaseRow {
        acquired_at: parse_ts(&acquired, "a lease's start")?,
        heartbeat_at: parse_ts(&heartbeat, "a lease's heartbeat")?,
        expires_at: parse_ts(&expires, "a lease's expiry")?,
        suite,
        token,
        pid: u32::try_from(pid).unwrap_or(0),
        host,
    })
}

const LEASE_SELECT: &str = "SELECT suite, token, pid, host, acquired_at, heartbeat_at, expires_at
     FROM schedule_leases";

fn raw_lease(r: &super::db::Row<'_>) -> Result<RawLease, super::db::DbError> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

type RawFire = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

fn fire_of(raw: RawFire) -> Result<FireRow, StoreError> {
    let (suite, scheduled, fired, outcome, run_id, detail) = raw;
    Ok(FireRow {
        scheduled_for: parse_ts(&scheduled, "a fire's window")?,
        fired_at: parse_ts(&fired, "a fire's time")?,
        suite,
        outcome,
        run_id,
        detail,
    })
}

const FIRE_SELECT: &str =
    "SELECT suite, scheduled_for, fired_at, outcome, run_id, detail FROM schedule_fires";

fn raw_fire(r: &super::db::Row<'_>) -> Result<RawFire, super::db::DbError> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

impl Store {
    /// The time leases, claims and their expiries are written in: the database server's
    /// clock on PostgreSQL (one clock for every host sharing the store), this machine's on
    /// SQLite.
    pub fn clock_now(&self) -> Result<DateTime<Utc>, StoreError> {
        if !self.conn.is_pg() {
            return Ok(Utc::now());
        }
        let now: String = self.conn.query_row(
            "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')",
            (),
            |r| r.get(0),
        )?;
        parse_ts(&now, "the database server's clock")
    }

    /// Take the lease of `suite` for the process `pid` on `host`, valid until `now + ttl`
    /// unless renewed. An existing lease is taken over when it expired or `holder_gone`
    /// says its holder no longer exists; otherwise the holder is returned as `Err`.
    #[allow(clippy::too_many_arguments)]
    pub fn take_lease(
        &mut self,
        suite: &str,
        token: &str,
        pid: u32,
        host: &str,
        now: DateTime<Utc>,
        ttl: Duration,
        holder_gone: impl Fn(&LeaseRow) -> bool,
    ) -> Result<LeaseTake, StoreError> {
        // Another process may take or release the row between the read and the write
        // (PostgreSQL): then read again. Three turns are plenty.
        for _ in 0..3 {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let read = |tx: &super::db::Tx<'_>| {
                tx.query_row(
                    &format!("{LEASE_SELECT} WHERE suite = ?1"),
                    [suite],
                    raw_lease,
                )
                .optional()?
                .map(lease_of)
                .transpose()
            };
            let existing = read(&tx)?;
            if let Some(row) = &existing
                && row.expires_at > now
                && !holder_gone(row)
            {
                return Ok(Err(row.clone()));
            }
            let (from, until) = (ts(now), ts(now + ttl_delta(ttl)));
            let taken = match &existing {
                None => tx.execute(
                    "INSERT INTO schedule_leases
                         (suite, token, pid, host, acquired_at, heartbeat_at, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6) ON CONFLICT (suite) DO NOTHING",
                    params![suite, token, pid, host, from, until],
                )?,
                Some(old) => tx.execute(
                    "UPDATE schedule_leases SET token = ?2, pid = ?3, host = ?4,
                         acquired_at = ?5, heartbeat_at = ?5, expires_at = ?6
                     WHERE suite = ?1 AND token = ?7",
                    params![suite, token, pid, host, from, until, old.token],
                )?,
            };
            if taken == 1 {
                tx.commit()?;
                return Ok(Ok(existing));
            }
            if let Some(holder) = read(&tx)? {
                return Ok(Err(holder));
            }
        }
        Err(StoreError::Other(format!(
            "take the lease of suite `{suite}`: it changed hands three times while being taken; try again"
        )))
    }

    /// Mark incomplete the runs left `running` whose suite has no live lease since `stale`
    /// (`now` minus the lease time): a run holds its suite's lease from before its row is
    /// written until it is stored, so such a run's process died (kill -9, a lost host)
    /// without a heartbeat since. Returns (run id, pid, host) of each.
    pub fn reap_leaseless_runs(
        &mut self,
        now: DateTime<Utc>,
        stale: DateTime<Utc>,
    ) -> Result<Vec<(String, u32, String)>, StoreError> {
        let rows: Vec<(String, Option<i64>, Option<String>)> = self
            .conn
            .prepare_cached(
                "UPDATE runs SET status = 'incomplete'
                 WHERE status = 'running' AND started_ms <= ?2
                   AND NOT EXISTS (
                       SELECT 1 FROM schedule_leases l JOIN suites s ON s.name = l.suite
                       WHERE s.id = runs.suite_ref
                         AND julianday(l.expires_at) > julianday(?1))
                 RETURNING run_id, pid, host",
            )?
            .query_map(params![ts(now), stale.timestamp_millis()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows
            .into_iter()
            .map(|(id, pid, host)| {
                (
                    id,
                    pid.and_then(|p| u32::try_from(p).ok()).unwrap_or(0),
                    host.unwrap_or_default(),
                )
            })
            .collect())
    }

    /// Push the expiry of a lease this taker holds to `now + ttl`. `false` when the lease
    /// is no longer ours (it expired and was taken over).
    pub fn renew_lease(
        &mut self,
        suite: &str,
        token: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE schedule_leases SET heartbeat_at = ?3, expires_at = ?4
             WHERE suite = ?1 AND token = ?2",
            params![suite, token, ts(now), ts(now + ttl_delta(ttl))],
        )?;
        Ok(n > 0)
    }

    /// Give a lease back. `false` when it was not ours any more.
    pub fn release_lease(&mut self, suite: &str, token: &str) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "DELETE FROM schedule_leases WHERE suite = ?1 AND token = ?2",
            params![suite, token],
        )?;
        Ok(n > 0)
    }

    /// Every lease, by suite.
    pub fn leases(&self) -> Result<Vec<LeaseRow>, StoreError> {
        let raws: Vec<RawLease> = self
            .conn
            .prepare_cached(&format!("{LEASE_SELECT} ORDER BY suite"))?
            .query_map((), raw_lease)?
            .collect::<Result<_, _>>()?;
        raws.into_iter().map(lease_of).collect()
    }

    /// Claim the window `scheduled_for` of `suite` for the taker `token` (process `pid` on
    /// `host`) before handling it: of the schedulers sharing the store, the one whose
    /// insert makes the row handles the window. A claim not done is taken over when it
    /// expired (`now` past `claimed_at + ttl`) and no live lease holds the suite (its
    /// holder died before its run was stored). One statement decides either way, so that
    /// of concurrent takers exactly one wins, on SQLite and PostgreSQL alike.
    #[allow(clippy::too_many_arguments)]
    pub fn claim_window(
        &mut self,
        suite: &str,
        scheduled_for: DateTime<Utc>,
        token: &str,
        pid: u32,
        host: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<ClaimTake, StoreError> {
        let window = ts(scheduled_for);
        let (from, until) = (ts(now), ts(now + ttl_delta(ttl)));
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let inserted = tx.execute(
            "INSERT INTO schedule_claims
                 (suite, scheduled_for, token, host, pid, claimed_at, expires_at, done)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0)
             ON CONFLICT (suite, scheduled_for) DO NOTHING",
            params![suite, window, token, host, pid, from, until],
        )?;
        if inserted == 1 {
            tx.commit()?;
            return Ok(Ok(None));
        }
        let read = |tx: &super::db::Tx<'_>| {
            tx.query_row(
                &format!("{CLAIM_SELECT} WHERE suite = ?1 AND scheduled_for = ?2"),
                [suite, window.as_str()],
                raw_claim,
            )
            .optional()?
            .map(claim_of)
            .transpose()
        };
        let Some(held) = read(&tx)? else {
            // Deleted since (an interrupted run's): the next tick claims it.
            return Err(StoreError::Other(format!(
                "claim the window {window} of suite `{suite}`: it was released while being claimed; it is claimed at the next tick"
            )));
        };
        let leased: Option<String> = tx
            .query_row(
                "SELECT expires_at FROM schedule_leases WHERE suite = ?1",
                [suite],
                |r| r.get(0),
            )
            .optional()?;
        let lease_live = match leased {
            Some(expires) => parse_ts(&expires, "a lease's expiry")? > now,
            None => false,
        };
        if held.done || held.expires_at > now || lease_live {
            return Ok(Err(held));
        }
        let taken = tx.execute(
            "UPDATE schedule_claims SET token = ?3, host = ?4, pid = ?5, claimed_at = ?6,
                 expires_at = ?7
             WHERE suite = ?1 AND scheduled_for = ?2 AND token = ?8 AND done = 0",
            params![suite, window, token, host, pid, from, until, held.token],
        )?;
        if taken == 1 {
            tx.commit()?;
            return Ok(Ok(Some(held)));
        }
        match read(&tx)? {
            Some(now_held) => Ok(Err(now_held)),
            None => Ok(Err(held)),
        }
    }

    /// The claim of a handled window is done (`keep`), or given back so that the window
    /// is handled again (an interrupted run). Only the taker `token`'s claim is touched.
    pub fn finish_claim(
        &mut self,
        suite: &str,
        scheduled_for: DateTime<Utc>,
        token: &str,
        keep: bool,
    ) -> Result<(), StoreError> {
        let sql = if keep {
            "UPDATE schedule_claims SET done = 1
             WHERE suite = ?1 AND scheduled_for = ?2 AND token = ?3"
        } else {
            "DELETE FROM schedule_claims WHERE suite = ?1 AND scheduled_for = ?2 AND token = ?3"
        };
        self.conn
            .execute(sql, params![suite, ts(scheduled_for), token])?;
        Ok(())
    }

    /// Every window claim, by suite and window.
    pub fn claims(&self) -> Result<Vec<ClaimRow>, StoreError> {
        let raws: Vec<RawClaim> = self
            .conn
            .prepare_cached(&format!(
                "{CLAIM_SELECT} ORDER BY suite, julianday(scheduled_for) NULLS FIRST"
            ))?
            .query_map((), raw_claim)?
            .collect::<Result<_, _>>()?;
        raws.into_iter().map(claim_of).collect()
    }

    /// Record what happened to the window `scheduled_for` of `suite` (`outcome`: see
    /// [`FireRow`]).
    pub fn record_fire(
        &mut self,
        suite: &str,
        scheduled_for: DateTime<Utc>,
        fired_at: DateTime<Utc>,
        outcome: &str,
        run_id: Option<&str>,
        detail: Option<&str>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO schedule_fires (suite, scheduled_for, fired_at, outcome, run_id, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                suite,
                ts(scheduled_for),
                ts(fired_at),
                outcome,
                run_id,
                detail
            ],
        )?;
        Ok(())
    }

    /// Fire records, newest window first, of one suite or all; at most `limit` (0: all).
    pub fn fires(&self, suite: Option<&str>, limit: usize) -> Result<Vec<FireRow>, StoreError> {
        // No limit is the largest (PostgreSQL refuses SQLite's -1).
        let limit = if limit == 0 {
            i64::MAX
        } else {
            i64::try_from(limit).unwrap_or(i64::MAX)
        };
        let raws: Vec<RawFire> = self
            .conn
            .prepare_cached(&format!(
                "{FIRE_SELECT} WHERE (CAST(?1 AS TEXT) IS NULL OR suite = ?1)
                 ORDER BY julianday(scheduled_for) DESC NULLS LAST, id DESC LIMIT ?2"
            ))?
            .query_map(params![suite, limit], raw_fire)?
            .collect::<Result<_, _>>()?;
        raws.into_iter().map(fire_of).collect()
    }

    /// The fire record of the latest window that is done with (any outcome but
    /// `interrupted`, whose window is retried).
    pub fn last_handled_fire(&self, suite: &str) -> Result<Option<FireRow>, StoreError> {
        self.conn
            .prepare_cached(&format!(
                "{FIRE_SELECT} WHERE suite = ?1 AND outcome <> 'interrupted'
                 ORDER BY julianday(scheduled_for) DESC NULLS LAST, id DESC LIMIT 1"
            ))?
            .query_row([suite], raw_fire)
            .optional()?
            .map(fire_of)
            .transpose()
    }

    /// The fire record of the latest window with this outcome (`ran`, ...).
    pub fn last_fire_with(
        &self,
        suite: &str,
        outcome: &str,
    ) -> Result<Option<FireRow>, StoreError> {
        self.conn
            .prepare_cached(&format!(
                "{FIRE_SELECT} WHERE suite = ?1 AND outcome = ?2
                 ORDER BY julianday(scheduled_for) DESC NULLS LAST, id DESC LIMIT 1"
            ))?
            .query_row([suite, outcome], raw_fire)
            .optional()?
            .map(fire_of)
            .transpose()
    }

    /// The latest run of a suite, manual or scheduled; with `counted_only`, skipping
    /// incomplete runs (interrupted or crashed: they do not count as having run).
    pub fn last_run_start(
        &self,
        suite: &str,
        counted_only: bool,
    ) -> Result<Option<RunStart>, StoreError> {
        let row: Option<(String, String, String)> = self
            .conn
            .prepare_cached(
                "SELECT r.run_id, r.started_at, r.status FROM runs r
                 JOIN suites s ON s.id = r.suite_ref
                 WHERE s.name = ?1 AND (?2 = 0 OR r.status <> 'incomplete')
                 ORDER BY r.started_ms DESC NULLS LAST, r.id DESC LIMIT 1",
            )?
            .query_row(params![suite, counted_only], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        row.map(|(run_id, started, status)| {
            let status = RunStatus::parse(&status).ok_or_else(|| {
                StoreError::Other(format!(
                    "read run {run_id}: unknown run status '{status}' in the store"
                ))
            })?;
            Ok(RunStart {
                started_at: parse_ts(&started, "a run's start")?,
                run_id,
                status,
            })
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("h.db")).unwrap();
        (dir, store)
    }

    const TTL: Duration = Duration::from_secs(90);

    #[test]
    fn a_live_lease_is_refused_then_released_and_taken() {
        let (_d, mut s) = store();
        let now = at("2030-01-01T06:00:00Z");
        let first = s
            .take_lease("faq", "t1", 100, "h", now, TTL, |_| false)
            .unwrap();
        assert_eq!(first, Ok(None));
        let row = s
            .take_lease("faq", "t2", 200, "h", now, TTL, |_| false)
            .unwrap()
            .expect_err("taken twice");
        assert_eq!((row.pid, row.token.as_str()), (100, "t1"));
        assert_eq!(row.expires_at, at("2030-01-01T06:01:30Z"));
        // Another suite is not blocked.
        assert!(matches!(
            s.take_lease("other", "t3", 200, "h", now, TTL, |_| false)
                .unwrap(),
            Ok(None)
        ));
        assert!(!s.release_lease("faq", "t2").unwrap(), "not t2's lease");
        assert!(s.release_lease("faq", "t1").unwrap());
        assert!(matches!(
            s.take_lease("faq", "t2", 200, "h", now, TTL, |_| false)
                .unwrap(),
            Ok(None)
        ));
        assert_eq!(s.leases().unwrap().len(), 2);
    }

    #[test]
    fn a_dead_holders_lease_is_taken_over() {
        let (_d, mut s) = store();
        let now = at("2030-01-01T06:00:00Z");
        assert_eq!(
            s.take_lease("faq", "t1", 100, "h", now, TTL, |_| false)
                .unwrap(),
            Ok(None)
        );
        let got = s
            .take_lease("faq", "t2", 200, "h", now, TTL, |row| row.pid == 100)
            .unwrap();
        let old = got.expect("taken over").expect("replaced");
        assert_eq!(old.pid, 100);
        assert!(!s.renew_lease("faq", "t1", now, TTL).unwrap(), "t1 lost it");
        assert_eq!(s.leases().unwrap()[0].token, "t2");
    }

    #[test]
    fn an_expired_lease_is_taken_over_and_a_heartbeat_keeps_it() {
        let (_d, mut s) = store();
        let t0 = at("2030-01-01T06:00:00Z");
        assert_eq!(
            s.take_lease("faq", "t1", 100, "h", t0, TTL, |_| false)
                .unwrap(),
            Ok(None)
        );
        // Renewed at +60s: still held at +120s.
        assert!(
            s.renew_lease("faq", "t1", at("2030-01-01T06:01:00Z"), TTL)
                .unwrap()
        );
        let held = s
            .take_lease(
                "faq",
                "t2",
                200,
                "h",
                at("2030-01-01T06:02:00Z"),
                TTL,
                |_| false,
            )
            .unwrap()
            .expect_err("still held");
        assert_eq!(held.heartbeat_at, at("2030-01-01T06:01:00Z"));
        // No heartbeat after that: expired at +150s.
        assert!(matches!(
            s.take_lease(
                "faq",
                "t2",
                200,
                "h",
                at("2030-01-01T06:02:31Z"),
                TTL,
                |_| false
            )
            .unwrap(),
            Ok(Some(_))
        ));
    }

    #[test]
    fn a_window_is_claimed_once_given_back_when_interrupted_and_taken_over_when_its_claimant_died()
    {
        let (_d, mut s) = store();
        let w = at("2030-01-01T06:00:00Z");
        let t0 = at("2030-01-01T06:00:05Z");
        assert_eq!(
            s.claim_window("faq", w, "a", 1, "ha", t0, TTL).unwrap(),
            Ok(None)
        );
        let held = s
            .claim_window("faq", w, "b", 2, "hb", t0, TTL)
            .unwrap()
            .expect_err("claimed by a");
        assert_eq!((held.host.as_str(), held.done), ("ha", false));
        // Another window or suite is free.
        assert!(
            s.claim_window("faq", t0, "b", 2, "hb", t0, TTL)
                .unwrap()
                .is_ok()
        );
        assert!(
            s.claim_window("kb", w, "b", 2, "hb", t0, TTL)
                .unwrap()
                .is_ok()
        );
        // Expired, but its suite's lease is live: a run is still going.
        let later = at("2030-01-01T06:05:00Z");
        s.take_lease("faq", "l", 1, "ha", later, TTL, |_| false)
            .unwrap()
            .unwrap();
        assert!(
            s.claim_window("faq", w, "b", 2, "hb", later, TTL)
                .unwrap()
                .is_err()
        );
        // Its holder died: no live lease, the claim expired: taken over once.
        let dead = at("2030-01-01T06:10:00Z");
        let old = s
            .claim_window("faq", w, "b", 2, "hb", dead, TTL)
            .unwrap()
            .expect("taken over")
            .expect("the dead claim");
        assert_eq!(old.token, "a");
        assert!(
            s.claim_window("faq", w, "c", 3, "hc", dead, TTL)
                .unwrap()
                .is_err()
        );
        // Done: never again, however late.
        s.finish_claim("faq", w, "a", true).unwrap();
        assert!(
            !s.claims().unwrap()[0].done,
            "only the holder's token finishes it"
        );
        s.finish_claim("faq", w, "b", true).unwrap();
        let never = at("2031-01-01T00:00:00Z");
        let done = s
            .claim_window("faq", w, "c", 3, "hc", never, TTL)
            .unwrap()
            .expect_err("done");
        assert!(done.done);
        // Given back (interrupted): claimed again at once.
        s.finish_claim("kb", w, "b", false).unwrap();
        assert!(
            s.claim_window("kb", w, "c", 3, "hc", t0, TTL)
                .unwrap()
                .is_ok()
        );
    }

    #[test]
    fn fires_are_kept_and_the_latest_handled_skips_interrupted() {
        let (_d, mut s) = store();
        assert_eq!(s.last_handled_fire("faq").unwrap(), None);
        let mut fire =
            |w: &str, outcome: &str| s.record_fire("faq", at(w), at(w), outcome, None, None);
        fire("2030-01-01T06:00:00Z", "ran").unwrap();
        fire("2030-01-02T06:00:00Z", "missed").unwrap();
        fire("2030-01-03T06:00:00Z", "interrupted").unwrap();
        let last = s.last_handled_fire("faq").unwrap().unwrap();
        assert_eq!(last.scheduled_for, at("2030-01-02T06:00:00Z"));
        assert_eq!(last.outcome, "missed");
        let all = s.fires(Some("faq"), 0).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].outcome, "interrupted", "newest first");
        assert_eq!(s.fires(Some("other"), 0).unwrap(), Vec::new());
        assert_eq!(s.fires(None, 1).unwrap().len(), 1);
        assert_eq!(s.last_run_start("faq", true).unwrap(), None);
        let ran = s.last_fire_with("faq", "ran").unwrap().unwrap();
        assert_eq!(ran.scheduled_for, at("2030-01-01T06:00:00Z"));
        assert_eq!(s.last_fire_with("faq", "skipped").unwrap(), None);
    }
}
