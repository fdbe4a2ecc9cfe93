//! Judging one result: for each model-assisted assertion of its case, the cache or a judge
//! call, then a verdict with the judge's identity in its details.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::parse::{self, ClaimVerdict, Unparsed};
use super::rubrics;
use crate::exec::{CallLimits, Limiter, call_with_retries};
use crate::model::{
    Assertion, AssertionOutcome, CallError, Case, ChatMessage, Check, Job, JudgeCacheEntry, Judged,
    Pricing, Request, RetryPolicy, Suite,
};
use crate::provider::Provider;
use crate::score::model::{self as checks, Method, ModelCheck};
#[cfg(test)]
use crate::score::model::{DEFAULT_JUDGE_SHARE, SupportSources};
use crate::score::verdict::Verdict;

/// An embeddings endpoint (`semantic`).
#[async_trait]
pub trait Embedder: Send + Sync {
    /// One vector per input, in input order.
    async fn embed(&self, inputs: &[String]) -> Result<Vec<Vec<f64>>, CallError>;
}

/// Told of each failed judge attempt: (job seq, judge id, attempt, error, wait before the next
/// attempt or None when giving up), for progress output.
pub type RetryNote = Arc<dyn Fn(usize, &str, u32, &CallError, Option<Duration>) + Send + Sync>;

/// Reads a cached judge answer by key (the store's read side; None when absent or on error).
pub type CacheLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// A provider used as a judge, with the limits its calls go through.
pub struct JudgeProvider {
    pub id: String,
    /// The model it runs (`model:`), or its type when it has none.
    pub model: String,
    pub provider: Arc<dyn Provider>,
    /// For `semantic`: the provider's embeddings endpoint, when it has one.
    pub embedder: Option<Arc<dyn Embedder>>,
    /// Shared with the executor when the judge is also a provider under test.
    pub limiter: Arc<Limiter>,
    /// Judge calls in flight to this provider.
    pub concurrency: Arc<Semaphore>,
    pub timeout: Duration,
    pub retries: RetryPolicy,
    /// The provider's `pricing`, for the cost of judge calls.
    pub pricing: Option<Pricing>,
}

impl JudgeProvider {
    fn label(&self) -> String {
        format!("{}/{}", self.id, self.model)
    }
}

/// Judges the results of one suite's run.
pub struct Engine {
    judges: HashMap<String, Arc<JudgeProvider>>,
    default_judge: Option<String>,
    cache: Option<CacheLookup>,
    cancel: CancellationToken,
    note: Option<RetryNote>,
}

/// What judging one assertion gave.
struct One {
    outcome: AssertionOutcome,
    cache: Option<JudgeCacheEntry>,
}

