//! Model-assisted assertions (`llm-rubric`, `factuality`, `hallucination`, `semantic`): their
//! parameters, typed, and the part of them that needs no model (the lexical hallucination
//! pass). The judging stage (`src/judge/`) decides the rest; [`super::Scorer::score_with`]
//! merges its verdicts into the case verdict.

use serde_json::{Map, Value, json};

use super::lexical;
use super::verdict::Verdict;
use crate::model::Case;

/// `llm-rubric` passes at this normalised score unless `threshold` says otherwise.
pub const DEFAULT_RUBRIC_THRESHOLD: f64 = 0.5;
/// `factuality` passes at this score unless `threshold` says otherwise (so by default the
/// partial categories, subset and superset, pass with half marks and contradiction fails).
pub const DEFAULT_FACTUALITY_THRESHOLD: f64 = 0.5;
/// `hallucination` passes when at most this share of the output is unsupported.
pub const DEFAULT_HALLUCINATION_MAX: f64 = 0.2;
/// `semantic` passes at this cosine unless `threshold` says otherwise.
pub const DEFAULT_SEMANTIC_THRESHOLD: f64 = 0.8;

/// How `hallucination` checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Word overlap with the support; no model.
    Lexical,
    /// Claim by claim, by a judge.
    Judge,
    /// The lexical pass first; the judge only when it flags something.
    Both,
}

impl Method {
    pub const ALL: [&'static str; 3] = ["lexical", "judge", "both"];

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "lexical" => Self::Lexical,
            "judge" => Self::Judge,
            "both" => Self::Both,
            _ => return None,
        })
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lexical => "lexical",
            Self::Judge => "judge",
            Self::Both => "both",
        }
    }
}

/// Score of each factuality category (`scores:`), in [0,1].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FactualityScores {
    pub subset: f64,
    pub superset: f64,
    pub same: f64,
    pub contradiction: f64,
    pub differs_harmlessly: f64,
}

impl Default for FactualityScores {
    /// Added, unverified facts (superset) and missing ones (subset) are partial;
    /// a contradiction is 0.
    fn default() -> Self {
        Self {
            subset: 0.5,
            superset: 0.5,
            same: 1.0,
            contradiction: 0.0,
            differs_harmlessly: 1.0,
        }
    }
}

impl FactualityScores {
    /// The score of a category named as in `scores:` (`subset`, ..., `differs-harmlessly`).
    #[must_use]
    pub fn of(&self, category: &str) -> Option<f64> {
        Some(match category {
            "subset" => self.subset,
            "superset" => self.superset,
            "same" => self.same,
            "contradiction" => self.contradiction,
            "differs-harmlessly" => self.differs_harmlessly,
            _ => return None,
        })
    }

    fn set(&mut self, category: &str, v: f64) -> bool {
        let slot = match category {
            "subset" => &mut self.subset,
            "superset" => &mut self.superset,
            "same" => &mut self.same,
            "contradiction" => &mut self.contradiction,
            "differs-harmlessly" | "differs_harmlessly" => &mut self.differs_harmlessly,
            _ => return false,
        };
        *slot = v;
        true
    }

    /// `scores:` as written: a map of category to a number in [0,1]; the rest keep defaults.
    pub fn from_value(v: Option<&Value>) -> Result<Self, String> {
        let mut out = Self::default();
        let Some(v) = v else { return Ok(out) };
        let Some(map) = v.as_object() else {
            return Err(
                "`scores` must be a map of category to score, e.g. `{superset: 0.8}`".into(),
            );
        };
        for (k, v) in map {
            let n = v
                .as_f64()
                .filter(|n| (0.0..=1.0).contains(n))
                .ok_or_else(|| format!("score of `{k}` must be a number between 0 and 1"))?;
            if !out.set(k, n) {
                return Err(format!(
                    "unknown factuality category `{k}` in `scores`; use subset, superset, same, contradiction, differs-harmlessly"
                ));
            }
        }
        Ok(out)
    }
}

/// `method: both` sends this share of the outputs the lexical pass does not flag to the judge
/// too, unless `judge_share` says otherwise.
pub const DEFAULT_JUDGE_SHARE: f64 = 0.1;

/// The sources a `hallucination` assertion may name in `support:`.
pub const SUPPORT_SOURCES: [&str; 3] = ["expected", "context", "prompt"];

