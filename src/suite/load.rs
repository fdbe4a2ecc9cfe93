//! One suite file -> `model::Suite`, with every diagnostic of the file and its includes.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use serde_json::Value;

use super::assertion;
use super::cases::{CaseBuilder, Defaults, Out, decode_repeat_policy, parent};
use super::decode::{Ctx, did_you_mean};
use super::wire::{SUITE_KEYS, WireDefaults, WireGate, WireMessage, WireReview};
use super::yaml::{self, Node};
use super::{Diagnostic, cron, hash, provider, template};
use crate::alert::rule::{MetricScope, RuleProblem, judge_rule, known_metric, unknown_metric};
use crate::model::limits;
use crate::model::{
    Gate, Location, MessageTemplate, Metrics, ProjectConfig, PromptTemplate, ProviderSpec,
    ReviewSettings, Suite,
};

/// Read and parse a YAML file; `Ok(None)` when it holds no document.
pub(crate) fn read_yaml(ctx: &mut Ctx) -> Result<Option<Node>, ()> {
    let bytes = match limits::read_regular(&ctx.file, limits::MAX_YAML_FILE_BYTES) {
        Ok(b) => b,
        Err(limits::FileProblem::Io(e)) => {
            ctx.push(ctx.at(0, 0), format!("cannot read file: {e}"));
            return Err(());
        }
        Err(e) => {
            ctx.push(ctx.at(0, 0), format!("the file {e}"));
            return Err(());
        }
    };
    match yaml::decode_utf8(&bytes).and_then(yaml::parse) {
        Ok(root) => Ok(root),
        Err(e) => {
            ctx.push(ctx.at(e.line, e.col), e.message);
            Err(())
        }
    }
}

/// Where a suite file writes its name (the value of `suite:`), for a problem found after
/// loading (a name another file uses too); the file's start when it cannot be told.
pub(crate) fn name_location(path: &Path) -> crate::model::Location {
    let mut ctx = Ctx::new(path, false);
    let start = ctx.at(1, 1);
    match read_yaml(&mut ctx) {
        Ok(Some(root)) => root.get("suite").map_or(start, |(_, v)| ctx.loc(v)),
        _ => start,
    }
}

/// Load one suite file. The suite is returned only when the file (and its includes) had no
/// error at all.
pub(crate) fn load_suite(path: &Path, project: &ProjectConfig) -> (Option<Suite>, Vec<Diagnostic>) {
    load_suite_with(path, project, Out::Keep, None)
}

/// Is told the suite's head (everything but its cases, gates, alerts, review and hash) when
/// it has no problem, before the first case is built.
pub(crate) type OnHead<'a> = &'a mut dyn FnMut(&Suite);

/// [`load_suite`] with the cases going to `out`. With `Out::Stream`, the suite returned has
/// no cases but its hash and checks cover them all.
pub(crate) fn load_suite_with(
    path: &Path,
    project: &ProjectConfig,
    out: Out<'_>,
    on_head: Option<OnHead<'_>>,
) -> (Option<Suite>, Vec<Diagnostic>) {
    let mut ctx = Ctx::new(path, true);
    let suite = match read_yaml(&mut ctx) {
        Ok(Some(root)) => build(&mut ctx, &root, project, out, on_head),
        Ok(None) => {
            ctx.push(
                ctx.at(1, 1),
                "file is empty; a suite needs at least `suite:` and `cases:`",
            );
            None
        }
        Err(()) => None,
    };
    let diags = ctx.diags;
    if diags.is_empty() {
        (suite, diags)
    } else {
        (None, diags)
    }
}

pub(crate) fn is_suite_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

