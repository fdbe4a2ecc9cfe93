//! Users' feedback given after the fact (`feedback import`): JSONL objects or CSV rows with
//! `trace_id`, `time` and `value`, and optionally `comment`, `feature` and `user`. Each row is
//! read on its own: a bad one is located (its line) and explained, and the others still read.
//! Other fields or columns are ignored. Langfuse and LangSmith exports have their own reader
//! (`feedback_export`), which maps their fields and scales to these.
//! The source's redaction is applied to what an error quotes and to the value kept as given
//! (errors are printed; the value is stored); a user id is never quoted.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::Feedback;
use super::mapping::parse_time;
use super::redact::Redactor;

/// One piece of feedback as read (the user id not hashed yet: the caller hashes it).
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackLine {
    /// 1-based line of the file (CSV: the row's first line).
    pub line: u64,
    pub trace_id: String,
    pub time: DateTime<Utc>,
    pub feedback: Feedback,
    pub comment: Option<String>,
    pub feature: Option<String>,
    pub user: Option<String>,
}

/// The UTF-8 byte order mark, which some tools write at the start of a text file.
pub(super) const BOM: [u8; 3] = [0xef, 0xbb, 0xbf];

/// A row that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct FeedbackError {
    pub line: u64,
    pub reason: String,
}

/// A file that cannot be read as feedback at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedbackFileError {
    #[error("read the CSV header: {0}")]
    Header(String),
    #[error("read the CSV header: no `{0}` column (needed: trace_id, time, value)")]
    MissingColumn(&'static str),
}

/// What a file gave: the rows read and the rows that could not be.
#[derive(Debug, Default)]
pub struct FeedbackRead {
    pub rows: Vec<FeedbackLine>,
    pub errors: Vec<FeedbackError>,
}

impl FeedbackRead {
    /// A row read, or why not; `quote`: the source's redaction, applied to the reason (it may
    /// quote the row).
    pub(crate) fn push(&mut self, line: u64, row: Result<FeedbackLine, String>, quote: &Redactor) {
        match row {
            Ok(r) => self.rows.push(r),
            Err(reason) => self.errors.push(FeedbackError {
                line,
                reason: quote.apply(&reason).into_owned(),
            }),
        }
    }
}

pub(super) fn text(v: Option<&Value>, name: &str) -> Result<Option<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        // A user id is never echoed, whatever its shape.
        Some(_) if name == "user" => {
            Err("`user` is not text (not shown: user ids are never echoed)".into())
        }
        Some(other) => Err(format!("`{name}` is {other}, not text")),
    }
}

/// One row from its named values (`get` answers a field by name); `quote`: the source's
/// redaction (see the module's comment).
fn row<'v>(
    line: u64,
    get: impl Fn(&str) -> Option<&'v Value>,
    quote: &Redactor,
) -> Result<FeedbackLine, String> {
    let trace_id = text(get("trace_id"), "trace_id")?
        .ok_or("no `trace_id`: feedback is linked to its record by trace id")?;
    let time = match get("time") {
        None | Some(Value::Null) => return Err("no `time`: when the user gave the feedback".into()),
        Some(v) => parse_time(v, quote).map_err(|e| format!("`time`: {e}"))?,
    };
    let value = get("value").ok_or("no `value`: up/down, true/false or 1-5 stars")?;
    let mut feedback = Feedback::from_json(value).ok_or_else(|| {
        format!("`value` {value} is not feedback: use up/down (thumbs), true/false, or 1-5 stars")
    })?;
    quote.apply_in_place(&mut feedback.raw);
    Ok(FeedbackLine {
        line,
        trace_id,
        time,
        feedback,
        comment: text(get("comment"), "comment")?,
        feature: text(get("feature"), "feature")?,
        user: text(get("user"), "user")?,
    })
}

/// Reads JSONL: one object a line; blank lines skipped; a line that is not UTF-8 or not a
/// JSON object is an error of that line. A UTF-8 byte order mark at the start is skipped.
#[must_use]
pub fn read_jsonl(bytes: &[u8], quote: &Redactor) -> FeedbackRead {
    let mut out = FeedbackRead::default();
    for_each_object(bytes, &mut out, quote, |line, o, out| {
        out.push(line, row(line, |k| o.get(k), quote), quote);
    });
    out
}

