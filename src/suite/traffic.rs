//! `traffic:` of evalwatch.yaml -> `model::TrafficSource`: every field of a source checked,
//! every problem located (unknown keys with did-you-mean, bad pointers, shares, durations,
//! redaction patterns and monitor assertions).

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::assertion;
use super::decode::{Ctx, did_you_mean};
use super::load::is_suite_name;
use super::yaml::Node;
use crate::model::{
    Check, ProjectConfig, RedactSpec, Retention, TextKept, TrafficField, TrafficFormat,
    TrafficSource,
};
use crate::traffic::{FieldMap, FieldRef, RedactRule, Redactor, SampleRate, otlp};

/// The keys of a source.
pub(crate) const SOURCE_KEYS: [&str; 12] = [
    "id",
    "format",
    "path",
    "fields",
    "sample",
    "store_text",
    "redact",
    "monitor",
    "alerts",
    "retention",
    "description",
    "low_confidence",
];

/// The confidence under which a record counts as low-confidence when the source names no
/// `low_confidence:` (for confidences in 0..1; set it for log-probabilities).
pub const DEFAULT_LOW_CONFIDENCE: f64 = 0.5;

/// The keys of `retention:`.
const RETENTION_KEYS: [&str; 4] = ["records", "minute", "hour", "day"];

/// The traffic metrics a rule may name (`../shared/spec/traffic.md`).
pub const TRAFFIC_METRICS: [&str; 21] = [
    "traffic.volume",
    "traffic.throughput_rps",
    "traffic.error_rate",
    "traffic.errors_by_kind",
    "traffic.latency_p50_ms",
    "traffic.latency_p95_ms",
    "traffic.latency_p99_ms",
    "traffic.availability",
    "traffic.pass_rate",
    "traffic.hallucination_rate",
    "traffic.refusal_rate",
    "traffic.low_confidence_rate",
    "traffic.satisfaction",
    "traffic.thumbs_down_rate",
    "traffic.feedback_rate",
    "traffic.tokens_in",
    "traffic.tokens_out",
    "traffic.cost_usd",
    "traffic.cost_per_request_usd",
    "traffic.users",
    "traffic.volume_by_hour",
];

/// Reads `traffic:` into `config.traffic`.
pub(crate) fn sources(ctx: &mut Ctx, list: &Node, config: &mut ProjectConfig) {
    let Some(items) = list.as_seq() else {
        if !list.is_null() {
            ctx.error(
                list,
                format!(
                    "`traffic` must be a list of sources, found {}",
                    list.type_name()
                ),
            );
        }
        return;
    };
    let mut seen: HashMap<String, usize> = HashMap::new();
    for item in items {
        if let Some(source) = source(ctx, item, config) {
            if let Some(first) = seen.get(&source.id) {
                ctx.error(
                    item,
                    format!(
                        "duplicate traffic source id `{}`; first defined at line {first}",
                        source.id
                    ),
                );
            } else {
                seen.insert(source.id.clone(), item.line);
                config.traffic.push(source);
            }
        }
    }
}