#[allow(clippy::too_many_lines)]
fn build(
    ctx: &mut Ctx,
    root: &Node,
    project: &ProjectConfig,
    out: Out<'_>,
    on_head: Option<OnHead<'_>>,
) -> Option<Suite> {
    let Some(entries) = root.as_map() else {
        ctx.error(
            root,
            format!(
                "a suite file must be a mapping (`suite:`, `cases:`, ...), found {}",
                root.type_name()
            ),
        );
        return None;
    };
    let base_dir = parent(&ctx.file);
    let mut parts: HashMap<String, (&Node, &Node)> = HashMap::new();
    for (k, v) in entries {
        let key = k.key_text();
        if SUITE_KEYS.contains(&key.as_str()) {
            parts.insert(key, (k, v));
        } else {
            let hint = did_you_mean(&key, SUITE_KEYS);
            ctx.error(k, format!("unknown field `{key}` in the suite{hint}"));
        }
    }
    let get = |key: &str| parts.get(key).copied();
    let start = ctx.at(1, 1);

    let name = if let Some((_, v)) = get("suite") {
        ctx.decode::<String>(v, "`suite`").inspect(|name| {
            if !is_suite_name(name) {
                ctx.error(v, format!("invalid suite name `{name}`: use lowercase letters, digits, `-` and `_`, starting with a letter or digit"));
            }
        })
    } else {
        ctx.push(start.clone(), "missing `suite:` (the suite's stable name)");
        None
    };
    let opt_string = |ctx: &mut Ctx, key: &str| -> Option<String> {
        get(key).and_then(|(_, v)| {
            if v.is_null() {
                None
            } else {
                ctx.decode::<String>(v, &format!("`{key}`"))
            }
        })
    };
    let description = opt_string(ctx, "description");
    let timezone = opt_string(ctx, "timezone");
    let catch_up = get("catch_up").and_then(|(_, v)| {
        let text = ctx.decode::<String>(v, "`catch_up`")?;
        match text.as_str() {
            "once" => Some(crate::model::CatchUp::Once),
            "skip" => Some(crate::model::CatchUp::Skip),
            other => {
                let hint = did_you_mean(other, ["once", "skip"]);
                ctx.error(
                    v,
                    format!("`catch_up` is `once` (run a missed window once) or `skip`, got `{other}`{hint}"),
                );
                None
            }
        }
    });
    let jitter = get("jitter").and_then(|(_, v)| {
        let raw = ctx.json(v);
        super::provider::duration_field(ctx, v, "jitter", &raw)
    });
    let system = opt_string(ctx, "system");
    let schedule = opt_string(ctx, "schedule");
    check_schedule(ctx, schedule.as_deref(), timezone.as_deref(), &get);
    let tags: Vec<String> = get("tags")
        .and_then(|(_, v)| ctx.decode(v, "`tags`"))
        .unwrap_or_default();
    let repeat = match get("repeat") {
        Some((_, v)) => match ctx.decode::<u32>(v, "`repeat`") {
            Some(0) => {
                ctx.error(v, "repeat must be at least 1");
                1
            }
            Some(n) if n > limits::MAX_REPEAT => {
                ctx.error(
                    v,
                    format!(
                        "repeat {n} is over the limit of {}: samples per case and provider measure flakiness, a few suffice",
                        limits::MAX_REPEAT
                    ),
                );
                1
            }
            Some(n) => n,
            None => 1,
        },
        None => 1,
    };
    let repeat_policy = get("repeat_policy")
        .and_then(|(_, v)| decode_repeat_policy(ctx, v))
        .unwrap_or_default();

    let providers = suite_providers(ctx, get("providers"), project, &base_dir, &start);

    // Prompt templates, and the variables each needs.
    let mut needs = Vec::new();
    let mut check_template =
        |ctx: &mut Ctx, source: &str, at: &Node, label: &str| match template::variables(source) {
            Ok(vars) => needs.push((label.to_owned(), vars)),
            Err(e) => {
                let line = e
                    .line
                    .map_or_else(String::new, |l| format!(" (template line {l})"));
                ctx.error(
                    at,
                    format!("template syntax error in {label}{line}: {}", e.message),
                );
            }
        };
    if let (Some(s), Some((k, _))) = (&system, get("system")) {
        check_template(ctx, s, k, "the system prompt");
    }
    let prompt = match (get("prompt"), get("messages")) {
        (Some(_), Some((k, _))) => {
            ctx.error(k, "give either `prompt` or `messages`, not both");
            None
        }
        (None, None) => {
            ctx.push(
                start.clone(),
                "missing `prompt:` (or `messages:`): the suite has nothing to ask",
            );
            None
        }
        (Some((k, v)), None) => ctx.decode::<String>(v, "`prompt`").map(|p| {
            check_template(ctx, &p, k, "the prompt");
            PromptTemplate::Text(p)
        }),
        (None, Some((k, v))) => {
            let list: Option<Vec<WireMessage>> = ctx.decode(v, "`messages`");
            list.map(|list| {
                if list.is_empty() {
                    ctx.error(v, "`messages` must not be empty");
                }
                let items = v.as_seq().unwrap_or_default();
                for (i, m) in list.iter().enumerate() {
                    let at = items.get(i).unwrap_or(k);
                    if !["system", "user", "assistant"].contains(&m.role.as_str()) {
                        let hint = did_you_mean(&m.role, ["system", "user", "assistant"]);
                        let role_at = at.get("role").map_or(at, |(_, r)| r);
                        ctx.error(
                            role_at,
                            format!(
                                "unknown role `{}`; use system, user or assistant{hint}",
                                m.role
                            ),
                        );
                    }
                    check_template(ctx, &m.content, at, &format!("message {}", i + 1));
                }
                PromptTemplate::Messages(
                    list.into_iter()
                        .map(|m| MessageTemplate {
                            role: m.role,
                            content: m.content,
                        })
                        .collect(),
                )
            })
        }
    };

    let defaults = decode_defaults(ctx, get("defaults"), &base_dir);
    // As written, for the settings recorded with each run (variables not expanded: their
    // problems were told above, and a secret's value is not hashed).
    let defaults_raw = get("defaults").map(|(_, v)| {
        let expand = std::mem::replace(&mut ctx.expand_env, false);
        let raw = ctx.json(v);
        ctx.expand_env = expand;
        raw
    });
    let streaming = matches!(out, Out::Stream { .. });
    let head_only = matches!(out, Out::Head);
    let mut builder = CaseBuilder::new(defaults, needs, out);
    if streaming {
        builder.judges = providers.clone().map(|p| (p, project.clone()));
    }
    let feeding = on_head.is_some();
    let mut head_told = false;
    if let (Some(on_head), Some(name), Some(providers), Some(prompt), true) =
        (on_head, &name, &providers, &prompt, ctx.diags.is_empty())
    {
        on_head(&Suite {
            name: name.clone(),
            description: description.clone(),
            tags: tags.clone(),
            schedule: schedule.clone(),
            timezone: timezone.clone(),
            catch_up,
            jitter,
            source: ctx.file.clone(),
            providers: providers.clone(),
            system: system.clone(),
            prompt: prompt.clone(),
            repeat,
            repeat_policy,
            cases: Vec::new(),
            gates: Vec::new(),
            alerts: Vec::new(),
            review: None,
            hash: String::new(),
            named_metrics: builder.named_metrics.clone(),
            settings: std::collections::BTreeMap::new(),
        });
        head_told = true;
    }
    if (feeding && !head_told) || head_only {
        // A feed of a suite whose head has a problem hands on nothing.
        return None;
    }
    match get("cases") {
        None => ctx.push(start.clone(), "missing `cases:` (the list of test cases)"),
        Some((k, v)) => {
            if v.is_null() {
                ctx.error(k, "`cases` must not be empty");
            } else if v.as_seq().is_some_and(<[Node]>::is_empty) {
                ctx.error(v, "`cases` must not be empty");
            } else {
                builder.add_list(ctx, v, 0);
            }
        }
    }

    if let Some(providers) = &providers {
        assertion::check_judges(ctx, &builder.cases, providers, project);
    }
    let has_hallucination = builder.tally.has_hallucination
        || builder.cases.iter().any(assertion::checks_hallucination);
    let gates = decode_gates(ctx, get("gates"), &builder.named_metrics, has_hallucination);
    let (alerts, _) = decode_alerts(
        ctx,
        get("alerts"),
        "`alerts`",
        MetricScope::Suite(&builder.named_metrics),
    );
    if let Some(providers) = &providers {
        check_rule_targets(ctx, get("alerts"), providers, &builder.case_tags);
    }
    check_project_alerts(
        ctx,
        &alerts,
        project,
        &builder.named_metrics,
        name.as_deref(),
    );
    let review = get("review")
        .and_then(|(_, v)| ctx.decode::<WireReview>(v, "`review`"))
        .map(|r| ReviewSettings {
            sample: r.sample.unwrap_or(20),
            seed: r.seed.unwrap_or(0),
        });

    // Held for the whole run: no spare capacity left from growing the list.
    builder.cases.shrink_to_fit();
    let mut suite = Suite {
        name: name?,
        description,
        tags,
        schedule,
        timezone,
        catch_up,
        jitter,
        source: ctx.file.clone(),
        providers: providers?,
        system,
        prompt: prompt?,
        repeat,
        repeat_policy,
        cases: builder.cases,
        gates,
        alerts,
        review,
        hash: String::new(),
        named_metrics: std::mem::take(&mut builder.named_metrics),
        settings: std::collections::BTreeMap::new(),
    };
    suite.settings = super::settings::of(&suite, defaults_raw.as_ref());
    suite.hash = if streaming {
        let mut pairs = std::mem::take(&mut builder.tally.pairs);
        pairs.extend_from_slice(if pairs.is_empty() { b"[]" } else { b"]" });
        hash::suite_hash_of(&suite, &pairs, &builder.tally.overrides)
    } else {
        hash::suite_hash(&suite)
    };
    Some(suite)
}

