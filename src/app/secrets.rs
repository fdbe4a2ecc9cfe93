//! The secret values of a run, and their redaction from everything it stores.
//!
//! A secret is the value of an environment variable the project names or expands: every
//! provider's `api_key_env`, every sink's `url_env`, and every `${VAR}` written in
//! evalwatch.yaml or a suite file (a key put into an `http` provider's `url` or headers).
//! [`redact_record`] hides them in a result before it reaches the store, so that a server
//! echoing a key back (in a 200 answer or an error body) cannot put it in the history, a
//! page, a review sheet or an export.

use std::path::Path;

use crate::model::{ProjectConfig, ProviderSpec, ResultRecord, Suite};
use crate::provider::common::{EnvLookup, Secrets};

/// Values shorter than this are left alone: `${PORT}`, `${MODEL:-small}` or a stand-in key
/// `k` would otherwise hide ordinary words and numbers in every output (a real API key or
/// token is far longer).
pub const MIN_SECRET_CHARS: usize = 8;

/// The names in every `${VAR}` and `${VAR:-default}` of `text`, each with whether it has a
/// default.
fn expanded_vars(text: &str) -> impl Iterator<Item = (&str, bool)> {
    text.split("${").skip(1).filter_map(|rest| {
        let name_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let name = &rest[..name_end];
        let after = &rest[name_end..];
        let well_formed = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && (after.starts_with('}') || after.starts_with(":-"));
        well_formed.then_some((name, after.starts_with(":-")))
    })
}

/// The environment variables a scheduled run of `project` and `suites` must be given (an
/// emitted CronJob or workflow passes each from its secrets): every provider's
/// `api_key_env`, every sink setting that names a variable (`url_env`, `secret_env`, ...),
/// and every `${VAR}` without a default in evalwatch.yaml and the suites' files. Sorted,
/// each once.
pub fn required_vars<'a>(
    project: &ProjectConfig,
    suites: impl IntoIterator<Item = &'a Suite>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let from_file = |path: &Path, out: &mut Vec<String>| {
        if let Ok(text) = std::fs::read_to_string(path) {
            out.extend(
                expanded_vars(&text)
                    .filter(|(_, default)| !default)
                    .map(|(name, _)| name.to_owned()),
            );
        }
    };
    let keys = |specs: &[ProviderSpec], out: &mut Vec<String>| {
        out.extend(specs.iter().filter_map(|p| p.api_key_env.clone()));
    };
    keys(&project.providers, &mut out);
    for sink in &project.sinks {
        for (key, value) in &sink.settings {
            if let (true, Some(var)) = (key.ends_with("_env"), value.as_str()) {
                out.push(var.to_owned());
            }
        }
    }
    if let Some(config) = &project.source {
        from_file(config, &mut out);
    }
    for suite in suites {
        keys(&suite.providers, &mut out);
        from_file(&suite.source, &mut out);
    }
    out.sort();
    out.dedup();
    out
}

/// Collects a run's secret values.
pub struct SecretSet {
    env: EnvLookup,
    secrets: Secrets,
}

impl SecretSet {
    pub fn new(env: EnvLookup) -> Self {
        Self {
            env,
            secrets: Secrets::new(),
        }
    }

    /// The value of `var`, always hidden (a key or a URL).
    pub fn named(&mut self, var: &str) {
        if let Some(v) = (self.env)(var) {
            self.add(v);
        }
    }

    /// A value, as written and trimmed, when it is long enough to be a secret.
    fn add(&mut self, v: String) {
        if v.trim().chars().count() >= MIN_SECRET_CHARS {
            self.secrets.add(v.trim());
            self.secrets.add(v);
        }
    }

    /// Every `${VAR}` of a file's text, hidden when its value is long enough.
    pub fn expanded_in(&mut self, text: &str) {
        for (var, _) in expanded_vars(text) {
            self.named(var);
        }
    }

    /// Every `${VAR}` of the file at `path` (unreadable files add nothing: loading reported them).
    pub fn expanded_in_file(&mut self, path: &Path) {
        if let Ok(text) = std::fs::read_to_string(path) {
            self.expanded_in(&text);
        }
    }

