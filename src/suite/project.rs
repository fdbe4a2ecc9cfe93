//! `evalwatch.yaml` -> `model::ProjectConfig`.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use super::cases::parent;
use super::decode::{Ctx, did_you_mean};
use super::load::{decode_alerts, read_yaml};
use super::wire::PROJECT_KEYS;
use super::yaml::Node;
use super::{Diagnostic, provider};
use crate::alert::rule::MetricScope;
use crate::model::{ProjectConfig, SinkSpec};

const SINK_TYPES: [&str; 5] = ["slack", "webhook", "file", "stdout", "command"];

/// Load a config file that exists. `root` is the file's folder.
pub(crate) fn load_file(path: &Path) -> Result<ProjectConfig, Vec<Diagnostic>> {
    let mut ctx = Ctx::new(path, true);
    let root_dir = parent(path);
    let mut config = ProjectConfig {
        source: Some(path.to_path_buf()),
        root: root_dir.clone(),
        ..ProjectConfig::default()
    };
    match read_yaml(&mut ctx) {
        Err(()) | Ok(None) => {}
        Ok(Some(root)) => fill(&mut ctx, &root, &mut config),
    }
    if ctx.diags.is_empty() {
        Ok(config)
    } else {
        Err(ctx.diags)
    }
}

fn fill(ctx: &mut Ctx, root: &Node, config: &mut ProjectConfig) {
    let Some(entries) = root.as_map() else {
        ctx.error(
            root,
            format!(
                "evalwatch.yaml must be a mapping of settings, found {}",
                root.type_name()
            ),
        );
        return;
    };
    let root_dir = config.root.clone();
    let mut judge_at = None;
    for (k, v) in entries {
        let key = k.key_text();
        match key.as_str() {
            "store" => {
                // A URL (a PostgreSQL store) is kept as written; a file is relative to
                // the project.
                config.store = ctx.decode::<String>(v, "`store`").map(|s| {
                    if s.contains("://") {
                        s.into()
                    } else {
                        root_dir.join(s)
                    }
                });
            }
            "reports" => {
                config.reports = ctx
                    .decode::<String>(v, "`reports`")
                    .map(|s| root_dir.join(s));
            }
            "providers" => providers(ctx, v, config),
            "judge" => {
                config.judge = ctx.decode::<String>(v, "`judge`");
                judge_at = Some(v);
            }
            "sinks" => sinks(ctx, v, config),
            "alerts" => {
                (config.alerts, config.alert_locations) =
                    decode_alerts(ctx, Some((k, v)), "`alerts`", MetricScope::Project);
            }
            "error_budget" => {
                if let Some(b) = ctx.decode::<f64>(v, "`error_budget`") {
                    if (0.0..=1.0).contains(&b) {
                        config.error_budget = Some(b);
                    } else {
                        ctx.error(v, format!("error_budget must be between 0 and 1, got {b}"));
                    }
                }
            }
            "max_output_bytes" => {
                let raw = ctx.json(v);
                match super::provider::parse_size(&raw) {
                    Some(n) if (1..=super::provider::MAX_OUTPUT_CAP).contains(&n) => {
                        config.max_output_bytes = Some(n);
                    }
                    _ => ctx.error(
                        v,
                        format!(
                            "max_output_bytes must be a size between 1 byte and 1GiB (`1048576`, `512KiB`, `4MiB`), got {raw}"
                        ),
                    ),
                }
            }
            "circuit_breaker" => config.circuit_breaker = circuit_breaker(ctx, v),
            "traffic" => super::traffic::sources(ctx, v, config),
            _ => {
                let hint = did_you_mean(&key, PROJECT_KEYS);
                ctx.error(k, format!("unknown field `{key}` in evalwatch.yaml{hint}"));
            }
        }
    }
    if let (Some(judge), Some(at)) = (&config.judge, judge_at)
        && !config.providers.iter().any(|p| &p.id == judge)
    {
        let hint = did_you_mean(judge, config.providers.iter().map(|p| p.id.as_str()));
        ctx.error(
            at,
            format!("judge `{judge}` is not a provider defined in evalwatch.yaml{hint}"),
        );
    }
    super::traffic::check_monitor_judges(ctx, config);
}

/// The largest `circuit_breaker.after` accepted.
const MAX_BREAKER_AFTER: u64 = 1_000_000;

