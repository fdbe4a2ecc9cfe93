//! Prompt templates (minijinja): the variables each template needs, checked at load time
//! against every case, and rendering with strict undefined behaviour.

use std::collections::{BTreeMap, BTreeSet};

use minijinja::{Environment, UndefinedBehavior};

use super::{Diagnostic, Diagnostics};
use crate::model::limits;
use crate::model::{Case, ChatMessage, Location, PromptTemplate, Request, Suite};

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Errors name the undefined expression (`user.nmae` is undefined). minijinja does so only
    // in debug mode, which is on by default in debug builds alone: the released binary would
    // say just "undefined value". It costs nothing until a value is undefined.
    env.set_debug(true);
    // Bounded work per rendering: nested loops over `range(10000)` stop with an error.
    env.set_fuel(Some(limits::TEMPLATE_FUEL));
    env
}

/// Collects a rendering up to [`limits::MAX_RENDERED_BYTES`], then refuses more.
struct Bounded {
    out: Vec<u8>,
    over: bool,
}

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len() + buf.len() > limits::MAX_RENDERED_BYTES {
            self.over = true;
            return Err(std::io::Error::other("the rendering is too large"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A template syntax error: the line inside the template (1-based) and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TemplateError {
    pub line: Option<usize>,
    pub message: String,
}

/// The top-level variables a template reads (globals such as `range` excluded).
pub(crate) fn variables(source: &str) -> Result<BTreeSet<String>, TemplateError> {
    let env = environment();
    let template = env.template_from_str(source).map_err(|e| TemplateError {
        line: e.line(),
        message: e
            .detail()
            .map_or_else(|| e.kind().to_string(), str::to_owned),
    })?;
    let globals: BTreeSet<&str> = env.globals().map(|(name, _)| name).collect();
    Ok(template
        .undeclared_variables(false)
        .into_iter()
        .filter(|v| !globals.contains(v.as_str()))
        .collect())
}

/// JSON -> template value.
pub(crate) fn to_value(v: &serde_json::Value) -> minijinja::Value {
    use minijinja::Value;
    match v {
        serde_json::Value::Null => Value::from(()),
        serde_json::Value::Bool(b) => Value::from(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(items) => {
            Value::from(items.iter().map(to_value).collect::<Vec<_>>())
        }
        serde_json::Value::Object(map) => Value::from(
            map.iter()
                .map(|(k, v)| (k.clone(), to_value(v)))
                .collect::<BTreeMap<String, Value>>(),
        ),
    }
}

/// Renders the prompt of a suite for its cases. Templates were checked at load time, so
/// rendering errors here are rare (a variable of the wrong shape, say).
pub struct Renderer {
    env: Environment<'static>,
    has_system: bool,
    /// Role of each message template (`message_{i}`), or None for a single `prompt`.
    roles: Option<Vec<String>>,
}

impl Renderer {
    pub fn new(suite: &Suite) -> Result<Self, Diagnostics> {
        let mut env = environment();
        let mut diags = Vec::new();
        let mut add = |env: &mut Environment<'static>, name: String, source: &str, what: &str| {
            if let Err(e) = env.add_template_owned(name, source.to_owned()) {
                diags.push(Diagnostic {
                    location: Location {
                        file: suite.source.as_path().into(),
                        line: 0,
                        col: 0,
                    },
                    message: format!("template error in {what}: {e}"),
                });
            }
        };
        if let Some(system) = &suite.system {
            add(&mut env, "system".to_owned(), system, "`system`");
        }
        let roles = match &suite.prompt {
            PromptTemplate::Text(text) => {
                add(&mut env, "prompt".to_owned(), text, "`prompt`");
                None
            }
            PromptTemplate::Messages(messages) => {
                for (i, m) in messages.iter().enumerate() {
                    add(
                        &mut env,
                        format!("message_{i}"),
                        &m.content,
                        &format!("message {}", i + 1),
                    );
                }
                Some(messages.iter().map(|m| m.role.clone()).collect())
            }
        };
        if !diags.is_empty() {
            return Err(Diagnostics(diags));
        }
        Ok(Self {
            env,
            has_system: suite.system.is_some(),
            roles,
        })
    }

    fn render_one(&self, name: &str, ctx: &minijinja::Value) -> Result<String, String> {
        let template = self.env.get_template(name).map_err(|e| e.to_string())?;
        let mut out = Bounded {
            out: Vec::new(),
            over: false,
        };
        match template.render_captured_to(ctx, &mut out) {
            Ok(_) => String::from_utf8(out.out)
                .map_err(|e| format!("failed to render {name}: not UTF-8 ({e})")),
            Err(_) if out.over => Err(format!(
                "failed to render {name}: the result is larger than {} (the limit)",
                limits::fmt_bytes(limits::MAX_RENDERED_BYTES as u64)
            )),
            Err(e) if e.kind() == minijinja::ErrorKind::OutOfFuel => Err(format!(
                "failed to render {name}: it takes more than {} template steps (the limit); a loop is too large",
                limits::TEMPLATE_FUEL
            )),
            Err(e) => Err(format!("failed to render {name}: {e}")),
        }
    }

    /// The request for one case and sample.
    pub fn render(&self, case: &Case, sample: u32) -> Result<Request, String> {
        let ctx = minijinja::Value::from(
            case.vars
                .iter()
                .map(|(k, v)| (k.clone(), to_value(v)))
                .collect::<BTreeMap<String, minijinja::Value>>(),
        );
        let system = if self.has_system {
            Some(self.render_one("system", &ctx)?)
        } else {
            None
        };
        let messages = match &self.roles {
            None => vec![ChatMessage {
                role: "user".to_owned(),
                content: self.render_one("prompt", &ctx)?,
            }],
            Some(roles) => roles
                .iter()
                .enumerate()
                .map(|(i, role)| {
                    Ok(ChatMessage {
                        role: role.clone(),
                        content: self.render_one(&format!("message_{i}"), &ctx)?,
                    })
                })
                .collect::<Result<Vec<_>, String>>()?,
        };
        Ok(Request {
            case_id: case.id.clone(),
            sample,
            system,
            messages,
            vars: case.vars.to_map(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_exclude_locals_and_globals() {
        let vars = variables("{% set x = 1 %}{{ question }} {% for i in range(3) %}{{ i }}{{ item.name }}{% endfor %}{{ x }}")
            .expect("ok");
        assert_eq!(
            vars.into_iter().collect::<Vec<_>>(),
            vec!["item", "question"]
        );
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let err = variables("line one\n{{ broken ").expect_err("bad");
        assert_eq!(err.line, Some(2));
        assert!(!err.message.is_empty());
    }

    #[test]
    fn values_convert() {
        let v = to_value(&serde_json::json!({"a": [1, 2.5, "x", null, true]}));
        assert_eq!(v.to_string(), "{'a': [1, 2.5, 'x', None, True]}");
    }
}
