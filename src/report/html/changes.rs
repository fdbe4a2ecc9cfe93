//! What changed in a suite's settings from one run to the next, in words for the trend
//! page's change markers: "defaults.assert changed (2 → 1 assertions: not-is-refusal
//! removed)", "provider prod-gpt: model gpt-4o → gpt-4o-mini", "gates changed: pass_rate
//! min 0.9 → min 0.8".

use std::collections::{BTreeMap, BTreeSet};

use crate::model::Setting;

type Settings = BTreeMap<String, Setting>;

/// The group a setting name belongs to and the rest of its name:
/// `provider.prod-gpt.model` -> ("provider", "prod-gpt.model").
fn split(key: &str) -> (&str, &str) {
    for group in ["provider.", "gates.", "alerts.", "defaults.vars."] {
        if let Some(rest) = key.strip_prefix(group) {
            return (&group[..group.len() - 1], rest);
        }
    }
    (key, "")
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// Items of a shown list (`icontains, not-is-refusal`).
fn items(shown: &str) -> Vec<&str> {
    shown
        .split(", ")
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
}

/// `a` without one of each of `b`'s items (a multiset difference), in order.
fn minus<'a>(a: &[&'a str], b: &[&str]) -> Vec<&'a str> {
    let mut rest: Vec<&str> = b.to_vec();
    a.iter()
        .filter(|x| {
            if let Some(i) = rest.iter().position(|y| y == *x) {
                rest.remove(i);
                false
            } else {
                true
            }
        })
        .copied()
        .collect()
}

fn list_change(before: &str, after: &str, what: &str) -> String {
    let (a, b) = (items(before), items(after));
    let mut parts = Vec::new();
    let removed = minus(&a, &b);
    let added = minus(&b, &a);
    if !removed.is_empty() {
        parts.push(format!("{} removed", removed.join(", ")));
    }
    if !added.is_empty() {
        parts.push(format!("{} added", added.join(", ")));
    }
    if parts.is_empty() {
        parts.push("edited".to_owned());
    }
    format!(
        "{} → {}: {}",
        a.len(),
        plural(b.len(), what),
        parts.join(", ")
    )
}

/// One setting that differs: `None` on the side that does not have it.
struct Change<'a> {
    rest: &'a str,
    before: Option<&'a Setting>,
    after: Option<&'a Setting>,
}

fn shown(s: Option<&Setting>) -> &str {
    s.map_or("", |s| s.shown.as_str())
}

/// `old → new` where both are shown and differ, else "changed" / "added" / "removed".
fn transition(c: &Change<'_>) -> String {
    match (c.before, c.after) {
        (None, Some(a)) if !a.shown.is_empty() => format!("{} added", a.shown),
        (None, _) => "added".to_owned(),
        (Some(b), None) if !b.shown.is_empty() => format!("{} removed", b.shown),
        (_, None) => "removed".to_owned(),
        (Some(b), Some(a)) if !b.shown.is_empty() && !a.shown.is_empty() && b.shown != a.shown => {
            format!("{} → {}", b.shown, a.shown)
        }
        _ => "changed".to_owned(),
    }
}

