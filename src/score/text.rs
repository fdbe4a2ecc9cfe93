//! String assertions: `equals`, the `contains` family, `starts-with`, `ends-with`, `regex`
//! and `length`. Outputs and values arrive already normalised; `raw` values are as written,
//! for reasons.

use regex::Regex;
use serde_json::{Value, json};

use super::verdict::Verdict;
use crate::model::LengthUnit;

/// Longest excerpt of a value or output quoted in a reason.
const QUOTE_CHARS: usize = 80;

/// `s` quoted for a reason, cut after [`QUOTE_CHARS`] characters.
pub fn quote(s: &str) -> String {
    match s.char_indices().nth(QUOTE_CHARS) {
        Some((i, _)) => format!("{:?}…", &s[..i]),
        None => format!("{s:?}"),
    }
}

fn list(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| quote(v))
        .collect::<Vec<_>>()
        .join(", ")
}

fn suffix(ignore_case: bool) -> &'static str {
    if ignore_case { " (ignoring case)" } else { "" }
}

pub fn equals(out: &str, value: &str, raw: &str) -> Verdict {
    if out == value {
        Verdict::binary(true, format!("output equals {}", quote(raw)), Value::Null)
    } else {
        let at = out
            .chars()
            .zip(value.chars())
            .take_while(|(a, b)| a == b)
            .count();
        Verdict::binary(
            false,
            format!("output does not equal {}", quote(raw)),
            json!({ "first_difference_at": at, "output_chars": out.chars().count(), "expected_chars": value.chars().count() }),
        )
    }
}

/// `contains` and `icontains` (then `out` and `value` are already lowercase).
pub fn contains(out: &str, value: &str, raw: &str, ignore_case: bool) -> Verdict {
    match out.find(value) {
        Some(at) => Verdict::binary(
            true,
            format!("output contains {}{}", quote(raw), suffix(ignore_case)),
            json!({ "offset": at }),
        ),
        None => Verdict::binary(
            false,
            format!(
                "output does not contain {}{}",
                quote(raw),
                suffix(ignore_case)
            ),
            Value::Null,
        ),
    }
}

fn split_found<'a>(
    out: &str,
    values: &[String],
    raws: &'a [String],
) -> (Vec<&'a str>, Vec<&'a str>) {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for (v, raw) in values.iter().zip(raws) {
        if out.contains(v.as_str()) {
            found.push(raw.as_str());
        } else {
            missing.push(raw.as_str());
        }
    }
    (found, missing)
}

pub fn contains_any(out: &str, values: &[String], raws: &[String], ignore_case: bool) -> Verdict {
    let (found, missing) = split_found(out, values, raws);
    let pass = !found.is_empty();
    let reason = if pass {
        format!("output contains {}{}", list(&found), suffix(ignore_case))
    } else {
        format!(
            "output contains none of {}{}",
            list(&missing),
            suffix(ignore_case)
        )
    };
    Verdict::binary(pass, reason, json!({ "found": found, "missing": missing }))
}

/// Score = share of values found; passes when the share reaches `threshold` (default: all).
pub fn contains_all(
    out: &str,
    values: &[String],
    raws: &[String],
    ignore_case: bool,
    threshold: Option<f64>,
) -> Verdict {
    let (found, missing) = split_found(out, values, raws);
    let share = if values.is_empty() {
        1.0
    } else {
        found.len() as f64 / values.len() as f64
    };
    let pass = match threshold {
        Some(t) => share + 1e-9 >= t,
        None => missing.is_empty(),
    };
    let reason = if missing.is_empty() {
        format!(
            "output contains all {} values{}",
            values.len(),
            suffix(ignore_case)
        )
    } else {
        format!(
            "output is missing {} of {} values: {}{}",
            missing.len(),
            values.len(),
            list(&missing),
            suffix(ignore_case)
        )
    };
    Verdict::graded(
        pass,
        share,
        reason,
        json!({ "found": found, "missing": missing, "share": share }),
    )
}

pub fn starts_with(out: &str, value: &str, raw: &str) -> Verdict {
    let pass = out.starts_with(value);
    let reason = if pass {
        format!("output starts with {}", quote(raw))
    } else {
        format!(
            "output does not start with {} (it starts with {})",
            quote(raw),
            quote(out)
        )
    };
    Verdict::binary(pass, reason, Value::Null)
}

pub fn ends_with(out: &str, value: &str, raw: &str) -> Verdict {
    let pass = out.ends_with(value);
    let reason = if pass {
        format!("output ends with {}", quote(raw))
    } else {
        let tail_start = out
            .char_indices()
            .rev()
            .nth(QUOTE_CHARS.min(value.chars().count().max(20)) - 1)
            .map_or(0, |(i, _)| i);
        format!(
            "output does not end with {} (it ends with {})",
            quote(raw),
            quote(&out[tail_start..])
        )
    };
    Verdict::binary(pass, reason, Value::Null)
}

pub fn regex(out: &str, re: &Regex) -> Verdict {
    match re.find(out) {
        Some(m) => Verdict::binary(
            true,
            format!("output matches /{}/", re.as_str()),
            json!({ "match": m.as_str().chars().take(200).collect::<String>(), "offset": m.start() }),
        ),
        None => Verdict::binary(
            false,
            format!("output does not match /{}/", re.as_str()),
            Value::Null,
        ),
    }
}

