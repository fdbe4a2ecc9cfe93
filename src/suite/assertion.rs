//! Assertions: from their YAML form to `model::Assertion`, in two steps. `decode` validates
//! everything that does not depend on the case (types, regexes, schemas, thresholds); `resolve`
//! fills in the value from the case's `expected` where the assertion has none. The checks of
//! model-assisted assertions (their parameters, their judges) are in `assertion/model_assisted.rs`.

mod model_assisted;

use std::path::Path;

use serde_json::Value;

use super::decode::{Ctx, did_you_mean, suggest};
use super::wire::WireAssertion;
use super::yaml::Node;
use crate::model::{Assertion, Check, LengthUnit, Location, Normalize, SimilarityAlgo, Tolerance};
use model_assisted::check_model;
pub(crate) use model_assisted::{calls_model, check_judges, checks_hallucination};

/// Model-assisted assertions are accepted: the judging stage (`src/judge/`) scores them.
pub(crate) const MODEL_ASSISTED_SUPPORTED: bool = true;

const MODEL_TYPES: [&str; 4] = ["llm-rubric", "factuality", "hallucination", "semantic"];

/// Every assertion type, without the `not-` prefix.
pub(crate) const TYPES: [&str; 24] = [
    "equals",
    "contains",
    "icontains",
    "contains-any",
    "contains-all",
    "icontains-any",
    "icontains-all",
    "starts-with",
    "ends-with",
    "regex",
    "is-json",
    "json-path",
    "numeric",
    "similarity",
    "levenshtein",
    "length",
    "latency",
    "cost",
    "is-refusal",
    "classification",
    "llm-rubric",
    "factuality",
    "hallucination",
    "semantic",
];

const COMMON: [&str; 5] = ["type", "weight", "threshold", "metric", "normalize"];

/// Fields a type accepts besides the common ones.
fn extra_fields(base: &str) -> &'static [&'static str] {
    match base {
        "equals" | "contains" | "icontains" | "contains-any" | "contains-all" | "icontains-any"
        | "icontains-all" | "starts-with" | "ends-with" | "regex" | "levenshtein" => &["value"],
        "similarity" => &["value", "algorithm"],
        "numeric" => &["value", "pattern", "tolerance"],
        "json-path" => &["path", "value"],
        "is-json" => &["schema"],
        "length" => &["min", "max", "unit"],
        "latency" | "cost" => &["max"],
        "classification" => &["value", "labels"],
        "llm-rubric" => &["rubric", "value", "provider"],
        "factuality" => &["value", "provider", "scores"],
        "hallucination" => &["method", "max", "provider", "support", "judge_share"],
        "semantic" => &["value", "provider"],
        _ => &[],
    }
}

/// An assertion validated on its own, waiting for its case.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub type_name: String,
    negate: bool,
    base: &'static str,
    wire: WireAssertion,
    normalize: Vec<Normalize>,
    algorithm: SimilarityAlgo,
    metric: Option<String>,
    tolerance: Tolerance,
    unit: LengthUnit,
    schema: Option<Value>,
    params: serde_json::Map<String, Value>,
    pub location: Location,
}

fn field<'a>(node: &'a Node, key: &str) -> &'a Node {
    node.get(key).map_or(node, |(_, v)| v)
}

/// Validate one assertion. Returns None when it has errors (all reported to `ctx`).
pub(crate) fn decode(ctx: &mut Ctx, node: &Node, owner: &str, base_dir: &Path) -> Option<Pending> {
    decode_as(ctx, node, owner, base_dir, false)
}

/// As [`decode`], for a traffic source's `monitor`: there is no reference answer there, so an
/// `llm-rubric` written with `value` and no `rubric` (as docs/traffic.md shows it) takes the
/// value as its rubric.
pub(crate) fn decode_monitor(
    ctx: &mut Ctx,
    node: &Node,
    owner: &str,
    base_dir: &Path,
) -> Option<Pending> {
    decode_as(ctx, node, owner, base_dir, true)
}