/// Each difference between two runs' settings, in words, grouped: one phrase per provider,
/// one for the gates, one for the alert rules, one for the default variables, one per other
/// setting. Empty when they are the same.
#[must_use]
pub(crate) fn describe(before: &Settings, after: &Settings) -> Vec<String> {
    let keys: BTreeSet<&str> = before
        .keys()
        .chain(after.keys())
        .map(String::as_str)
        .collect();
    let mut groups: BTreeMap<(usize, &str), Vec<Change<'_>>> = BTreeMap::new();
    for key in keys {
        let (b, a) = (before.get(key), after.get(key));
        if b.map(|s| &s.digest) == a.map(|s| &s.digest) {
            continue;
        }
        let (group, rest) = split(key);
        // Pages read best with the providers first, then what is asked, then the limits.
        let order = match group {
            "provider" => 0,
            "system" | "prompt" => 1,
            g if g.starts_with("defaults") => 2,
            "repeat" | "repeat_policy" => 3,
            "gates" => 4,
            "alerts" => 5,
            _ => 6,
        };
        groups.entry((order, group)).or_default().push(Change {
            rest,
            before: b,
            after: a,
        });
    }
    let mut out = Vec::new();
    for ((_, group), changes) in groups {
        match group {
            "provider" => out.extend(providers(&changes)),
            "gates" => out.push(format!(
                "gates changed: {}",
                changes
                    .iter()
                    .map(|c| format!("{} {}", c.rest, transition(c)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            "alerts" => out.push(format!(
                "alert rules changed: {}",
                changes
                    .iter()
                    .map(|c| format!("`{}` {}", c.rest, transition(c)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            "defaults.vars" => out.push(format!(
                "defaults.vars changed: {}",
                changes
                    .iter()
                    .map(|c| format!("{} {}", c.rest, transition(c)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            "defaults.assert" => {
                let c = &changes[0];
                out.push(format!(
                    "defaults.assert changed ({})",
                    list_change(shown(c.before), shown(c.after), "assertion")
                ));
            }
            "system" => out.push(format!("system prompt {}", transition(&changes[0]))),
            other => {
                let c = &changes[0];
                let t = transition(c);
                out.push(if t == "changed" {
                    format!("{other} changed")
                } else {
                    format!("{other} changed ({t})")
                });
            }
        }
    }
    out
}

/// One phrase per provider that changed: added, removed, or its fields.
fn providers(changes: &[Change<'_>]) -> Vec<String> {
    let mut by_id: BTreeMap<&str, Vec<&Change<'_>>> = BTreeMap::new();
    for c in changes {
        // Ids have no dots of their own meaning here: the field is after the last one.
        let id = c.rest.rsplit_once('.').map_or(c.rest, |(id, _)| id);
        by_id.entry(id).or_default().push(c);
    }
    let mut out = Vec::new();
    for (id, fields) in by_id {
        if fields.iter().all(|c| c.before.is_none()) && fields.iter().any(|c| field(c) == "type") {
            out.push(format!("provider {id} added"));
            continue;
        }
        if fields.iter().all(|c| c.after.is_none()) && fields.iter().any(|c| field(c) == "type") {
            out.push(format!("provider {id} removed"));
            continue;
        }
        let parts: Vec<String> = fields
            .iter()
            .map(|c| match field(c) {
                "params" => {
                    let names = match (c.before, c.after) {
                        (Some(b), Some(a)) => {
                            let (b, a) = (items(&b.shown), items(&a.shown));
                            let mut names: Vec<&str> = minus(&b, &a);
                            names.extend(minus(&a, &b));
                            names
                        }
                        _ => Vec::new(),
                    };
                    if names.is_empty() {
                        format!("params {}", transition(c))
                    } else {
                        format!("params changed ({})", names.join(", "))
                    }
                }
                f => format!("{f} {}", transition(c)),
            })
            .collect();
        out.push(format!("provider {id}: {}", parts.join(", ")));
    }
    out
}

fn field<'a>(c: &Change<'a>) -> &'a str {
    c.rest.rsplit_once('.').map_or("", |(_, f)| f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(shown: &str, digest: &str) -> Setting {
        Setting {
            shown: shown.to_owned(),
            digest: digest.to_owned(),
        }
    }

    fn base() -> Settings {
        [
            ("provider.prod-gpt.type", s("openai", "t1")),
            ("provider.prod-gpt.model", s("gpt-4o", "m1")),
            ("provider.prod-gpt.params", s("temperature", "p1")),
            ("prompt", s("", "pr1")),
            ("defaults.assert", s("icontains, not-is-refusal", "d1")),
            ("defaults.vars.topic", s("", "v1")),
            ("repeat", s("1", "r1")),
            ("repeat_policy", s("all", "rp1")),
            ("gates.pass_rate", s("min 0.9", "g1")),
            ("alerts.drop", s("pass_rate", "a1")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    fn with(mut m: Settings, key: &str, v: Option<Setting>) -> Settings {
        match v {
            Some(v) => m.insert(key.to_owned(), v),
            None => m.remove(key),
        };
        m
    }

    #[test]
    fn the_same_settings_have_no_change() {
        assert!(describe(&base(), &base()).is_empty());
    }

    #[test]
    fn a_removed_default_assertion_is_named_with_the_counts() {
        let after = with(base(), "defaults.assert", Some(s("icontains", "d2")));
        assert_eq!(
            describe(&base(), &after),
            vec!["defaults.assert changed (2 → 1 assertion: not-is-refusal removed)"]
        );
        // Every default assertion removed: the setting is gone.
        let after = with(base(), "defaults.assert", None);
        assert_eq!(
            describe(&base(), &after),
            vec!["defaults.assert changed (2 → 0 assertions: icontains, not-is-refusal removed)"]
        );
        // Same types, edited content.
        let after = with(
            base(),
            "defaults.assert",
            Some(s("icontains, not-is-refusal", "d3")),
        );
        assert_eq!(
            describe(&base(), &after),
            vec!["defaults.assert changed (2 → 2 assertions: edited)"]
        );
    }

    #[test]
    fn provider_changes_name_the_provider_and_field() {
        let after = with(
            base(),
            "provider.prod-gpt.model",
            Some(s("gpt-4o-mini", "m2")),
        );
        let after = with(
            after,
            "provider.prod-gpt.params",
            Some(s("max_tokens, temperature", "p2")),
        );
        assert_eq!(
            describe(&base(), &after),
            vec!["provider prod-gpt: model gpt-4o → gpt-4o-mini, params changed (max_tokens)"]
        );
        let after = with(
            base(),
            "provider.prod-gpt.params",
            Some(s("temperature", "p3")),
        );
        assert_eq!(
            describe(&base(), &after),
            vec!["provider prod-gpt: params changed"]
        );
        let added = with(base(), "provider.local.type", Some(s("ollama", "t2")));
        let added = with(added, "provider.local.model", Some(s("llama3", "m3")));
        assert_eq!(describe(&base(), &added), vec!["provider local added"]);
        assert_eq!(describe(&added, &base()), vec!["provider local removed"]);
    }

    #[test]
    fn gates_alerts_vars_and_scalars_are_named() {
        let after = with(base(), "gates.pass_rate", Some(s("min 0.8", "g2")));
        let after = with(after, "gates.latency_p95_ms", Some(s("max 4000", "g3")));
        let after = with(after, "alerts.drop", None);
        let after = with(after, "defaults.vars.topic", Some(s("", "v2")));
        let after = with(after, "repeat", Some(s("3", "r2")));
        let after = with(after, "prompt", Some(s("", "pr2")));
        let after = with(after, "system", Some(s("", "sy1")));
        assert_eq!(
            describe(&base(), &after),
            vec![
                "prompt changed",
                "system prompt added",
                "defaults.vars changed: topic changed",
                "repeat changed (1 → 3)",
                "gates changed: latency_p95_ms max 4000 added, pass_rate min 0.9 → min 0.8",
                "alert rules changed: `drop` pass_rate removed",
            ]
        );
    }
}