/// `schedule:` and `timezone:`, judged where they are written: in words of ours first, then
/// by the scheduler's own parser, so that a suite `validate` passes is one it can schedule.
fn check_schedule<'n>(
    ctx: &mut Ctx,
    schedule: Option<&str>,
    timezone: Option<&str>,
    get: &dyn Fn(&str) -> Option<(&'n Node, &'n Node)>,
) {
    let mut tz_ok = true;
    if let (Some(tz), Some((_, v))) = (timezone, get("timezone"))
        && let Err(e) = cron::check_timezone(tz)
    {
        ctx.error(v, e);
        tz_ok = false;
    }
    let (Some(expr), Some((_, v))) = (schedule, get("schedule")) else {
        return;
    };
    if let Err(e) = cron::check(expr) {
        ctx.error(v, e);
    } else if let Err(e) = crate::schedule::Schedule::parse(expr, timezone.filter(|_| tz_ok)) {
        // What only the scheduler's parser knows (croner's `L`, `W`, `#`).
        ctx.error(v, format!("failed to {e}"));
    }
}

fn suite_providers(
    ctx: &mut Ctx,
    part: Option<(&Node, &Node)>,
    project: &ProjectConfig,
    base_dir: &Path,
    start: &Location,
) -> Option<Vec<ProviderSpec>> {
    let Some((_, list)) = part else {
        ctx.push(
            start.clone(),
            "missing `providers:` (ids from evalwatch.yaml or inline definitions)",
        );
        return None;
    };
    let Some(items) = list.as_seq() else {
        ctx.error(
            list,
            format!("`providers` must be a list, found {}", list.type_name()),
        );
        return None;
    };
    if items.is_empty() {
        ctx.error(list, "`providers` must list at least one provider");
        return None;
    }
    let mut out: Vec<ProviderSpec> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for item in items {
        let spec = if let Some(id) = item.as_str() {
            let id = ctx.expand(item, id);
            if let Some(p) = project.providers.iter().find(|p| p.id == id) {
                Some(p.clone())
            } else {
                let hint = did_you_mean(&id, project.providers.iter().map(|p| p.id.as_str()));
                let known = if project.providers.is_empty() {
                    " (evalwatch.yaml defines no providers; define it inline or there)".to_owned()
                } else {
                    String::new()
                };
                ctx.error(item, format!("unknown provider `{id}`{known}{hint}"));
                None
            }
        } else {
            provider::decode(ctx, item, base_dir)
        };
        if let Some(spec) = spec {
            if let Some(first) = seen.get(&spec.id) {
                ctx.error(
                    item,
                    format!(
                        "duplicate provider `{}`; first listed at line {first}",
                        spec.id
                    ),
                );
            } else {
                seen.insert(spec.id.clone(), item.line);
                out.push(spec);
            }
        }
    }
    (out.len() == items.len()).then_some(out)
}