/// What `hallucination` checks the output against (`support:`). The prompt, when not named,
/// still excuses the ordinary words the output repeats from it (an echo), but supports no
/// name, number or claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)]
pub struct SupportSources {
    pub expected: bool,
    pub context: bool,
    pub prompt: bool,
}

impl Default for SupportSources {
    /// `[expected, context]`: the prompt only excuses echoes.
    fn default() -> Self {
        Self {
            expected: true,
            context: true,
            prompt: false,
        }
    }
}

impl SupportSources {
    /// `support:` as written: one source or a non-empty list of distinct sources.
    pub fn from_value(v: Option<&Value>) -> Result<Self, String> {
        let Some(v) = v else {
            return Ok(Self::default());
        };
        let items: Vec<&Value> = match v {
            Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        if items.is_empty() {
            return Err(format!(
                "`support` must name at least one of {}",
                SUPPORT_SOURCES.join(", ")
            ));
        }
        let mut out = Self {
            expected: false,
            context: false,
            prompt: false,
        };
        for item in items {
            let name = item.as_str().ok_or_else(|| {
                format!(
                    "`support` lists sources by name ({}), got {item}",
                    SUPPORT_SOURCES.join(", ")
                )
            })?;
            let slot = match name {
                "expected" => &mut out.expected,
                "context" => &mut out.context,
                "prompt" => &mut out.prompt,
                _ => {
                    return Err(format!(
                        "unknown support source `{name}`; use {}",
                        SUPPORT_SOURCES.join(", ")
                    ));
                }
            };
            if std::mem::replace(slot, true) {
                return Err(format!("support source `{name}` is listed twice"));
            }
        }
        Ok(out)
    }

    /// The sources as written in `support:`.
    #[must_use]
    pub fn names(self) -> Vec<&'static str> {
        [
            (self.expected, "expected"),
            (self.context, "context"),
            (self.prompt, "prompt"),
        ]
        .into_iter()
        .filter_map(|(on, n)| on.then_some(n))
        .collect()
    }
}

/// A model-assisted assertion with its parameters checked and defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelCheck {
    Rubric {
        rubric: String,
        /// `value`, or the case's `expected`, shown to the judge as a reference if any.
        reference: Option<String>,
        threshold: f64,
        provider: Option<String>,
    },
    Factuality {
        reference: String,
        scores: FactualityScores,
        threshold: f64,
        provider: Option<String>,
    },
    Hallucination {
        method: Method,
        max: f64,
        provider: Option<String>,
        /// What the output is checked against (`support:`).
        support: SupportSources,
        /// `method: both`: share of the outputs the lexical pass does not flag that the judge
        /// sees anyway (`judge_share:`).
        judge_share: f64,
    },
    Semantic {
        reference: String,
        threshold: f64,
        provider: Option<String>,
    },
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl ModelCheck {
    /// The check of an assertion `kind` with raw `params` (as carried in `Check::Model`),
    /// for a case with `expected`. Errors say what is wrong (the loader reports the same
    /// problems at their file:line:col first).
    pub fn parse(
        kind: &str,
        params: &Map<String, Value>,
        expected: Option<&str>,
        threshold: Option<f64>,
    ) -> Result<Self, String> {
        let provider = params
            .get("provider")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let reference = || {
            params
                .get("value")
                .and_then(text_of)
                .or_else(|| expected.map(str::to_owned))
        };
        let unit = |t: f64, what: &str| {
            if (0.0..=1.0).contains(&t) {
                Ok(t)
            } else {
                Err(format!("{what} must be between 0 and 1, got {t}"))
            }
        };
        Ok(match kind {
            "llm-rubric" => Self::Rubric {
                rubric: params
                    .get("rubric")
                    .and_then(Value::as_str)
                    .filter(|r| !r.trim().is_empty())
                    .ok_or("`llm-rubric` needs a `rubric` (what a good answer does)")?
                    .to_owned(),
                reference: reference(),
                threshold: unit(threshold.unwrap_or(DEFAULT_RUBRIC_THRESHOLD), "threshold")?,
                provider,
            },
            "factuality" => Self::Factuality {
                reference: reference().ok_or(
                    "`factuality` compares with `value` or the case's `expected`, and there is neither",
                )?,
                scores: FactualityScores::from_value(params.get("scores"))?,
                threshold: unit(
                    threshold.unwrap_or(DEFAULT_FACTUALITY_THRESHOLD),
                    "threshold",
                )?,
                provider,
            },
            "hallucination" => {
                let method = match params.get("method") {
                    None => Method::Lexical,
                    Some(v) => v.as_str().and_then(Method::parse).ok_or_else(|| {
                        format!("`method` must be one of {}", Method::ALL.join(", "))
                    })?,
                };
                let max = match params.get("max") {
                    None => DEFAULT_HALLUCINATION_MAX,
                    Some(v) => unit(v.as_f64().unwrap_or(f64::NAN), "max")?,
                };
                let judge_share = match params.get("judge_share") {
                    None => DEFAULT_JUDGE_SHARE,
                    Some(v) => unit(v.as_f64().unwrap_or(f64::NAN), "judge_share")?,
                };
                Self::Hallucination {
                    method,
                    max,
                    provider,
                    support: SupportSources::from_value(params.get("support"))?,
                    judge_share,
                }
            }
            "semantic" => Self::Semantic {
                reference: reference().ok_or(
                    "`semantic` compares with `value` or the case's `expected`, and there is neither",
                )?,
                threshold: unit(
                    threshold.unwrap_or(DEFAULT_SEMANTIC_THRESHOLD),
                    "threshold",
                )?,
                provider,
            },
            other => return Err(format!("`{other}` is not a model-assisted assertion")),
        })
    }

    /// The assertion's own `provider:`, if it names one.
    #[must_use]
    pub fn provider(&self) -> Option<&str> {
        match self {
            Self::Rubric { provider, .. }
            | Self::Factuality { provider, .. }
            | Self::Hallucination { provider, .. }
            | Self::Semantic { provider, .. } => provider.as_deref(),
        }
    }

    /// Whether it may call a model (everything but a lexical-only `hallucination`).
    #[must_use]
    pub fn may_call(&self) -> bool {
        !matches!(
            self,
            Self::Hallucination {
                method: Method::Lexical,
                ..
            }
        )
    }
}