/// `circuit_breaker: {after: N}` or `circuit_breaker: off`: Some(N), Some(0) for off.
fn circuit_breaker(ctx: &mut Ctx, v: &Node) -> Option<u32> {
    let raw = ctx.json(v);
    let usage = "write `circuit_breaker: {after: 10}` (cases in a row with no answer) or `circuit_breaker: off`";
    match &raw {
        serde_json::Value::String(s) if s == "off" => Some(0),
        serde_json::Value::Bool(false) => Some(0),
        serde_json::Value::Object(map) => {
            let mut after = None;
            let mut ok = true;
            for (key, value) in map {
                if key == "after" {
                    match value.as_u64() {
                        Some(n) if (1..=MAX_BREAKER_AFTER).contains(&n) => {
                            after = u32::try_from(n).ok();
                        }
                        _ => {
                            ok = false;
                            ctx.error(
                                v,
                                format!(
                                    "circuit_breaker.after must be a whole number between 1 and {MAX_BREAKER_AFTER}, got {value}; {usage}"
                                ),
                            );
                        }
                    }
                } else {
                    ok = false;
                    let hint = did_you_mean(key, ["after"]);
                    ctx.error(
                        v,
                        format!("unknown field `{key}` in `circuit_breaker`{hint}; {usage}"),
                    );
                }
            }
            if after.is_none() && ok {
                ctx.error(v, format!("`circuit_breaker` needs `after`; {usage}"));
            }
            after
        }
        other => {
            ctx.error(v, format!("`circuit_breaker` cannot be {other}; {usage}"));
            None
        }
    }
}

fn providers(ctx: &mut Ctx, list: &Node, config: &mut ProjectConfig) {
    let Some(items) = list.as_seq() else {
        if !list.is_null() {
            ctx.error(
                list,
                format!("`providers` must be a list, found {}", list.type_name()),
            );
        }
        return;
    };
    let mut seen: HashMap<String, usize> = HashMap::new();
    for item in items {
        if let Some(spec) = provider::decode(ctx, item, &config.root) {
            if let Some(first) = seen.get(&spec.id) {
                ctx.error(
                    item,
                    format!(
                        "duplicate provider id `{}`; first defined at line {first}",
                        spec.id
                    ),
                );
            } else {
                seen.insert(spec.id.clone(), item.line);
                config.providers.push(spec);
            }
        }
    }
}

fn sinks(ctx: &mut Ctx, list: &Node, config: &mut ProjectConfig) {
    let Some(items) = list.as_seq() else {
        if !list.is_null() {
            ctx.error(
                list,
                format!("`sinks` must be a list, found {}", list.type_name()),
            );
        }
        return;
    };
    let mut seen: HashMap<String, usize> = HashMap::new();
    for item in items {
        let Some(entries) = item.as_map() else {
            ctx.error(
                item,
                format!("a sink must be a mapping, found {}", item.type_name()),
            );
            continue;
        };
        let mut id = None;
        let mut kind = None;
        let mut bad_key = false;
        let mut settings = serde_json::Map::new();
        for (k, v) in entries {
            let key = k.key_text();
            match key.as_str() {
                "id" => id = ctx.decode::<String>(v, "sink `id`"),
                "type" => {
                    kind = ctx.decode::<String>(v, "sink `type`");
                    if let Some(t) = &kind
                        && !SINK_TYPES.contains(&t.as_str())
                    {
                        let hint = did_you_mean(t, SINK_TYPES);
                        ctx.error(v, format!("unknown sink type `{t}`{hint}"));
                    }
                }
                "headers" => {
                    // Like provider headers: secrets stay unexpanded until use.
                    let expand = std::mem::replace(&mut ctx.expand_env, false);
                    let raw = ctx.json(v);
                    ctx.expand_env = expand;
                    settings.insert(key, raw);
                }
                _ => {
                    if !crate::alert::sink::KEYS.contains(&key.as_str()) {
                        let keys = ["id", "type"]
                            .into_iter()
                            .chain(crate::alert::sink::KEYS.iter().copied());
                        let hint = did_you_mean(&key, keys);
                        ctx.error(k, format!("unknown setting `{key}` in a sink{hint}"));
                        bad_key = true;
                    }
                    let value: Value = ctx.json(v);
                    settings.insert(key, value);
                }
            }
        }
        match (id, kind) {
            (Some(id), Some(kind)) => {
                // Notices are queued per sink id: a second sink of the same id would never
                // get one.
                if let Some(first) = seen.get(&id) {
                    ctx.error(
                        item,
                        format!("duplicate sink id `{id}`; first defined at line {first}"),
                    );
                    continue;
                }
                seen.insert(id.clone(), item.line);
                let spec = SinkSpec { id, kind, settings };
                // Judged as `alerts check` and `run` judge it, so that `validate` agrees.
                if !bad_key
                    && SINK_TYPES.contains(&spec.kind.as_str())
                    && let Err(problems) = crate::alert::sink::judge_sink(&spec, &config.root)
                {
                    // Every problem at once, each at the setting it is about.
                    for p in problems {
                        let at = p
                            .key
                            .as_deref()
                            .and_then(|k| item.get(k))
                            .map_or(item, |(_, v)| v);
                        ctx.error(at, p.message);
                    }
                }
                config.sinks.push(spec);
            }
            (None, _) if item.get("id").is_none() => ctx.error(item, "a sink needs an `id`"),
            (_, None) if item.get("type").is_none() => ctx.error(item, "a sink needs a `type`"),
            _ => {}
        }
    }
}