fn decode_defaults(ctx: &mut Ctx, part: Option<(&Node, &Node)>, base_dir: &Path) -> Defaults {
    let Some((_, node)) = part else {
        return Defaults::default();
    };
    if node.is_null() {
        return Defaults::default();
    }
    let Some(wire) = ctx.decode::<WireDefaults>(node, "`defaults`") else {
        return Defaults::default();
    };
    if let Some(t) = wire.threshold
        && !(0.0..=1.0).contains(&t)
    {
        let at = node.get("threshold").map_or(node, |(_, v)| v);
        ctx.error(at, format!("threshold must be between 0 and 1, got {t}"));
    }
    let mut asserts = Vec::new();
    if let Some((_, list)) = node.get("assert") {
        match list.as_seq() {
            Some(items) => {
                asserts = items
                    .iter()
                    .filter_map(|a| assertion::decode(ctx, a, "`defaults`", base_dir))
                    .collect();
            }
            None if list.is_null() => {}
            None => ctx.error(
                list,
                format!("`assert` must be a list, found {}", list.type_name()),
            ),
        }
    }
    Defaults {
        vars: wire.vars.map(crate::model::Vars::from).unwrap_or_default(),
        asserts,
        threshold: wire.threshold,
    }
}

fn decode_gates(
    ctx: &mut Ctx,
    part: Option<(&Node, &Node)>,
    named: &BTreeSet<String>,
    has_hallucination: bool,
) -> Vec<Gate> {
    let Some((_, node)) = part else {
        return Vec::new();
    };
    if node.is_null() {
        return Vec::new();
    }
    let Some(entries) = node.as_map() else {
        ctx.error(
            node,
            format!(
                "`gates` must be a mapping of metric to {{min, max}}, found {}",
                node.type_name()
            ),
        );
        return Vec::new();
    };
    let mut gates = Vec::new();
    for (k, v) in entries {
        let metric = k.key_text();
        if !Metrics::NAMES.contains(&metric.as_str()) && !named.contains(&metric) {
            let hint = did_you_mean(
                &metric,
                Metrics::NAMES
                    .iter()
                    .copied()
                    .chain(named.iter().map(String::as_str)),
            );
            ctx.error(k, format!("unknown gate metric `{metric}`{hint}"));
            continue;
        } else if !has_hallucination
            && matches!(
                metric.as_str(),
                "hallucination_rate" | "contradiction_rate" | "unsupported_rate"
            )
        {
            ctx.error(
                k,
                format!(
                    "gate on `{metric}` can never be met: no case of this suite has a `hallucination` or `factuality` assertion"
                ),
            );
            continue;
        }
        let Some(g) = ctx.decode::<WireGate>(v, &format!("gate `{metric}`")) else {
            continue;
        };
        match (g.min, g.max) {
            (None, None) => ctx.error(v, format!("gate `{metric}` needs `min` or `max`")),
            (Some(a), Some(b)) if a > b => ctx.error(
                v,
                format!("gate `{metric}`: min ({a}) is greater than max ({b})"),
            ),
            _ => {
                let outside = [("min", g.min), ("max", g.max)]
                    .into_iter()
                    .filter_map(|(key, x)| {
                        crate::alert::rule::OutsideValues::of(key, x?, &metric, named)
                    })
                    .collect::<Vec<_>>();
                for o in &outside {
                    let outcome = if o.never {
                        "the gate can never fail"
                    } else {
                        "the gate fails every run"
                    };
                    ctx.error(
                        v,
                        format!("gate `{metric}`: {}: {outcome}{}", o.what, o.meant),
                    );
                }
                if outside.is_empty() {
                    gates.push(Gate {
                        metric,
                        min: g.min,
                        max: g.max,
                    });
                }
            }
        }
    }
    gates
}

