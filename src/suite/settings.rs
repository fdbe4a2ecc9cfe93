//! The settings of a suite as recorded with each run (`Suite::settings`): one entry per
//! top-level setting that shapes results, with a short text a page may show and a digest of
//! the whole value, so that the trend page can name what changed between two runs.
//!
//! Shown texts are never a secret: model names, provider types, gate limits, numbers,
//! assertion types, variable and parameter names. Values that may hold one (prompts,
//! variable values, parameter values, endpoints) are recorded by digest only.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::model::{Gate, PromptTemplate, Setting, Suite};

/// Short SHA-256 of canonical JSON (keys sorted, as `serde_json::Value` maps are).
fn digest(v: &Value) -> String {
    use sha2::{Digest, Sha256};
    let text = serde_json::to_string(v).unwrap_or_default();
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

fn setting(shown: impl Into<String>, value: &Value) -> Setting {
    Setting {
        shown: shown.into(),
        digest: digest(value),
    }
}

/// A number as a user wrote it: `0.9`, `4000`.
fn num(v: f64) -> String {
    format!("{v}")
}

/// A gate's limits as the page shows them: `min 0.9`, `max 4000`, `min 0.5, max 0.9`.
fn gate_text(g: &Gate) -> String {
    match (g.min, g.max) {
        (Some(lo), Some(hi)) => format!("min {}, max {}", num(lo), num(hi)),
        (Some(lo), None) => format!("min {}", num(lo)),
        (None, Some(hi)) => format!("max {}", num(hi)),
        (None, None) => "no limit".to_owned(),
    }
}

/// The settings of `suite`; `defaults` is its `defaults:` block as written (variables not
/// expanded), when it has one.
pub(crate) fn of(suite: &Suite, defaults: Option<&Value>) -> BTreeMap<String, Setting> {
    let mut out = BTreeMap::new();
    for p in &suite.providers {
        let key = |field: &str| format!("provider.{}.{field}", p.id);
        out.insert(
            key("type"),
            setting(p.kind.as_str(), &Value::from(p.kind.as_str())),
        );
        if let Some(model) = &p.model {
            out.insert(
                key("model"),
                setting(model.clone(), &Value::from(model.as_str())),
            );
        }
        if !p.params.is_empty() {
            let names: Vec<&str> = p.params.keys().map(String::as_str).collect();
            out.insert(
                key("params"),
                setting(names.join(", "), &Value::Object(p.params.clone())),
            );
        }
        // Where the calls go: digest only (a url may carry an expanded secret).
        let endpoint = serde_json::json!({
            "base_url": p.base_url,
            "http": p.http.as_ref().map(|h| serde_json::to_value(h).unwrap_or(Value::Null)),
            "command": p.command,
            "file": p.file,
        });
        if endpoint.as_object().is_some_and(|m| {
            m.values()
                .any(|v| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()))
        }) {
            out.insert(key("endpoint"), setting("", &endpoint));
        }
    }
    if let Some(system) = &suite.system {
        out.insert(
            "system".to_owned(),
            setting("", &Value::from(system.as_str())),
        );
    }
    let prompt = serde_json::to_value(&suite.prompt).unwrap_or(Value::Null);
    let shown = match &suite.prompt {
        PromptTemplate::Text(_) => String::new(),
        PromptTemplate::Messages(m) => {
            format!("{} message{}", m.len(), if m.len() == 1 { "" } else { "s" })
        }
    };
    out.insert("prompt".to_owned(), setting(shown, &prompt));
    if let Some(defaults) = defaults.and_then(Value::as_object) {
        if let Some(vars) = defaults.get("vars").and_then(Value::as_object) {
            for (name, value) in vars {
                out.insert(format!("defaults.vars.{name}"), setting("", value));
            }
        }
        if let Some(list) = defaults.get("assert").and_then(Value::as_array)
            && !list.is_empty()
        {
            let types: Vec<&str> = list
                .iter()
                .map(|a| a.get("type").and_then(Value::as_str).unwrap_or("?"))
                .collect();
            out.insert(
                "defaults.assert".to_owned(),
                setting(types.join(", "), &Value::Array(list.clone())),
            );
        }
        if let Some(t) = defaults.get("threshold").filter(|t| !t.is_null()) {
            out.insert("defaults.threshold".to_owned(), setting(t.to_string(), t));
        }
    }
    out.insert(
        "repeat".to_owned(),
        setting(suite.repeat.to_string(), &Value::from(suite.repeat)),
    );
    let policy = suite.repeat_policy.to_string();
    out.insert(
        "repeat_policy".to_owned(),
        setting(policy.clone(), &Value::from(policy)),
    );
    for g in &suite.gates {
        let text = gate_text(g);
        out.insert(
            format!("gates.{}", g.metric),
            setting(text.clone(), &Value::from(text)),
        );
    }
    for (i, rule) in suite.alerts.iter().enumerate() {
        let name = rule
            .get("name")
            .and_then(Value::as_str)
            .map_or_else(|| format!("#{}", i + 1), ToOwned::to_owned);
        let metric = rule.get("metric").and_then(Value::as_str).unwrap_or("");
        out.insert(format!("alerts.{name}"), setting(metric, rule));
    }
    out
}
