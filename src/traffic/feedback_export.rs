//! Score exports of feedback tools read as users' votes (`feedback import --from TOOL`):
//! Langfuse scores (`GET /api/public/scores` items, one a line) and LangSmith feedback
//! (`list_feedback()`, one a line). Each row is mapped to evalwatch's own fields (trace id,
//! time, vote, comment) and then goes through everything an import does.
//!
//! Both tools write a thumbs score as 1 (up) and 0 (down): read on evalwatch's own scale a 1
//! would be one star (a negative vote) and a 0 no vote, so numbers are thumbs here unless the
//! caller says the scores are stars. An export holds many scores (LLM judges' too): rows are
//! counted by name, and only the scores of one name are read as votes.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};

use super::feedback::{BOM, FeedbackLine, FeedbackRead, for_each_object, text};
use super::mapping::parse_time;
use super::record::{Feedback, Vote};
use super::redact::Redactor;

/// The tool an export comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Langfuse,
    Langsmith,
}

impl Tool {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Langfuse => "langfuse",
            Self::Langsmith => "langsmith",
        }
    }

    /// The field naming a score: Langfuse's `name`, LangSmith's `key`.
    fn name_field(self) -> &'static str {
        match self {
            Self::Langfuse => "name",
            Self::Langsmith => "key",
        }
    }
}

/// What a number means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// 1 (or true) up; 0, -1 (or false) down.
    Thumbs,
    /// 1-5 stars, as evalwatch's own format reads them.
    Stars,
}

/// An export that cannot be imported as it is (nothing is).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportFileError {
    #[error(
        "scores of {} names: {}; name the users' votes with --name NAME (the others are skipped and counted); nothing was imported",
        .0.len(), names(.0)
    )]
    MixedNames(BTreeMap<String, u64>),
    #[error(
        "no score is named `{wanted}`; the names found: {}; nothing was imported",
        names(.found)
    )]
    NameNotFound {
        wanted: String,
        found: BTreeMap<String, u64>,
    },
    #[error(
        "this is one JSON document (an API page `{{\"data\": [...]}}` or an array), and the export is read as JSONL, one score a line: convert it with `jq -c '.data[]' FILE` (or `jq -c '.[]'` for an array)"
    )]
    Document,
}

/// `name (count), ...`, the most frequent first.
fn names(counts: &BTreeMap<String, u64>) -> String {
    let mut v: Vec<_> = counts.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    v.iter()
        .map(|(n, c)| format!("{n} ({c})"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What an export gave: the rows read as votes, the unreadable rows, and the scores of other
/// names skipped.
#[derive(Debug, Default)]
pub struct ExportRead {
    pub read: FeedbackRead,
    /// The name of the scores read (the one given, or the file's only one).
    pub name: Option<String>,
    /// Rows of other names, skipped (not errors).
    pub skipped_other: u64,
}

/// Reads an export of `tool`: JSONL, one score object a line (blank lines skipped, a UTF-8
/// byte order mark at the start skipped). `name`: the scores to read; without it the file
/// must hold scores of one name only.
///
/// # Errors
/// A file of several names without `name`, a `name` no row has, or one JSON document.
pub fn read_export(
    bytes: &[u8],
    tool: Tool,
    scale: Scale,
    name: Option<&str>,
    quote: &Redactor,
) -> Result<ExportRead, ExportFileError> {
    if is_document(bytes.strip_prefix(BOM.as_slice()).unwrap_or(bytes)) {
        return Err(ExportFileError::Document);
    }
    let mut out = ExportRead::default();
    let mut objects = Vec::new();
    for_each_object(bytes, &mut out.read, quote, |line, o, _| {
        objects.push((line, o));
    });
    let name_of = |o: &Map<String, Value>| match o.get(tool.name_field()) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        _ => None,
    };
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for (_, o) in &objects {
        if let Some(n) = name_of(o) {
            *counts.entry(n).or_default() += 1;
        }
    }
    let wanted = match name {
        Some(n) if !counts.is_empty() && !counts.contains_key(n) => {
            return Err(ExportFileError::NameNotFound {
                wanted: n.to_owned(),
                found: counts,
            });
        }
        Some(n) => Some(n.to_owned()),
        None if counts.len() > 1 => return Err(ExportFileError::MixedNames(counts)),
        None => counts.into_keys().next(),
    };
    for (line, o) in objects {
        let row = match (name_of(&o), &wanted) {
            (Some(n), Some(w)) if n != *w => {
                out.skipped_other += 1;
                continue;
            }
            (None, _) => Err(format!(
                "no `{}`: the score's name (which score this is)",
                tool.name_field()
            )),
            _ => map_row(line, &o, tool, scale, quote),
        };
        out.read.push(line, row, quote);
    }
    out.name = wanted;
    Ok(out)
}

/// Whether the whole file is one JSON array, or one object holding a `data` array (an API
/// page), rather than JSONL.
fn is_document(bytes: &[u8]) -> bool {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Array(_)) => true,
        Ok(Value::Object(o)) => o.get("data").is_some_and(Value::is_array),
        _ => false,
    }
}