/// Length in Unicode scalar values or whitespace-separated words, within `min..=max`.
pub fn length(out: &str, min: Option<usize>, max: Option<usize>, unit: LengthUnit) -> Verdict {
    let (n, name) = match unit {
        LengthUnit::Chars => (out.chars().count(), "chars"),
        LengthUnit::Words => (out.split_whitespace().count(), "words"),
    };
    let too_short = min.is_some_and(|m| n < m);
    let too_long = max.is_some_and(|m| n > m);
    let bounds = match (min, max) {
        (Some(a), Some(b)) => format!("{a}..{b}"),
        (Some(a), None) => format!(">= {a}"),
        (None, Some(b)) => format!("<= {b}"),
        (None, None) => "any".to_owned(),
    };
    let reason = if too_short {
        format!(
            "output has {n} {name}, fewer than the minimum {}",
            min.unwrap_or(0)
        )
    } else if too_long {
        format!(
            "output has {n} {name}, more than the maximum {}",
            max.unwrap_or(0)
        )
    } else {
        format!("output has {n} {name}, within {bounds}")
    };
    Verdict::binary(
        !too_short && !too_long,
        reason,
        json!({ "length": n, "unit": name }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn equals_both_ways() {
        let v = equals("30 days", "30 days", "30 days");
        assert!(v.pass);
        assert!((v.score - 1.0).abs() < f64::EPSILON);
        let v = equals("30 dayz", "30 days", "30 days");
        assert!(!v.pass);
        assert!(v.score.abs() < f64::EPSILON);
        assert_eq!(v.reason, "output does not equal \"30 days\"");
        assert_eq!(v.details["first_difference_at"], 6);
    }

    #[test]
    fn contains_both_ways() {
        let v = contains("returns within 30 days", "30 days", "30 days", false);
        assert!(v.pass);
        assert_eq!(v.details["offset"], 15);
        let v = contains("returns within 30 Days", "30 days", "30 days", false);
        assert!(!v.pass);
        assert_eq!(v.reason, "output does not contain \"30 days\"");
        let v = contains("x", "y", "Y", true);
        assert_eq!(v.reason, "output does not contain \"Y\" (ignoring case)");
    }

    #[test]
    fn any_and_all() {
        let vals = s(&["red", "green", "blue"]);
        let v = contains_any("a green car", &vals, &vals, false);
        assert!(v.pass);
        assert_eq!(v.details["found"], json!(["green"]));
        let v = contains_any("a pink car", &vals, &vals, false);
        assert!(!v.pass);
        assert!(v.reason.starts_with("output contains none of"));

        let v = contains_all("red and blue", &vals, &vals, false, None);
        assert!(!v.pass);
        assert!((v.score - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(v.details["missing"], json!(["green"]));
        assert_eq!(v.reason, "output is missing 1 of 3 values: \"green\"");
        let v = contains_all("red, green and blue", &vals, &vals, false, None);
        assert!(v.pass);
        assert!((v.score - 1.0).abs() < f64::EPSILON);
        // A per-assertion threshold lowers the share needed.
        assert!(contains_all("red and blue", &vals, &vals, false, Some(0.6)).pass);
        assert!(!contains_all("red", &vals, &vals, false, Some(0.6)).pass);
    }

    #[test]
    fn starts_and_ends() {
        assert!(starts_with("Hello world", "Hello", "Hello").pass);
        assert!(!starts_with("Hi world", "Hello", "Hello").pass);
        assert!(ends_with("Hello world", "world", "world").pass);
        let v = ends_with("Hello world!", "world", "world");
        assert!(!v.pass);
        assert!(v.reason.contains("it ends with"), "{}", v.reason);
        assert!(ends_with("", "", "").pass);
        assert!(!ends_with("", "x", "x").pass);
    }

    #[test]
    fn regex_both_ways() {
        let re = Regex::new(r"\d{3}-\d{4}").unwrap();
        let v = regex("call 555-1234 now", &re);
        assert!(v.pass);
        assert_eq!(v.details["match"], "555-1234");
        let v = regex("call me", &re);
        assert!(!v.pass);
        assert_eq!(v.reason, r"output does not match /\d{3}-\d{4}/");
    }

    #[test]
    fn length_chars_and_words() {
        // 5 Unicode scalar values, 7 bytes.
        assert!(length("héllö", Some(5), Some(5), LengthUnit::Chars).pass);
        assert!(!length("héllö", Some(6), None, LengthUnit::Chars).pass);
        assert!(!length("héllö", None, Some(4), LengthUnit::Chars).pass);
        let v = length("one two  three\nfour", None, Some(3), LengthUnit::Words);
        assert!(!v.pass);
        assert_eq!(v.details["length"], 4);
        assert!(v.reason.contains("more than the maximum 3"));
        assert!(length("", None, None, LengthUnit::Words).pass);
    }

    #[test]
    fn quote_truncates() {
        let long = "a".repeat(200);
        let q = quote(&long);
        assert!(q.ends_with('…'));
        assert_eq!(q.chars().count(), 80 + 3);
    }
}
