//! Content hashes of cases and suites: SHA-256 over canonical JSON (sorted keys, no
//! locations), first 16 hex characters. Reformatting a file keeps them; editing content
//! changes them.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::model::{Case, Suite};

/// Canonical JSON: keys sorted at every level, no whitespace.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&map[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn digest(v: &Value) -> String {
    let mut text = String::new();
    canonical(v, &mut text);
    let full = hex::encode(Sha256::digest(text.as_bytes()));
    full[..16].to_owned()
}

/// Serialize, dropping `location` fields at every level.
fn without_locations<T: serde::Serialize>(value: &T) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                map.remove("location");
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(value).unwrap_or(Value::Null);
    strip(&mut v);
    v
}

/// Hash of a case's content: vars, expected, context, assertions, threshold.
pub(crate) fn case_hash(case: &Case) -> String {
    digest(&serde_json::json!({
        "vars": case.vars,
        "expected": case.expected,
        "context": case.context,
        "asserts": without_locations(&case.asserts),
        "threshold": case.threshold,
    }))
}

/// Hash of a suite's content: name, prompt, providers, repeat, gates and case hashes.
pub(crate) fn suite_hash(suite: &Suite) -> String {
    let providers: Vec<Value> = suite
        .providers
        .iter()
        .map(|p| {
            serde_json::json!({
                "id": p.id, "kind": p.kind, "model": p.model, "params": p.params,
            })
        })
        .collect();
    let cases: Vec<Value> = suite
        .cases
        .iter()
        .map(|c| serde_json::json!([c.id, c.hash]))
        .collect();
    digest(&serde_json::json!({
        "name": suite.name,
        "system": suite.system,
        "prompt": suite.prompt,
        "repeat": suite.repeat,
        "providers": providers,
        "cases": cases,
        "gates": suite.gates,
    }))
}