/// One score as a row of evalwatch's own format.
fn map_row(
    line: u64,
    o: &Map<String, Value>,
    tool: Tool,
    scale: Scale,
    quote: &Redactor,
) -> Result<FeedbackLine, String> {
    let trace = match tool {
        Tool::Langfuse => text(o.get("traceId"), "traceId")?,
        Tool::Langsmith => match text(o.get("trace_id"), "trace_id")? {
            Some(t) => Some(t),
            None => text(o.get("run_id"), "run_id")?,
        },
    };
    let trace_id = trace.ok_or_else(|| match tool {
        Tool::Langfuse => "no `traceId`: feedback is linked to its record by trace id".to_owned(),
        Tool::Langsmith => {
            "no `trace_id` nor `run_id`: feedback is linked to its record by trace id".to_owned()
        }
    })?;
    let time_field = match tool {
        Tool::Langfuse => "timestamp",
        Tool::Langsmith => "created_at",
    };
    let time = match o.get(time_field) {
        None | Some(Value::Null) => {
            return Err(format!(
                "no `{time_field}`: when the user gave the feedback"
            ));
        }
        Some(v) => time(v, tool, quote).map_err(|e| format!("`{time_field}`: {e}"))?,
    };
    let (field, value) = score(o, tool)?;
    let mut feedback = vote(value, scale).ok_or_else(|| {
        let expected = match scale {
            Scale::Thumbs => {
                "a thumbs score: 1 or true (up), 0, -1 or false (down), or a vote word (up, down, positive, negative ...); 1-5 stars are read with --scale stars"
            }
            Scale::Stars => "1-5 stars, true/false, or a vote word (up, down ...)",
        };
        format!("`{field}` {value} is not {expected}")
    })?;
    quote.apply_in_place(&mut feedback.raw);
    Ok(FeedbackLine {
        line,
        trace_id,
        time,
        feedback,
        comment: text(o.get("comment"), "comment")?,
        feature: None,
        user: None,
    })
}

/// The value a score gives, and its field. Langfuse: a BOOLEAN or CATEGORICAL score's
/// `stringValue` ("True"/"False", a category), else `value`. LangSmith: `score` (a number or a
/// boolean), else `value` (a category).
fn score(o: &Map<String, Value>, tool: Tool) -> Result<(&'static str, &Value), String> {
    let present = |k: &str| o.get(k).filter(|v| !v.is_null());
    match tool {
        Tool::Langfuse => {
            let kind = o.get("dataType").and_then(Value::as_str).unwrap_or("");
            let string = present("stringValue");
            match (kind, string) {
                ("BOOLEAN" | "CATEGORICAL", Some(s)) => Ok(("stringValue", s)),
                _ => present("value")
                    .map(|v| ("value", v))
                    .or_else(|| string.map(|s| ("stringValue", s)))
                    .ok_or_else(|| "no `value`: the score".to_owned()),
            }
        }
        Tool::Langsmith => present("score")
            .map(|v| ("score", v))
            .or_else(|| present("value").map(|v| ("value", v)))
            .ok_or_else(|| "no `score` nor `value`: the feedback's score".to_owned()),
    }
}

/// A score as a vote on `scale`: thumbs read 1 as up and 0 or -1 as down (numbers, or strings
/// that write them), true/false and vote words; stars are evalwatch's own reading.
fn vote(value: &Value, scale: Scale) -> Option<Feedback> {
    if scale == Scale::Stars {
        return Feedback::from_json(value);
    }
    let raw = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let thumb = |n: f64| {
        if n.fract() != 0.0 {
            return None;
        }
        match n as i64 {
            1 => Some(Vote::Positive),
            0 | -1 => Some(Vote::Negative),
            _ => None,
        }
    };
    let vote = match value {
        Value::Bool(true) => Vote::Positive,
        Value::Bool(false) => Vote::Negative,
        Value::Number(n) => thumb(n.as_f64()?)?,
        Value::String(s) => match s.trim().parse::<f64>() {
            Ok(n) => thumb(n)?,
            Err(_) => Feedback::word_only(s)?,
        },
        _ => return None,
    };
    Some(Feedback { vote, raw })
}