fn decode_as(
    ctx: &mut Ctx,
    node: &Node,
    owner: &str,
    base_dir: &Path,
    monitor: bool,
) -> Option<Pending> {
    let before = ctx.diags.len();
    let wire: WireAssertion = ctx.decode(node, &format!("an assertion of {owner}"))?;
    let type_name = wire.kind.clone();
    let (negate, written) = match type_name.strip_prefix("not-") {
        Some(rest) => (true, rest),
        None => (false, type_name.as_str()),
    };
    let Some(base) = TYPES.iter().copied().find(|t| *t == written) else {
        let hint = did_you_mean(written, TYPES);
        ctx.error(
            field(node, "type"),
            format!("unknown assertion type `{type_name}`{hint}"),
        );
        return None;
    };
    let mut wire = wire;
    if monitor
        && base == "llm-rubric"
        && wire.rubric.is_none()
        && let Some(Value::String(rubric)) = &wire.value
    {
        wire.rubric = Some(rubric.clone());
        wire.value = None;
    }
    if base == "json-path"
        && wire.value.is_none()
        && node
            .as_map()
            .unwrap_or_default()
            .iter()
            .any(|(k, _)| k.key_text() == "value")
    {
        // `value: null` asks for a null at the path, unlike an absent `value`.
        wire.value = Some(Value::Null);
    }
    let model = MODEL_TYPES.contains(&base);
    if model && !MODEL_ASSISTED_SUPPORTED {
        ctx.error(
            field(node, "type"),
            format!(
                "assertion type `{base}` is model-assisted and not supported by this version of evalwatch yet"
            ),
        );
    }
    {
        for (k, _) in node.as_map().unwrap_or_default() {
            let key = k.key_text();
            if !COMMON.contains(&key.as_str())
                && !extra_fields(base).contains(&key.as_str())
                && super::decode::struct_fields::<WireAssertion>()
                    .is_some_and(|f| f.contains(&key.as_str()))
            {
                ctx.error(
                    k,
                    format!("field `{key}` does not apply to assertion type `{base}`"),
                );
            }
        }
    }
    let mut pending = Pending {
        type_name: type_name.clone(),
        negate,
        base,
        normalize: Vec::new(),
        algorithm: SimilarityAlgo::SoftTokens,
        metric: wire.metric.clone(),
        tolerance: Tolerance::Absolute(0.0),
        unit: LengthUnit::Chars,
        schema: None,
        params: serde_json::Map::new(),
        location: ctx.loc(node),
        wire,
    };
    check_common(ctx, node, &mut pending);
    check_specific(ctx, node, &mut pending, base_dir);
    if model {
        check_model(ctx, node, &pending);
    }
    if model {
        let raw = ctx.json(node);
        if let Value::Object(mut map) = raw {
            for k in COMMON {
                map.remove(k);
            }
            if let Some(rubric) = &pending.wire.rubric
                && !map.contains_key("rubric")
            {
                // A monitor's `value` taken as its rubric (see `decode_monitor`).
                map.remove("value");
                map.insert("rubric".into(), Value::String(rubric.clone()));
            }
            pending.params = map;
        }
    }
    (ctx.diags.len() == before).then_some(pending)
}

/// Assertion types whose own `threshold` decides their pass (graded scores).
const THRESHOLD_TYPES: &[&str] = &[
    "similarity",
    "levenshtein",
    "contains-all",
    "icontains-all",
    "llm-rubric",
    "factuality",
    "hallucination",
    "semantic",
];