/// Alert rules, kept raw once judged: every problem of every rule is reported where it is
/// written, by the alert stage's own grammar (`alert::rule::judge_rule`), so that
/// `validate`, `run`, `schedule` and `alerts check` agree on them. Returns the rules and
/// where each is written.
pub(crate) fn decode_alerts(
    ctx: &mut Ctx,
    part: Option<(&Node, &Node)>,
    what: &str,
    scope: MetricScope<'_>,
) -> (Vec<Value>, Vec<Location>) {
    let Some((_, node)) = part else {
        return (Vec::new(), Vec::new());
    };
    if node.is_null() {
        return (Vec::new(), Vec::new());
    }
    let Some(items) = node.as_seq() else {
        ctx.error(
            node,
            format!("{what} must be a list of rules, found {}", node.type_name()),
        );
        return (Vec::new(), Vec::new());
    };
    let mut out = Vec::new();
    let mut at = Vec::new();
    for item in items {
        let raw = ctx.json(item);
        match judge_rule(&raw, scope) {
            Ok(_) => {
                at.push(ctx.loc(item.get("metric").map_or(item, |(_, m)| m)));
                out.push(raw);
            }
            Err(problems) => put_rule_problems(ctx, item, problems),
        }
    }
    (out, at)
}

/// Report each problem of a rule where it is written: at its key (an unknown key), at its
/// value, or at the rule as a whole.
pub(crate) fn put_rule_problems(ctx: &mut Ctx, item: &Node, problems: Vec<RuleProblem>) {
    for p in problems {
        let node = match (&p.key, item.get(p.key.as_deref().unwrap_or(""))) {
            (Some(_), Some((k, _))) if p.on_key => k,
            (Some(_), Some((_, v))) => v,
            _ => item,
        };
        ctx.error(node, p.message);
    }
}

