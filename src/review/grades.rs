//! The grades file a sheet exports and `review import` reads:
//! `{"sheet_id", "reviewer", "exported_at", "grades": [{"result_id", "verdict": "pass|fail",
//! "quality": 1-5 or null, "hallucination": true|false|null, "note"}]}`, plus `sheet_mac`, the
//! sheet's HMAC, which a sheet writes and an import requires and checks.

use std::collections::HashSet;
use std::hash::BuildHasher;

use serde::Deserialize;
use serde_json::Value;

use super::ReviewError;
use crate::model::Grade;

/// Longest reviewer name, in characters.
pub const MAX_REVIEWER: usize = 200;
/// Longest note, in characters.
pub const MAX_NOTE: usize = 10_000;

/// A grades file, read and checked for form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GradesFile {
    pub sheet_id: String,
    pub reviewer: String,
    /// RFC 3339 UTC, normalised.
    pub exported_at: String,
    pub sheet_mac: String,
    pub grades: Vec<Grade>,
}

#[derive(Deserialize)]
struct RawFile {
    sheet_id: String,
    reviewer: String,
    exported_at: String,
    #[serde(default)]
    sheet_mac: Option<String>,
    grades: Vec<RawGrade>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrade {
    result_id: Value,
    verdict: String,
    #[serde(default)]
    quality: Option<Value>,
    #[serde(default)]
    hallucination: Option<bool>,
    #[serde(default)]
    note: Option<String>,
}

/// What a JSON value is, in words.
fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "an object",
        Value::Array(_) => "a list",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
    }
}

/// A JSON error's reason without the " at line L column C" it ends with.
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    text.strip_suffix(&suffix).unwrap_or(&text).to_owned()
}

fn result_id(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|id| *id > 0)
}

/// Parse a grades file; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<GradesFile, ReviewError> {
    let err = |message: String| ReviewError::Grades {
        file: file.to_owned(),
        message,
    };
    let again = "; export it again from the sheet";
    // Read as JSON first: a syntax error is located by line and column, and the form of the
    // grades object is then judged by its path (`grades[0].hallucination`), each said once.
    let value: Value = serde_json::from_str(text).map_err(|e| {
        if e.is_eof() {
            err(format!(
                "not JSON: it ends at line {} column {} before the JSON does (a file cut short?){again}",
                e.line(),
                e.column()
            ))
        } else {
            err(format!(
                "not JSON at line {} column {}: {}{again}",
                e.line(),
                e.column(),
                without_position(&e)
            ))
        }
    })?;
    if !value.is_object() {
        return Err(err(format!(
            "the file holds {}, not the grades object a sheet exports ({{\"sheet_id\", \"reviewer\", \"exported_at\", \"sheet_mac\", \"grades\": [...]}}){again}",
            kind_of(&value)
        )));
    }
    // A list where a grade belongs would otherwise be read as the grade's fields in order.
    if let Some((i, g)) = value
        .get("grades")
        .and_then(Value::as_array)
        .and_then(|gs| gs.iter().enumerate().find(|(_, g)| !g.is_object()))
    {
        return Err(err(format!(
            "`grades[{i}]` is {}, not a grade ({{\"result_id\", \"verdict\", \"quality\", \"hallucination\", \"note\"}}){again}",
            kind_of(g)
        )));
    }
    let raw: RawFile = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e
            .into_inner()
            .to_string()
            .replace("struct RawFile", "the grades object")
            .replace("struct RawGrade", "a grade object");
        if path.is_empty() || path == "." || path == "?" {
            err(format!("{message}{again}"))
        } else {
            err(format!("`{path}`: {message}{again}"))
        }
    })?;
    let sheet_id = raw.sheet_id.trim().to_owned();
    if sheet_id.is_empty() {
        return Err(err("`sheet_id` is empty".into()));
    }
    let reviewer = raw.reviewer.trim().to_owned();
    if reviewer.is_empty() {
        return Err(err(
            "`reviewer` is empty: grades are stored under a reviewer's name; type your name in the sheet's Reviewer field and export or send the grades again".into(),
        ));
    }
    if reviewer.chars().count() > MAX_REVIEWER || reviewer.chars().any(char::is_control) {
        return Err(err(format!(
            "`reviewer` must be at most {MAX_REVIEWER} characters without control characters"
        )));
    }
    let exported_at = chrono::DateTime::parse_from_rfc3339(raw.exported_at.trim())
        .map_err(|e| {
            err(format!(
                "`exported_at` `{}` is not an RFC 3339 time: {e}",
                raw.exported_at
            ))
        })?
        .with_timezone(&chrono::Utc)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut seen = HashSet::new();
    let mut grades = Vec::with_capacity(raw.grades.len());
    for (i, g) in raw.grades.into_iter().enumerate() {
        let at = |m: String| err(format!("grades[{i}]: {m}"));
        let id = result_id(&g.result_id)
            .ok_or_else(|| at(format!("`result_id` {} is not a result id", g.result_id)))?;
        if !seen.insert(id) {
            return Err(at(format!("result {id} is graded twice in this file")));
        }
        let pass = match g.verdict.as_str() {
            "pass" => true,
            "fail" => false,
            other => return Err(at(format!("`verdict` is `{other}`; use pass or fail"))),
        };
        let quality = match g.quality {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .filter(|q| (1..=5).contains(q))
                    .and_then(|q| u8::try_from(q).ok())
                    .ok_or_else(|| at(format!("`quality` {v} is not 1 to 5 or null")))?,
            ),
        };
        let note = g.note.unwrap_or_default();
        if note.chars().count() > MAX_NOTE {
            return Err(at(format!("`note` is longer than {MAX_NOTE} characters")));
        }
        grades.push(Grade {
            result_id: id,
            pass,
            quality,
            hallucination: g.hallucination,
            note,
        });
    }
    let sheet_mac = raw
        .sheet_mac
        .map(|m| m.trim().to_owned())
        .unwrap_or_default();
    if sheet_mac.is_empty() {
        return Err(err(
            "`sheet_mac` is missing: it ties the grades to the sheet they were given on; export the grades again from the sheet (or from `evalwatch review show SHEET_ID --html`)".into(),
        ));
    }
    Ok(GradesFile {
        sheet_id,
        reviewer,
        exported_at,
        sheet_mac,
        grades,
    })
}