fn check_common(ctx: &mut Ctx, node: &Node, p: &mut Pending) {
    if let Some(w) = p.wire.weight
        && !(w.is_finite() && w >= 0.0)
    {
        ctx.error(
            field(node, "weight"),
            format!("weight must be a non-negative number, got {w}"),
        );
    }
    if let Some(t) = p.wire.threshold {
        if !THRESHOLD_TYPES.contains(&p.base) {
            ctx.error(
                field(node, "threshold"),
                format!(
                    "`threshold` has no effect on `{}`, which scores 0 or 1; set `threshold` on the case for a weighted-mean verdict",
                    p.base
                ),
            );
        } else if p.base == "hallucination" {
            ctx.error(
                field(node, "threshold"),
                "`hallucination` passes by `max` (the largest share of unsupported claims, default 0.2), not `threshold`",
            );
        } else if p.base == "levenshtein" {
            if !(t >= 0.0 && t.fract() == 0.0 && t.is_finite()) {
                ctx.error(
                    field(node, "threshold"),
                    format!("threshold of `levenshtein` is the maximum edit distance, a non-negative integer; got {t}"),
                );
            }
        } else if !(0.0..=1.0).contains(&t) {
            ctx.error(
                field(node, "threshold"),
                format!("threshold must be between 0 and 1, got {t}"),
            );
        }
    }
    let list = field(node, "normalize").as_seq().unwrap_or_default();
    for (i, name) in p
        .wire
        .normalize
        .clone()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let parsed = match name.as_str() {
            "lowercase" => Some(Normalize::Lowercase),
            "trim" => Some(Normalize::Trim),
            "collapse_whitespace" => Some(Normalize::CollapseWhitespace),
            "strip_punctuation" => Some(Normalize::StripPunctuation),
            _ => None,
        };
        if let Some(n) = parsed {
            p.normalize.push(n);
        } else {
            let at = list.get(i).unwrap_or(node);
            let hint = did_you_mean(name, Normalize::ALL);
            ctx.error(at, format!("unknown normalize `{name}`{hint}"));
        }
    }
    if let Some(m) = &p.wire.metric
        && m.trim().is_empty()
    {
        ctx.error(field(node, "metric"), "metric must not be empty");
    }
}

fn check_specific(ctx: &mut Ctx, node: &Node, p: &mut Pending, base_dir: &Path) {
    let value_node = field(node, "value");
    match p.base {
        "regex" => match p.wire.value.as_ref().map(scalar_text) {
            Some(Some(pattern)) => {
                if let Err(e) = regex::Regex::new(&pattern) {
                    ctx.error(
                        value_node,
                        format!("invalid regex: {}", one_line(&e.to_string())),
                    );
                }
            }
            Some(None) => ctx.error(value_node, "the `value` of `regex` must be a string"),
            None => ctx.error(node, "assertion type `regex` needs a `value` (the pattern)"),
        },
        "equals" | "contains" | "icontains" | "starts-with" | "ends-with" | "levenshtein" => {
            if let Some(v) = &p.wire.value
                && scalar_text(v).is_none()
            {
                ctx.error(
                    value_node,
                    format!("the `value` of `{}` must be a string", p.base),
                );
            }
        }
        "contains-any" | "contains-all" | "icontains-any" | "icontains-all" => {
            if let Some(v) = &p.wire.value
                && string_list(v).is_none()
            {
                ctx.error(
                    value_node,
                    format!(
                        "the `value` of `{}` must be a string or a list of strings",
                        p.base
                    ),
                );
            }
        }
        "similarity" => check_similarity(ctx, node, p),
        "numeric" => check_numeric(ctx, node, p),
        "length" => {
            let min = non_negative_int(ctx, node, "min", p.wire.min);
            let max = non_negative_int(ctx, node, "max", p.wire.max);
            if let (Some(a), Some(b)) = (min, max)
                && a > b
            {
                ctx.error(
                    field(node, "min"),
                    format!("min ({a}) is greater than max ({b})"),
                );
            }
            if p.wire.min.is_none() && p.wire.max.is_none() {
                ctx.error(node, "assertion type `length` needs `min` or `max`");
            }
            match p.wire.unit.as_deref() {
                None | Some("chars") => p.unit = LengthUnit::Chars,
                Some("words") => p.unit = LengthUnit::Words,
                Some(other) => {
                    let hint = did_you_mean(other, ["chars", "words"]);
                    ctx.error(
                        field(node, "unit"),
                        format!("unknown unit `{other}`; use `chars` or `words`{hint}"),
                    );
                }
            }
        }
        "latency" | "cost" => match p.wire.max {
            Some(m) if m.is_finite() && m >= 0.0 => {}
            Some(m) => ctx.error(
                field(node, "max"),
                format!("max must be a non-negative number, got {m}"),
            ),
            None => ctx.error(node, format!("assertion type `{}` needs `max`", p.base)),
        },
        "classification" => match &p.wire.labels {
            Some(l) if !l.is_empty() => {
                if let Some(v) = &p.wire.value
                    && scalar_text(v).is_none()
                {
                    ctx.error(
                        value_node,
                        "the `value` of `classification` must be a string",
                    );
                }
            }
            _ => ctx.error(
                field(node, "labels"),
                "assertion type `classification` needs a non-empty `labels` list",
            ),
        },
        "is-json" => p.schema = load_schema(ctx, node, p.wire.schema.as_ref(), base_dir),
        "json-path" => match p.wire.path.as_deref() {
            Some(path) if path.is_empty() || path.starts_with('/') || path.starts_with('$') => {}
            Some(path) => ctx.error(
                field(node, "path"),
                format!(
                    "path `{path}` is neither a JSON pointer (`/a/0/b`) nor a JSONPath (`$.a[0].b`)"
                ),
            ),
            None => ctx.error(node, "assertion type `json-path` needs a `path`"),
        },
        _ => {}
    }
}