fn source(ctx: &mut Ctx, item: &Node, config: &ProjectConfig) -> Option<TrafficSource> {
    let Some(entries) = item.as_map() else {
        ctx.error(
            item,
            format!(
                "a traffic source must be a mapping, found {}",
                item.type_name()
            ),
        );
        return None;
    };
    let before = ctx.diags.len();
    for (k, _) in entries {
        let key = k.key_text();
        if !SOURCE_KEYS.contains(&key.as_str()) {
            let hint = did_you_mean(&key, SOURCE_KEYS);
            ctx.error(
                k,
                format!("unknown field `{key}` in a traffic source{hint}"),
            );
        }
    }
    let get = |key: &str| item.get(key).map(|(_, v)| v);
    let id = match get("id") {
        None => {
            ctx.error(item, "a traffic source needs an `id` (a stable name, such as `support-bot-prod`)");
            None
        }
        Some(v) => ctx.decode::<String>(v, "traffic source `id`").filter(|id| {
            let ok = is_suite_name(id);
            if !ok {
                ctx.error(v, format!("invalid traffic source id `{id}`: use lowercase letters, digits, `-` and `_`, starting with a letter or digit"));
            }
            ok
        }),
    };
    let what = id.as_deref().map_or_else(
        || "this traffic source".to_owned(),
        |id| format!("traffic source `{id}`"),
    );
    let format = match get("format") {
        None => TrafficFormat::Jsonl,
        Some(v) => match ctx.decode::<String>(v, "`format`") {
            Some(f) => TrafficFormat::parse(&f).unwrap_or_else(|| {
                let hint = did_you_mean(&f, TrafficFormat::ALL);
                ctx.error(
                    v,
                    format!(
                        "unknown traffic format `{f}`: use {}{hint}",
                        TrafficFormat::ALL.join(", ")
                    ),
                );
                TrafficFormat::Jsonl
            }),
            None => TrafficFormat::Jsonl,
        },
    };
    let path = get("path")
        .and_then(|v| ctx.decode::<String>(v, "`path`"))
        .map(|p| config.root.join(p));
    let fields = if let Some(v) = get("fields") {
        fields(ctx, v, format, &what)
    } else {
        if format != TrafficFormat::Otlp {
            ctx.error(
                item,
                format!("{what} needs `fields` with at least `time` (a JSON pointer such as `/ts`, or a CSV column)"),
            );
        }
        Vec::new()
    };
    let sample = get("sample").map_or(0.1, |v| share(ctx, v));
    let store_text = get("store_text").map_or(TextKept::Sampled, |v| store_text(ctx, v));
    let redact = get("redact").map_or_else(Vec::new, |v| redact(ctx, v));
    let monitor = get("monitor").map_or_else(Vec::new, |v| monitor(ctx, v, config, &what));
    let alerts = get("alerts").map_or_else(Vec::new, |v| alerts(ctx, v));
    let retention = get("retention").map_or_else(Retention::default, |v| retention(ctx, v));
    let low_confidence = get("low_confidence").map_or(DEFAULT_LOW_CONFIDENCE, |v| {
        ctx.decode::<f64>(v, "`low_confidence` (a confidence threshold)")
            .filter(|x| x.is_finite())
            .unwrap_or(DEFAULT_LOW_CONFIDENCE)
    });
    if ctx.diags.len() > before {
        return None;
    }
    Some(TrafficSource {
        id: id?,
        format,
        path,
        fields,
        sample,
        store_text,
        redact,
        monitor,
        alerts,
        retention,
        low_confidence,
        location: ctx.loc(item),
    })
}

