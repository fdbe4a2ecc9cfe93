//! JSON assertions: `is-json` (optional JSON schema) and `json-path`.
//!
//! # What counts as JSON output
//!
//! The output is JSON when, after trimming whitespace, it parses as one JSON value. Models
//! often wrap JSON in Markdown, so an output that holds exactly one fenced code block
//! tagged `json` (```` ```json ... ``` ````), or exactly one untagged fenced block, is judged
//! by the content of that block; prose around the block is ignored. Several fenced blocks
//! are ambiguous and do not count.
//!
//! # Paths
//!
//! `json-path` takes a JSON pointer (`/a/0/b`, with `~1` for `/` and `~0` for `~`) or a
//! simple `JSONPath`: `$`, `.key`, `['key']`, `["key"]`, `[0]` and `[-1]` (from the end).
//! A path without `$` or a leading `/` is read as `JSONPath` after `$.` (`a.b[0]`). Wildcards,
//! slices and filters are not supported and are rejected when the scorer is built.

use serde_json::{Value, json};

use super::normalize;
use super::text::quote;
use super::verdict::Verdict;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// An object key; also an array index when it is a non-negative integer (pointers).
    Key(String),
    /// An array index (negative counts from the end); also an object key as text.
    Index(i64),
}

/// The JSON value of an output (see the module doc), or why there is none.
pub fn extract(output: &str) -> Result<Value, String> {
    let trimmed = output.trim();
    match serde_json::from_str::<Value>(trimmed) {
        Ok(v) => Ok(v),
        Err(direct) => match fenced_block(trimmed) {
            Some(body) => serde_json::from_str::<Value>(body.trim())
                .map_err(|e| format!("the fenced block is not valid JSON: {e}")),
            None => Err(format!("output is not valid JSON: {direct}")),
        },
    }
}

/// The content of the single fenced block of `s` tagged `json` (or untagged).
fn fenced_block(s: &str) -> Option<&str> {
    let mut blocks = Vec::new();
    let mut rest = s;
    let mut offset = 0;
    while let Some(open) = rest.find("```") {
        let after_ticks = open + 3;
        let line_end = rest[after_ticks..].find('\n')? + after_ticks;
        let info = rest[after_ticks..line_end].trim();
        let body_start = line_end + 1;
        let close = rest[body_start..].find("```")? + body_start;
        blocks.push((info, offset + body_start, offset + close));
        let next = close + 3;
        offset += next;
        rest = &rest[next..];
    }
    match blocks.as_slice() {
        [(info, start, end)] if info.is_empty() || info.eq_ignore_ascii_case("json") => {
            Some(&s[*start..*end])
        }
        _ => None,
    }
}

/// `is-json`: the output is JSON and, with a schema, valid against it.
pub fn is_json(output: &str, schema: Option<&jsonschema::Validator>) -> Verdict {
    let value = match extract(output) {
        Ok(v) => v,
        Err(e) => return Verdict::binary(false, e, Value::Null),
    };
    let Some(schema) = schema else {
        return Verdict::binary(true, "output is valid JSON".into(), Value::Null);
    };
    let errors: Vec<String> = schema
        .iter_errors(&value)
        .take(10)
        .map(|e| {
            let at = e.instance_path().to_string();
            if at.is_empty() {
                e.to_string()
            } else {
                format!("{at}: {e}")
            }
        })
        .collect();
    if errors.is_empty() {
        Verdict::binary(
            true,
            "output is valid JSON and matches the schema".into(),
            Value::Null,
        )
    } else {
        Verdict::binary(
            false,
            format!("output does not match the schema: {}", errors[0]),
            json!({ "errors": errors }),
        )
    }
}

/// Parse a pointer or simple `JSONPath` into segments.
pub fn parse_path(path: &str) -> Result<Vec<Segment>, String> {
    let path = path.trim();
    if path.is_empty() {
        return Ok(Vec::new());
    }
    if let Some(rest) = path.strip_prefix('/') {
        return Ok(rest
            .split('/')
            .map(|t| Segment::Key(t.replace("~1", "/").replace("~0", "~")))
            .collect());
    }
    match path.strip_prefix('$') {
        Some(rest) => parse_jsonpath(rest, path),
        None => parse_jsonpath(&format!(".{path}"), path),
    }
}