fn check_similarity(ctx: &mut Ctx, node: &Node, p: &mut Pending) {
    if let Some(v) = &p.wire.value
        && scalar_text(v).is_none()
    {
        ctx.error(
            field(node, "value"),
            "the `value` of `similarity` must be a string",
        );
    }
    if let Some(a) = &p.wire.algorithm {
        if let Some(algo) = SimilarityAlgo::parse(a) {
            p.algorithm = algo;
        } else {
            let hint = did_you_mean(a, SimilarityAlgo::ALL);
            ctx.error(
                field(node, "algorithm"),
                format!("unknown similarity algorithm `{a}`{hint}"),
            );
        }
    } else if let Some(m) = &p.wire.metric {
        if let Some(algo) = SimilarityAlgo::parse(m) {
            p.algorithm = algo;
            p.metric = None;
        } else if let Some(close) = suggest(m, SimilarityAlgo::ALL) {
            ctx.error(
                field(node, "metric"),
                format!("unknown similarity metric `{m}`; did you mean `{close}`? (to name a run metric instead, give the algorithm with `algorithm:`)"),
            );
        }
    }
}

fn check_numeric(ctx: &mut Ctx, node: &Node, p: &mut Pending) {
    if let Some(v) = &p.wire.value
        && number_of(v).is_none()
    {
        ctx.error(
            field(node, "value"),
            "the `value` of `numeric` must be a number",
        );
    }
    if let Some(pattern) = &p.wire.pattern {
        match regex::Regex::new(pattern) {
            Ok(re) if re.captures_len() < 2 => {
                ctx.error(
                    field(node, "pattern"),
                    "pattern needs a capture group `( )` around the number",
                );
            }
            Ok(_) => {}
            Err(e) => ctx.error(
                field(node, "pattern"),
                format!("invalid regex: {}", one_line(&e.to_string())),
            ),
        }
    }
    let at = field(node, "tolerance");
    match &p.wire.tolerance {
        None => {}
        Some(Value::Number(n)) => match n.as_f64() {
            Some(t) if t >= 0.0 => p.tolerance = Tolerance::Absolute(t),
            _ => ctx.error(at, "tolerance must not be negative"),
        },
        Some(Value::Object(map)) if map.len() == 1 => {
            let (k, v) = map
                .iter()
                .next()
                .map_or(("", None), |(k, v)| (k.as_str(), v.as_f64()));
            match (k, v) {
                ("rel", Some(t)) if t >= 0.0 => p.tolerance = Tolerance::Relative(t),
                ("abs", Some(t)) if t >= 0.0 => p.tolerance = Tolerance::Absolute(t),
                _ => ctx.error(
                    at,
                    "tolerance must be a non-negative number (absolute) or `{rel: 0.01}`",
                ),
            }
        }
        Some(_) => ctx.error(
            at,
            "tolerance must be a non-negative number (absolute) or `{rel: 0.01}`",
        ),
    }
}

