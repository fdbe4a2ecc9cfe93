//! The executor: runs jobs against providers with bounded concurrency (per provider and
//! global), rate limits, timeouts, retries and cancellation, and reports typed events on a
//! channel. One consumer (in `app`) owns progress output and the store writer.

pub mod limiter;
pub mod retry;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::model::{
    CallError, Completion, ErrorKind, Job, Judged, Pricing, RateLimit, Request, RetryPolicy,
};
use crate::provider::Provider;
pub use limiter::Limiter;

/// A provider with the limits the executor enforces for it.
pub struct Slot {
    pub provider: Arc<dyn Provider>,
    pub concurrency: usize,
    pub timeout: Duration,
    pub retries: RetryPolicy,
    pub pricing: Option<Pricing>,
    pub rate_limit: RateLimit,
    /// A rate limiter shared with other callers of the same provider (a judge that is also a
    /// provider under test); None builds one from `rate_limit`.
    pub limiter: Option<Arc<Limiter>>,
    /// Jobs in a row with no answer after which the provider is not called again (its
    /// circuit breaker); 0 switches the breaker off.
    pub breaker_after: u32,
    /// The most of an answer's text kept (`max_output_bytes`); a longer one is cut there and
    /// marked (see [`cap_output`]). 0: no cap.
    pub max_output_bytes: u64,
    /// The run's error budget, shared by every slot of the run (None: no early stop).
    pub budget: Option<Arc<ErrorBudget>>,
}

/// The run's error budget, watched while it runs: once more results have errored than the
/// budget allows of every result planned, the run is `failed` whatever the rest does, so
/// no provider is called again and the remaining jobs finish at once as `circuit_open`
/// errors carrying the reason.
#[derive(Debug)]
pub struct ErrorBudget {
    /// Share of results allowed to be errors (0..=1).
    share: f64,
    /// Results the run plans in all (stored ones of a resumed run included); 0 while not
    /// known yet (the budget then never stops the run).
    planned: std::sync::atomic::AtomicU64,
    errors: std::sync::atomic::AtomicU64,
    /// Why it was spent (set once).
    spent: std::sync::OnceLock<String>,
}

impl ErrorBudget {
    /// A budget of `share` of `planned` results, `errors` of which are already errors (a
    /// resumed run's stored ones).
    #[must_use]
    pub fn new(share: f64, planned: u64, errors: u64) -> Self {
        Self {
            share,
            planned: std::sync::atomic::AtomicU64::new(planned),
            errors: std::sync::atomic::AtomicU64::new(errors),
            spent: std::sync::OnceLock::new(),
        }
    }

    /// Set the results planned, once known (a streamed run knows them once its suite is
    /// checked in full).
    pub fn set_planned(&self, planned: u64) {
        self.planned.store(planned, Ordering::SeqCst);
    }

    /// Why the budget cannot be met any more, once it cannot.
    #[must_use]
    pub fn spent(&self) -> Option<&str> {
        self.spent.get().map(String::as_str)
    }

    /// Count a finished job; returns the reason when this job spent the budget.
    fn record(&self, result: &Result<Completion, CallError>) -> Option<String> {
        if result.is_ok() {
            return None;
        }
        let errors = self.errors.fetch_add(1, Ordering::SeqCst) + 1;
        let planned = self.planned.load(Ordering::SeqCst);
        #[allow(clippy::cast_precision_loss)]
        let over = planned > 0 && errors as f64 > self.share * planned as f64;
        if !over || self.spent.get().is_some() {
            return None;
        }
        let reason = format!(
            "error budget of {}% cannot be met: {errors} of {} results already errored, so the run fails whatever the rest answers; evalwatch stopped calling providers",
            fmt_share(self.share),
            planned
        );
        self.spent.set(reason.clone()).ok().map(|()| reason)
    }
}

