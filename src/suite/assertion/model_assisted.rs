//! Model-assisted assertions (`llm-rubric`, `factuality`, `hallucination`, `semantic`): their
//! parameters checked at decode time, and, once the cases are read, that every one that calls
//! a model has a judge the project or the suite defines.

use serde_json::Value;

use super::{Pending, field, scalar_text};
use crate::model::Check;
use crate::suite::decode::{Ctx, did_you_mean};
use crate::suite::wire::WireAssertion;
use crate::suite::yaml::Node;

/// Factuality categories, as `scores:` keys.
const CATEGORIES: [&str; 5] = [
    "subset",
    "superset",
    "same",
    "contradiction",
    "differs-harmlessly",
];

/// Parameters of model-assisted assertions (which judge is checked with the suite's
/// providers, in [`check_judges`]).
pub(super) fn check_model(ctx: &mut Ctx, node: &Node, p: &Pending) {
    let w = &p.wire;
    if let Some(id) = &w.provider
        && id.trim().is_empty()
    {
        ctx.error(field(node, "provider"), "`provider` must name a provider");
    }
    if let Some(v) = &w.value
        && scalar_text(v).is_none()
    {
        ctx.error(
            field(node, "value"),
            format!("the `value` of `{}` must be a string", p.base),
        );
    }
    match p.base {
        "llm-rubric" => match w.rubric.as_deref() {
            Some(r) if !r.trim().is_empty() => {}
            Some(_) => ctx.error(field(node, "rubric"), "`rubric` must not be empty"),
            None => ctx.error(
                node,
                "assertion type `llm-rubric` needs a `rubric` (what a good answer does, in words)",
            ),
        },
        "hallucination" => {
            if let Some(m) = w.method.as_deref()
                && !["lexical", "judge", "both"].contains(&m)
            {
                let hint = did_you_mean(m, ["lexical", "judge", "both"]);
                ctx.error(
                    field(node, "method"),
                    format!("unknown method `{m}`; use `lexical`, `judge` or `both`{hint}"),
                );
            }
            if let Some(m) = w.max
                && !(0.0..=1.0).contains(&m)
            {
                ctx.error(
                    field(node, "max"),
                    format!(
                        "max is the largest share of unsupported claims, between 0 and 1; got {m}"
                    ),
                );
            }
            check_support(ctx, node, w);
            if let Some(share) = w.judge_share {
                if !(0.0..=1.0).contains(&share) {
                    ctx.error(
                        field(node, "judge_share"),
                        format!(
                            "judge_share is the share of unflagged outputs the judge also sees, between 0 and 1; got {share}"
                        ),
                    );
                } else if w.method.as_deref() != Some("both") {
                    ctx.error(
                        field(node, "judge_share"),
                        "`judge_share` applies to `method: both` only (the judge sees every output with `judge`, none with `lexical`)",
                    );
                }
            }
        }
        "factuality" => {
            let at = field(node, "scores");
            match &w.scores {
                None => {}
                Some(Value::Object(map)) => {
                    for (k, v) in map {
                        if !CATEGORIES.contains(&k.as_str()) {
                            let hint = did_you_mean(k, CATEGORIES);
                            ctx.error(
                                at,
                                format!(
                                    "unknown factuality category `{k}` in `scores`; use {}{hint}",
                                    CATEGORIES.join(", ")
                                ),
                            );
                        } else if !v.as_f64().is_some_and(|n| (0.0..=1.0).contains(&n)) {
                            ctx.error(
                                at,
                                format!("the score of `{k}` must be a number between 0 and 1"),
                            );
                        }
                    }
                }
                Some(_) => ctx.error(
                    at,
                    "`scores` must map categories to scores, e.g. `{superset: 0.8, subset: 0.5}`",
                ),
            }
        }
        _ => {}
    }
}