/// The JSON objects of JSONL `bytes`, each with its line, handed to `each`: blank lines
/// skipped, a UTF-8 byte order mark at the start skipped, and a line that is not UTF-8 or not
/// a JSON object an error of that line in `out`.
pub(super) fn for_each_object(
    bytes: &[u8],
    out: &mut FeedbackRead,
    quote: &Redactor,
    mut each: impl FnMut(u64, serde_json::Map<String, Value>, &mut FeedbackRead),
) {
    let bytes = bytes.strip_prefix(BOM.as_slice()).unwrap_or(bytes);
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let line = i as u64 + 1;
        let Ok(s) = std::str::from_utf8(raw) else {
            out.push(line, Err("not UTF-8 text".into()), quote);
            continue;
        };
        if s.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(o)) => each(line, o, out),
            Ok(other) => out.push(line, Err(format!("{other} is not a JSON object")), quote),
            Err(e) => out.push(line, Err(format!("not JSON: {e}")), quote),
        }
    }
}

/// Reads CSV with a header row naming at least `trace_id`, `time` and `value`.
///
/// # Errors
/// A header that cannot be read or lacks a needed column.
pub fn read_csv(bytes: &[u8], quote: &Redactor) -> Result<FeedbackRead, FeedbackFileError> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| FeedbackFileError::Header(e.to_string()))?
        .clone();
    for needed in ["trace_id", "time", "value"] {
        if !headers.iter().any(|h| h.trim() == needed) {
            return Err(FeedbackFileError::MissingColumn(needed));
        }
    }
    let mut out = FeedbackRead::default();
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let values: Vec<(&str, Value)> = headers
                    .iter()
                    .zip(record.iter())
                    .map(|(h, v)| (h.trim(), Value::String(v.to_owned())))
                    .collect();
                let get = |k: &str| values.iter().find(|(h, _)| *h == k).map(|(_, v)| v);
                out.push(line, row(line, get, quote), quote);
            }
            Err(e) => out.push(line, Err(format!("not a CSV row: {e}")), quote),
        }
    }
    Ok(out)
}

/// Words too common to say what users complained about.
const STOP_WORDS: &[&str] = &[
    "about", "after", "all", "also", "and", "any", "are", "but", "can", "could", "did", "does",
    "doesn", "don", "for", "from", "had", "has", "have", "her", "him", "his", "how", "into", "its",
    "just", "not", "now", "off", "one", "our", "out", "she", "that", "the", "their", "them",
    "then", "there", "they", "this", "too", "very", "was", "were", "what", "when", "which", "who",
    "why", "will", "with", "would", "you", "your",
];

/// The most frequent terms of `comments` (lowercased words of 3 letters or more, stop words
/// out), most frequent first, ties alphabetical; each comment counts a term once.
#[must_use]
pub fn top_terms<'a>(comments: impl IntoIterator<Item = &'a str>, n: usize) -> Vec<(String, u64)> {
    let mut counts: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for c in comments {
        let mut seen = std::collections::BTreeSet::new();
        for w in c.split(|ch: char| !ch.is_alphanumeric()) {
            let w = w.to_lowercase();
            if w.chars().count() >= 3 && !STOP_WORDS.contains(&w.as_str()) && seen.insert(w.clone())
            {
                *counts.entry(w).or_default() += 1;
            }
        }
    }
    let mut terms: Vec<(String, u64)> = counts.into_iter().collect();
    terms.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    terms.truncate(n);
    terms
}

#[cfg(test)]
mod tests {
    #[test]
    fn top_terms_count_each_comment_once_without_stop_words() {
        let comments = [
            "The refund policy was made up",
            "refund policy is wrong, wrong, wrong",
            "Too slow and the refund was late",
        ];
        assert_eq!(
            super::top_terms(comments, 3),
            [
                ("refund".to_owned(), 3),
                ("policy".to_owned(), 2),
                ("late".to_owned(), 1)
            ]
        );
    }

    use super::*;
    use crate::traffic::Vote;

