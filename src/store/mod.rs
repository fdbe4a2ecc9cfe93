//! History in `SQLite`: the only module that touches the database.
//!
//! `Store` is the read side and run bookkeeping; `Writer` is the single writer of results,
//! running on its own thread and saving each result as it arrives, in batched transactions.
//!
//! The file is opened in WAL mode with a busy timeout, so that readers never block the writer
//! and several processes (or threads) can write different runs to one file at once: every
//! write is an immediate transaction that waits its turn. The schema is created and upgraded
//! by the numbered migrations in `src/store/migrations/`, tracked in `PRAGMA user_version`.

mod alerts;
mod codec;
pub mod db;
mod drift;
mod feedback;
mod judge;
mod labels;
mod marks;
pub mod pg;
mod read;
mod review;
mod review_traffic;
mod schedule;
mod schema;
mod settings;
mod traffic;
mod traffic_alerts;
mod traffic_judge;
mod trends;
mod versions;
mod writer;

#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use db::{Db, OptionalExtension, TransactionBehavior, params};

use crate::model::{GateResult, ProviderMetrics, RunInfo, RunStatus, Suite};

pub use crate::model::{AlertRow, TrendQuery, TrendRow};
pub use alerts::{NewAlert, PendingDelivery};
pub(crate) use codec::time_ms;
pub use drift::SampleRow;
pub use feedback::{FeedbackImport, FeedbackRow, NewFeedback};
pub use judge::JudgeCache;
pub use marks::{MarkQuery, NewMark};
pub use review::{
    HumanScore, ImportCount, NewItem, NewSheet, PastGrade, SheetRow, SheetSummary, traffic_item_id,
};
pub use review_traffic::{ReviewRecord, TrafficGrade};
pub use schedule::{ClaimRow, ClaimTake, FireRow, LeaseRow, LeaseTake, RunStart};
pub use schema::SCHEMA_VERSION;
pub use settings::RunSettings;
pub use traffic::{
    BucketRow, FileOffset, PruneBefore, Pruned, Quality, RecordRow, TraceRow, TrafficTx, Users,
    hour_of, trace_key,
};
pub use traffic_judge::{Awaiting, JudgeTotals, Judged as TrafficJudged};
pub use trends::ScoredResult;
pub use versions::VersionCount;
pub use writer::{Checkpointer, OUTAGE_WAIT, Outage, Writer, WriterStats};

/// Failures of the store. Messages read after "failed to ...".
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("open the store at {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    /// The file is a database, but not one evalwatch made.
    #[error(
        "use {path} as the store: it is an SQLite database but not an evalwatch store ({detail}); it was left untouched: give --db a new file or an evalwatch store"
    )]
    NotAStore { path: String, detail: String },
    #[error(
        "use the store at {path}: its schema version {found} is newer than this evalwatch knows ({known}); upgrade evalwatch"
    )]
    TooNew {
        path: String,
        found: u32,
        known: u32,
    },
    #[error("query the store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("query the store: {0}")]
    Db(#[from] db::DbError),
    /// The PostgreSQL store could not be reached, or refused what was asked.
    #[error("{0}")]
    Pg(#[from] pg::PgError),
    #[error("store: {0}")]
    Other(String),
    /// No run has this id.
    #[error("find run {run_id}: no such run in the store (`evalwatch runs` lists them)")]
    UnknownRun { run_id: String },
    /// A run id prefix matches several runs.
    #[error(
        "find run {prefix}: the prefix is ambiguous, it matches {}; give more characters",
        matches.join(", ")
    )]
    AmbiguousRun {
        prefix: String,
        /// Some of the matching run ids (at most five).
        matches: Vec<String>,
    },
    /// A review sheet id prefix matches several sheets.
    #[error(
        "find review sheet {prefix}: the prefix is ambiguous, it matches {}; give more characters",
        matches.join(", ")
    )]
    AmbiguousSheet {
        prefix: String,
        /// Some of the matching sheet ids (at most five).
        matches: Vec<String>,
    },
    /// The writer thread failed; what it was doing and why.
    #[error("write the results of run {run_id}: {message}")]
    Writer { run_id: String, message: String },
}

