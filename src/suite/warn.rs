//! Warnings of `validate`: what is valid as written but cannot run in this environment yet,
//! such as a provider whose API key variable is unset (`run` refuses it; `validate` only says
//! so, since keys are often set only where suites run) or a sink whose URL variable is.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::Diagnostic;
use super::cases::parent;
use super::decode::Ctx;
use super::load::read_yaml;
use super::provider;
use super::yaml::Node;
use crate::model::{ProjectConfig, ProviderSpec};

/// Unset environment variables the providers of `files` need, located where each provider
/// is defined (inline in a suite, or in `evalwatch.yaml` when a suite names it by id).
#[must_use]
pub fn env_warnings(files: &[PathBuf], project: &ProjectConfig) -> Vec<Diagnostic> {
    let mut warnings = Vec::new();
    let mut referenced = BTreeSet::new();
    for file in files {
        let mut ctx = Ctx::new(file, true);
        let Ok(Some(root)) = read_yaml(&mut ctx) else {
            continue;
        };
        for item in providers(&root) {
            if let Some(id) = item.as_str() {
                referenced.insert(ctx.expand(item, id));
            } else {
                check(&mut ctx, item, &parent(file), &mut warnings);
            }
        }
    }
    if let Some(source) = &project.source {
        let mut ctx = Ctx::new(source, true);
        if let Ok(Some(root)) = read_yaml(&mut ctx) {
            for item in providers(&root) {
                let id = item.get("id").and_then(|(_, v)| v.as_str());
                if id.is_some_and(|id| referenced.contains(id)) {
                    check(&mut ctx, item, &project.root, &mut warnings);
                }
            }
            for (at, message) in sinks(&root) {
                warnings.push(Diagnostic {
                    location: ctx.loc(at),
                    message,
                });
            }
        }
    }
    warnings
}

/// The unset variables of the sinks of `evalwatch.yaml` (`url_env`, `secret_env`): alerts
/// to such a sink cannot be delivered (they stay queued) until they are set.
fn sinks(root: &Node) -> Vec<(&Node, String)> {
    let items = root
        .get("sinks")
        .and_then(|(_, v)| v.as_seq())
        .unwrap_or_default();
    let mut out = Vec::new();
    for item in items {
        let id = item.get("id").and_then(|(_, v)| v.as_str()).unwrap_or("?");
        for (key, what) in [
            ("url_env", "the URL notices are sent to"),
            ("secret_env", "the key that signs each notice"),
        ] {
            if let Some((_, v)) = item.get(key)
                && let Some(var) = v.as_str()
                && is_unset(var)
            {
                out.push((
                    v,
                    format!(
                        "sink `{id}`: environment variable `{var}` is not set (it holds {what}: `{key}`); alerts to this sink stay queued until it is set"
                    ),
                ));
            }
        }
    }
    out
}

fn providers(root: &Node) -> &[Node] {
    root.get("providers")
        .and_then(|(_, v)| v.as_seq())
        .unwrap_or_default()
}

/// Warn about the variables of one provider definition that are unset. A definition with
/// errors is left to the loader, which reports them.
fn check(ctx: &mut Ctx, item: &Node, base_dir: &std::path::Path, out: &mut Vec<Diagnostic>) {
    let before = ctx.diags.len();
    let spec = provider::decode(ctx, item, base_dir);
    ctx.diags.truncate(before);
    let Some(spec) = spec else {
        return;
    };
    for (at, message) in unset(&spec, item) {
        out.push(Diagnostic {
            location: ctx.loc(at),
            message,
        });
    }
}

fn is_unset(var: &str) -> bool {
    std::env::var_os(var).is_none_or(|v| v.to_string_lossy().trim().is_empty())
}

/// Each unset variable of `spec`, with the node it is named at.
fn unset<'n>(spec: &ProviderSpec, item: &'n Node) -> Vec<(&'n Node, String)> {
    let mut out = Vec::new();
    let id = &spec.id;
    if let Some(var) = &spec.api_key_env
        && is_unset(var)
    {
        let (at, how) = match item.get("api_key_env") {
            Some((_, v)) => (v, "`api_key_env`".to_owned()),
            None => (
                item,
                format!("the default `api_key_env` of type `{}`", spec.kind.as_str()),
            ),
        };
        out.push((
            at,
            format!(
                "provider `{id}`: environment variable `{var}` is not set (it holds the API key: {how}); `run` fails until it is set"
            ),
        ));
    }
    if let Some(http) = &spec.http {
        let headers = item.get("headers").map(|(_, v)| v);
        for (name, template) in &http.headers {
            for var in required_vars(template) {
                if is_unset(&var) {
                    let at = headers.and_then(|h| h.get(name)).map_or(item, |(_, v)| v);
                    out.push((
                        at,
                        format!(
                            "provider `{id}`: header `{name}` uses `${{{var}}}`, which is not set and has no default; `run` fails until it is set (or write `${{{var}:-default}}`)"
                        ),
                    ));
                }
            }
        }
    }
    out
}

/// The `${NAME}` references of `template` that have no `:-default`.
fn required_vars(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            break;
        };
        let inner = &after[..end];
        if !inner.contains(":-") && !inner.is_empty() {
            out.push(inner.trim().to_owned());
        }
        rest = &after[end + 1..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::required_vars;

    #[test]
    fn only_references_without_a_default_are_required() {
        assert_eq!(
            required_vars("Bearer ${TOKEN} ${REGION:-eu} ${X}"),
            ["TOKEN", "X"]
        );
        assert!(required_vars("no refs, $HOME, ${").is_empty());
    }
}
