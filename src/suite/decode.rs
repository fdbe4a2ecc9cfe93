//! From located YAML nodes to wire structs, collecting every error with its position:
//! unknown fields (with did-you-mean), wrong types, missing fields, unset environment variables.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::{DeserializeOwned, Visitor};
use serde_json::Value;

use super::Diagnostic;
use super::yaml::{Kind, Node};
use crate::model::Location;

/// Collects the diagnostics of one file being decoded.
pub(crate) struct Ctx {
    pub file: PathBuf,
    /// `file`, shared by every location of this file.
    shared: Arc<Path>,
    /// Expand `${VAR}` in string values (YAML files; not JSONL/CSV data).
    pub expand_env: bool,
    pub diags: Vec<Diagnostic>,
}

impl Ctx {
    pub fn new(file: &Path, expand_env: bool) -> Self {
        Self {
            file: file.to_path_buf(),
            shared: Arc::from(file),
            expand_env,
            diags: Vec::new(),
        }
    }

    pub fn loc(&self, node: &Node) -> Location {
        self.at(node.line, node.col)
    }

    pub fn at(&self, line: usize, col: usize) -> Location {
        Location {
            file: Arc::clone(&self.shared),
            line,
            col,
        }
    }

    pub fn error(&mut self, node: &Node, message: impl Into<String>) {
        let location = self.loc(node);
        self.diags.push(Diagnostic {
            location,
            message: message.into(),
        });
    }

    pub fn push(&mut self, location: Location, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            location,
            message: message.into(),
        });
    }

    /// The node as JSON, expanding `${VAR}` in strings when enabled.
    pub fn json(&mut self, node: &Node) -> Value {
        match &node.kind {
            Kind::Null => Value::Null,
            Kind::Bool(b) => Value::Bool(*b),
            Kind::Int(i) => Value::from(*i),
            Kind::Float(f) => serde_json::Number::from_f64(*f)
                .map_or_else(|| Value::String(f.to_string()), Value::Number),
            Kind::Str(s) => Value::String(self.expand(node, s)),
            Kind::Seq(items) => Value::Array(items.iter().map(|n| self.json(n)).collect()),
            Kind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.key_text(), self.json(v)))
                    .collect(),
            ),
        }
    }

    /// Expand one string value, reporting an unset variable at the node.
    pub fn expand(&mut self, node: &Node, s: &str) -> String {
        if !self.expand_env {
            return s.to_owned();
        }
        match expand_env(s) {
            Ok(v) => v,
            Err(var) => {
                self.error(
                    node,
                    format!(
                        "environment variable `{var}` is not set; set it or use `${{{var}:-default}}`"
                    ),
                );
                s.to_owned()
            }
        }
    }

    /// Decode a node into a wire struct (or any deserializable type). Unknown fields of a
    /// struct are each reported at their key, with a suggestion, and then ignored so that the
    /// remaining fields are still checked.
    pub fn decode<T: DeserializeOwned>(&mut self, node: &Node, what: &str) -> Option<T> {
        let json = self.json(node);
        self.decode_json(node, what, json)
    }

    /// Like [`Ctx::decode`], from JSON already prepared from `node`.
    pub fn decode_json<T: DeserializeOwned>(
        &mut self,
        node: &Node,
        what: &str,
        mut json: Value,
    ) -> Option<T> {
        if let Some(fields) = struct_fields::<T>() {
            let Some(entries) = node.as_map() else {
                self.error(
                    node,
                    format!("{what} must be a mapping, found {}", node.type_name()),
                );
                return None;
            };
            for (k, _) in entries {
                let key = k.key_text();
                if !fields.contains(&key.as_str()) {
                    let hint = did_you_mean(&key, fields.iter().copied());
                    self.error(k, format!("unknown field `{key}` in {what}{hint}"));
                    if let Value::Object(map) = &mut json {
                        map.remove(&key);
                    }
                }
            }
        }
        match serde_path_to_error::deserialize::<_, T>(json) {
            Ok(v) => Some(v),
            Err(e) => {
                let at = node.locate(e.path());
                let path = e.path().to_string();
                let message = friendly(&e.inner().to_string(), what, &path);
                self.error(at, message);
                None
            }
        }
    }
}