/// One row of `runs` history with its per-provider metrics (tag None only).
#[derive(Debug, Clone)]
pub struct RunRow {
    pub info: RunInfo,
    pub metrics: Vec<ProviderMetrics>,
}

/// An open store, migrated: an `SQLite` file (WAL, busy timeout, foreign keys) or a
/// PostgreSQL database (`postgres://` URL).
pub struct Store {
    conn: Db,
    path: PathBuf,
    /// PostgreSQL: the trace index has statistics (this process saw them, or made them), so
    /// [`Store::begin_traffic`] no longer asks.
    traffic_analysed: bool,
    /// PostgreSQL: the keys (`runs.id`) of the runs this connection read, by run id, so
    /// that a run's rows read right after its header cost no statement more (a round trip
    /// each; a run page asked four times). A run's key never changes, and PostgreSQL never
    /// gives a deleted run's key to another. Not kept on SQLite, where the lookup is in
    /// process and a deleted run's key can be given again.
    run_refs: RefCell<HashMap<String, i64>>,
    /// PostgreSQL: a second connection made while this one was opened
    /// ([`Store::open_with_spare`]), for [`Store::reopener`] to hand over.
    spare: RefCell<Option<Spare>>,
}

/// A connection being made on a thread of its own.
type Spare = std::thread::JoinHandle<Result<Db, StoreError>>;

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Open (creating if needed, parent directories included) and migrate.
    ///
    /// A path that is a `postgres://` URL opens that PostgreSQL database (password from
    /// the environment or a password file) and brings it to this evalwatch's schema, once,
    /// under the migrations' lock.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self {
            conn: connect(path)?,
            path: path.to_path_buf(),
            traffic_analysed: false,
            run_refs: RefCell::default(),
            spare: RefCell::default(),
        })
    }

    /// [`Store::open`], and on PostgreSQL a second connection made at the same time on a
    /// thread of its own, which the first [`Store::reopener`] hands over: for a command
    /// whose second thread needs a connection as soon as it starts (`report`'s run pages).
    /// A new server process took ~10 ms to answer on the test machine (docs/store.md), which
    /// the two connections then spend side by side. The second makes no schema check
    /// and sends nothing until it is handed over, after this one has migrated the store.
    pub fn open_with_spare(path: &Path) -> Result<Self, StoreError> {
        let spare = pg_target(path)?.and_then(|target| {
            std::thread::Builder::new()
                .name("evalwatch-pg-spare".to_owned())
                .spawn(move || connect_again(&target))
                .ok()
        });
        let store = Self::open(path)?;
        *store.spare.borrow_mut() = spare;
        Ok(store)
    }

    /// How to open a second connection to this store, for another thread of the same
    /// command. On PostgreSQL it skips the schema checks [`Store::open`] made (the migration
    /// level, the functions): this process found the store current a moment ago, and a new
    /// server process runs them cold (~3 ms of its time, six round trips); the connection
    /// [`Store::open_with_spare`] made is handed over when there is one. On SQLite it is
    /// [`Store::open`].
    pub fn reopener(&self) -> impl FnOnce() -> Result<Self, StoreError> + Send + 'static {
        let path = self.path.clone();
        let target = match &self.conn {
            Db::Pg(pg) => Some(pg.target().clone()),
            Db::Sqlite(_) => None,
        };
        let spare = self.spare.borrow_mut().take();
        move || {
            let conn = match (spare, target) {
                (Some(spare), Some(target)) => spare.join().unwrap_or_else(|_| {
                    Err(StoreError::Other(format!(
                        "connect to {}: the connecting thread panicked",
                        target.shown()
                    )))
                })?,
                (None, Some(target)) => connect_again(&target)?,
                (_, None) => connect(&path)?,
            };
            Ok(Self {
                conn,
                path,
                traffic_analysed: false,
                run_refs: RefCell::default(),
                spare: RefCell::default(),
            })
        }
    }

    /// Whether this store is on PostgreSQL.
    #[must_use]
    pub fn is_pg(&self) -> bool {
        self.conn.is_pg()
    }

    /// The key of run `run_id` (`runs.id`), from the runs this connection read on
    /// PostgreSQL (see `run_refs`), else from the store.
    fn run_ref(&self, run_id: &str) -> Result<i64, StoreError> {
        if let Some(&key) = self.run_refs.borrow().get(run_id) {
            return Ok(key);
        }
        let key = codec::run_ref(&self.conn, run_id)?;
        self.remember_ref(run_id, key);
        Ok(key)
    }

    /// Keep the key of a run read (PostgreSQL only: see `run_refs`).
    fn remember_ref(&self, run_id: &str, key: i64) {
        if self.conn.is_pg() {
            self.run_refs.borrow_mut().insert(run_id.to_owned(), key);
        }
    }

    /// [`codec::RawRun::into_info`], keeping the run's key.
    fn info_of(&self, raw: codec::RawRun) -> Result<RunInfo, StoreError> {
        self.remember_ref(&raw.run_id, raw.id);
        raw.into_info()
    }

    /// A store opened for one pass over many results (a run's statuses): its page cache is
    /// kept small (256 KiB, against SQLite's 2 MiB), as a single pass reads each page once.
    pub fn open_for_scan(path: &Path) -> Result<Self, StoreError> {
        let store = Self::open(path)?;
        if let Db::Sqlite(conn) = &store.conn {
            conn.pragma_update(None, "cache_size", -256)?;
        }
        Ok(store)
    }

    /// The file this store was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves this connection's checkpoints to a thread of their own for a long write (an
    /// ingest of many chunks): the connection then checkpoints by itself only past
    /// `writer::WRITER_AUTOCHECKPOINT` pages, and the returned checkpointer copies the log into
    /// the database when nudged, as the run's writer does. [`Self::checkpoint_here`] undoes it.
    /// (PostgreSQL: nothing to do.)
    pub fn checkpoint_aside(&self) -> Result<Checkpointer, StoreError> {
        let checkpointer = Checkpointer::spawn(&self.path)?;
        if let Db::Sqlite(conn) = &self.conn {
            conn.pragma_update(None, "wal_autocheckpoint", writer::WRITER_AUTOCHECKPOINT)?;
        }
        Ok(checkpointer)
    }

    /// This connection checkpoints by itself again (SQLite's default, every 1,000 pages).
    pub fn checkpoint_here(&self) -> Result<(), StoreError> {
        if let Db::Sqlite(conn) = &self.conn {
            conn.pragma_update(None, "wal_autocheckpoint", 1000)?;
        }
        Ok(())
    }

    /// Schema version (`PRAGMA user_version` on SQLite, the newest migration applied on
    /// PostgreSQL).
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        match &self.conn {
            Db::Sqlite(conn) => Ok(schema::user_version(conn)?),
            Db::Pg(_) => {
                let v: Option<i64> = self.conn.query_row(
                    &format!("SELECT max(version) FROM {}", pg::schema::VERSION_TABLE),
                    (),
                    |r| r.get(0),
                )?;
                Ok(v.map_or(0, |v| u32::try_from(v).unwrap_or(u32::MAX)))
            }
        }
    }

    /// Record the suite (and any new case versions) and insert the run as `running`.
    /// `pid` and `host` identify the process, so that a crashed run can be found later.
    ///
    /// The status in `run` is ignored: a run begins `running`. Beginning a run whose id is
    /// already stored (resuming it) marks it `running` again with the new pid and host and
    /// keeps its results; the id must belong to a run of the same suite.
    pub fn begin_run(
        &mut self,
        run: &RunInfo,
        suite: &Suite,
        pid: u32,
        host: &str,
    ) -> Result<(), StoreError> {
        self.begin(run, suite, pid, host, true).map(|_| ())
    }

    /// [`Store::begin_run`] without registering the suite's case versions, so that the run
    /// starts at once: returns whether they still need registering, which the writer then
    /// does before its first result ([`crate::store::Writer::spawn_registering`]).
    pub fn begin_run_deferred(
        &mut self,
        run: &RunInfo,
        suite: &Suite,
        pid: u32,
        host: &str,
    ) -> Result<bool, StoreError> {
        self.begin(run, suite, pid, host, false)
    }

    fn begin(
        &mut self,
        run: &RunInfo,
        suite: &Suite,
        pid: u32,
        host: &str,
        register: bool,
    ) -> Result<bool, StoreError> {
        if run.suite != suite.name {
            return Err(StoreError::Other(format!(
                "begin run {}: it names suite {} but the suite given is {}",
                run.run_id, run.suite, suite.name
            )));
        }
        let providers = codec::to_json(&run.providers)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let suite_ref: i64 = tx.query_row(
            "INSERT INTO suites (name, description, first_seen, last_seen)
             VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT (name) DO UPDATE
                SET description = excluded.description, last_seen = excluded.last_seen
             RETURNING id",
            params![suite.name, suite.description, run.started_at],
            |r| r.get(0),
        )?;
        // A suite whose exact content already ran has every case version registered: skip
        // the O(cases) inserts, so that a daily run of an unchanged suite starts at once. A
        // run counts once it stored a result: its cases were registered before (by
        // `begin_run`, or by its writer before its first result); a run that stopped before
        // that may not have registered them. (Result ids are `run_ref << 32 | seq`.)
        let known_content: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM runs r WHERE r.suite_ref = ?1 AND r.suite_hash = ?2
                 AND EXISTS (SELECT 1 FROM results x
                             WHERE x.id BETWEEN r.id << 32 AND (r.id << 32) + 4294967295))",
            params![suite_ref, suite.hash],
            |r| r.get(0),
        )?;
        if !known_content && register {
            register_cases(&tx, suite_ref, suite, &run.started_at)?;
        }
        let existing: Option<i64> = tx
            .query_row(
                "SELECT suite_ref FROM runs WHERE run_id = ?1",
                [&run.run_id],
                |r| r.get(0),
            )
            .optional()?;
        match existing {
            Some(owner) if owner != suite_ref => {
                return Err(StoreError::Other(format!(
                    "begin run {}: that id already belongs to a run of another suite",
                    run.run_id
                )));
            }
            Some(_) => {
                tx.execute(
                    "UPDATE runs SET status = 'running', finished_at = NULL, pid = ?2, host = ?3,
                                     planned = ?4
                     WHERE run_id = ?1",
                    params![run.run_id, pid, host, codec::to_i64(run.planned)],
                )?;
            }
            None => {
                tx.execute(
                    "INSERT INTO runs (run_id, suite_ref, suite_hash, started_at, finished_at,
                                       status, providers, planned, pid, host, evalwatch_version,
                                       started_ms, case_filter)
                     VALUES (?1, ?2, ?3, ?4, NULL, 'running', ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    params![
                        run.run_id,
                        suite_ref,
                        run.suite_hash,
                        run.started_at,
                        providers,
                        codec::to_i64(run.planned),
                        pid,
                        host,
                        env!("CARGO_PKG_VERSION"),
                        codec::time_ms(&run.started_at),
                        run.filter,
                    ],
                )?;
            }
        }
        tx.commit()?;
        Ok(!known_content && !register)
    }

    /// Close a run: status, finish time, metrics and gate results. Calling it again replaces
    /// the metrics and gates stored before.
    pub fn finish_run(
        &mut self,
        run_id: &str,
        status: RunStatus,
        finished_at: &str,
        metrics: &[ProviderMetrics],
        gates: &[GateResult],
    ) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let run_ref = codec::run_ref(&tx, run_id)?;
        tx.execute(
            "UPDATE runs SET status = ?2, finished_at = ?3 WHERE id = ?1",
            params![run_ref, status.as_str(), finished_at],
        )?;
        tx.execute("DELETE FROM run_metrics WHERE run_ref = ?1", [run_ref])?;
        tx.execute("DELETE FROM run_gates WHERE run_ref = ?1", [run_ref])?;
        {
            let mut add_metrics = tx.prepare_cached(
                "INSERT INTO run_metrics (run_ref, provider, tag, pass_rate, mean_score,
                     error_rate, latency_p95_ms, cost_usd, hallucination_rate, metrics)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            for pm in metrics {
                let m = &pm.metrics;
                add_metrics.execute(params![
                    run_ref,
                    pm.provider,
                    pm.tag,
                    m.pass_rate,
                    m.mean_score,
                    m.error_rate,
                    m.latency_p95_ms,
                    m.cost_usd,
                    m.hallucination_rate,
                    codec::to_json(m)?,
                ])?;
            }
            let mut add_gate = tx.prepare_cached(
                "INSERT INTO run_gates (run_ref, idx, metric, provider, bound, value, ok)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for (i, g) in gates.iter().enumerate() {
                add_gate.execute(params![
                    run_ref,
                    codec::usize_to_i64(i),
                    g.metric,
                    g.provider,
                    g.limit,
                    g.value,
                    g.ok
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Runs still marked `running`, with their pid and host, oldest first.
    pub fn running_runs(&self) -> Result<Vec<(String, u32, String)>, StoreError> {
        let mut st = self.conn.prepare_cached(
            "SELECT run_id, pid, host FROM runs WHERE status = 'running'
             ORDER BY started_ms NULLS FIRST, id",
        )?;
        let rows = st.query_map((), |r| {
            let pid: Option<i64> = r.get(1)?;
            let host: Option<String> = r.get(2)?;
            Ok((
                r.get::<_, String>(0)?,
                pid.and_then(|p| u32::try_from(p).ok()).unwrap_or(0),
                host.unwrap_or_default(),
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Set a run's status (used to mark a crashed run incomplete).
    /// Record a run's suite hash and planned job count, once they are known (a run that
    /// streams its cases begins before its whole suite was read).
    pub fn set_run_plan(
        &mut self,
        run_id: &str,
        suite_hash: &str,
        planned: u64,
    ) -> Result<(), StoreError> {
        let changed = self.conn.execute(
            "UPDATE runs SET suite_hash = ?2, planned = ?3 WHERE run_id = ?1",
            params![run_id, suite_hash, codec::to_i64(planned)],
        )?;
        if changed == 0 {
            return Err(StoreError::UnknownRun {
                run_id: run_id.to_owned(),
            });
        }
        Ok(())
    }

    /// Remove a run that must not count, with everything stored for it: a run stopped
    /// because its suite turned out to have a problem (what it stored was asked of a suite
    /// that is not the one on disk). Runs that were reviewed are refused.
    pub fn discard_run(&mut self, run_id: &str) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(run_ref): Option<i64> = tx
            .query_row("SELECT id FROM runs WHERE run_id = ?1", [run_id], |r| {
                r.get(0)
            })
            .optional()?
        else {
            return Err(StoreError::UnknownRun {
                run_id: run_id.to_owned(),
            });
        };
        let (low, high) = (run_ref << 32, (run_ref << 32) + 0xFFFF_FFFF);
        let reviewed: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM review_items WHERE result_id BETWEEN ?1 AND ?2)",
            params![low, high],
            |r| r.get(0),
        )?;
        if reviewed {
            return Err(StoreError::Other(format!(
                "discard run {run_id}: some of its results are in a review sheet"
            )));
        }
        tx.execute(
            "DELETE FROM results WHERE id BETWEEN ?1 AND ?2",
            params![low, high],
        )?;
        for table in [
            "run_metrics",
            "run_gates",
            "run_judges",
            "run_settings",
            "run_labels",
            "run_version_batches",
        ] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE run_ref = ?1"),
                [run_ref],
            )?;
        }
        tx.execute("DELETE FROM runs WHERE id = ?1", [run_ref])?;
        tx.commit()?;
        self.run_refs.get_mut().remove(run_id);
        Ok(())
    }

    pub fn set_run_status(&mut self, run_id: &str, status: RunStatus) -> Result<(), StoreError> {
        let changed = self.conn.execute(
            "UPDATE runs SET status = ?2 WHERE run_id = ?1",
            params![run_id, status.as_str()],
        )?;
        if changed == 0 {
            return Err(StoreError::UnknownRun {
                run_id: run_id.to_owned(),
            });
        }
        Ok(())
    }
}

/// Whether `path` names a PostgreSQL store (a `postgres://` URL) rather than a file.
#[must_use]
pub fn is_url(path: &Path) -> bool {
    path.to_str().is_some_and(pg::is_postgres_url)
}

/// Whether there is a store at `path`: a file that exists, or a PostgreSQL URL (its
/// database is the server's to have; opening it says when it cannot be reached).
#[must_use]
pub fn exists(path: &Path) -> bool {
    is_url(path) || path.exists()
}

/// A PostgreSQL store's URL as shown to people: without its password.
#[must_use]
pub fn shown_url(path: &Path) -> String {
    let url = path.to_string_lossy();
    pg::PgTarget::parse(&url).map_or_else(|_| pg::redact_url(&url), |t| t.shown().to_owned())
}

/// A store's place as shown to people: a file's path, or a URL without its password.
#[must_use]
pub fn shown(path: &Path) -> String {
    if is_url(path) {
        shown_url(path)
    } else {
        path.display().to_string()
    }
}

/// A connection to the store at `path`: a `postgres://` URL or an `SQLite` file, migrated.
/// A connection to a PostgreSQL store this process opened (and migrated) already: no
/// schema check.
fn connect_again(target: &pg::PgTarget) -> Result<Db, StoreError> {
    let (conn, ()) = db::PgConn::connect(target, |_| Ok::<(), StoreError>(()))?;
    Ok(Db::Pg(Box::new(conn)))
}

/// The PostgreSQL store `path` names, when it is a `postgres://` URL.
fn pg_target(path: &Path) -> Result<Option<pg::PgTarget>, StoreError> {
    match path.to_str().filter(|_| is_url(path)) {
        Some(url) => Ok(Some(pg::PgTarget::parse(url)?)),
        None => Ok(None),
    }
}

pub(crate) fn connect(path: &Path) -> Result<Db, StoreError> {
    if let Some(target) = pg_target(path)? {
        let shown = target.shown().to_owned();
        let (conn, _applied) = db::PgConn::connect(&target, move |client| {
            pg::schema::migrate(client, &shown, SCHEMA_VERSION)
        })?;
        return Ok(Db::Pg(Box::new(conn)));
    }
    Ok(Db::Sqlite(schema::connect(path)?))
}

/// Register every case version of `suite` (id, content hash, tags), first seen at
/// `first_seen`; versions already known are left as they are.
pub(crate) fn register_cases(
    conn: &Db,
    suite_ref: i64,
    suite: &Suite,
    first_seen: &str,
) -> Result<(), StoreError> {
    if conn.is_pg() {
        // One statement, not one round trip to the server a case (a suite of 20,000 cases
        // took a second of the writer's start on the test server).
        let cases = suite
            .cases
            .iter()
            .map(|case| {
                Ok(pg::results::CaseKey {
                    case_id: case.id.clone(),
                    hash: case.hash.clone(),
                    tags: codec::to_json(&case.tags)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        pg::results::add_cases(conn, suite_ref, cases, first_seen.to_owned())?;
        return Ok(());
    }
    let mut add_case = conn.prepare_cached(
        "INSERT INTO cases (suite_ref, case_id, hash, tags, first_seen)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (suite_ref, case_id, hash) DO NOTHING",
    )?;
    for case in &suite.cases {
        add_case.execute(params![
            suite_ref,
            case.id,
            case.hash,
            codec::to_json(&case.tags)?,
            first_seen
        ])?;
    }
    Ok(())
}