impl Engine {
    pub fn new(
        judges: Vec<JudgeProvider>,
        default_judge: Option<String>,
        cache: Option<CacheLookup>,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            judges: judges
                .into_iter()
                .map(|j| (j.id.clone(), Arc::new(j)))
                .collect(),
            default_judge,
            cache,
            cancel,
            note: None,
        }
    }

    /// Report failed judge attempts to `note` (progress lines, like the provider's).
    #[must_use]
    pub fn with_retry_note(mut self, note: RetryNote) -> Self {
        self.note = Some(note);
        self
    }

    fn noted(&self, seq: usize, judge: &str, attempt: u32, e: &CallError, wait: Option<Duration>) {
        if let Some(note) = &self.note {
            note(seq, judge, attempt, e, wait);
        }
    }

    /// Provider ids the suite's assertions may call (their `provider:`, else `default`).
    #[must_use]
    pub fn judge_ids(suite: &Suite, default: Option<&str>) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for c in &suite.cases {
            Self::add_judge_ids(c, default, &mut ids);
        }
        ids
    }

    /// Add to `ids` the provider ids `case`'s assertions may call that are not in it yet.
    pub fn add_judge_ids(case: &Case, default: Option<&str>, ids: &mut Vec<String>) {
        for a in &case.asserts {
            if let Check::Model { kind, params } = &a.check
                && let Ok(check) =
                    ModelCheck::parse(kind, params, case.expected.as_deref(), a.threshold)
                && check.may_call()
                && let Some(id) = check.provider().or(default)
                && !ids.iter().any(|i| i == id)
            {
                ids.push(id.to_owned());
            }
        }
    }

    /// Whether `case` needs the judging stage at all.
    #[must_use]
    pub fn wants(case: &Case) -> bool {
        case.asserts.iter().any(|a| may_call(case, a))
    }

    /// Judge the output of one job. Assertions decided without a model (lexical) are left to
    /// the scorer; the rest come back by index, with the cache entries to store.
    pub async fn judge(&self, case: &Case, job: &Job, request: &Request, output: &str) -> Judged {
        let mut judged = Judged::default();
        let prompt = request.prompt_text();
        let work = case.asserts.iter().enumerate().filter_map(|(i, a)| {
            let Check::Model { kind, params } = &a.check else {
                return None;
            };
            let check =
                ModelCheck::parse(kind, params, case.expected.as_deref(), a.threshold).ok()?;
            if !check.may_call() {
                return None;
            }
            let prompt = prompt.as_str();
            Some(async move {
                self.one(case, job, a, kind, &check, prompt, output)
                    .await
                    .map(|o| (i, o))
            })
        });
        for (i, one) in futures::future::join_all(work).await.into_iter().flatten() {
            judged.outcomes.push((i, one.outcome));
            judged.cache.extend(one.cache);
        }
        judged
    }

    #[allow(clippy::too_many_arguments)]
    async fn one(
        &self,
        case: &Case,
        job: &Job,
        a: &Assertion,
        kind: &str,
        check: &ModelCheck,
        prompt: &str,
        output: &str,
    ) -> Option<One> {
        if matches!(check, ModelCheck::Hallucination { .. }) && output.trim().is_empty() {
            return None; // unscorable in the scorer: nothing to judge
        }
        let texts = match check {
            ModelCheck::Hallucination { support, .. } => checks::support(case, prompt, *support),
            _ => checks::SupportTexts::default(),
        };
        let mut lexical_pass = None;
        if let ModelCheck::Hallucination {
            method: Method::Both,
            judge_share,
            ..
        } = check
        {
            let lx = texts.check(output);
            // What the lexical pass does not flag reaches the judge too, in a stable sample:
            // a hallucination made of supported words scores 0 there.
            let sampled =
                lx.unsupported.is_empty() && checks::judge_sampled(&case.id, output, *judge_share);
            if lx.unsupported.is_empty() && !sampled {
                return None; // the scorer's lexical pass decides
            }
            lexical_pass = Some((lx, sampled));
        }
        let Some(id) = check.provider().or(self.default_judge.as_deref()) else {
            return Some(self.plain(
                a,
                Verdict::unscorable(format!(
                    "`{kind}` needs a judge: give the assertion `provider:` or set `judge:` in evalwatch.yaml"
                )),
            ));
        };
        let Some(judge) = self.judges.get(id) else {
            return Some(self.plain(
                a,
                Verdict::unscorable(format!(
                    "judge `{id}` of `{kind}` is not a provider of this run"
                )),
            ));
        };
        let (rubric, extra, inputs, content) = match check {
            ModelCheck::Rubric {
                rubric, reference, ..
            } => {
                let reference = reference.as_deref().unwrap_or("(none)");
                let content = rubrics::LLM_RUBRIC.render(&[
                    ("rubric", rubric),
                    ("prompt", prompt),
                    ("reference", reference),
                    ("output", output),
                ]);
                (
                    &rubrics::LLM_RUBRIC,
                    rubric.as_str(),
                    json!({"rubric": rubric, "prompt": prompt, "reference": reference, "output": output}),
                    content,
                )
            }
            ModelCheck::Factuality { reference, .. } => {
                let content = rubrics::FACTUALITY.render(&[
                    ("prompt", prompt),
                    ("reference", reference),
                    ("output", output),
                ]);
                (
                    &rubrics::FACTUALITY,
                    "",
                    json!({"prompt": prompt, "reference": reference, "output": output}),
                    content,
                )
            }
            ModelCheck::Hallucination { .. } => {
                let joined = texts.support.join("\n---\n");
                let content = rubrics::HALLUCINATION
                    .render(&[("support", joined.as_str()), ("output", output)]);
                (
                    &rubrics::HALLUCINATION,
                    "",
                    json!({"support": joined, "output": output}),
                    content,
                )
            }
            ModelCheck::Semantic { reference, .. } => (
                &rubrics::SEMANTIC,
                "",
                json!({"output": output, "reference": reference}),
                String::new(),
            ),
        };
        let rubric_hash = rubric.hash(extra);
        let key = cache_key(&judge.label(), &rubric_hash, &inputs);
        let ident = json!({
            "provider": judge.id,
            "model": judge.model,
            "rubric_version": rubric.version,
            "rubric_hash": rubric_hash,
        });
        let mut usage: Option<Value> = None;
        let finish = |v: Verdict,
                      cached: bool,
                      confidence: Option<f64>,
                      entry: Option<String>,
                      usage: Option<Value>| {
            let mut v = v;
            let mut details = match v.details.take() {
                Value::Object(m) => m,
                Value::Null => serde_json::Map::new(),
                other => {
                    let mut m = serde_json::Map::new();
                    m.insert("value".into(), other);
                    m
                }
            };
            details.insert("judge".into(), ident.clone());
            details.insert("cached".into(), Value::Bool(cached));
            if let Some(u) = usage {
                details.insert("usage".into(), u);
            }
            if let Some(c) = confidence {
                details.insert("confidence".into(), json!(c));
            }
            if let Some((lx, sampled)) = &lexical_pass {
                details.insert(
                    "lexical".into(),
                    json!({
                        "score": lx.score,
                        "share": lx.share,
                        "worst_claim": lx.worst_claim,
                        "surface": lx.surface,
                        "unsupported": lx.unsupported,
                        "checked": lx.checked,
                        "sampled": sampled,
                    }),
                );
            }
            v.details = Value::Object(details);
            One {
                outcome: v.into_outcome(a),
                cache: entry.map(|answer| JudgeCacheEntry {
                    key: key.clone(),
                    judge: judge.label(),
                    rubric_hash: rubric_hash.clone(),
                    answer,
                }),
            }
        };
        // The cache first: an answer stored for the same judge, rubric and inputs.
        if let Some(answer) = self.cache.as_ref().and_then(|c| c(&key))
            && let Ok((v, confidence)) = decide(check, output, &answer)
        {
            return Some(finish(v, true, confidence, None, None));
        }
        let answer = if let ModelCheck::Semantic { reference, .. } = check {
            match self.embed(judge, job.seq, output, reference).await {
                Ok(c) => json!({ "cosine": c }).to_string(),
                Err(why) => return Some(finish(call_failed(why), false, None, None, None)),
            }
        } else {
            let request = Request {
                case_id: job.case_id.clone(),
                sample: job.sample,
                system: Some(rubric.system.to_owned()),
                messages: vec![ChatMessage {
                    role: "user".into(),
                    content,
                }],
                vars: BTreeMap::new(),
            };
            match self.call(judge, job.seq, &request).await {
                Ok((text, used)) => {
                    usage = Some(used);
                    text
                }
                Err(why) => return Some(finish(call_failed(why), false, None, None, None)),
            }
        };
        Some(match decide(check, output, &answer) {
            Ok((v, confidence)) => finish(v, false, confidence, Some(answer), usage),
            Err(u) => {
                let mut v = Verdict::unscorable(u.why);
                v.details = json!({ "refusal": u.refusal, "raw": parse::excerpt(&answer) });
                finish(v, false, None, None, usage)
            }
        })
    }

    /// An outcome with no judge identity (no judge could be chosen).
    fn plain(&self, a: &Assertion, v: Verdict) -> One {
        let _ = self;
        One {
            outcome: v.into_outcome(a),
            cache: None,
        }
    }

    /// One chat call to the judge under its limits: the answer text and the call's usage
    /// (`{tokens_in, tokens_out, cost_usd}`), or why there is none.
    async fn call(
        &self,
        judge: &JudgeProvider,
        seq: usize,
        request: &Request,
    ) -> Result<(String, Value), String> {
        let Ok(_permit) = judge.concurrency.acquire().await else {
            return Err("the judge's queue is closed".into());
        };
        let limits = CallLimits {
            provider_id: &judge.id,
            limiter: &judge.limiter,
            timeout: judge.timeout,
            retries: &judge.retries,
        };
        let Some((result, attempts)) = call_with_retries(
            &limits,
            &self.cancel,
            || judge.provider.complete(request),
            |attempt, e, wait| {
                self.noted(seq, &judge.id, attempt, e, wait);
                async {}
            },
        )
        .await
        else {
            return Err("the run was cancelled before the judge answered".into());
        };
        match result {
            Ok(c) => {
                judge
                    .limiter
                    .record_tokens(c.tokens_in.unwrap_or(0) + c.tokens_out.unwrap_or(0))
                    .await;
                let cost = judge
                    .pricing
                    .zip(c.tokens_in.zip(c.tokens_out))
                    .map(|(p, (i, o))| p.cost(i, o));
                let usage = json!({
                    "tokens_in": c.tokens_in,
                    "tokens_out": c.tokens_out,
                    "cost_usd": cost,
                });
                Ok((c.output, usage))
            }
            Err(e) => Err(failed(&judge.id, attempts, &e)),
        }
    }

    /// The cosine of the embeddings of `output` and `reference`.
    async fn embed(
        &self,
        judge: &JudgeProvider,
        seq: usize,
        output: &str,
        reference: &str,
    ) -> Result<f64, String> {
        let Some(embedder) = &judge.embedder else {
            return Err(format!(
                "provider `{}` has no embeddings endpoint; `semantic` needs an `openai`-type provider (give the assertion `provider:`)",
                judge.id
            ));
        };
        let Ok(_permit) = judge.concurrency.acquire().await else {
            return Err("the judge's queue is closed".into());
        };
        let limits = CallLimits {
            provider_id: &judge.id,
            limiter: &judge.limiter,
            timeout: judge.timeout,
            retries: &judge.retries,
        };
        let inputs = [output.to_owned(), reference.to_owned()];
        let Some((result, attempts)) = call_with_retries(
            &limits,
            &self.cancel,
            || embedder.embed(&inputs),
            |attempt, e, wait| {
                self.noted(seq, &judge.id, attempt, e, wait);
                async {}
            },
        )
        .await
        else {
            return Err("the run was cancelled before the embeddings came back".into());
        };
        let vectors = result.map_err(|e| failed(&judge.id, attempts, &e))?;
        match vectors.as_slice() {
            [a, b] => cosine(a, b).ok_or_else(|| {
                format!(
                    "embeddings of provider `{}` cannot be compared (empty, zero or of different lengths: {} and {})",
                    judge.id,
                    a.len(),
                    b.len()
                )
            }),
            other => Err(format!(
                "provider `{}` returned {} embeddings for 2 inputs",
                judge.id,
                other.len()
            )),
        }
    }
}