fn non_negative_int(ctx: &mut Ctx, node: &Node, key: &str, v: Option<f64>) -> Option<usize> {
    let v = v?;
    if v >= 0.0 && v.fract() == 0.0 && v.is_finite() {
        Some(v as usize)
    } else {
        ctx.error(
            field(node, key),
            format!("{key} must be a non-negative integer, got {v}"),
        );
        None
    }
}

fn load_schema(
    ctx: &mut Ctx,
    node: &Node,
    schema: Option<&Value>,
    base_dir: &Path,
) -> Option<Value> {
    let at = field(node, "schema");
    let schema = match schema? {
        Value::Object(_) | Value::Bool(_) => schema?.clone(),
        Value::String(path) => {
            let full = base_dir.join(path);
            let max = crate::model::limits::MAX_SCHEMA_FILE_BYTES;
            let text = match crate::model::limits::read_regular(&full, max) {
                Ok(t) => t,
                Err(e) => {
                    ctx.error(at, format!("schema file `{path}` {e}"));
                    return None;
                }
            };
            match serde_json::from_slice(&text) {
                Ok(v) => v,
                Err(e) => {
                    ctx.error(
                        at,
                        format!("schema file `{}` is not valid JSON: {e}", full.display()),
                    );
                    return None;
                }
            }
        }
        _ => {
            ctx.error(
                at,
                "schema must be a JSON schema object or the path of a .json file",
            );
            return None;
        }
    };
    match jsonschema::validator_for(&schema) {
        Ok(_) => Some(schema),
        Err(e) => {
            ctx.error(at, format!("invalid JSON schema: {e}"));
            None
        }
    }
}

/// The text of a scalar (numbers and booleans as written), None for null or collections.
pub(crate) fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn string_list(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Array(items) => items.iter().map(scalar_text).collect(),
        other => scalar_text(other).map(|s| vec![s]),
    }
}

fn number_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => parse_number(s),
        _ => None,
    }
}