fn parse_jsonpath(mut s: &str, original: &str) -> Result<Vec<Segment>, String> {
    let bad = |why: &str| format!("unsupported JSON path `{original}`: {why}");
    let mut segs = Vec::new();
    while !s.is_empty() {
        if let Some(rest) = s.strip_prefix('.') {
            if rest.starts_with('.') {
                return Err(bad("recursive descent `..` is not supported"));
            }
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            let key = &rest[..end];
            if key.is_empty() {
                return Err(bad("empty key"));
            }
            if key == "*" {
                return Err(bad("wildcards are not supported"));
            }
            segs.push(Segment::Key(key.to_owned()));
            s = &rest[end..];
        } else if let Some(rest) = s.strip_prefix('[') {
            let (seg, after) = if let Some(q) =
                rest.chars().next().filter(|c| *c == '\'' || *c == '"')
            {
                let inner = &rest[1..];
                let close = inner
                    .find(q)
                    .ok_or_else(|| bad("unterminated quoted key"))?;
                let after = inner[close + 1..]
                    .strip_prefix(']')
                    .ok_or_else(|| bad("expected `]` after a quoted key"))?;
                (Segment::Key(inner[..close].to_owned()), after)
            } else {
                let close = rest.find(']').ok_or_else(|| bad("unterminated `[`"))?;
                let idx = rest[..close].trim();
                let n: i64 = idx
                    .parse()
                    .map_err(|_| bad(&format!("`[{idx}]` is not an index (wildcards, slices and filters are not supported)")))?;
                (Segment::Index(n), &rest[close + 1..])
            };
            segs.push(seg);
            s = after;
        } else {
            return Err(bad(&format!("unexpected text `{s}`")));
        }
    }
    Ok(segs)
}

/// The value at `segs` in `v`.
pub fn resolve<'v>(mut v: &'v Value, segs: &[Segment]) -> Option<&'v Value> {
    for seg in segs {
        v = match (v, seg) {
            (Value::Object(m), Segment::Key(k)) => m.get(k)?,
            (Value::Object(m), Segment::Index(i)) => m.get(&i.to_string())?,
            (Value::Array(a), Segment::Key(k)) => a.get(k.parse::<usize>().ok()?)?,
            (Value::Array(a), Segment::Index(i)) => {
                let idx = if *i < 0 {
                    a.len()
                        .checked_sub(usize::try_from(i.unsigned_abs()).ok()?)?
                } else {
                    usize::try_from(*i).ok()?
                };
                a.get(idx)?
            }
            _ => return None,
        };
    }
    Some(v)
}

/// Whether two JSON values are equal for `json-path`: numbers by value (`1` equals `1.0`), a
/// string holding a number equals that number (`"42"` equals `42`), strings compared after
/// the assertion's normalisation, arrays and objects element by element.
pub fn json_eq(a: &Value, b: &Value, mask: u8) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => num_eq(x.as_f64(), y.as_f64()),
        (Value::Number(n), Value::String(s)) | (Value::String(s), Value::Number(n)) => {
            num_eq(n.as_f64(), s.trim().parse::<f64>().ok())
        }
        (Value::String(x), Value::String(y)) => {
            normalize::apply(x, mask) == normalize::apply(y, mask)
        }
        (Value::Bool(x), Value::String(s)) | (Value::String(s), Value::Bool(x)) => s
            .trim()
            .eq_ignore_ascii_case(if *x { "true" } else { "false" }),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q, mask))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, p)| y.get(k).is_some_and(|q| json_eq(p, q, mask)))
        }
        _ => a == b,
    }
}

fn num_eq(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => x == y || (x - y).abs() <= 1e-12 * x.abs().max(y.abs()),
        _ => false,
    }
}