/// A score's time: RFC 3339 or unix time as evalwatch reads them; LangSmith also writes
/// times without an offset (older exports), which are UTC.
fn time(v: &Value, tool: Tool, quote: &Redactor) -> Result<DateTime<Utc>, String> {
    if tool == Tool::Langsmith
        && let Value::String(s) = v
    {
        let s = s.trim();
        for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
            if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
                return Ok(t.and_utc());
            }
        }
    }
    parse_time(v, quote)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(tool: Tool, scale: Scale, name: Option<&str>, lines: &[&str]) -> ExportRead {
        read_export(
            lines.join("\n").as_bytes(),
            tool,
            scale,
            name,
            &Redactor::default(),
        )
        .unwrap()
    }

    fn votes(r: &ExportRead) -> Vec<(&str, Vote)> {
        r.read
            .rows
            .iter()
            .map(|r| (r.trace_id.as_str(), r.feedback.vote))
            .collect()
    }

    #[test]
    fn langfuse_thumbs_read_numbers_and_booleans_and_refuse_other_numbers() {
        let r = read(
            Tool::Langfuse,
            Scale::Thumbs,
            None,
            &[
                r#"{"traceId": "a", "name": "fb", "timestamp": "2026-12-01T14:02:11.123Z", "value": 1, "stringValue": null, "dataType": "NUMERIC", "comment": "nice"}"#,
                r#"{"traceId": "b", "name": "fb", "timestamp": "2026-12-01T14:02:11.123Z", "value": 0, "dataType": "NUMERIC"}"#,
                r#"{"traceId": "c", "name": "fb", "timestamp": "2026-12-01T14:02:11.123Z", "value": 1, "stringValue": "True", "dataType": "BOOLEAN"}"#,
                r#"{"traceId": "d", "name": "fb", "timestamp": "2026-12-01T14:02:11.123Z", "value": 0, "stringValue": "False", "dataType": "BOOLEAN"}"#,
                r#"{"traceId": "e", "name": "fb", "timestamp": "2026-12-01T14:02:11.123Z", "value": -1, "dataType": "NUMERIC"}"#,
                r#"{"traceId": "f", "name": "fb", "timestamp": "2026-12-01T14:02:11.123Z", "value": 0.5, "dataType": "NUMERIC"}"#,
                r#"{"traceId": "g", "name": "fb", "timestamp": "2026-12-01T14:02:11.123Z", "value": 7, "dataType": "NUMERIC"}"#,
                r#"{"traceId": "h", "name": "fb", "timestamp": "2026-12-01T14:02:11.123Z", "value": 2, "stringValue": "meh", "dataType": "CATEGORICAL"}"#,
                r#"{"traceId": "i", "name": "fb", "timestamp": "2026-12-01T14:02:11.123Z", "value": 0, "stringValue": "thumbs_up", "dataType": "CATEGORICAL"}"#,
            ],
        );
        assert_eq!(
            votes(&r),
            [
                ("a", Vote::Positive),
                ("b", Vote::Negative),
                ("c", Vote::Positive),
                ("d", Vote::Negative),
                ("e", Vote::Negative),
                ("i", Vote::Positive),
            ]
        );
        assert_eq!(r.read.rows[0].comment.as_deref(), Some("nice"));
        assert_eq!(r.read.rows[2].feedback.raw, "True");
        assert_eq!(
            r.read.rows[0].time,
            DateTime::parse_from_rfc3339("2026-12-01T14:02:11.123Z").unwrap()
        );
        let errors: Vec<_> = r.read.errors.iter().map(|e| e.line).collect();
        assert_eq!(errors, [6, 7, 8]);
        assert!(
            r.read.errors[0]
                .reason
                .contains("`value` 0.5 is not a thumbs score"),
            "{:?}",
            r.read.errors
        );
        assert!(r.read.errors[1].reason.contains("--scale stars"));
        assert!(r.read.errors[2].reason.contains(r#"`stringValue` "meh""#));
        assert_eq!(r.name.as_deref(), Some("fb"));
    }

    #[test]
    fn stars_read_one_to_five_as_evalwatch_does() {
        let r = read(
            Tool::Langfuse,
            Scale::Stars,
            None,
            &[
                r#"{"traceId": "a", "name": "stars", "timestamp": "2026-12-01T14:02:11Z", "value": 1}"#,
                r#"{"traceId": "b", "name": "stars", "timestamp": "2026-12-01T14:02:11Z", "value": 3}"#,
                r#"{"traceId": "c", "name": "stars", "timestamp": "2026-12-01T14:02:11Z", "value": 5}"#,
                r#"{"traceId": "d", "name": "stars", "timestamp": "2026-12-01T14:02:11Z", "value": 0}"#,
            ],
        );
        assert_eq!(
            votes(&r),
            [
                ("a", Vote::Negative),
                ("b", Vote::Neutral),
                ("c", Vote::Positive)
            ]
        );
        assert_eq!(r.read.errors.len(), 1);
        assert!(r.read.errors[0].reason.contains("1-5 stars"));
    }

    #[test]
    fn langsmith_reads_score_then_value_trace_then_run_and_naive_times_as_utc() {
        let r = read(
            Tool::Langsmith,
            Scale::Thumbs,
            None,
            &[
                r#"{"run_id": "r1", "trace_id": "t1", "key": "user_score", "score": 1, "value": null, "created_at": "2026-12-01T14:02:11.123456+00:00"}"#,
                r#"{"run_id": "r2", "key": "user_score", "score": false, "created_at": "2026-12-01T14:02:11.123456"}"#,
                r#"{"run_id": "r3", "trace_id": null, "key": "user_score", "score": null, "value": "thumbs_down", "created_at": "2026-12-01 14:02:11", "comment": "wrong"}"#,
                r#"{"run_id": "r4", "key": "user_score", "score": true, "created_at": "yesterday"}"#,
                r#"{"key": "user_score", "score": 1, "created_at": "2026-12-01T14:02:11"}"#,
            ],
        );
        assert_eq!(
            votes(&r),
            [
                ("t1", Vote::Positive),
                ("r2", Vote::Negative),
                ("r3", Vote::Negative)
            ]
        );
        let utc = DateTime::parse_from_rfc3339("2026-12-01T14:02:11.123456Z")
            .unwrap()
            .to_utc();
        assert_eq!((r.read.rows[0].time, r.read.rows[1].time), (utc, utc));
        assert_eq!(
            r.read.rows[2].time,
            DateTime::parse_from_rfc3339("2026-12-01T14:02:11Z").unwrap()
        );
        assert_eq!(r.read.rows[2].comment.as_deref(), Some("wrong"));
        let reasons: Vec<_> = r
            .read
            .errors
            .iter()
            .map(|e| (e.line, e.reason.as_str()))
            .collect();
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(reasons[0].0 == 4 && reasons[0].1.contains("`created_at`"));
        assert!(reasons[1].0 == 5 && reasons[1].1.contains("no `trace_id` nor `run_id`"));
    }

    #[test]
    fn names_are_counted_skipped_or_refused() {
        let lines = [
            r#"{"run_id": "a", "key": "user_score", "score": 1, "created_at": "2026-12-01T14:02:11Z"}"#,
            r#"{"run_id": "a", "key": "correctness", "score": 0.4, "created_at": "2026-12-01T14:02:11Z"}"#,
            r#"{"run_id": "b", "key": "correctness", "score": 0.9, "created_at": "2026-12-01T14:02:11Z"}"#,
            r#"{"run_id": "c", "score": 1, "created_at": "2026-12-01T14:02:11Z"}"#,
        ];
        let text = lines.join("\n");
        let q = Redactor::default();
        let err = read_export(text.as_bytes(), Tool::Langsmith, Scale::Thumbs, None, &q)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("scores of 2 names: correctness (2), user_score (1)"),
            "{err}"
        );
        let r = read(Tool::Langsmith, Scale::Thumbs, Some("user_score"), &lines);
        assert_eq!(votes(&r), [("a", Vote::Positive)]);
        assert_eq!(r.skipped_other, 2);
        // A score without a name is an error of its line, never silently read or skipped.
        assert_eq!(r.read.errors.len(), 1);
        assert_eq!(r.read.errors[0].line, 4);
        let err = read_export(
            text.as_bytes(),
            Tool::Langsmith,
            Scale::Thumbs,
            Some("thumbs"),
            &q,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("no score is named `thumbs`"), "{err}");
    }

    #[test]
    fn one_json_document_is_refused_with_the_conversion() {
        let q = Redactor::default();
        for doc in [
            r#"{"data": [{"traceId": "a", "name": "fb", "value": 1}], "meta": {"page": 1}}"#,
            "[\n  {\"traceId\": \"a\"}\n]\n",
        ] {
            assert_eq!(
                read_export(doc.as_bytes(), Tool::Langfuse, Scale::Thumbs, None, &q).unwrap_err(),
                ExportFileError::Document
            );
        }
    }
}
