//! Leases that hold across hosts: a suite runs in one place at a time on a shared store.
//!
//! The table is the store's own `schedule_leases` (one row per suite: holder `token`, `host`
//! id, `pid`, `acquired_at`, `heartbeat_at`, `expires_at`). Every step is one atomic
//! statement, timed by the database server's clock, so that hosts whose clocks disagree
//! still agree on who holds a lease:
//!
//! - acquire: `INSERT ... ON CONFLICT (suite) DO UPDATE ... WHERE` the row has expired or is
//!   the taker's own; a row comes back only to the one taker that got it;
//! - renew (the heartbeat): `UPDATE ... WHERE suite AND token`, pushing `expires_at`; no row
//!   means the lease was lost (it expired and another host took it);
//! - release: `DELETE ... WHERE suite AND token`.
//!
//! A holder that died (kill -9, a lost host) is recovered by time alone: once its
//! `expires_at` has passed, the next acquire takes the row. No pid is checked: a pid means
//! nothing on another machine. Times are written as the SQLite store writes them (RFC 3339,
//! UTC, milliseconds, `Z`), so the text compares in time order.

use std::time::Duration;

use postgres::Client;

use super::{PgError, PgTarget, reason};

/// The server's clock as the store writes times.
const NOW: &str =
    "to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')";

/// The server's clock plus `$ttl` milliseconds, as the store writes times.
fn expiry(ttl_param: &str) -> String {
    format!(
        "to_char((clock_timestamp() + {ttl_param}::bigint * interval '1 millisecond') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
    )
}

/// A lease this host holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acquired {
    pub suite: String,
    pub token: String,
    pub expires_at: String,
}

/// What an acquire found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseOutcome {
    Acquired(Acquired),
    /// Another holder's lease runs until `expires_at`.
    Held {
        host: String,
        pid: i64,
        expires_at: String,
    },
}

/// The lease steps of one host on a PostgreSQL store.
pub struct PgLeases {
    client: Client,
    target: PgTarget,
    host: String,
}

impl PgLeases {
    /// Connect as host `host` (its id: names one machine among those sharing the store).
    pub fn connect(target: &PgTarget, host: &str) -> Result<Self, PgError> {
        Ok(Self {
            client: target.connect()?,
            target: target.clone(),
            host: host.to_owned(),
        })
    }

    fn fail(&self, what: &str) -> impl Fn(postgres::Error) -> PgError + '_ {
        let what = what.to_owned();
        move |e| PgError::Query {
            shown: self.target.shown().to_owned(),
            what: what.clone(),
            reason: self.target.scrub(&reason(&e)),
        }
    }

    /// Take the lease of `suite` for `ttl` unless another holder's is still running.
    /// `token` identifies this taker (taking again with the same token renews).
    pub fn acquire(
        &mut self,
        suite: &str,
        token: &str,
        pid: u32,
        ttl: Duration,
    ) -> Result<LeaseOutcome, PgError> {
        let sql = format!(
            "INSERT INTO schedule_leases AS l
                 (suite, token, pid, host, acquired_at, heartbeat_at, expires_at)
             VALUES ($1, $2, $3, $4, {NOW}, {NOW}, {exp})
             ON CONFLICT (suite) DO UPDATE SET
                 token = EXCLUDED.token, pid = EXCLUDED.pid, host = EXCLUDED.host,
                 acquired_at = EXCLUDED.acquired_at, heartbeat_at = EXCLUDED.heartbeat_at,
                 expires_at = EXCLUDED.expires_at
             WHERE l.expires_at <= EXCLUDED.acquired_at OR l.token = EXCLUDED.token
             RETURNING l.expires_at",
            exp = expiry("$5")
        );
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let rows = self
            .client
            .query(
                &sql,
                &[&suite, &token, &i64::from(pid), &self.host, &ttl_ms],
            )
            .map_err(self.fail("take the lease"))?;
        if let Some(row) = rows.first() {
            return Ok(LeaseOutcome::Acquired(Acquired {
                suite: suite.to_owned(),
                token: token.to_owned(),
                expires_at: row.get(0),
            }));
        }
        // Who holds it, to say so. The holder may have released it meanwhile: then the
        // caller tries again on its next turn.
        let row = self
            .client
            .query_opt(
                "SELECT host, pid, expires_at FROM schedule_leases WHERE suite = $1",
                &[&suite],
            )
            .map_err(self.fail("read the lease"))?;
        Ok(match row {
            Some(r) => LeaseOutcome::Held {
                host: r.get(0),
                pid: r.get(1),
                expires_at: r.get(2),
            },
            None => LeaseOutcome::Held {
                host: String::new(),
                pid: 0,
                expires_at: String::new(),
            },
        })
    }

    /// Push the lease's expiry `ttl` ahead; `false` when it was lost (another taker has it).
    pub fn renew(&mut self, lease: &Acquired, ttl: Duration) -> Result<bool, PgError> {
        let sql = format!(
            "UPDATE schedule_leases SET heartbeat_at = {NOW}, expires_at = {exp}
             WHERE suite = $1 AND token = $2",
            exp = expiry("$3")
        );
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let n = self
            .client
            .execute(&sql, &[&lease.suite, &lease.token, &ttl_ms])
            .map_err(self.fail("renew the lease"))?;
        Ok(n == 1)
    }

    /// Give the lease up; `false` when it was no longer this taker's.
    pub fn release(&mut self, lease: &Acquired) -> Result<bool, PgError> {
        let n = self
            .client
            .execute(
                "DELETE FROM schedule_leases WHERE suite = $1 AND token = $2",
                &[&lease.suite, &lease.token],
            )
            .map_err(self.fail("release the lease"))?;
        Ok(n == 1)
    }

    /// The connection, for callers that do their work under the lease on it.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }
}
