//! Conversions between the model types and SQL values.

use super::db::{Db, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::model::{AssertionOutcome, CaseStatus, ErrorKind, RunInfo, RunStatus};

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

/// A query's `LIMIT` for "at most `limit` rows, 0 for no limit": the largest integer for
/// none, as PostgreSQL refuses SQLite's `LIMIT -1`.
pub(crate) fn row_limit(limit: usize) -> i64 {
    if limit == 0 {
        i64::MAX
    } else {
        usize_to_i64(limit)
    }
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
        "circuit_open" => ErrorKind::CircuitOpen,
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

/// `runs.started_ms` of a start time: milliseconds since 1970 (UTC) of RFC 3339 text, a
/// fraction of a millisecond cut off as SQLite's `julianday` cuts it (migration 0023); `None`
/// for text that is not such a time, as `julianday` gives NULL.
pub(crate) fn time_ms(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// A `since` bound as `runs.started_ms`: `None` for no bound; an error naming `what` for text
/// that is not an RFC 3339 time (a bound that cannot be compared is never dropped silently).
pub(crate) fn since_ms(since: Option<&str>, what: &str) -> Result<Option<i64>, StoreError> {
    since
        .map(|text| {
            time_ms(text).ok_or_else(|| {
                StoreError::Other(format!("{what} since {text}: that is not an RFC 3339 time"))
            })
        })
        .transpose()
}

/// The surrogate key of a run, by its exact id.
pub(crate) fn run_ref(conn: &Db, run_id: &str) -> Result<i64, StoreError> {
    conn.prepare_cached("SELECT id FROM runs WHERE run_id = ?1")?
        .query_row([run_id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::UnknownRun {
            run_id: run_id.to_owned(),
        })
}

/// The `results.id` of a run's plan position: `(run_ref << 32) | seq`.
pub(crate) fn result_id(run_ref: i64, seq: usize) -> Result<i64, StoreError> {
    let seq = u32::try_from(seq).map_err(|_| {
        StoreError::Other(format!(
            "store result {seq}: a run holds at most 2^32 results"
        ))
    })?;
    Ok((run_ref << 32) | i64::from(seq))
}

/// The inclusive `results.id` range of a run's results.
pub(crate) fn result_range(run_ref: i64) -> (i64, i64) {
    (run_ref << 32, (run_ref << 32) | i64::from(u32::MAX))
}

/// One assertion as stored in the `assertions` JSON column of a result: the field names of
/// the machine output, with default values left out (`weight` 1, `metric` none, `unscorable`
/// false, `details` null). A NaN score or weight is written as `null` and read back as NaN.
#[derive(Serialize)]
struct AssertionOut<'a> {
    #[serde(rename = "type")]
    type_name: &'a str,
    pass: bool,
    score: f64,
    #[serde(skip_serializing_if = "str::is_empty")]
    reason: &'a str,
    #[serde(skip_serializing_if = "is_one")]
    weight: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    metric: Option<&'a str>,
    #[serde(skip_serializing_if = "is_false")]
    unscorable: bool,
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    details: &'a serde_json::Value,
}

#[derive(Deserialize)]
struct AssertionIn {
    /// `type` as results store it; `type_name` as traffic records do (the model's own form).
    #[serde(rename = "type", alias = "type_name")]
    type_name: String,
    pass: bool,
    score: Option<f64>,
    #[serde(default)]
    reason: String,
    #[serde(default = "some_one")]
    weight: Option<f64>,
    #[serde(default)]
    metric: Option<String>,
    #[serde(default)]
    unscorable: bool,
    #[serde(default)]
    details: serde_json::Value,
}

#[allow(clippy::trivially_copy_pass_by_ref, clippy::float_cmp)]
fn is_one(v: &f64) -> bool {
    *v == 1.0
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_false(v: &bool) -> bool {
    !*v
}

#[allow(clippy::unnecessary_wraps)]
fn some_one() -> Option<f64> {
    Some(1.0)
}

/// The `assertions` column of a result: NULL when there are none.
pub(crate) fn assertions_to_json(list: &[AssertionOutcome]) -> Result<Option<String>, StoreError> {
    if list.is_empty() {
        return Ok(None);
    }
    let out: Vec<AssertionOut<'_>> = list
        .iter()
        .map(|a| AssertionOut {
            type_name: &a.type_name,
            pass: a.pass,
            score: a.score,
            reason: &a.reason,
            weight: a.weight,
            metric: a.metric.as_deref(),
            unscorable: a.unscorable,
            details: &a.details,
        })
        .collect();
    to_json(&out).map(Some)
}

pub(crate) fn assertions_from_json(
    text: Option<&str>,
    run_id: &str,
) -> Result<Vec<AssertionOutcome>, StoreError> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    outcomes_from_json(text).map_err(|e| {
        StoreError::Other(format!(
            "read run {run_id}: the assertions of a result are not valid: {e}"
        ))
    })
}

/// Assertion outcomes stored as JSON, by results (compact) or by traffic records (whole).
pub(crate) fn outcomes_from_json(text: &str) -> Result<Vec<AssertionOutcome>, serde_json::Error> {
    let list: Vec<AssertionIn> = serde_json::from_str(text)?;
    Ok(list
        .into_iter()
        .map(|a| AssertionOutcome {
            type_name: a.type_name,
            pass: a.pass,
            score: a.score.unwrap_or(f64::NAN),
            reason: a.reason,
            details: a.details,
            weight: a.weight.unwrap_or(f64::NAN),
            metric: a.metric,
            unscorable: a.unscorable,
        })
        .collect())
}

/// Columns of a run header, in the order [`RawRun::from_row`] reads them.
pub(crate) const RUN_SELECT: &str = "SELECT r.id, r.run_id, s.name, r.suite_hash, r.started_at, \
     r.finished_at, r.status, r.providers, r.planned, r.case_filter \
     FROM runs r JOIN suites s ON s.id = r.suite_ref";

/// A run header as stored, before its text columns are parsed.
pub(crate) struct RawRun {
    pub(crate) id: i64,
    pub(crate) run_id: String,
    suite: String,
    suite_hash: String,
    started_at: String,
    finished_at: Option<String>,
    status: String,
    providers: String,
    planned: i64,
    filter: Option<String>,
}

impl RawRun {
    pub(crate) fn from_row(r: &super::db::Row<'_>) -> Result<Self, super::db::DbError> {
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
            filter: r.get(9)?,
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
            filter: self.filter,
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
            ErrorKind::CircuitOpen,
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

    fn outcome(type_name: &str) -> AssertionOutcome {
        AssertionOutcome {
            type_name: type_name.to_owned(),
            pass: true,
            score: 1.0,
            reason: String::new(),
            details: serde_json::Value::Null,
            weight: 1.0,
            metric: None,
            unscorable: false,
        }
    }

    #[test]
    fn assertions_are_stored_compactly_and_read_back_whole() {
        let plain = outcome("contains");
        let full = AssertionOutcome {
            type_name: "hallucination".to_owned(),
            pass: false,
            score: 0.25,
            reason: "2 unsupported spans".to_owned(),
            details: serde_json::json!({"unsupported": ["a"]}),
            weight: 2.5,
            metric: Some("grounded".to_owned()),
            unscorable: true,
        };
        let text = assertions_to_json(&[plain.clone(), full.clone()])
            .unwrap()
            .unwrap();
        // Defaults are left out of the stored text.
        assert!(
            text.starts_with(r#"[{"type":"contains","pass":true,"score":1.0},"#),
            "{text}"
        );
        assert_eq!(
            assertions_from_json(Some(&text), "r").unwrap(),
            vec![plain, full]
        );
        assert_eq!(assertions_to_json(&[]).unwrap(), None);
        assert!(assertions_from_json(None, "r").unwrap().is_empty());
    }

    #[test]
    fn nan_assertion_numbers_survive_as_nan() {
        let mut a = outcome("x");
        a.score = f64::NAN;
        a.weight = f64::NAN;
        let text = assertions_to_json(&[a]).unwrap().unwrap();
        let back = assertions_from_json(Some(&text), "r").unwrap();
        assert!(back[0].score.is_nan() && back[0].weight.is_nan(), "{text}");
    }

    #[test]
    fn malformed_assertions_are_an_error() {
        let err = assertions_from_json(Some("{not json"), "r7").unwrap_err();
        assert!(err.to_string().contains("run r7"), "{err}");
        assert!(assertions_from_json(Some(r#"[{"pass":true}]"#), "r").is_err());
    }

    /// `time_ms` is what migration 0023 computes with SQLite's `julianday` for the same text.
    #[test]
    fn time_ms_is_the_migrations_julianday_in_milliseconds() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        for text in [
            "2026-12-07T01:17:08Z",
            "2026-12-07T01:17:08+00:00",
            "2026-12-07T06:17:08+05:00",
            "2026-12-06T20:17:08.5-05:00",
            "2026-12-07T01:17:08.123456789+00:00",
            "2026-12-07T01:17:08.0004Z",
            "2026-12-07T01:17:08.9996Z",
            "1969-12-31T23:59:59.250Z",
            "not a time",
            "",
        ] {
            let sqlite: Option<i64> = conn
                .query_row(
                    "SELECT CAST(round((julianday(?1) - 2440587.5) * 86400000.0) AS INTEGER)",
                    [text],
                    |r| r.get(0),
                )
                .unwrap();
            assert_eq!(time_ms(text), sqlite, "{text}");
        }
        assert_eq!(
            time_ms("2026-12-07T06:17:08+05:00"),
            Some(1_796_606_228_000)
        );
        assert_eq!(time_ms("not a time"), None);
        let err = since_ms(Some("yesterday"), "read runs").unwrap_err();
        assert!(
            err.to_string().contains("read runs since yesterday"),
            "{err}"
        );
        assert_eq!(since_ms(None, "read runs").unwrap(), None);
    }

    #[test]
    fn unknown_status_is_an_error_not_a_panic() {
        let err = case_status("weird", "r1").unwrap_err();
        assert!(err.to_string().contains("weird"), "{err}");
        assert_eq!(case_status("failed", "r1").unwrap(), CaseStatus::Failed);
    }
}
