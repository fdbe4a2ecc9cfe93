//! Scoring: pure functions from an output and a case's assertions to a verdict.
//!
//! [`Scorer::new`] prepares a whole suite once (regexes and JSON schemas compiled, expected
//! values normalised); [`Scorer::score`] then only compares. Each family of assertions lives
//! in its own file: [`text`], [`json`], [`numeric`], [`similarity`], [`misc`];
//! [`normalize`] holds the `normalize:` options and [`verdict`] the case verdict.

pub mod json;
pub mod lexical;
pub mod misc;
pub mod model;
pub mod normalize;
pub mod numeric;
pub mod similarity;
pub mod text;
pub mod verdict;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use regex::Regex;

use crate::model::{Assertion, AssertionOutcome, Case, Check, LabelPair, Score, Suite};
use normalize::{COLLAPSE_WHITESPACE, LOWERCASE, TRIM};
use verdict::Verdict;

/// What the scorer sees of one completed call.
#[derive(Debug, Clone, Copy)]
pub struct ScoreInput<'a> {
    pub output: &'a str,
    /// The rendered prompt as text.
    pub prompt: &'a str,
    pub latency_ms: Option<f64>,
    pub cost_usd: Option<f64>,
}

/// Errors building a scorer (an assertion that slipped past validation).
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    #[error("build assertion {index} of case `{case_id}`: {message}")]
    Assertion {
        case_id: String,
        index: usize,
        message: String,
    },
}

/// Scores results of one suite, with regexes and JSON schemas compiled once.
///
/// Preparation is per distinct assertion, not per case: the loader gives every case the same
/// shared `Arc` for an assertion of the same content (a default `length`, an `icontains` of
/// the same `expected`), so a suite of 100,000 cases with two default assertions prepares a
/// handful of them.
pub struct Scorer {
    /// Prepared assertions by the address of the shared assertion they come from. The map
    /// holds a clone of each `Arc`, so an address cannot be reused by another assertion.
    prepared: HashMap<usize, (Arc<Assertion>, Result<Prepared, String>)>,
}

/// The key of a shared assertion: its address.
fn key(a: &Arc<Assertion>) -> usize {
    Arc::as_ptr(a).addr()
}

impl Scorer {
    pub fn new(suite: &Suite) -> Result<Self, ScoreError> {
        let mut prepared = HashMap::new();
        for case in &suite.cases {
            for (index, a) in case.asserts.iter().enumerate() {
                let entry = prepared
                    .entry(key(a))
                    .or_insert_with(|| (Arc::clone(a), prepare(a)));
                if let Err(message) = &entry.1 {
                    return Err(ScoreError::Assertion {
                        case_id: case.id.clone(),
                        index,
                        message: message.clone(),
                    });
                }
            }
        }
        Ok(Self { prepared })
    }

    /// A scorer with nothing prepared yet, for cases that stream in (see
    /// [`Scorer::prepare_case`]).
    #[must_use]
    pub fn empty() -> Self {
        Self {
            prepared: HashMap::new(),
        }
    }

    /// Prepare the assertions of `case` not prepared yet, as [`Scorer::new`] does for a
    /// whole suite. What it holds stays bounded: it starts afresh past a few thousand
    /// distinct assertions (a suite whose cases each have their own `expected`).
    pub fn prepare_case(&mut self, case: &Case) -> Result<(), ScoreError> {
        const MAX_PREPARED: usize = 4096;
        for (index, a) in case.asserts.iter().enumerate() {
            if !self.prepared.contains_key(&key(a)) {
                if self.prepared.len() >= MAX_PREPARED {
                    self.prepared.clear();
                }
                self.prepared.insert(key(a), (Arc::clone(a), prepare(a)));
            }
            if let Some((_, Err(message))) = self.prepared.get(&key(a)) {
                return Err(ScoreError::Assertion {
                    case_id: case.id.clone(),
                    index,
                    message: message.clone(),
                });
            }
        }
        Ok(())
    }

    /// Score one output of `case` (`case_index` into `suite.cases`).
    ///
    /// An assertion the scorer did not prepare (a case of another suite, or an edited case)
    /// is prepared on the fly; one that cannot be built is then unscorable rather than a
    /// panic.
    pub fn score(&self, case_index: usize, case: &Case, input: &ScoreInput<'_>) -> Score {
        self.score_with(case_index, case, input, &[])
    }