    /// The keys of these providers.
    pub fn providers<'a>(&mut self, specs: impl IntoIterator<Item = &'a ProviderSpec>) {
        for spec in specs {
            if let Some(var) = &spec.api_key_env {
                self.named(var);
            }
        }
    }

    /// The project's own: its providers' keys, its sinks' URLs and every `${VAR}` of its
    /// evalwatch.yaml.
    pub fn project(&mut self, project: &ProjectConfig) {
        self.providers(&project.providers);
        for sink in &project.sinks {
            if let Some(var) = sink.settings.get("url_env").and_then(|v| v.as_str()) {
                self.named(var);
            }
        }
        if let Some(config) = &project.source {
            self.expanded_in_file(config);
        }
    }

    /// A suite's own: its providers' keys and every `${VAR}` of its file.
    pub fn suite(&mut self, suite: &Suite) {
        self.providers(&suite.providers);
        self.expanded_in_file(&suite.source);
    }

    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }
}

/// The secret values of `project` and `suites`, from this process's environment: what a run
/// of them hides, and what a page or review sheet showing their cases must hide too.
pub fn of_suites<'a>(
    project: &ProjectConfig,
    suites: impl IntoIterator<Item = &'a Suite>,
) -> Secrets {
    let mut set = SecretSet::new(crate::provider::common::process_env());
    set.project(project);
    for suite in suites {
        set.suite(suite);
    }
    set.secrets().clone()
}

/// `record` with every secret hidden: its output, error, prompt, finish reason and the
/// reasons and details of its assertions.
pub fn redact_record(secrets: &Secrets, rec: &mut ResultRecord) {
    if secrets.is_empty() {
        return;
    }
    let hide = |s: &mut String| {
        let redacted = secrets.redact(s);
        if redacted != *s {
            *s = redacted;
        }
    };
    if let Some(o) = rec.output.as_mut() {
        hide(o);
    }
    if let Some(e) = rec.error.as_mut() {
        hide(e);
    }
    if let Some(f) = rec.finish_reason.as_mut() {
        hide(f);
    }
    hide(&mut rec.prompt);
    for a in &mut rec.assertions {
        hide(&mut a.reason);
        redact_json(secrets, &mut a.details);
    }
}

fn redact_json(secrets: &Secrets, value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => {
            let redacted = secrets.redact(s);
            if redacted != *s {
                *s = redacted;
            }
        }
        serde_json::Value::Array(items) => {
            for v in items {
                redact_json(secrets, v);
            }
        }
        serde_json::Value::Object(map) => {
            for v in map.values_mut() {
                redact_json(secrets, v);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn env() -> EnvLookup {
        Arc::new(|name: &str| match name {
            "KEY" => Some("sk-abcdefgh12345\n".to_owned()),
            "PORT" => Some("8080".to_owned()),
            "SHORT" => Some("k".to_owned()),
            "TOKEN" => Some("tok-0123456789".to_owned()),
            _ => None,
        })
    }

    #[test]
    fn expanded_variables_are_found_in_every_form() {
        let text =
            "url: http://h/x?k=${TOKEN}\nport: ${PORT}\nm: ${MODEL:-small} $HOME ${ nope} ${1X} ${";
        assert_eq!(
            expanded_vars(text).collect::<Vec<_>>(),
            vec![("TOKEN", false), ("PORT", false), ("MODEL", true)]
        );
    }

    #[test]
    fn keys_and_long_expanded_values_are_hidden_short_ones_kept() {
        let mut set = SecretSet::new(env());
        set.named("KEY");
        set.named("SHORT");
        set.expanded_in("url: http://h/?k=${TOKEN}&p=${PORT}");
        let s = set.secrets();
        assert_eq!(
            s.redact("key sk-abcdefgh12345 token tok-0123456789 port 8080; check it"),
            "key [redacted] token [redacted] port 8080; check it"
        );
    }
}