/// ` ; did you mean `x`?` when a candidate is close enough, else empty.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> String {
    suggest(word, candidates).map_or_else(String::new, |s| format!("; did you mean `{s}`?"))
}

/// The closest candidate, if close enough to be a plausible misspelling.
pub(crate) fn suggest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = word.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (c, strsim::jaro_winkler(&lower, c)))
        .filter(|(c, score)| {
            (*score >= 0.8 && lower.chars().count() >= 3)
                || strsim::levenshtein(&lower, c) * 2 < lower.chars().count()
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, _)| c)
}

/// Rewrite a serde message for humans, adding suggestions to unknown fields.
fn friendly(message: &str, what: &str, path: &str) -> String {
    let at = if path.is_empty() || path == "." {
        String::new()
    } else {
        format!(" (at `{path}`)")
    };
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (name, tail) = rest.split_once('`').unwrap_or((rest, ""));
        let expected: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
        let hint = did_you_mean(name, expected.iter().copied());
        return format!("unknown field `{name}` in {what}{at}{hint}");
    }
    let mut text = message.to_owned();
    for (from, to) in [
        ("expected u32", "expected a non-negative integer"),
        ("expected u64", "expected a non-negative integer"),
        ("expected usize", "expected a non-negative integer"),
        ("expected f64", "expected a number"),
    ] {
        text = text.replace(from, to);
    }
    if let Some(pos) = text.find("expected struct ") {
        text.truncate(pos);
        text.push_str("expected a mapping");
    }
    format!("{what}{at}: {text}")
}

/// Expand `${VAR}` and `${VAR:-default}`; an unset variable without default is an error
/// naming it. Text that does not form a variable reference is kept as written.
pub(crate) fn expand_env(s: &str) -> Result<String, String> {
    if !s.contains("${") {
        return Ok(s.to_owned());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        if is_var_name(name) {
            match (std::env::var(name), default) {
                (Ok(v), Some(d)) if v.is_empty() => out.push_str(d),
                (Ok(v), _) => out.push_str(&v),
                (Err(_), Some(d)) => out.push_str(d),
                (Err(_), None) => return Err(name.to_owned()),
            }
        } else {
            out.push_str(&rest[start..=start + 2 + end]);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The field names of a struct type, found by asking its `Deserialize` impl.
pub(crate) fn struct_fields<T: DeserializeOwned>() -> Option<&'static [&'static str]> {
    let mut fields = None;
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

struct Probe<'a>(&'a mut Option<&'static [&'static str]>);

#[derive(Debug)]
struct Stop;

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("probe")
    }
}

impl std::error::Error for Stop {}

impl serde::de::Error for Stop {
    fn custom<T: std::fmt::Display>(_msg: T) -> Self {
        Stop
    }
}

impl<'de> serde::Deserializer<'de> for Probe<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Stop> {
        *self.0 = Some(fields);
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::yaml::parse;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Demo {
        name: String,
        #[allow(dead_code)]
        count: Option<u32>,
        #[allow(dead_code)]
        inner: Option<Inner>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        #[allow(dead_code)]
        max: Option<u32>,
    }

    fn node(text: &str) -> Node {
        parse(text).expect("yaml").expect("doc")
    }

    #[test]
    fn probe_finds_struct_fields() {
        assert_eq!(
            struct_fields::<Demo>(),
            Some(&["name", "count", "inner"][..])
        );
        assert_eq!(struct_fields::<String>(), None);
    }