/// The texts a `hallucination` assertion checks an output against: `support` (supports
/// content) and `echo` (the prompt when `support:` does not name it: excuses repeated words).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SupportTexts<'a> {
    pub support: Vec<&'a str>,
    pub echo: Vec<&'a str>,
}

impl<'a> SupportTexts<'a> {
    /// Plain support texts, no echo.
    #[must_use]
    pub fn plain(support: &[&'a str]) -> Self {
        Self {
            support: support.to_vec(),
            echo: Vec::new(),
        }
    }

    /// The lexical pass over `output`.
    #[must_use]
    pub fn check(&self, output: &str) -> lexical::Lexical {
        lexical::check_echo(output, &self.support, &self.echo)
    }
}

/// What `hallucination` checks the output against: the sources `support:` names (`expected`,
/// each `context` item, the rendered prompt); the prompt, when not named, as an echo. A case
/// with neither `expected` nor `context` has nothing else to check against, so its prompt is
/// the support whatever `support:` says.
pub fn support<'a>(case: &'a Case, prompt: &'a str, sources: SupportSources) -> SupportTexts<'a> {
    let mut s: Vec<&str> = Vec::with_capacity(case.context.len() + 2);
    if sources.expected {
        s.extend(case.expected.as_deref());
    }
    if sources.context {
        s.extend(case.context.iter().map(String::as_str));
    }
    let knowledge_missing = case.expected.is_none() && case.context.is_empty();
    let mut echo = Vec::new();
    if !prompt.is_empty() {
        if sources.prompt || knowledge_missing {
            s.push(prompt);
        } else {
            echo.push(prompt);
        }
    }
    SupportTexts { support: s, echo }
}

/// Whether `method: both` sends an output the lexical pass did not flag to the judge anyway:
/// a stable draw (the same case and output always give the same answer, so reruns and the
/// judge cache agree) that is true for about `share` of outputs.
#[must_use]
pub fn judge_sampled(case_id: &str, output: &str, share: f64) -> bool {
    use std::hash::Hasher;
    if share <= 0.0 {
        return false;
    }
    if share >= 1.0 {
        return true;
    }
    let mut h = fnv::FnvHasher::default();
    h.write(case_id.as_bytes());
    h.write(&[0xff]);
    h.write(output.as_bytes());
    // splitmix64 finaliser: FNV's high bits alone are not uniform enough for a share.
    let mut x = h.finish();
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    #[allow(clippy::cast_precision_loss)]
    let draw = (x >> 11) as f64 / (1u64 << 53) as f64;
    draw < share
}

/// The lexical pass: passes when the lexical score is at most `max`. The outcome score is
/// 1 - the lexical score (higher is better, like every score); `details.score` is the lexical
/// score itself, `details.share`, `details.worst_claim` and `details.surface` the three
/// shares it weighs (0.375, 0.375, 0.25).
pub fn lexical_verdict(result: &lexical::Lexical, method: Method, max: f64) -> Verdict {
    let finite = |x: f64| {
        if x.is_finite() {
            x.clamp(0.0, 1.0)
        } else {
            1.0
        }
    };
    let score = finite(result.score);
    let pass = score <= max + 1e-12;
    let pct = |x: f64| format!("{:.0}%", finite(x) * 100.0);
    let verdict = format!(
        "score {score:.2} {} the max of {max:.2}",
        if pass { "within" } else { "over" }
    );
    let reason = if result.checked == 0 {
        format!(
            "{verdict}: nothing in the output is checkable against the support (only function words, conversation words or answer particles)"
        )
    } else if result.unsupported.is_empty() {
        format!(
            "{verdict}: every checked unit of the output is in the support ({} units checked)",
            result.checked
        )
    } else {
        let shown: Vec<String> = result
            .unsupported
            .iter()
            .take(5)
            .map(|s| format!("\"{}\"", s.text))
            .collect();
        format!(
            "{verdict}: {} of the output's checked content (by weight) is not in the support, {} of its worst claim, and {} of its words are not written so in the support; the score is 0.375 × the first + 0.375 × the second + 0.25 × the third. {} unsupported span{} among {} checked units: {}{}",
            pct(result.share),
            pct(result.worst_claim),
            pct(result.surface),
            result.unsupported.len(),
            if result.unsupported.len() == 1 {
                ""
            } else {
                "s"
            },
            result.checked,
            shown.join(", "),
            if result.unsupported.len() > 5 {
                ", …"
            } else {
                ""
            },
        )
    };
    Verdict::graded(
        pass,
        1.0 - score,
        reason,
        json!({
            "method": method.as_str(),
            "score": score,
            "share": result.share,
            "worst_claim": result.worst_claim,
            "surface": result.surface,
            "max": max,
            "unsupported": result.unsupported,
            "contradictions": [],
            "checked": result.checked,
            "claims": result.claims.len(),
        }),
    )
}

/// Why an empty output is not scored: there is nothing to compare with the support, and a
/// silent pass (score 0) would count it as faithful.
pub const EMPTY_OUTPUT: &str = "the output is empty: there is nothing to check against the support (an empty answer is unscorable, not faithful)";

/// The verdict of a model-assisted assertion without a judge's help: the lexical pass of
/// `hallucination` (`method: lexical`, or `both` when it flags nothing); otherwise
/// unscorable, as it needs a judge that did not answer. An empty output is unscorable for
/// every method of `hallucination`.
pub fn without_judge(
    check: &ModelCheck,
    kind: &str,
    output: &str,
    support: &SupportTexts<'_>,
) -> Verdict {
    match check {
        ModelCheck::Hallucination { .. } if output.trim().is_empty() => {
            Verdict::unscorable(format!("`{kind}`: {EMPTY_OUTPUT}"))
        }
        ModelCheck::Hallucination { method, max, .. } if *method != Method::Judge => {
            let lx = support.check(output);
            if *method == Method::Lexical || lx.unsupported.is_empty() {
                let mut v = lexical_verdict(&lx, *method, *max);
                if *method == Method::Both {
                    v.reason = format!("{}; no judge needed", v.reason);
                }
                return v;
            }
            Verdict::unscorable(format!(
                "`{kind}` (method both) flagged words the support lacks and needs a judge to decide, but none answered"
            ))
        }
        _ => Verdict::unscorable(format!(
            "`{kind}` is model-assisted and no judge verdict reached the scorer"
        )),
    }
}

#[cfg(test)]
mod tests;
