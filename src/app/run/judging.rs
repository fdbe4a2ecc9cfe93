//! The judging stage: the judge providers of a suite's run (temperature 0 unless their
//! `params` set one; rate limits shared with the same provider under test), the judge
//! cache, and the hook the executor runs after each call. A streamed suite's stage is set up
//! once the check knows which judges its assertions call; a case that needs one waits.

use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::{mpsc, watch};

use crate::exec::{self, Event};
use crate::judge;
use crate::model::Suite;
use crate::provider;

use super::super::Failure;
use super::RunEnv;
use super::calls::{Limiters, limiter};

/// The judging stage of a run, as the executor's hook sees it.
#[derive(Clone)]
pub(super) enum Stage {
    /// Not set up yet (the check has not said which judges the suite calls).
    Pending,
    /// Set up: the engine, or None when no assertion of the suite calls a judge.
    Ready(Option<Arc<judge::Engine>>),
}

/// The hook the executor runs after each call: judging, for cases whose assertions may call
/// a judge, once the judging stage is set up.
pub(super) fn after_hook(engine: watch::Receiver<Stage>) -> exec::AfterFn {
    Arc::new(move |job, request, completion| {
        let Some(case) = job.case.0.clone() else {
            return Box::pin(std::future::ready(crate::model::Judged::default()));
        };
        if !judge::Engine::wants(&case) {
            return Box::pin(std::future::ready(crate::model::Judged::default()));
        }
        let mut engine = engine.clone();
        let (job, request, output) = (job.clone(), request.clone(), completion.output.clone());
        Box::pin(async move {
            let stage = engine
                .wait_for(|s| matches!(s, Stage::Ready(_)))
                .await
                .map(|s| s.clone());
            match stage {
                Ok(Stage::Ready(Some(engine))) => {
                    engine.judge(&case, &job, &request, &output).await
                }
                _ => crate::model::Judged::default(),
            }
        })
    })
}

/// The embeddings endpoint of an `openai`-type provider, for `semantic`.
struct OpenAiEmbedder(provider::openai::OpenAiProvider);

#[async_trait::async_trait]
impl judge::Embedder for OpenAiEmbedder {
    async fn embed(&self, inputs: &[String]) -> Result<Vec<Vec<f64>>, crate::model::CallError> {
        self.0.embed(inputs).await.map(|e| e.vectors)
    }
}

/// The judging stage of a suite's run, when its assertions may call judges (`ids`).
pub(super) fn judging(
    env: &RunEnv<'_>,
    suite: &Suite,
    ids: &[String],
    limiters: &mut Limiters,
    events: &mpsc::Sender<Event>,
) -> anyhow::Result<Option<Arc<judge::Engine>>> {
    if ids.is_empty() {
        return Ok(None);
    }
    let mut judges = Vec::new();
    for id in ids {
        let Some(spec) = suite
            .providers
            .iter()
            .chain(&env.project.providers)
            .find(|p| &p.id == id)
        else {
            // The loader reports this at the assertion; here the assertion stays unscorable.
            continue;
        };
        judges.push(judge_provider(env, spec, limiters)?);
    }
    let db = env.db;
    let cache = crate::store::JudgeCache::open(db)
        .with_context(|| format!("open the judge cache in {}", crate::store::shown(db)))?;
    let lookup: judge::CacheLookup = Arc::new(move |key| cache.get(key).ok().flatten());
    // Failed judge attempts show like the provider's ("[judge ID] attempt 1 failed ...");
    // a full channel drops the line rather than wait.
    let events = events.clone();
    let note: judge::RetryNote = Arc::new(move |seq, id, attempt, error, retry_in| {
        let _ = events.try_send(Event::AttemptFailed {
            seq,
            provider_id: format!("judge {id}"),
            attempt,
            error: error.clone(),
            retry_in,
        });
    });
    let engine = judge::Engine::new(
        judges,
        env.project.judge.clone(),
        Some(lookup),
        env.cancel.clone(),
    )
    .with_retry_note(note);
    Ok(Some(Arc::new(engine)))
}

/// One judge: the provider `spec` names, at temperature 0 unless its `params` set one.
fn judge_provider(
    env: &RunEnv<'_>,
    spec: &crate::model::ProviderSpec,
    limiters: &mut Limiters,
) -> anyhow::Result<judge::JudgeProvider> {
    build_judge(env.client.get()?, spec, limiter(limiters, spec))
}

/// A judge for `spec` on `client`, its calls under `limiter`: a suite's run and traffic
/// monitors (`app::traffic`) build theirs here.
pub(crate) fn build_judge(
    client: &reqwest::Client,
    spec: &crate::model::ProviderSpec,
    limiter: Arc<exec::Limiter>,
) -> anyhow::Result<judge::JudgeProvider> {
    let mut spec = spec.clone();
    spec.params
        .entry("temperature")
        .or_insert(serde_json::json!(0));
    let built = provider::build(&spec, client).map_err(|e| Failure::invalid(e.to_string()))?;
    let embedder: Option<Arc<dyn judge::Embedder>> =
        if spec.kind == crate::model::ProviderKind::Openai {
            Some(Arc::new(OpenAiEmbedder(
                provider::openai::OpenAiProvider::new(&spec, client.clone())
                    .map_err(|e| Failure::invalid(e.to_string()))?,
            )))
        } else {
            None
        };
    Ok(judge::JudgeProvider {
        model: spec
            .model
            .clone()
            .unwrap_or_else(|| spec.kind.as_str().to_owned()),
        id: spec.id.clone(),
        provider: built,
        embedder,
        limiter,
        concurrency: Arc::new(tokio::sync::Semaphore::new(spec.concurrency.max(1))),
        timeout: spec.timeout,
        retries: spec.retries,
        pricing: spec.pricing,
    })
}