fn fields(ctx: &mut Ctx, node: &Node, format: TrafficFormat, what: &str) -> Vec<TrafficField> {
    let Some(entries) = node.as_map() else {
        ctx.error(
            node,
            format!(
                "`fields` must be a mapping of field names to {}, found {}",
                if format == TrafficFormat::Csv {
                    "column names"
                } else {
                    "JSON pointers"
                },
                node.type_name()
            ),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, v) in entries {
        let name = k.key_text();
        if !FieldMap::NAMES.contains(&name.as_str()) {
            let hint = did_you_mean(&name, FieldMap::NAMES);
            ctx.error(k, format!("unknown field `{name}` in `fields`{hint}"));
            continue;
        }
        let Some(from) = ctx.decode::<String>(v, &format!("`fields.{name}`")) else {
            continue;
        };
        let checked = match format {
            TrafficFormat::Jsonl => FieldRef::pointer(&from).map(|_| ()),
            TrafficFormat::Otlp => otlp::field_ref(&from).map(|_| ()),
            TrafficFormat::Csv if from.trim().is_empty() => {
                Err("a CSV column name cannot be empty".to_owned())
            }
            TrafficFormat::Csv => Ok(()),
        };
        if let Err(e) = checked {
            ctx.error(v, format!("`fields.{name}`: {e}"));
            continue;
        }
        out.push(TrafficField {
            name,
            from,
            location: ctx.loc(v),
        });
    }
    if format != TrafficFormat::Otlp && node.get("time").is_none() {
        ctx.error(
            node,
            format!("{what}: `fields` needs `time` (RFC 3339, or unix seconds / milliseconds)"),
        );
    }
    out
}

fn share(ctx: &mut Ctx, node: &Node) -> f64 {
    let text = match ctx.json(node) {
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        other => {
            ctx.error(
                node,
                format!("`sample` must be a share such as 10% or 0.1, found {other}"),
            );
            return 0.0;
        }
    };
    match SampleRate::parse(&text) {
        Ok(rate) => rate.share(),
        Err(e) => {
            ctx.error(node, format!("`sample`: {e}"));
            0.0
        }
    }
}

fn store_text(ctx: &mut Ctx, node: &Node) -> TextKept {
    match ctx.decode::<String>(node, "`store_text`").as_deref() {
        Some("none") => TextKept::None,
        Some("sampled") | None => TextKept::Sampled,
        Some("all") => TextKept::All,
        Some(other) => {
            let hint = did_you_mean(other, TextKept::ALL);
            ctx.error(
                node,
                format!("`store_text` must be none, sampled or all, got `{other}`{hint}"),
            );
            TextKept::Sampled
        }
    }
}

fn redact(ctx: &mut Ctx, node: &Node) -> Vec<RedactSpec> {
    let Some(items) = node.as_seq() else {
        ctx.error(
            node,
            format!(
                "`redact` must be a list (such as [email, phone, card, secret]), found {}",
                node.type_name()
            ),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items {
        if let Some(name) = item.as_str() {
            if RedactRule::built_in(name).is_some() {
                out.push(RedactSpec::BuiltIn(name.to_owned()));
            } else {
                let hint = did_you_mean(name, RedactRule::BUILT_IN);
                ctx.error(
                    item,
                    format!(
                        "unknown redaction `{name}`: use {} or {{regex: \"...\"}}{hint}",
                        RedactRule::BUILT_IN.join(", ")
                    ),
                );
            }
            continue;
        }
        let pattern = item.get("regex").map(|(_, v)| v);
        match (item.as_map().map(<[_]>::len), pattern) {
            (Some(1), Some(v)) => {
                if let Some(p) = ctx.decode::<String>(v, "`regex`") {
                    match Redactor::new(&[RedactRule::Regex(p.clone())]) {
                        Ok(_) => out.push(RedactSpec::Regex(p)),
                        Err(e) => {
                            // The regex crate's message spans lines (with a caret): keep its
                            // last line, so that each problem stays one `file:line:col:` line.
                            let why = e.reason.lines().rev().find(|l| !l.trim().is_empty());
                            let why = why.unwrap_or("invalid").trim().trim_start_matches("error: ");
                            ctx.error(v, format!("redact regex `{p}` does not compile: {why}"));
                        }
                    }
                }
            }
            _ => ctx.error(
                item,
                "a `redact` entry is a built-in name (email, phone, card, secret) or {regex: \"...\"}",
            ),
        }
    }
    out
}

/// Monitor assertions: reference-free, so resolved without an `expected`. Their judges are
/// checked by [`check_monitor_judges`].
fn monitor(
    ctx: &mut Ctx,
    node: &Node,
    config: &ProjectConfig,
    what: &str,
) -> Vec<Arc<crate::model::Assertion>> {
    let Some(items) = node.as_seq() else {
        ctx.error(
            node,
            format!(
                "`monitor` must be a list of assertions, found {}",
                node.type_name()
            ),
        );
        return Vec::new();
    };
    let owner = format!("the monitor of {what}");
    let mut out = Vec::new();
    for item in items {
        let Some(pending) = assertion::decode_monitor(ctx, item, &owner, &config.root) else {
            continue;
        };
        match pending.resolve(None) {
            Err(e) => ctx.error(
                item,
                format!("{e}; a monitor has no reference answer, so give `value`"),
            ),
            Ok(a) => out.push(Arc::new(a)),
        }
    }
    out
}

/// Judge monitors (`llm-rubric`, `factuality`, `hallucination` with a judge...): each has a
/// judge, as in a suite, and the sample's text is stored, since records are judged from the
/// store after their batch commits. Checked once the whole of evalwatch.yaml is read (the
/// providers and `judge:` may come after `traffic:`).
pub(crate) fn check_monitor_judges(ctx: &mut Ctx, config: &ProjectConfig) {
    for source in &config.traffic {
        let case = source.monitor_case();
        assertion::check_judges(ctx, std::slice::from_ref(&case), &[], config);
        if source.store_text == TextKept::None
            && let Some(a) = source.monitor.iter().find(|a| calls_judge(&a.check))
        {
            ctx.push(
                a.location.clone(),
                format!(
                    "assertion `{}` needs a judge, and judges read the sampled records' stored text: traffic source `{}` has `store_text: none`; set `store_text: sampled`",
                    a.type_name, source.id
                ),
            );
        }
    }
}

/// Whether an assertion calls a judge.
fn calls_judge(check: &Check) -> bool {
    matches!(check, Check::Model { kind, params } if assertion::calls_model(kind, params))
}

fn alerts(ctx: &mut Ctx, node: &Node) -> Vec<Value> {
    let Some(items) = node.as_seq() else {
        ctx.error(
            node,
            format!(
                "`alerts` must be a list of rules, found {}",
                node.type_name()
            ),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items {
        let raw = ctx.json(item);
        // The alert stage's own grammar judges the rule, so that `validate`, `ingest`,
        // `collect` and `alerts check` agree on it; each problem is put where it is written.
        let judged = if crate::alert::drift_rule::is_drift_rule(&raw) {
            crate::alert::drift_rule::judge_drift_rule(&raw).map(|_| ())
        } else {
            crate::alert::traffic::judge_traffic_rule(&raw, &TRAFFIC_METRICS).map(|_| ())
        };
        match judged {
            Ok(()) => out.push(raw),
            Err(problems) => super::load::put_rule_problems(ctx, item, problems),
        }
    }
    out
}

fn retention(ctx: &mut Ctx, node: &Node) -> Retention {
    let mut out = Retention::default();
    let Some(entries) = node.as_map() else {
        ctx.error(
            node,
            format!(
                "`retention` must be a mapping such as {{records: 30d, minute: 14d, hour: 180d, day: forever}}, found {}",
                node.type_name()
            ),
        );
        return out;
    };
    // The value nodes of `minute`, `hour` and `day`, where a tier's problem is located.
    let mut written: [Option<&Node>; 3] = [None; 3];
    for (k, v) in entries {
        let key = k.key_text();
        if let Some(i) = TIERS.iter().position(|(name, ..)| *name == key) {
            written[i] = Some(v);
        }
        let slot = match key.as_str() {
            "records" => &mut out.records,
            "minute" => &mut out.minute,
            "hour" => &mut out.hour,
            "day" => &mut out.day,
            _ => {
                let hint = did_you_mean(&key, RETENTION_KEYS);
                ctx.error(k, format!("unknown field `{key}` in `retention`{hint}"));
                continue;
            }
        };
        let text = match ctx.json(v) {
            Value::String(s) => s,
            other => other.to_string(),
        };
        if text == "forever" {
            *slot = None;
        } else if let Some(d) = crate::alert::rule::parse_duration(&text)
            .and_then(|d| i64::try_from(d.as_secs()).ok())
            .filter(|s| *s >= 60)
        {
            *slot = Some(d);
        } else {
            ctx.error(
                v,
                format!("`retention.{key}` must be a duration of at least a minute (30d, 12h) or `forever`, got `{text}`"),
            );
            if let Some(i) = TIERS.iter().position(|(name, ..)| *name == key) {
                written[i] = None;
            }
        }
    }
    check_tiers(ctx, node, &out, &written);
    out
}

/// The bucket tiers, finest first: name, the windows read from them, and how long those windows
/// and the ones before them (the comparison of `traffic` and the pages) reach back.
const TIERS: [(&str, &str, i64); 3] = [
    ("minute", "24h", 2 * 86_400),
    ("hour", "7d", 14 * 86_400),
    ("day", "30d", 60 * 86_400),
];

/// A coarser tier kept shorter than a finer one loses, in the longer windows, what the finer
/// buckets still hold ("removing minutes loses no figure" would be false), and a tier kept
/// shorter than its windows need shows them part empty: both are refused, each located at the
/// tier that is written (else at `retention:`). A tier written wrongly was reported already.
fn check_tiers(ctx: &mut Ctx, node: &Node, kept: &Retention, written: &[Option<&Node>; 3]) {
    let defaults = Retention::default();
    let value = |r: &Retention, i: usize| match i {
        0 => r.minute,
        1 => r.hour,
        _ => r.day,
    };
    let said = |i: usize| {
        let text = value(kept, i).map_or_else(
            || "forever".to_owned(),
            |s| crate::alert::rule::fmt_duration(std::time::Duration::from_secs(s.unsigned_abs())),
        );
        if written[i].is_none() && value(kept, i) == value(&defaults, i) {
            format!("{text}, the default")
        } else {
            text
        }
    };
    // `None` is forever: longer than any duration.
    let longer = |a: Option<i64>, b: Option<i64>| match (a, b) {
        (None, Some(_)) => true,
        (Some(a), Some(b)) => a > b,
        _ => false,
    };
    for i in 0..TIERS.len() {
        // The longest finer tier this one is shorter than.
        let finer = (0..i)
            .filter(|&f| longer(value(kept, f), value(kept, i)))
            .max_by(|&a, &b| {
                if longer(value(kept, a), value(kept, b)) {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Less
                }
            });
        if let Some(f) = finer {
            // Only when one of the two is written: the defaults are in order.
            if written[i].is_some() || written[f].is_some() {
                let at = written[i].or(written[f]).unwrap_or(node);
                ctx.error(
                    at,
                    format!(
                        "`retention.{}` ({}) is shorter than `retention.{}` ({}): keep each tier at least as long as the finer ones, or the longer windows lose what the finer buckets still hold",
                        TIERS[i].0,
                        said(i),
                        TIERS[f].0,
                        said(f)
                    ),
                );
            }
            continue;
        }
        let (name, window, need) = TIERS[i];
        if let (Some(secs), Some(n)) = (value(kept, i), written[i])
            && secs < need
        {
            ctx.error(
                n,
                format!(
                    "`retention.{name}` ({}) is shorter than the {} that the {window} window and the one before it read from {name} buckets",
                    said(i),
                    crate::alert::rule::fmt_duration(std::time::Duration::from_secs(need.unsigned_abs())),
                ),
            );
        }
    }
}
