//! Content hashes of cases and suites: SHA-256 over canonical JSON (sorted keys, no
//! locations), first 16 hex characters. Reformatting a file keeps them; editing content
//! changes them.

use std::collections::BTreeMap;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::model::{Case, RepeatPolicy, Suite};

/// Feeds serialised JSON straight into the hasher: no intermediate text.
struct Feed<'a>(&'a mut Sha256);

impl std::io::Write for Feed<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Canonical JSON (keys sorted at every level, no whitespace) into `h`.
fn canonical(v: &Value, h: &mut Sha256) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_unstable();
            h.update(b"{");
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    h.update(b",");
                }
                // Writing a string into a hasher cannot fail.
                let _ = serde_json::to_writer(Feed(h), k.as_str());
                h.update(b":");
                canonical(&map[k.as_str()], h);
            }
            h.update(b"}");
        }
        Value::Array(items) => {
            h.update(b"[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    h.update(b",");
                }
                canonical(item, h);
            }
            h.update(b"]");
        }
        other => {
            let _ = serde_json::to_writer(Feed(h), other);
        }
    }
}

/// What of an assertion its case hash covers: everything but its location.
#[derive(serde::Serialize)]
struct AssertionContent<'a> {
    type_name: &'a str,
    negate: bool,
    check: &'a crate::model::Check,
    weight: f64,
    threshold: Option<f64>,
    metric: Option<&'a str>,
    normalize: &'a [crate::model::Normalize],
}

/// What a case hash covers. Fields serialise in declaration order and every map is a sorted
/// `BTreeMap`, so the bytes are canonical without building an intermediate value.
#[derive(serde::Serialize)]
struct CaseContent<'a> {
    /// Serialises as a map with sorted keys, like the `BTreeMap` it was.
    vars: &'a crate::model::Vars,
    expected: Option<&'a str>,
    context: &'a [String],
    asserts: Vec<AssertionContent<'a>>,
    threshold: Option<f64>,
}

fn hash_of<T: serde::Serialize>(value: &T) -> String {
    let mut h = Sha256::new();
    // Serialising plain data into a hasher cannot fail.
    let _ = serde_json::to_writer(Feed(&mut h), value);
    hex::encode(&h.finalize()[..8])
}

/// Hash of a case's content: vars, expected, context, assertions, threshold.
pub(crate) fn case_hash(case: &Case) -> String {
    hash_of(&CaseContent {
        vars: &case.vars,
        expected: case.expected.as_deref(),
        context: &case.context,
        asserts: case
            .asserts
            .iter()
            .map(|a| AssertionContent {
                type_name: &a.type_name,
                negate: a.negate,
                check: &a.check,
                weight: a.weight,
                threshold: a.threshold,
                metric: a.metric.as_deref(),
                normalize: &a.normalize,
            })
            .collect(),
        threshold: case.threshold,
    })
}

/// Hash of a suite's content: name, prompt, providers, repeat, gates and case hashes, and
/// the repeat policies when any is set other than the default (so that the hashes of suites
/// without one did not change when policies came).
pub(crate) fn suite_hash(suite: &Suite) -> String {
    let cases: Vec<(&str, &str)> = suite
        .cases
        .iter()
        .map(|c| (c.id.as_str(), c.hash.as_str()))
        .collect();
    let mut pairs = Vec::new();
    // Serialising plain strings into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut pairs, &cases);
    let overrides: BTreeMap<String, RepeatPolicy> = suite
        .cases
        .iter()
        .filter_map(|c| c.repeat_policy.map(|p| (c.id.clone(), p)))
        .collect();
    suite_hash_of(suite, &pairs, &overrides)
}

/// [`suite_hash`] from the parts a streaming load keeps: the suite's head, its cases'
/// `(id, hash)` pairs as one JSON array, and the cases' own repeat policies.
pub(crate) fn suite_hash_of(
    suite: &Suite,
    pairs: &[u8],
    overrides: &BTreeMap<String, RepeatPolicy>,
) -> String {
    let providers: Vec<Value> = suite
        .providers
        .iter()
        .map(|p| {
            serde_json::json!({
                "id": p.id, "kind": p.kind, "model": p.model, "params": p.params,
            })
        })
        .collect();
    let mut head = serde_json::json!({
        "name": suite.name,
        "system": suite.system,
        "prompt": suite.prompt,
        "repeat": suite.repeat,
        "providers": providers,
        "gates": suite.gates,
    });
    if (suite.repeat_policy != RepeatPolicy::default() || !overrides.is_empty())
        && let Some(map) = head.as_object_mut()
    {
        let overrides: BTreeMap<&str, Value> = overrides
            .iter()
            .map(|(id, p)| (id.as_str(), Value::from(*p)))
            .collect();
        map.insert("repeat_policy".into(), Value::from(suite.repeat_policy));
        map.insert("case_repeat_policies".into(), serde_json::json!(overrides));
    }
    let mut h = Sha256::new();
    canonical(&head, &mut h);
    h.update(pairs);
    hex::encode(&h.finalize()[..8])
}