/// `json-path`: the path exists, and with `expected`, holds an equal value.
pub fn json_path(
    output: &str,
    path: &str,
    segs: &[Segment],
    expected: Option<&Value>,
    mask: u8,
) -> Verdict {
    let value = match extract(output) {
        Ok(v) => v,
        Err(e) => return Verdict::binary(false, e, Value::Null),
    };
    let Some(found) = resolve(&value, segs) else {
        return Verdict::binary(
            false,
            format!("path `{path}` does not exist in the output"),
            Value::Null,
        );
    };
    let Some(expected) = expected else {
        return Verdict::binary(
            true,
            format!("path `{path}` exists"),
            json!({ "actual": found }),
        );
    };
    let details = json!({ "actual": found, "expected": expected });
    if json_eq(found, expected, mask) {
        Verdict::binary(true, format!("`{path}` equals {}", show(expected)), details)
    } else {
        Verdict::binary(
            false,
            format!("`{path}` is {}, not {}", show(found), show(expected)),
            details,
        )
    }
}

/// A JSON value for a reason: a string quoted once, anything else as its JSON text.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => quote(s),
        other => {
            let text = other.to_string();
            match text.char_indices().nth(80) {
                Some((i, _)) => format!("{}…", &text[..i]),
                None => text,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_quote_strings_once_and_show_other_values_as_json() {
        assert_eq!(show(&json!("2027-03-02")), "\"2027-03-02\"");
        assert_eq!(show(&json!(1250)), "1250");
        assert_eq!(show(&json!(null)), "null");
    }

    fn k(s: &str) -> Segment {
        Segment::Key(s.into())
    }

    #[test]
    fn extract_plain_and_fenced() {
        assert_eq!(extract("  {\"a\": 1}\n").unwrap(), json!({"a": 1}));
        assert_eq!(extract("[1,2]").unwrap(), json!([1, 2]));
        let fenced = "Here you go:\n```json\n{\"a\": [1, 2]}\n```\nAnything else?";
        assert_eq!(extract(fenced).unwrap(), json!({"a": [1, 2]}));
        assert_eq!(
            extract("```\n{\"b\": true}\n```").unwrap(),
            json!({"b": true})
        );
        assert!(extract("not json").is_err());
        assert!(extract("{\"a\": 1").is_err());
        assert!(extract("").is_err());
        // Two blocks are ambiguous; another language does not count.
        assert!(extract("```json\n{}\n```\n```json\n[]\n```").is_err());
        assert!(extract("```python\n{}\n```").is_err());
        // An unterminated fence is not JSON.
        assert!(extract("```json\n{}").is_err());
    }

    #[test]
    fn is_json_without_schema() {
        assert!(is_json("{\"ok\": true}", None).pass);
        let v = is_json("{ok: true}", None);
        assert!(!v.pass);
        assert!(
            v.reason.starts_with("output is not valid JSON"),
            "{}",
            v.reason
        );
    }

    #[test]
    fn is_json_with_schema() {
        let schema = json!({
            "type": "object",
            "required": ["name", "age"],
            "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}}
        });
        let validator = jsonschema::validator_for(&schema).unwrap();
        assert!(is_json("{\"name\": \"Ann\", \"age\": 3}", Some(&validator)).pass);
        let v = is_json("{\"name\": \"Ann\", \"age\": -3}", Some(&validator));
        assert!(!v.pass);
        assert!(v.reason.contains("/age"), "{}", v.reason);
        assert_eq!(v.details["errors"].as_array().unwrap().len(), 1);
        assert!(!is_json("{\"name\": 5}", Some(&validator)).pass);
        assert!(!is_json("nope", Some(&validator)).pass);
    }

    #[test]
    fn path_forms() {
        assert_eq!(parse_path("/a/0/b").unwrap(), vec![k("a"), k("0"), k("b")]);
        assert_eq!(parse_path("/a~1b/c~0d").unwrap(), vec![k("a/b"), k("c~d")]);
        assert_eq!(
            parse_path("$.a[0].b").unwrap(),
            vec![k("a"), Segment::Index(0), k("b")]
        );
        assert_eq!(
            parse_path("$['a b'][\"c\"]").unwrap(),
            vec![k("a b"), k("c")]
        );
        assert_eq!(
            parse_path("$.items[-1]").unwrap(),
            vec![k("items"), Segment::Index(-1)]
        );
        assert_eq!(parse_path("a.b").unwrap(), vec![k("a"), k("b")]);
        assert_eq!(parse_path("$").unwrap(), Vec::<Segment>::new());
        assert_eq!(parse_path("").unwrap(), Vec::<Segment>::new());
        assert!(parse_path("$.a[*]").is_err());
        assert!(parse_path("$..a").is_err());
        assert!(parse_path("$.a[0:2]").is_err());
        assert!(parse_path("$['a").is_err());
        assert!(parse_path("$a").is_err());
    }

    #[test]
    fn resolve_values() {
        let v = json!({"a": [{"b": 1}, {"b": 2}], "0": "zero", "x/y": true});
        assert_eq!(resolve(&v, &parse_path("/a/1/b").unwrap()), Some(&json!(2)));
        assert_eq!(
            resolve(&v, &parse_path("$.a[0].b").unwrap()),
            Some(&json!(1))
        );
        assert_eq!(
            resolve(&v, &parse_path("$.a[-1].b").unwrap()),
            Some(&json!(2))
        );
        assert_eq!(resolve(&v, &parse_path("$.a[-3]").unwrap()), None);
        assert_eq!(resolve(&v, &parse_path("$.a[5]").unwrap()), None);
        assert_eq!(
            resolve(&v, &parse_path("$[0]").unwrap()),
            Some(&json!("zero"))
        );
        assert_eq!(
            resolve(&v, &parse_path("/x~1y").unwrap()),
            Some(&json!(true))
        );
        assert_eq!(resolve(&v, &parse_path("/a/b").unwrap()), None);
        assert_eq!(resolve(&v, &parse_path("$.a[0].b.c").unwrap()), None);
    }

    #[test]
    fn loose_equality() {
        assert!(json_eq(&json!("42"), &json!(42), 0));
        assert!(json_eq(&json!(42), &json!(" 42 "), 0));
        assert!(json_eq(&json!(1), &json!(1.0), 0));
        assert!(!json_eq(&json!("42a"), &json!(42), 0));
        assert!(json_eq(&json!(true), &json!("true"), 0));
        assert!(!json_eq(&json!("Paris"), &json!("paris"), 0));
        assert!(json_eq(
            &json!("Paris"),
            &json!("paris"),
            normalize::LOWERCASE
        ));
        assert!(json_eq(&json!({"a": [1, "2"]}), &json!({"a": ["1", 2]}), 0));
        assert!(!json_eq(&json!({"a": 1}), &json!({"a": 1, "b": 2}), 0));
        assert!(!json_eq(&json!(null), &json!("null"), 0));
        assert!(json_eq(&json!(null), &json!(null), 0));
    }

    #[test]
    fn json_path_verdicts() {
        let out = "{\"order\": {\"total\": 42, \"items\": [\"a\", \"b\"]}}";
        let segs = parse_path("$.order.total").unwrap();
        assert!(json_path(out, "$.order.total", &segs, None, 0).pass);
        assert!(json_path(out, "$.order.total", &segs, Some(&json!("42")), 0).pass);
        let v = json_path(out, "$.order.total", &segs, Some(&json!(41)), 0);
        assert!(!v.pass);
        assert_eq!(v.reason, "`$.order.total` is 42, not 41");
        let segs = parse_path("/order/missing").unwrap();
        let v = json_path(out, "/order/missing", &segs, None, 0);
        assert!(!v.pass);
        assert!(v.reason.contains("does not exist"));
        assert!(!json_path("not json", "/a", &parse_path("/a").unwrap(), None, 0).pass);
    }
}