    #[test]
    fn unknown_fields_are_each_reported_with_suggestion() {
        let mut ctx = Ctx::new(Path::new("f.yaml"), false);
        let n = node("name: a\ncont: 2\nzzz: 1\n");
        let demo: Option<Demo> = ctx.decode(&n, "the demo");
        assert_eq!(demo.expect("still decoded").name, "a");
        let msgs: Vec<String> = ctx.diags.iter().map(ToString::to_string).collect();
        assert_eq!(
            msgs,
            vec![
                "f.yaml:2:1: unknown field `cont` in the demo; did you mean `count`?",
                "f.yaml:3:1: unknown field `zzz` in the demo",
            ]
        );
    }

    #[test]
    fn type_errors_point_at_the_value() {
        let mut ctx = Ctx::new(Path::new("f.yaml"), false);
        let n = node("name: a\ncount: many\n");
        assert!(ctx.decode::<Demo>(&n, "the demo").is_none());
        assert_eq!(ctx.diags.len(), 1);
        assert_eq!(
            ctx.diags[0].to_string(),
            "f.yaml:2:8: the demo (at `count`): invalid type: string \"many\", expected a non-negative integer"
        );
    }

    #[test]
    fn nested_unknown_fields_get_suggestions() {
        let mut ctx = Ctx::new(Path::new("f.yaml"), false);
        let n = node("name: a\ninner:\n  maxx: 1\n");
        assert!(ctx.decode::<Demo>(&n, "the demo").is_none());
        let msg = &ctx.diags[0].message;
        assert!(msg.contains("unknown field `maxx`"), "{msg}");
        assert!(msg.ends_with("did you mean `max`?"), "{msg}");
    }

    #[test]
    fn missing_fields_point_at_the_mapping() {
        let mut ctx = Ctx::new(Path::new("f.yaml"), false);
        let n = node("x: 1\ny:\n  count: 1\n");
        let inner = n.get("y").expect("y").1;
        assert!(ctx.decode::<Demo>(inner, "the demo").is_none());
        assert_eq!(ctx.diags[0].location.line, 3);
        assert!(ctx.diags[0].message.contains("missing field `name`"));
    }

    #[test]
    fn env_expansion() {
        // Setting variables needs `unsafe` in edition 2024 (forbidden in this crate): use a
        // variable every environment has, and unique names for unset ones.
        let unset = "EVALWATCH_T_DECODE_UNSET_1";
        let home = std::env::var("PATH").expect("PATH is set");
        assert_eq!(
            expand_env("a ${PATH} b").expect("ok"),
            format!("a {home} b")
        );
        assert_eq!(
            expand_env(&format!("${{{unset}:-dflt}}")).expect("ok"),
            "dflt"
        );
        assert_eq!(expand_env(&format!("x${{{unset}:-}}y")).expect("ok"), "xy");
        assert_eq!(expand_env(&format!("${{{unset}}}")), Err(unset.to_owned()));
        assert_eq!(
            expand_env("${not a var} ${").expect("ok"),
            "${not a var} ${"
        );
        assert_eq!(expand_env("plain $HOME").expect("ok"), "plain $HOME");
    }

    #[test]
    fn unset_variable_is_located_with_a_fix() {
        let mut ctx = Ctx::new(Path::new("f.yaml"), true);
        let n = node("name: \"${EVALWATCH_T_DECODE_UNSET_2}\"\n");
        let _ = ctx.decode::<Demo>(&n, "the demo");
        assert_eq!(
            ctx.diags[0].to_string(),
            "f.yaml:1:7: environment variable `EVALWATCH_T_DECODE_UNSET_2` is not set; set it or use `${EVALWATCH_T_DECODE_UNSET_2:-default}`"
        );
    }

    #[test]
    fn suggestions_only_for_close_words() {
        assert_eq!(suggest("asert", ["assert", "vars"]), Some("assert"));
        assert_eq!(suggest("completely", ["assert", "vars"]), None);
    }
}