/// `support:` of `hallucination`: one source or a list of distinct ones, each `expected`,
/// `context` or `prompt`; every problem at its own item.
fn check_support(ctx: &mut Ctx, node: &Node, w: &WireAssertion) {
    use crate::score::model::SUPPORT_SOURCES;
    let Some(v) = &w.support else { return };
    let at = field(node, "support");
    let items: Vec<(&Value, &Node)> = match (v, at.as_seq()) {
        (Value::Array(a), Some(nodes)) => a.iter().zip(nodes.iter()).collect(),
        (Value::Array(a), None) => a.iter().map(|x| (x, at)).collect(),
        (other, _) => vec![(other, at)],
    };
    if items.is_empty() {
        ctx.error(
            at,
            format!(
                "`support` must name at least one of {}",
                SUPPORT_SOURCES.join(", ")
            ),
        );
    }
    let mut seen: Vec<&str> = Vec::new();
    for (item, item_node) in items {
        match item.as_str() {
            Some(name) if SUPPORT_SOURCES.contains(&name) => {
                if seen.contains(&name) {
                    ctx.error(
                        item_node,
                        format!("support source `{name}` is listed twice"),
                    );
                }
                seen.push(name);
            }
            Some(name) => {
                let hint = did_you_mean(name, SUPPORT_SOURCES);
                ctx.error(
                    item_node,
                    format!(
                        "unknown support source `{name}`; use {}{hint}",
                        SUPPORT_SOURCES.join(", ")
                    ),
                );
            }
            None => ctx.error(
                item_node,
                format!(
                    "`support` lists sources by name ({}), e.g. `support: [expected, context]`",
                    SUPPORT_SOURCES.join(", ")
                ),
            ),
        }
    }
}

/// Whether a model-assisted assertion calls a model: all but `hallucination` with
/// `method: lexical` (its default).
pub(crate) fn calls_model(kind: &str, params: &serde_json::Map<String, Value>) -> bool {
    kind != "hallucination"
        || params
            .get("method")
            .and_then(Value::as_str)
            .is_some_and(|m| m != "lexical")
}

/// Whether a case has a `hallucination` or `factuality` assertion (gates on the
/// hallucination rates need one).
pub(crate) fn checks_hallucination(case: &crate::model::Case) -> bool {
    case.asserts.iter().any(|a| {
        matches!(&a.check, Check::Model { kind, .. } if kind == "hallucination" || kind == "factuality")
    })
}

/// Every model-assisted assertion that calls a model has a judge: its `provider:`, else the
/// project's `judge:`, defined in evalwatch.yaml or in the suite's `providers:`; `semantic`
/// needs one with an embeddings endpoint (`openai` type).
pub(crate) fn check_judges(
    ctx: &mut Ctx,
    cases: &[crate::model::Case],
    suite_providers: &[crate::model::ProviderSpec],
    project: &crate::model::ProjectConfig,
) {
    for a in cases.iter().flat_map(|c| &c.asserts) {
        let Check::Model { kind, params } = &a.check else {
            continue;
        };
        if !calls_model(kind, params) {
            continue;
        }
        let own = params.get("provider").and_then(Value::as_str);
        let Some(id) = own.or(project.judge.as_deref()) else {
            ctx.push(
                a.location.clone(),
                format!("`{kind}` needs a judge: give it `provider: ID` or set `judge: ID` in evalwatch.yaml"),
            );
            continue;
        };
        let known = suite_providers.iter().chain(&project.providers);
        let Some(spec) = known.clone().find(|p| p.id == id) else {
            let hint = did_you_mean(id, known.map(|p| p.id.as_str()));
            ctx.push(
                a.location.clone(),
                format!("judge provider `{id}` of `{kind}` is not defined in evalwatch.yaml or the suite's `providers`{hint}"),
            );
            continue;
        };
        if kind == "semantic" && spec.kind != crate::model::ProviderKind::Openai {
            ctx.push(
                a.location.clone(),
                format!(
                    "`semantic` needs an embeddings endpoint, and provider `{id}` (type {}) has none; name an `openai`-type provider with an embeddings model in `provider:`",
                    spec.kind.as_str()
                ),
            );
        }
    }
}