    /// As [`Scorer::score`], with the verdicts of the judging stage: `judged` holds (index
    /// into `case.asserts`, outcome) for the model-assisted assertions a judge decided. A
    /// model-assisted assertion without one gets what can be decided without a model (the
    /// lexical hallucination pass), else is unscorable.
    pub fn score_with(
        &self,
        case_index: usize,
        case: &Case,
        input: &ScoreInput<'_>,
        judged: &[(usize, AssertionOutcome)],
    ) -> Score {
        let _ = case_index;
        let fresh: Vec<Option<Result<Prepared, String>>> = case
            .asserts
            .iter()
            .map(|a| (!self.prepared.contains_key(&key(a))).then(|| prepare(a)))
            .collect();
        let prepared: Vec<&Result<Prepared, String>> = case
            .asserts
            .iter()
            .zip(&fresh)
            .filter_map(|(a, fresh)| {
                fresh
                    .as_ref()
                    .or_else(|| self.prepared.get(&key(a)).map(|(_, p)| p))
            })
            .collect();
        // The output, normalised once per distinct mask the case's assertions need.
        let mut outputs: Vec<(u8, Cow<'_, str>)> = Vec::new();
        for p in prepared.iter().filter_map(|p| p.as_ref().ok()) {
            if !outputs.iter().any(|(m, _)| *m == p.mask) {
                outputs.push((p.mask, normalize::apply(input.output, p.mask)));
            }
        }
        // A case written without `assert` reaches here with the loader's default rule
        // (`contains` of `expected`); a case with no assertion at all is unscorable.
        let asserts: &[Arc<Assertion>] = &case.asserts;
        let mut label = None;
        let mut outcomes = Vec::with_capacity(asserts.len());
        for (i, (assertion, p)) in asserts.iter().zip(prepared).enumerate() {
            if let Check::Model { kind, params } = &assertion.check {
                if let Some((_, o)) = judged.iter().find(|(j, _)| *j == i) {
                    outcomes.push(o.clone());
                    continue;
                }
                let v = match model::ModelCheck::parse(
                    kind,
                    params,
                    case.expected.as_deref(),
                    assertion.threshold,
                ) {
                    Ok(check) => {
                        let sources = match &check {
                            model::ModelCheck::Hallucination { support, .. } => *support,
                            _ => model::SupportSources::default(),
                        };
                        model::without_judge(
                            &check,
                            kind,
                            input.output,
                            &model::support(case, input.prompt, sources),
                        )
                    }
                    Err(e) => Verdict::unscorable(format!("`{kind}`: {e}")),
                };
                outcomes.push(v.into_outcome(assertion));
                continue;
            }
            let v = match p {
                Ok(p) => {
                    let out = outputs
                        .iter()
                        .find(|(m, _)| *m == p.mask)
                        .map_or(input.output, |(_, o)| o.as_ref());
                    evaluate(assertion, p, out, input, &mut label)
                }
                Err(message) => {
                    Verdict::unscorable(format!("assertion could not be built: {message}"))
                }
            };
            outcomes.push(v.into_outcome(assertion));
        }
        let (status, score) = verdict::case_verdict(&outcomes, case.threshold);
        Score {
            status,
            score,
            assertions: outcomes,
            label,
        }
    }
}

/// One assertion, ready to compare.
pub(crate) struct Prepared {
    /// The normalisation of the output it compares with.
    mask: u8,
    /// Expected value(s) (or labels) normalised like the output.
    values: Vec<String>,
    extra: Extra,
}

enum Extra {
    None,
    Regex(Regex),
    Schema(Box<jsonschema::Validator>),
    Path(Vec<json::Segment>),
}

/// How the output is normalised for an assertion.
///
/// Numbers, JSON, refusals, latency and cost read the raw output: `strip_punctuation` would
/// destroy `1,234.50` or `{"a":1}`. (`json-path` applies `normalize` to the string values it
/// compares instead.)
fn output_mask(a: &Assertion) -> u8 {
    let m = normalize::mask_of(&a.normalize);
    match &a.check {
        Check::Equals { .. }
        | Check::Contains { .. }
        | Check::ContainsAny { .. }
        | Check::ContainsAll { .. }
        | Check::StartsWith { .. }
        | Check::EndsWith { .. }
        | Check::Regex { .. }
        | Check::Similarity { .. }
        | Check::Levenshtein { .. }
        | Check::Length { .. } => m,
        Check::IContains { .. } | Check::IContainsAny { .. } | Check::IContainsAll { .. } => {
            m | LOWERCASE
        }
        Check::Classification { .. } => m | LOWERCASE | TRIM | COLLAPSE_WHITESPACE,
        Check::IsJson { .. }
        | Check::JsonPath { .. }
        | Check::Numeric { .. }
        | Check::Latency { .. }
        | Check::Cost { .. }
        | Check::IsRefusal
        | Check::Model { .. } => 0,
    }
}

fn prepare(a: &Assertion) -> Result<Prepared, String> {
    let mask = output_mask(a);
    let norm = |s: &str| normalize::apply(s, mask).into_owned();
    let (values, extra) = match &a.check {
        Check::Equals { value }
        | Check::Contains { value }
        | Check::IContains { value }
        | Check::StartsWith { value }
        | Check::EndsWith { value }
        | Check::Similarity { value, .. }
        | Check::Levenshtein { value, .. } => (vec![norm(value)], Extra::None),
        Check::ContainsAny { values }
        | Check::ContainsAll { values }
        | Check::IContainsAny { values }
        | Check::IContainsAll { values } => (values.iter().map(|v| norm(v)).collect(), Extra::None),
        Check::Classification { labels, value } => {
            let mut v: Vec<String> = labels.iter().map(|l| misc::label_key(l, mask)).collect();
            v.push(misc::label_key(value, mask));
            (v, Extra::None)
        }
        Check::Regex { pattern } => {
            let re = Regex::new(pattern).map_err(|e| format!("invalid regex: {e}"))?;
            (Vec::new(), Extra::Regex(re))
        }
        Check::Numeric {
            pattern: Some(p), ..
        } => {
            let re = Regex::new(p).map_err(|e| format!("invalid numeric pattern: {e}"))?;
            (Vec::new(), Extra::Regex(re))
        }
        Check::IsJson {
            schema: Some(schema),
        } => {
            let v = jsonschema::validator_for(schema)
                .map_err(|e| format!("invalid JSON schema: {e}"))?;
            (Vec::new(), Extra::Schema(Box::new(v)))
        }
        Check::JsonPath { path, .. } => (Vec::new(), Extra::Path(json::parse_path(path)?)),
        Check::IsJson { schema: None }
        | Check::Numeric { pattern: None, .. }
        | Check::Length { .. }
        | Check::Latency { .. }
        | Check::Cost { .. }
        | Check::IsRefusal
        | Check::Model { .. } => (Vec::new(), Extra::None),
    };
    Ok(Prepared {
        mask,
        values,
        extra,
    })
}

fn first(values: &[String]) -> &str {
    values.first().map_or("", String::as_str)
}

fn evaluate(
    a: &Assertion,
    p: &Prepared,
    out: &str,
    input: &ScoreInput<'_>,
    label: &mut Option<LabelPair>,
) -> Verdict {
    let mask = normalize::mask_of(&a.normalize);
    match (&a.check, &p.extra) {
        (Check::Equals { value }, _) => text::equals(out, first(&p.values), value),
        (Check::Contains { value }, _) => text::contains(out, first(&p.values), value, false),
        (Check::IContains { value }, _) => text::contains(out, first(&p.values), value, true),
        (Check::ContainsAny { values }, _) => text::contains_any(out, &p.values, values, false),
        (Check::IContainsAny { values }, _) => text::contains_any(out, &p.values, values, true),
        (Check::ContainsAll { values }, _) => {
            text::contains_all(out, &p.values, values, false, a.threshold)
        }
        (Check::IContainsAll { values }, _) => {
            text::contains_all(out, &p.values, values, true, a.threshold)
        }
        (Check::StartsWith { value }, _) => text::starts_with(out, first(&p.values), value),
        (Check::EndsWith { value }, _) => text::ends_with(out, first(&p.values), value),
        (Check::Regex { .. }, Extra::Regex(re)) => text::regex(out, re),
        (Check::Length { min, max, unit }, _) => text::length(out, *min, *max, *unit),
        (Check::IsJson { .. }, Extra::Schema(s)) => json::is_json(out, Some(s)),
        (Check::IsJson { .. }, _) => json::is_json(out, None),
        (Check::JsonPath { path, value }, Extra::Path(segs)) => {
            json::json_path(out, path, segs, value.as_ref(), mask)
        }
        (
            Check::Numeric {
                value, tolerance, ..
            },
            extra,
        ) => {
            let re = match extra {
                Extra::Regex(re) => Some(re),
                _ => None,
            };
            numeric::numeric(out, re, *value, *tolerance)
        }
        (
            Check::Similarity {
                algorithm,
                value,
                threshold,
            },
            _,
        ) => similarity::similarity(out, first(&p.values), value, *algorithm, *threshold),
        (
            Check::Levenshtein {
                value,
                max_distance,
            },
            _,
        ) => similarity::levenshtein(out, first(&p.values), value, *max_distance),
        (Check::Latency { max_ms }, _) => misc::latency(input.latency_ms, *max_ms),
        (Check::Cost { max_usd }, _) => misc::cost(input.cost_usd, *max_usd),
        (Check::IsRefusal, _) => misc::is_refusal(input.output),
        (Check::Classification { labels, value }, _) => {
            let (v, pair) = misc::classification(out, labels, value, &p.values);
            if label.is_none() {
                *label = Some(pair);
            }
            v
        }
        (Check::Model { kind, .. }, _) => misc::model_assisted(kind),
        (Check::Regex { .. } | Check::JsonPath { .. }, _) => {
            Verdict::unscorable("assertion was not prepared")
        }
    }
}

#[cfg(test)]
pub(crate) mod testutil;

#[cfg(test)]
mod tests;
