//! Conversions between the model types and SQL values.

use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

use super::StoreError;
use crate::model::{CaseStatus, ErrorKind, RunInfo, RunStatus};

pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Other(format!("encode a value as JSON: {e}")))
}

/// `SQLite` integers are signed 64-bit: larger counts are clamped (never seen in practice).
pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn usize_to_i64(v: usize) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(crate) fn to_u32(v: i64) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

pub(crate) fn to_usize(v: i64) -> usize {
    usize::try_from(v).unwrap_or(0)
}

pub(crate) fn error_kind_parse(s: &str) -> Option<ErrorKind> {
    Some(match s {
        "timeout" => ErrorKind::Timeout,
        "rate_limited" => ErrorKind::RateLimited,
        "server" => ErrorKind::Server,
        "bad_response" => ErrorKind::BadResponse,
        "client" => ErrorKind::Client,
        "transport" => ErrorKind::Transport,
        "exec" => ErrorKind::Exec,
        "missing" => ErrorKind::Missing,
        "config" => ErrorKind::Config,
        "cancelled" => ErrorKind::Cancelled,
        _ => return None,
    })
}

pub(crate) fn case_status(s: &str, run_id: &str) -> Result<CaseStatus, StoreError> {
    CaseStatus::parse(s).ok_or_else(|| {
        StoreError::Other(format!(
            "read run {run_id}: unknown result status '{s}' in the store"
        ))
    })
}

/// The surrogate key of a run, by its exact id.
pub(crate) fn run_ref(conn: &Connection, run_id: &str) -> Result<i64, StoreError> {
    conn.prepare_cached("SELECT id FROM runs WHERE run_id = ?1")?
        .query_row([run_id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::UnknownRun {
            run_id: run_id.to_owned(),
        })
}

/// Columns of a run header, in the order [`RawRun::from_row`] reads them.
pub(crate) const RUN_SELECT: &str = "SELECT r.id, r.run_id, s.name, r.suite_hash, r.started_at, \
     r.finished_at, r.status, r.providers, r.planned \
     FROM runs r JOIN suites s ON s.id = r.suite_ref";

/// A run header as stored, before its text columns are parsed.
pub(crate) struct RawRun {
    pub(crate) id: i64,
    run_id: String,
    suite: String,
    suite_hash: String,
    started_at: String,
    finished_at: Option<String>,
    status: String,
    providers: String,
    planned: i64,
}

impl RawRun {
    pub(crate) fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get(0)?,
            run_id: r.get(1)?,
            suite: r.get(2)?,
            suite_hash: r.get(3)?,
            started_at: r.get(4)?,
            finished_at: r.get(5)?,
            status: r.get(6)?,
            providers: r.get(7)?,
            planned: r.get(8)?,
        })
    }

    pub(crate) fn into_info(self) -> Result<RunInfo, StoreError> {
        let status = RunStatus::parse(&self.status).ok_or_else(|| {
            StoreError::Other(format!(
                "read run {}: unknown run status '{}' in the store",
                self.run_id, self.status
            ))
        })?;
        let providers: Vec<String> = serde_json::from_str(&self.providers).map_err(|e| {
            StoreError::Other(format!(
                "read run {}: its provider list is not valid JSON: {e}",
                self.run_id
            ))
        })?;
        Ok(RunInfo {
            run_id: self.run_id,
            suite: self.suite,
            suite_hash: self.suite_hash,
            started_at: self.started_at,
            finished_at: self.finished_at,
            status,
            providers,
            planned: to_u64(self.planned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_kind_parses_back() {
        let all = [
            ErrorKind::Timeout,
            ErrorKind::RateLimited,
            ErrorKind::Server,
            ErrorKind::BadResponse,
            ErrorKind::Client,
            ErrorKind::Transport,
            ErrorKind::Exec,
            ErrorKind::Missing,
            ErrorKind::Config,
            ErrorKind::Cancelled,
        ];
        for k in all {
            assert_eq!(error_kind_parse(k.as_str()), Some(k));
        }
        assert_eq!(error_kind_parse("nope"), None);
    }

    #[test]
    fn integer_conversions_clamp_instead_of_failing() {
        assert_eq!(to_i64(u64::MAX), i64::MAX);
        assert_eq!(to_i64(7), 7);
        assert_eq!(to_u64(-1), 0);
        assert_eq!(to_u32(i64::MAX), 0);
        assert_eq!(to_u32(5), 5);
        assert_eq!(to_usize(-3), 0);
    }

    #[test]
    fn unknown_status_is_an_error_not_a_panic() {
        let err = case_status("weird", "r1").unwrap_err();
        assert!(err.to_string().contains("weird"), "{err}");
        assert_eq!(case_status("failed", "r1").unwrap(), CaseStatus::Failed);
    }
}