/// A share as a percentage without needless decimals (0.5 -> "50", 0.125 -> "12.5").
fn fmt_share(share: f64) -> String {
    let text = format!("{:.2}", share * 100.0);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Consecutive jobs of one provider that end in a connection failure or a timeout (after
/// their retries), with no answer in between, after which the provider's circuit breaker
/// opens: its remaining jobs are not called but finish at once as `circuit_open` errors.
pub const BREAKER_AFTER: u32 = 10;

/// One provider's circuit breaker: counts jobs that got no answer at all in a row.
#[derive(Default)]
struct Breaker {
    in_a_row: AtomicU32,
    /// Why it opened (set once, when it opens).
    open: std::sync::OnceLock<String>,
    /// Opens after this many in a row; 0: never.
    after: u32,
}

impl Breaker {
    /// Count a finished call; returns the reason when this call opened the breaker.
    fn record(&self, provider_id: &str, result: &Result<Completion, CallError>) -> Option<String> {
        match result {
            Err(e) if matches!(e.kind, ErrorKind::Transport | ErrorKind::Timeout) => {
                let n = self.in_a_row.fetch_add(1, Ordering::SeqCst) + 1;
                if self.after == 0 || n < self.after {
                    return None;
                }
                let reason = format!(
                    "provider `{provider_id}` gave no answer to {n} calls in a row (the last: {}); the circuit breaker stopped calling it for the rest of the run",
                    e.message
                );
                self.open.set(reason.clone()).ok().map(|()| reason)
            }
            // Any answer, an error status included, shows the endpoint is alive.
            Err(_) | Ok(_) => {
                self.in_a_row.store(0, Ordering::SeqCst);
                None
            }
        }
    }
}

/// Record the answer's length, and cut an answer longer than `cap` bytes (0: no cap) at the
/// cap (a character split by the cut is dropped), followed by the truncation mark, flagged
/// as truncated. An answer the provider already cut (an `exec` command) is left as it is.
pub fn cap_output(completion: &mut Completion, cap: u64) {
    if completion.truncated {
        return;
    }
    let len = completion.output.len() as u64;
    completion.output_bytes.get_or_insert(len);
    if cap == 0 || len <= cap {
        return;
    }
    let mut end = usize::try_from(cap).unwrap_or(usize::MAX);
    while !completion.output.is_char_boundary(end) {
        end -= 1;
    }
    completion.output.truncate(end);
    completion.output.push('\n');
    completion
        .output
        .push_str(&crate::provider::exec::truncation_mark(cap));
    completion.truncated = true;
}

/// One finished job.
#[derive(Debug)]
pub struct Finished {
    pub job: Job,
    /// The rendered request (None if rendering failed).
    pub request: Option<Request>,
    pub result: Result<Completion, CallError>,
    /// Attempts made.
    pub attempts: u32,
    /// What the post-completion hook added (judged assertions), if it ran.
    pub judged: Option<Judged>,
}

/// What the executor reports, in the order things happen.
#[derive(Debug)]
pub enum Event {
    AttemptFailed {
        seq: usize,
        provider_id: String,
        attempt: u32,
        error: CallError,
        /// The wait before the next attempt, or None when giving up.
        retry_in: Option<Duration>,
    },
    JobFinished(Box<Finished>),
    /// A provider's circuit breaker opened (see [`BREAKER_AFTER`]): its remaining jobs finish
    /// as `circuit_open` errors without a call.
    CircuitOpened {
        provider_id: String,
        reason: String,
    },
    /// The run's error budget can no longer be met (see [`ErrorBudget`]): every remaining
    /// job finishes as a `circuit_open` error without a call.
    BudgetSpent {
        reason: String,
    },
    /// Always the last event. `cancelled`: jobs were left undone.
    RunFinished {
        cancelled: bool,
    },
}

/// Renders the request of a job.
pub type RenderFn = Arc<dyn Fn(&Job) -> Result<Request, String> + Send + Sync>;

/// Runs after a successful call, in the worker task, before the job is reported: the judging
/// stage. It gets the job, its request and its completion; what it returns rides on
/// [`Finished::judged`]. While it runs the worker takes no new job (memory stays bounded by
/// the in-flight calls), but the global permit is released.
pub type AfterFn =
    Arc<dyn Fn(&Job, &Request, &Completion) -> BoxFuture<'static, Judged> + Send + Sync>;

/// The limits one provider call is made under: see [`call_with_retries`].
pub struct CallLimits<'a> {
    pub provider_id: &'a str,
    pub limiter: &'a Limiter,
    pub timeout: Duration,
    pub retries: &'a RetryPolicy,
}

/// Make `call` under `limits`: wait for the rate limiter, bound each attempt by the timeout,
/// retry retryable failures with backoff (honouring `Retry-After`), and tell `failed` about
/// each failed attempt with the wait before the next (None: giving up). Returns the result
/// and the attempts made, or None when `cancel` fired.
pub async fn call_with_retries<T, C, CF, N, NF>(
    limits: &CallLimits<'_>,
    cancel: &CancellationToken,
    mut call: C,
    mut failed: N,
) -> Option<(Result<T, CallError>, u32)>
where
    C: FnMut() -> CF,
    CF: Future<Output = Result<T, CallError>>,
    N: FnMut(u32, &CallError, Option<Duration>) -> NF,
    NF: Future<Output = ()>,
{
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        tokio::select! {
            biased;
            () = cancel.cancelled() => return None,
            () = limits.limiter.acquire() => {}
        }
        let outcome = tokio::select! {
            biased;
            () = cancel.cancelled() => return None,
            r = tokio::time::timeout(limits.timeout, call()) => r,
        };
        let result = outcome.unwrap_or_else(|_| {
            Err(CallError::new(
                ErrorKind::Timeout,
                format!(
                    "provider `{}` did not answer within {:?}; raise `timeout:` or check the endpoint",
                    limits.provider_id, limits.timeout
                ),
            ))
        });
        match result {
            Ok(v) => return Some((Ok(v), attempt)),
            Err(error) => {
                let retry_in = retry::delay(limits.retries, attempt, &error, rand::random::<f64>());
                failed(attempt, &error, retry_in).await;
                let Some(wait) = retry_in else {
                    return Some((Err(error), attempt));
                };
                tokio::select! {
                    () = cancel.cancelled() => return None,
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

/// Run every job. Jobs go to their provider's queue (`job.provider_index` indexes `slots`);
/// each provider gets `concurrency` workers, and at most `global` calls are in flight overall.
/// `after`, if any, runs after each successful call (see [`AfterFn`]).
/// Returns when every job finished or `cancel` fired (in-flight calls are abandoned, so what
/// finished is exactly what was reported).
pub async fn execute(
    jobs: Vec<Job>,
    slots: Vec<Slot>,
    global: usize,
    render: RenderFn,
    after: Option<AfterFn>,
    cancel: CancellationToken,
    tx: mpsc::Sender<Event>,
) {
    let feeds = Feed::all_of(jobs, slots.len());
    execute_feeds(feeds, slots, global, render, after, cancel, tx).await;
}

/// Where a provider's workers take their jobs from: jobs arrive while the run goes on (a
/// planner feeds them as the suite's cases are built); the workers stop when it is closed and
/// empty.
pub enum Feed {
    Bounded(mpsc::Receiver<Job>),
    Unbounded(mpsc::UnboundedReceiver<Job>),
}

impl Feed {
    /// Feeds of `providers` providers holding `jobs` (by `job.provider_index`), closed.
    #[must_use]
    pub fn all_of(jobs: Vec<Job>, providers: usize) -> Vec<Self> {
        let (senders, feeds): (Vec<_>, Vec<_>) = (0..providers)
            .map(|_| {
                let (s, r) = mpsc::unbounded_channel();
                (s, Self::Unbounded(r))
            })
            .unzip();
        for job in jobs {
            if let Some(s) = senders.get(job.provider_index) {
                let _ = s.send(job);
            }
        }
        feeds
    }

    async fn recv(&mut self) -> Option<Job> {
        match self {
            Self::Bounded(r) => r.recv().await,
            Self::Unbounded(r) => r.recv().await,
        }
    }
}

/// [`execute`] with each provider's jobs coming from its feed (`feeds[i]` for `slots[i]`).
pub async fn execute_feeds(
    feeds: Vec<Feed>,
    slots: Vec<Slot>,
    global: usize,
    render: RenderFn,
    after: Option<AfterFn>,
    cancel: CancellationToken,
    tx: mpsc::Sender<Event>,
) {
    let global = Arc::new(Semaphore::new(global.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (mut slot, feed) in slots.into_iter().zip(feeds) {
        let workers = slot.concurrency.max(1);
        let limiter = slot
            .limiter
            .take()
            .unwrap_or_else(|| Arc::new(Limiter::new(slot.rate_limit)));
        let breaker_after = slot.breaker_after;
        let shared = Arc::new(Shared {
            feed: tokio::sync::Mutex::new(feed),
            limiter,
            slot,
            breaker: Breaker {
                after: breaker_after,
                ..Breaker::default()
            },
        });
        for _ in 0..workers {
            let ctx = Worker {
                shared: Arc::clone(&shared),
                global: Arc::clone(&global),
                render: Arc::clone(&render),
                after: after.clone(),
                cancel: cancel.clone(),
                tx: tx.clone(),
            };
            tasks.spawn(ctx.run());
        }
    }
    while tasks.join_next().await.is_some() {}
    let _ = tx
        .send(Event::RunFinished {
            cancelled: cancel.is_cancelled(),
        })
        .await;
}

struct Shared {
    feed: tokio::sync::Mutex<Feed>,
    limiter: Arc<Limiter>,
    slot: Slot,
    breaker: Breaker,
}

struct Worker {
    shared: Arc<Shared>,
    global: Arc<Semaphore>,
    render: RenderFn,
    after: Option<AfterFn>,
    cancel: CancellationToken,
    tx: mpsc::Sender<Event>,
}

impl Worker {
    async fn run(self) {
        loop {
            if self.cancel.is_cancelled() {
                return;
            }
            let next = tokio::select! {
                biased;
                () = self.cancel.cancelled() => return,
                job = async { self.shared.feed.lock().await.recv().await } => job,
            };
            let Some(job) = next else { return };
            let Ok(permit) = self.global.acquire().await else {
                return;
            };
            let Some(mut finished) = self.one(job).await else {
                return; // cancelled mid-call
            };
            drop(permit);
            self.count(&finished.result).await;
            if let (Some(after), Some(request), Ok(completion)) =
                (&self.after, &finished.request, &finished.result)
            {
                let judging = after(&finished.job, request, completion);
                tokio::select! {
                    () = self.cancel.cancelled() => return,
                    judged = judging => finished.judged = Some(judged),
                }
            }
            if self
                .tx
                .send(Event::JobFinished(Box::new(finished)))
                .await
                .is_err()
            {
                return;
            }
        }
    }

    /// Count a finished job's result (called or not) against the run's error budget.
    async fn count(&self, result: &Result<Completion, CallError>) {
        if let Some(reason) = self
            .shared
            .slot
            .budget
            .as_ref()
            .and_then(|b| b.record(result))
        {
            let _ = self.tx.send(Event::BudgetSpent { reason }).await;
        }
    }

    /// One job with its retries; None when cancelled.
    async fn one(&self, job: Job) -> Option<Finished> {
        let request = match (self.render)(&job) {
            Ok(r) => r,
            Err(message) => {
                let mut error =
                    CallError::new(ErrorKind::Config, format!("render the prompt: {message}"));
                error.retryable = false;
                return Some(Finished {
                    job,
                    request: None,
                    result: Err(error),
                    attempts: 0,
                    judged: None,
                });
            }
        };
        let slot = &self.shared.slot;
        let not_called = if let Some(reason) = self.shared.breaker.open.get() {
            Some(format!(
                "not called: {reason}; check base_url and that the server is running"
            ))
        } else {
            slot.budget
                .as_ref()
                .and_then(|b| b.spent())
                .map(|reason| format!("not called: {reason}"))
        };
        if let Some(message) = not_called {
            let mut error = CallError::new(ErrorKind::CircuitOpen, message);
            error.retryable = false;
            return Some(Finished {
                job,
                request: Some(request),
                result: Err(error),
                attempts: 0,
                judged: None,
            });
        }
        let limits = CallLimits {
            provider_id: slot.provider.id(),
            limiter: &self.shared.limiter,
            timeout: slot.timeout,
            retries: &slot.retries,
        };
        let seq = job.seq;
        let (result, attempts) = call_with_retries(
            &limits,
            &self.cancel,
            || slot.provider.complete(&request),
            |attempt, error, retry_in| {
                let event = Event::AttemptFailed {
                    seq,
                    provider_id: slot.provider.id().to_string(),
                    attempt,
                    error: error.clone(),
                    retry_in,
                };
                async move {
                    let _ = self.tx.send(event).await;
                }
            },
        )
        .await?;
        let result = match result {
            Ok(mut completion) => {
                let tokens = completion.tokens_in.unwrap_or(0) + completion.tokens_out.unwrap_or(0);
                self.shared.limiter.record_tokens(tokens).await;
                if completion.cost_usd.is_none()
                    && let (Some(p), Some(i), Some(o)) =
                        (slot.pricing, completion.tokens_in, completion.tokens_out)
                {
                    completion.cost_usd = Some(p.cost(i, o));
                }
                cap_output(&mut completion, slot.max_output_bytes);
                Ok(completion)
            }
            Err(e) => Err(e),
        };
        if let Some(reason) = self.shared.breaker.record(slot.provider.id(), &result) {
            let _ = self
                .tx
                .send(Event::CircuitOpened {
                    provider_id: slot.provider.id().to_string(),
                    reason,
                })
                .await;
        }
        Some(Finished {
            job,
            request: Some(request),
            result,
            attempts,
            judged: None,
        })
    }
}

#[cfg(test)]
mod tests;