/// Unscorable because the judge gave no answer (down, cancelled, no embeddings): marked
/// `details.call_failed`, so that a caller that can ask again later (traffic) tells it from a
/// judge's answer that did not parse.
fn call_failed(why: String) -> Verdict {
    let mut v = Verdict::unscorable(why);
    v.details = json!({ "call_failed": true });
    v
}

fn failed(id: &str, attempts: u32, e: &CallError) -> String {
    format!(
        "judge `{id}` failed after {attempts} attempt{} ({}): {e}",
        if attempts == 1 { "" } else { "s" },
        e.kind.as_str()
    )
}

/// Whether an assertion of `case` may call a model.
#[must_use]
pub fn may_call(case: &Case, a: &Assertion) -> bool {
    match &a.check {
        Check::Model { kind, params } => {
            ModelCheck::parse(kind, params, case.expected.as_deref(), a.threshold)
                .is_ok_and(|c| c.may_call())
        }
        _ => false,
    }
}

/// Hex SHA-256 of the judge, the rubric hash and the inputs (canonical JSON: sorted keys).
fn cache_key(judge: &str, rubric_hash: &str, inputs: &Value) -> String {
    let mut h = Sha256::new();
    for part in [judge, rubric_hash, &inputs.to_string()] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Cosine similarity of two vectors; None when empty, of different lengths, or zero.
#[must_use]
pub fn cosine(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.is_empty() || a.len() != b.len() {
        return None;
    }
    let (mut dot, mut na, mut nb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    let c = dot / (na.sqrt() * nb.sqrt());
    c.is_finite().then(|| c.clamp(-1.0, 1.0))
}

/// The span of `claim` in `output` (exact, else ignoring ASCII case), as `{text, start, end}`;
/// start and end are null when the judge paraphrased.
fn span_of(output: &str, claim: &str) -> Value {
    let at = output
        .find(claim)
        .or_else(|| {
            output
                .to_ascii_lowercase()
                .find(&claim.to_ascii_lowercase())
        })
        .filter(|s| output.is_char_boundary(*s) && output.is_char_boundary(s + claim.len()));
    match at {
        Some(s) => json!({"text": claim, "start": s, "end": s + claim.len()}),
        None => json!({"text": claim, "start": null, "end": null}),
    }
}

/// The verdict an answer gives (un-negated), with the judge's confidence.
fn decide(
    check: &ModelCheck,
    output: &str,
    answer: &str,
) -> Result<(Verdict, Option<f64>), Unparsed> {
    Ok(match check {
        ModelCheck::Rubric { threshold, .. } => {
            let g = parse::grade(answer)?;
            let pass = g.score + 1e-9 >= *threshold;
            let reason = format!(
                "judge graded {:.0}% against the rubric ({} the threshold {:.0}%){}",
                g.score * 100.0,
                if pass { "at or above" } else { "below" },
                threshold * 100.0,
                with_reason(&g.reason)
            );
            (
                Verdict::graded(
                    pass,
                    g.score,
                    reason,
                    json!({"score": g.score, "threshold": threshold, "judge_pass": g.pass, "judge_reason": g.reason}),
                ),
                g.confidence,
            )
        }
        ModelCheck::Factuality {
            scores, threshold, ..
        } => {
            let c = parse::category(answer)?;
            let name = c.category.as_str();
            let score = scores.of(name).unwrap_or(0.0);
            let pass = score + 1e-9 >= *threshold;
            let reason = format!(
                "judge classed the output as {name} of the expected answer (scores {score}, threshold {threshold}){}",
                with_reason(&c.reason)
            );
            (
                Verdict::graded(
                    pass,
                    score,
                    reason,
                    json!({"category": name, "score": score, "threshold": threshold, "judge_reason": c.reason}),
                ),
                c.confidence,
            )
        }
        ModelCheck::Hallucination { method, max, .. } => {
            let a = parse::claims(answer)?;
            let total = a.claims.len();
            let mut unsupported = Vec::new();
            let mut contradictions = Vec::new();
            for c in &a.claims {
                match c.verdict {
                    ClaimVerdict::Supported => {}
                    ClaimVerdict::Unsupported => unsupported.push(span_of(output, &c.text)),
                    ClaimVerdict::Contradicted => contradictions.push(span_of(output, &c.text)),
                }
            }
            let bad = unsupported.len() + contradictions.len();
            let share = if total == 0 {
                0.0
            } else {
                bad as f64 / total as f64
            };
            let pass = share <= max + 1e-12;
            let category = if !contradictions.is_empty() {
                "contradiction"
            } else if !unsupported.is_empty() {
                "unsupported"
            } else {
                "supported"
            };
            let reason = if total == 0 {
                "judge found no factual claim in the output".to_owned()
            } else {
                format!(
                    "judge found {} of {total} claims unsupported and {} contradicted ({:.0}%, {} the max of {:.0}%)",
                    unsupported.len(),
                    contradictions.len(),
                    share * 100.0,
                    if pass { "within" } else { "over" },
                    max * 100.0
                )
            };
            (
                Verdict::graded(
                    pass,
                    1.0 - share,
                    reason,
                    json!({
                        "method": method.as_str(),
                        "score": share,
                        "max": max,
                        "category": category,
                        "claims": total,
                        "unsupported": unsupported,
                        "contradictions": contradictions,
                    }),
                ),
                a.confidence,
            )
        }
        ModelCheck::Semantic { threshold, .. } => {
            let c = serde_json::from_str::<Value>(answer)
                .ok()
                .and_then(|v| v.get("cosine").and_then(Value::as_f64))
                .filter(|c| c.is_finite())
                .ok_or_else(|| Unparsed {
                    refusal: false,
                    why: format!(
                        "cached similarity is not a number: {}",
                        parse::excerpt(answer)
                    ),
                })?;
            let pass = c + 1e-9 >= *threshold;
            let _ = output;
            (
                Verdict::graded(
                    pass,
                    c.max(0.0),
                    format!(
                        "embedding cosine {c:.3} is {} the threshold {threshold}",
                        if pass { "at or above" } else { "below" }
                    ),
                    json!({"cosine": c, "threshold": threshold}),
                ),
                None,
            )
        }
    })
}

/// `: REASON` to end a verdict's reason with the judge's own, or nothing when it gave none.
fn with_reason(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    }
}

#[cfg(test)]
mod tests;