/// A suite rule's `provider:` and `tag:` must name a provider and a case tag of the suite:
/// otherwise the rule could never fire.
fn check_rule_targets(
    ctx: &mut Ctx,
    part: Option<(&Node, &Node)>,
    providers: &[ProviderSpec],
    tags: &BTreeSet<String>,
) {
    let Some(items) = part.and_then(|(_, node)| node.as_seq()) else {
        return;
    };
    for item in items {
        if let Some((_, v)) = item.get("provider")
            && let Some(id) = v.as_str()
            && !providers.iter().any(|p| p.id == id)
        {
            let ids: Vec<&str> = providers.iter().map(|p| p.id.as_str()).collect();
            let hint = did_you_mean(id, ids.iter().copied());
            ctx.error(
                v,
                format!(
                    "alert rule on provider `{id}`, which this suite does not run{hint} (it runs: {}); the rule could never fire",
                    ids.join(", ")
                ),
            );
        }
        if let Some((_, v)) = item.get("tag")
            && let Some(tag) = v.as_str()
            && !tags.contains(tag)
        {
            let hint = did_you_mean(tag, tags.iter().map(String::as_str));
            ctx.error(
                v,
                format!(
                    "alert rule on tag `{tag}`, which no case of this suite has{hint}; the rule could never fire"
                ),
            );
        }
    }
}

/// The project's default rules a suite takes (those on metrics it has no rule of its own
/// on) must name a metric the suite has: each one that does not is reported where the
/// project writes it.
fn check_project_alerts(
    ctx: &mut Ctx,
    suite_rules: &[Value],
    project: &ProjectConfig,
    named: &BTreeSet<String>,
    suite: Option<&str>,
) {
    let own: BTreeSet<&str> = suite_rules
        .iter()
        .filter_map(|r| r.get("metric").and_then(Value::as_str))
        .collect();
    for (i, raw) in project.alerts.iter().enumerate() {
        let Some(metric) = raw.get("metric").and_then(Value::as_str) else {
            continue;
        };
        if own.contains(metric) || known_metric(metric, named) {
            continue;
        }
        let location = project
            .alert_locations
            .get(i)
            .cloned()
            .unwrap_or_else(|| ctx.at(0, 0));
        let suite = suite.map_or_else(String::new, |s| format!("`{s}` "));
        ctx.push(
            location,
            format!(
                "default alert rule {} applies to every suite, and suite {suite}cannot take it: {}",
                i + 1,
                unknown_metric(metric, named)
            ),
        );
    }
}
