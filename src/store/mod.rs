//! History in SQLite: the only module that touches the database.
//!
//! `Store` is the read side and run bookkeeping; `Writer` is the single writer of results,
//! running on its own thread and saving each result as it arrives, in batched transactions.

use std::path::Path;

use crate::model::{
    CaseStatus, GateResult, ProviderMetrics, ResultRecord, RunInfo, RunStatus, Suite,
};

/// Failures of the store. Messages read after "failed to ...".
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("open the store at {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
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
    #[error("store: {0}")]
    Other(String),
}

/// One row of `runs` history with its per-provider metrics (tag None only).
#[derive(Debug, Clone)]
pub struct RunRow {
    pub info: RunInfo,
    pub metrics: Vec<ProviderMetrics>,
}

/// An open SQLite store (WAL, busy timeout, foreign keys, migrated).
pub struct Store {}

impl Store {
    /// Open (creating if needed) and migrate.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let _ = path;
        todo!()
    }

    /// Schema version (`PRAGMA user_version`).
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        todo!()
    }

    /// Record the suite (and any new case versions) and insert the run as `running`.
    /// `pid` and `host` identify the process, so that a crashed run can be found later.
    pub fn begin_run(
        &mut self,
        run: &RunInfo,
        suite: &Suite,
        pid: u32,
        host: &str,
    ) -> Result<(), StoreError> {
        let _ = (run, suite, pid, host);
        todo!()
    }

    /// Close a run: status, finish time, metrics and gate results.
    pub fn finish_run(
        &mut self,
        run_id: &str,
        status: RunStatus,
        finished_at: &str,
        metrics: &[ProviderMetrics],
        gates: &[GateResult],
    ) -> Result<(), StoreError> {
        let _ = (run_id, status, finished_at, metrics, gates);
        todo!()
    }

    /// Runs still marked `running`, with their pid and host.
    pub fn running_runs(&self) -> Result<Vec<(String, u32, String)>, StoreError> {
        todo!()
    }

    /// Set a run's status (used to mark a crashed run incomplete).
    pub fn set_run_status(&mut self, run_id: &str, status: RunStatus) -> Result<(), StoreError> {
        let _ = (run_id, status);
        todo!()
    }

    /// History, newest first.
    pub fn runs(&self, suite: Option<&str>, limit: usize) -> Result<Vec<RunRow>, StoreError> {
        let _ = (suite, limit);
        todo!()
    }

    /// One run's header; accepts a unique prefix of the id.
    pub fn run(&self, run_id: &str) -> Result<Option<RunInfo>, StoreError> {
        let _ = run_id;
        todo!()
    }

    /// All stored metrics of a run (per provider, and per provider and tag).
    pub fn run_metrics(&self, run_id: &str) -> Result<Vec<ProviderMetrics>, StoreError> {
        let _ = run_id;
        todo!()
    }

    pub fn run_gates(&self, run_id: &str) -> Result<Vec<GateResult>, StoreError> {
        let _ = run_id;
        todo!()
    }

    /// Stream a run's results in plan order, with their assertions and prompt.
    pub fn for_each_result<F>(&self, run_id: &str, f: F) -> Result<(), StoreError>
    where
        F: FnMut(ResultRecord) -> Result<(), StoreError>,
    {
        let _ = (run_id, f);
        todo!()
    }

    /// Status of each (case id, provider, sample) of a run, for flips against a baseline.
    pub fn result_statuses(
        &self,
        run_id: &str,
    ) -> Result<Vec<(String, String, u32, CaseStatus)>, StoreError> {
        let _ = run_id;
        todo!()
    }

    /// The newest complete run of `suite` that started before `before` (RFC 3339).
    pub fn previous_complete_run(
        &self,
        suite: &str,
        before: &str,
    ) -> Result<Option<String>, StoreError> {
        let _ = (suite, before);
        todo!()
    }
}

/// Handle to the single writer thread of one run.
pub struct Writer {}

/// What the writer did.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriterStats {
    pub written: u64,
    pub batches: u64,
}

impl Writer {
    /// Start the writer for `run_id` on its own connection. Results are committed in batches
    /// of at most `batch` rows, and at least every 250 ms while results arrive.
    pub fn spawn(path: &Path, run_id: &str, batch: usize) -> Result<Self, StoreError> {
        let _ = (path, run_id, batch);
        todo!()
    }

    /// Queue one result (blocks when the bounded queue is full: backpressure, flat memory).
    pub fn send(&self, record: ResultRecord) -> Result<(), StoreError> {
        let _ = record;
        todo!()
    }

    /// Flush everything queued and stop the thread.
    pub fn finish(self) -> Result<WriterStats, StoreError> {
        todo!()
    }
}