    #[test]
    fn jsonl_rows_read_and_bad_ones_are_located() {
        let text = concat!(
            r#"{"trace_id": "t1", "time": "2026-12-01T10:00:00Z", "value": "down", "comment": "wrong answer"}"#,
            "\n\n",
            r#"{"trace_id": "t2", "time": 1764583200, "value": 7}"#,
            "\n",
            r#"{"time": 1, "value": 5}"#,
            "\nnot json\n",
            r#"{"trace_id": "t3", "time": 1764583200000, "value": 5, "extra": 1}"#,
            "\n"
        );
        let read = read_jsonl(text.as_bytes(), &Redactor::default());
        let got: Vec<_> = read
            .rows
            .iter()
            .map(|r| (r.line, r.trace_id.as_str(), r.feedback.vote))
            .collect();
        assert_eq!(got, [(1, "t1", Vote::Negative), (6, "t3", Vote::Positive)]);
        assert_eq!(read.rows[0].comment.as_deref(), Some("wrong answer"));
        let lines: Vec<_> = read.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [3, 4, 5]);
        assert!(
            read.errors[0].reason.contains("`value` 7 is not feedback"),
            "{:?}",
            read.errors
        );
        assert!(read.errors[1].reason.contains("no `trace_id`"));
    }

    #[test]
    fn csv_rows_read_with_their_lines_and_a_missing_column_is_an_error() {
        let text = "trace_id,time,value,comment\nt1,2026-12-01T10:00:00Z,thumbs_down,\"slow, and wrong\"\nt2,yesterday,up,\n";
        let read = read_csv(text.as_bytes(), &Redactor::default()).unwrap();
        assert_eq!(read.rows.len(), 1);
        assert_eq!(read.rows[0].comment.as_deref(), Some("slow, and wrong"));
        assert_eq!(read.errors.len(), 1);
        assert_eq!(read.errors[0].line, 3);
        assert_eq!(
            read_csv(b"trace_id,value\nt1,up\n", &Redactor::default()).unwrap_err(),
            FeedbackFileError::MissingColumn("time")
        );
    }

    #[test]
    fn errors_quote_and_raw_values_keep_only_what_the_redaction_leaves() {
        use crate::traffic::redact::RedactRule;
        let q = Redactor::new(&[
            RedactRule::Email,
            RedactRule::Secret,
            RedactRule::Regex("(?i)thumbs".into()),
        ])
        .unwrap();
        let long = format!("{}@example.com", "a".repeat(60));
        let text = [
            format!(r#"{{"trace_id": "t1", "time": "{long}", "value": "up"}}"#),
            r#"{"trace_id": "t2", "time": 1, "value": "sk-abcdefghijklmnopqrstuvwx"}"#.to_owned(),
            r#"{"trace_id": "t3", "time": 1, "value": "down", "user": {"id": "u-secret-1"}}"#
                .to_owned(),
            r#""jane@example.com""#.to_owned(),
            r#"{"trace_id": "t4", "time": 1, "value": "Thumbs_Down"}"#.to_owned(),
        ]
        .join("\n");
        let read = read_jsonl(text.as_bytes(), &q);
        let reasons: Vec<&str> = read.errors.iter().map(|e| e.reason.as_str()).collect();
        assert_eq!(reasons.len(), 4, "{reasons:?}");
        assert!(reasons[0].contains("[redacted:email]"), "{reasons:?}");
        assert!(reasons[1].contains("[redacted:secret]"), "{reasons:?}");
        assert!(!reasons[2].contains("u-secret-1"), "{reasons:?}");
        assert!(reasons[3].contains("[redacted:email]"), "{reasons:?}");
        for r in &reasons {
            assert!(!r.contains("example.com") && !r.contains("sk-abc"), "{r}");
        }
        // The value kept as given is redacted too (it is stored); the vote is the value's.
        assert_eq!(read.rows.len(), 1);
        assert_eq!(read.rows[0].feedback.vote, Vote::Negative);
        assert_eq!(read.rows[0].feedback.raw, "[redacted]_Down");
        let csv = format!("trace_id,time,value\nt5,{long},up\nt6,1,thumbs_up\n");
        let read = read_csv(csv.as_bytes(), &q).unwrap();
        assert!(
            read.errors[0].reason.contains("[redacted:email]"),
            "{:?}",
            read.errors
        );
        assert_eq!(read.rows[0].feedback.raw, "[redacted]_up");
    }

    #[test]
    fn a_byte_order_mark_at_the_start_is_not_part_of_the_first_row() {
        let text = "\u{feff}{\"trace_id\": \"t1\", \"time\": 1, \"value\": \"up\"}\n";
        let read = read_jsonl(text.as_bytes(), &Redactor::default());
        assert_eq!(
            (read.rows.len(), read.errors.len()),
            (1, 0),
            "{:?}",
            read.errors
        );
    }
}