/// Check that a grades file belongs to its sheet: the sheet's HMAC matches, and every graded
/// result is an item of the sheet.
pub fn check_against_sheet<S: BuildHasher>(
    file: &GradesFile,
    sheet_mac: &str,
    items: &HashSet<i64, S>,
) -> Result<(), ReviewError> {
    let tampered = |message: String| ReviewError::Tampered {
        sheet_id: file.sheet_id.clone(),
        message,
    };
    if !super::sheet::same_mac(&file.sheet_mac, sheet_mac) {
        return Err(tampered(
            "the file's `sheet_mac` does not match the sheet: the file was edited or comes from another sheet; nothing was imported".into(),
        ));
    }
    let strangers: Vec<String> = file
        .grades
        .iter()
        .filter(|g| !items.contains(&g.result_id))
        .map(|g| g.result_id.to_string())
        .collect();
    if !strangers.is_empty() {
        let shown: Vec<&str> = strangers.iter().take(5).map(String::as_str).collect();
        return Err(tampered(format!(
            "{} graded result(s) are not items of this sheet ({}{}); nothing was imported",
            strangers.len(),
            shown.join(", "),
            if strangers.len() > shown.len() {
                ", ..."
            } else {
                ""
            }
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"sheet_id": "s1", "reviewer": " Ann ", "exported_at": "2026-03-01T10:00:00+01:00",
        "sheet_mac": "ab", "grades": [
          {"result_id": "4294967296", "verdict": "pass", "quality": 4, "hallucination": false, "note": "ok"},
          {"result_id": 4294967297, "verdict": "fail", "quality": null, "hallucination": null, "note": ""},
          {"result_id": "4294967298", "verdict": "fail"}]}"#;

    #[test]
    fn a_good_file_parses() {
        let f = parse(GOOD, "g.json").unwrap();
        assert_eq!(f.sheet_id, "s1");
        assert_eq!(f.reviewer, "Ann");
        assert_eq!(f.exported_at, "2026-03-01T09:00:00.000Z");
        assert_eq!(f.grades.len(), 3);
        assert_eq!(f.grades[0].result_id, 4_294_967_296);
        assert_eq!(f.grades[0].quality, Some(4));
        assert_eq!(f.grades[0].hallucination, Some(false));
        assert!(!f.grades[1].pass);
        assert_eq!(f.grades[2].note, "");
    }

    /// Audit review D8 (C9): said once where, in the file's own words, without the parser's
    /// type names.
    #[test]
    fn errors_are_located_once_without_internal_names() {
        let head = r#"{"sheet_id": "s", "reviewer": "a", "exported_at": "2026-03-01T10:00:00Z", "sheet_mac": "m", "grades": "#;
        for (text, want) in [
            (
                format!(
                    r#"{head}[{{"result_id": 1, "verdict": "pass", "hallucination": "yes"}}]}}"#
                ),
                "read the grades in g.json: `grades[0].hallucination`: invalid type: string \"yes\", expected a boolean; export it again from the sheet",
            ),
            (
                "[]".to_owned(),
                "read the grades in g.json: the file holds a list, not the grades object a sheet exports ({\"sheet_id\", \"reviewer\", \"exported_at\", \"sheet_mac\", \"grades\": [...]}); export it again from the sheet",
            ),
            (
                format!("{head}[{{\"result_id\": 1,"),
                "read the grades in g.json: not JSON: it ends at line 1 column 119 before the JSON does (a file cut short?); export it again from the sheet",
            ),
            (
                "{\n  \"sheet_id\": x}".to_owned(),
                "read the grades in g.json: not JSON at line 2 column 15: expected value; export it again from the sheet",
            ),
            (
                format!("{head}[[1]]}}"),
                "read the grades in g.json: `grades[0]` is a list, not a grade ({\"result_id\", \"verdict\", \"quality\", \"hallucination\", \"note\"}); export it again from the sheet",
            ),
            (
                r#"{"sheet_id": "s"}"#.to_owned(),
                "read the grades in g.json: missing field `reviewer`; export it again from the sheet",
            ),
        ] {
            let err = parse(&text, "g.json").expect_err(&text).to_string();
            assert_eq!(err, want, "{text}");
        }
    }

    #[test]
    fn bad_files_say_what_and_where() {
        for (text, want) in [
            ("not json", "g.json"),
            (
                r#"{"sheet_id": "s", "reviewer": "", "exported_at": "2026-03-01T10:00:00Z", "grades": []}"#,
                "reviewer",
            ),
            (
                r#"{"sheet_id": "s", "reviewer": "a", "exported_at": "yesterday", "grades": []}"#,
                "RFC 3339",
            ),
            (
                r#"{"sheet_id": "s", "reviewer": "a", "exported_at": "2026-03-01T10:00:00Z", "grades": [{"result_id": "x", "verdict": "pass"}]}"#,
                "grades[0]",
            ),
            (
                r#"{"sheet_id": "s", "reviewer": "a", "exported_at": "2026-03-01T10:00:00Z", "grades": [{"result_id": 1, "verdict": "ok"}]}"#,
                "pass or fail",
            ),
            (
                r#"{"sheet_id": "s", "reviewer": "a", "exported_at": "2026-03-01T10:00:00Z", "grades": [{"result_id": 1, "verdict": "pass", "quality": 6}]}"#,
                "1 to 5",
            ),
            (
                r#"{"sheet_id": "s", "reviewer": "a", "exported_at": "2026-03-01T10:00:00Z", "grades": [{"result_id": 1, "verdict": "pass"}, {"result_id": "1", "verdict": "fail"}]}"#,
                "twice",
            ),
            (
                r#"{"sheet_id": "s", "reviewer": "a", "exported_at": "2026-03-01T10:00:00Z", "grades": [{"result_id": 1, "verdict": "pass", "score": 1}]}"#,
                "score",
            ),
            (
                r#"{"sheet_id": "s", "reviewer": "a", "exported_at": "2026-03-01T10:00:00Z", "grades": [{"result_id": -4, "verdict": "pass"}]}"#,
                "not a result id",
            ),
        ] {
            let err = parse(text, "g.json").expect_err(text).to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn tampering_is_rejected() {
        let f = parse(GOOD, "g.json").unwrap();
        let items: HashSet<i64> = [4_294_967_296, 4_294_967_297, 4_294_967_298].into();
        check_against_sheet(&f, "ab", &items).unwrap();
        let err = check_against_sheet(&f, "cd", &items)
            .unwrap_err()
            .to_string();
        assert!(err.contains("sheet_mac"), "{err}");
        let fewer: HashSet<i64> = [4_294_967_296].into();
        let err = check_against_sheet(&f, "ab", &fewer)
            .unwrap_err()
            .to_string();
        assert!(err.contains("2 graded result(s) are not items"), "{err}");
        assert!(err.contains("4294967297"), "{err}");
        // A file without a MAC is refused when read.
        let bare = GOOD.replace(r#""sheet_mac": "ab","#, "");
        let err = parse(&bare, "g.json").unwrap_err().to_string();
        assert!(err.contains("`sheet_mac` is missing"), "{err}");
        let blank = GOOD.replace(r#""sheet_mac": "ab","#, r#""sheet_mac": " ","#);
        assert!(parse(&blank, "g.json").is_err());
    }
}
