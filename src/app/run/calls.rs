//! The calls: the async runtime, the shared HTTP client, each provider's slot (limits, rate
//! limiter, error budget), the render step before each call, and the executor's task that
//! makes the calls and sends their events. Also cancelling on Ctrl-C or SIGTERM.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::exec::{self, Event, Feed, Slot};
use crate::model::{ProviderSpec, Suite};
use crate::provider;
use crate::suite::Renderer;

use super::super::Failure;
use super::RunEnv;

/// Tasks a runtime worker runs between two looks at the sockets (tokio's default: 61): with
/// the default, the first request waited until most of the first 64 tasks had rendered and
/// connected (docs/performance.md).
const EVENT_INTERVAL: u32 = 8;

/// One rate limiter per provider id, shared by its calls as a provider and as a judge.
pub(super) type Limiters = HashMap<String, Arc<exec::Limiter>>;

/// The runtime the calls (and the judging) run on.
pub(super) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .event_interval(EVENT_INTERVAL)
        .build()
        .context("start the async runtime")
}

/// The providers of `suite` with the limits the executor enforces.
pub(super) fn build_slots(
    env: &RunEnv<'_>,
    suite: &Suite,
    limiters: &mut Limiters,
) -> anyhow::Result<Vec<Slot>> {
    let client = env.client.get()?;
    let mut slots = Vec::with_capacity(suite.providers.len());
    for spec in &suite.providers {
        // evalwatch.yaml's `max_output_bytes` for a provider without its own.
        let with_cap;
        let spec = if spec.max_output_bytes.is_none() && env.project.max_output_bytes.is_some() {
            with_cap = ProviderSpec {
                max_output_bytes: env.project.max_output_bytes,
                ..spec.clone()
            };
            &with_cap
        } else {
            spec
        };
        let provider =
            provider::build(spec, client).map_err(|e| Failure::invalid(e.to_string()))?;
        slots.push(Slot {
            provider,
            concurrency: spec.concurrency,
            timeout: spec.timeout,
            retries: spec.retries,
            pricing: spec.pricing,
            rate_limit: spec.rate_limit,
            limiter: Some(limiter(limiters, spec)),
            breaker_after: env.project.circuit_breaker.unwrap_or(exec::BREAKER_AFTER),
            max_output_bytes: spec.output_cap(),
            budget: None,
        });
    }
    Ok(slots)
}

/// The rate limiter of `spec`'s provider id, made on first use.
pub(super) fn limiter(limiters: &mut Limiters, spec: &ProviderSpec) -> Arc<exec::Limiter> {
    Arc::clone(
        limiters
            .entry(spec.id.clone())
            .or_insert_with(|| Arc::new(exec::Limiter::new(spec.rate_limit))),
    )
}

/// The step before each call: render the job's prompt. `first_call` is told when the first
/// job is rendered, right before its call.
pub(super) fn render_fn(renderer: Arc<Renderer>, first_call: Arc<Notify>) -> exec::RenderFn {
    let told = AtomicBool::new(false);
    Arc::new(move |job| {
        if !told.swap(true, Ordering::Relaxed) {
            crate::phase::phase("first render");
            first_call.notify_one();
        }
        match job.case.get() {
            Some(case) => renderer.render(case, job.sample),
            None => Err(format!("case `{}` is not loaded", job.case_id)),
        }
    })
}

/// What the executor is given for one suite's run.
pub(super) struct Launch {
    pub(super) feeds: Vec<Feed>,
    pub(super) slots: Vec<Slot>,
    pub(super) render: exec::RenderFn,
    pub(super) after: exec::AfterFn,
    pub(super) events: mpsc::Sender<Event>,
}

/// The calls of one suite's run, going on the runtime's threads.
pub(super) struct Calls {
    pub(super) task: tokio::task::JoinHandle<()>,
    cancel: CancellationToken,
}

impl Calls {
    /// Start the calls now. Their results wait in the channel until the consumer takes
    /// them (the first come back after a call's latency).
    pub(super) fn start(env: &RunEnv<'_>, launch: Launch) -> Self {
        let cancel = env.cancel.child_token();
        let task = env.runtime.spawn(exec::execute_feeds(
            launch.feeds,
            launch.slots,
            env.settings.concurrency,
            launch.render,
            Some(launch.after),
            cancel.clone(),
            launch.events,
        ));
        Self { task, cancel }
    }

    /// Stop the calls (their answers are dropped) because of `e`, and return it.
    pub(super) fn stop(self, env: &RunEnv<'_>, e: anyhow::Error) -> anyhow::Error {
        self.cancel.cancel();
        let _ = env.runtime.block_on(self.task);
        e
    }
}

/// The HTTP client, built on its own thread (under a millisecond, off the main thread) and
/// waited for where it is first needed.
pub(super) struct LazyClient {
    thread: std::sync::Mutex<
        Option<std::thread::JoinHandle<Result<reqwest::Client, provider::ProviderError>>>,
    >,
    client: std::sync::OnceLock<reqwest::Client>,
}

impl LazyClient {
    pub(super) fn start() -> Self {
        Self {
            // Without a thread, it is built where first needed.
            thread: std::sync::Mutex::new(
                std::thread::Builder::new()
                    .name("evalwatch-http".to_owned())
                    .spawn(provider::http_client)
                    .ok(),
            ),
            client: std::sync::OnceLock::new(),
        }
    }

    pub(super) fn get(&self) -> anyhow::Result<&reqwest::Client> {
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        // Held while the thread is joined: a second caller waits for its client.
        let mut thread = self
            .thread
            .lock()
            .map_err(|_| anyhow::anyhow!("build the HTTP client: a thread panicked"))?;
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        let client = match thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| anyhow::anyhow!("build the HTTP client: the thread panicked"))??,
            // Not started, or it failed before: built here (again).
            None => provider::http_client()?,
        };
        Ok(self.client.get_or_init(|| client))
    }
}

/// Cancel `cancel` on Ctrl-C or SIGTERM. The handlers are installed before this returns, so a
/// signal that arrives while the run is starting is not lost.
pub(super) fn cancel_on_signal(
    runtime: &tokio::runtime::Runtime,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let _entered = runtime.enter();
    // `run` as a command listens from its start (a signal while the suites load ends it at
    // once); a run started by the scheduler listens from here.
    if let Some(token) = super::super::interrupt::token() {
        runtime.spawn(async move {
            token.cancelled().await;
            cancel.cancel();
        });
        return Ok(());
    }
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt()).context("listen for Ctrl-C")?;
        let mut terminate = signal(SignalKind::terminate()).context("listen for SIGTERM")?;
        runtime.spawn(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            cancel.cancel();
        });
    }
    #[cfg(not(unix))]
    runtime.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            cancel.cancel();
        }
    });
    Ok(())
}