/// A number written by a human: currency signs, spaces and thousands separators ignored.
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    let cleaned: String = s
        .trim()
        .chars()
        .filter(|c| !matches!(c, '$' | '€' | '£' | '¥' | ',' | ' ' | '_'))
        .collect();
    cleaned.parse::<f64>().ok().filter(|f| f.is_finite())
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Pending {
    /// The assertion for a case with this `expected`. Errors say what is missing.
    pub(crate) fn resolve(&self, expected: Option<&str>) -> Result<Assertion, String> {
        let w = &self.wire;
        let needs_value = || {
            format!(
                "assertion `{}` needs a `value`, and the case has no `expected`",
                self.type_name
            )
        };
        let text = || -> Result<String, String> {
            w.value
                .as_ref()
                .and_then(scalar_text)
                .or_else(|| expected.map(str::to_owned))
                .ok_or_else(needs_value)
        };
        let list = || -> Result<Vec<String>, String> {
            w.value
                .as_ref()
                .and_then(string_list)
                .or_else(|| expected.map(|e| vec![e.to_owned()]))
                .ok_or_else(needs_value)
        };
        let check = match self.base {
            "equals" => Check::Equals { value: text()? },
            "contains" => Check::Contains { value: text()? },
            "icontains" => Check::IContains { value: text()? },
            "starts-with" => Check::StartsWith { value: text()? },
            "ends-with" => Check::EndsWith { value: text()? },
            "contains-any" => Check::ContainsAny { values: list()? },
            "contains-all" => Check::ContainsAll { values: list()? },
            "icontains-any" => Check::IContainsAny { values: list()? },
            "icontains-all" => Check::IContainsAll { values: list()? },
            "regex" => Check::Regex {
                pattern: w
                    .value
                    .as_ref()
                    .and_then(scalar_text)
                    .ok_or_else(needs_value)?,
            },
            "is-json" => Check::IsJson {
                schema: self.schema.clone(),
            },
            "json-path" => Check::JsonPath {
                path: w.path.clone().unwrap_or_default(),
                value: w.value.clone(),
            },
            "numeric" => {
                let value = match &w.value {
                    Some(v) => number_of(v),
                    None => match expected {
                        Some(e) => Some(parse_number(e).ok_or_else(|| {
                            format!("assertion `numeric` has no `value` and the case's `expected` (`{e}`) is not a number")
                        })?),
                        None => None,
                    },
                };
                Check::Numeric {
                    value: value.ok_or_else(needs_value)?,
                    pattern: w.pattern.clone(),
                    tolerance: self.tolerance,
                }
            }
            "similarity" => Check::Similarity {
                algorithm: self.algorithm,
                value: text()?,
                threshold: w.threshold.unwrap_or(0.8),
            },
            "levenshtein" => Check::Levenshtein {
                value: text()?,
                max_distance: w.threshold.map_or(5, |t| t as usize),
            },
            "length" => Check::Length {
                min: w.min.map(|v| v as usize),
                max: w.max.map(|v| v as usize),
                unit: self.unit,
            },
            "latency" => Check::Latency {
                max_ms: w.max.unwrap_or_default(),
            },
            "cost" => Check::Cost {
                max_usd: w.max.unwrap_or_default(),
            },
            "is-refusal" => Check::IsRefusal,
            "classification" => {
                let labels = w.labels.clone().unwrap_or_default();
                let value = text()?;
                if !labels.contains(&value) {
                    return Err(format!(
                        "expected label `{value}` of `classification` is not one of its labels ({})",
                        labels.join(", ")
                    ));
                }
                Check::Classification { labels, value }
            }
            kind => {
                if matches!(kind, "factuality" | "semantic")
                    && w.value.as_ref().and_then(scalar_text).is_none()
                    && expected.is_none()
                {
                    return Err(format!(
                        "assertion `{}` compares with a `value`, and the case has neither one nor an `expected`",
                        self.type_name
                    ));
                }
                Check::Model {
                    kind: kind.to_owned(),
                    params: self.params.clone(),
                }
            }
        };
        Ok(Assertion {
            type_name: self.type_name.clone(),
            negate: self.negate,
            check,
            weight: w.weight.unwrap_or(1.0),
            threshold: if self.base == "levenshtein" {
                None
            } else {
                w.threshold
            },
            metric: self.metric.clone(),
            normalize: self.normalize.clone(),
            location: self.location.clone(),
        })
    }

    /// The named metric this assertion feeds, if any.
    pub(crate) fn metric(&self) -> Option<&str> {
        self.metric.as_deref()
    }
}

/// The rule of a case without assertions: `contains` of `expected`, ignoring case, runs of
/// whitespace and the sentence punctuation that ends the expected value ("Paris." matches
/// "...Paris,"; "45%" keeps its sign).
pub(crate) fn default_rule(expected: &str, location: Location) -> Assertion {
    let value = expected
        .trim()
        .trim_end_matches(|c: char| {
            matches!(
                c,
                '.' | ',' | ';' | ':' | '!' | '?' | '…' | '。' | '！' | '？'
            )
        })
        .trim_end()
        .to_owned();
    Assertion {
        type_name: "contains".to_owned(),
        negate: false,
        check: Check::Contains { value },
        weight: 1.0,
        threshold: None,
        metric: None,
        normalize: vec![
            Normalize::Lowercase,
            Normalize::CollapseWhitespace,
            Normalize::Trim,
        ],
        location,
    }
}
