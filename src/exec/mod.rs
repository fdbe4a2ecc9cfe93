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
mod tests {
    use super::*;
    use async_trait::async_trait;
    use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

    /// Fails `fail_first` times with a retryable error, then answers; tracks concurrency.
    struct Flaky {
        fail_first: u32,
        calls: AtomicU32,
        in_flight: AtomicUsize,
        max_in_flight: AtomicUsize,
        delay: Duration,
    }

    #[async_trait]
    impl Provider for Flaky {
        fn id(&self) -> &'static str {
            "flaky"
        }
        async fn complete(&self, request: &Request) -> Result<Completion, CallError> {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if n < self.fail_first {
                return Err(CallError::new(ErrorKind::Server, "503"));
            }
            Ok(Completion {
                output: request.case_id.clone(),
                tokens_in: Some(1000),
                tokens_out: Some(500),
                ..Completion::default()
            })
        }
    }

    fn flaky(fail_first: u32, delay: Duration) -> Arc<Flaky> {
        Arc::new(Flaky {
            fail_first,
            calls: AtomicU32::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            delay,
        })
    }

    /// Run `n` jobs on `p` and collect what the executor reports.
    async fn run_jobs(
        p: &Arc<Flaky>,
        n: usize,
        concurrency: usize,
        timeout: Duration,
        global: usize,
        cancel: CancellationToken,
    ) -> (Vec<Finished>, u32, bool) {
        let (tx, rx) = mpsc::channel(16);
        let run = execute(
            jobs(n),
            vec![slot(Arc::clone(p), concurrency, timeout)],
            global,
            render(),
            None,
            cancel,
            tx,
        );
        let (collected, ()) = tokio::join!(collect(rx), run);
        collected
    }

    fn jobs(n: usize) -> Vec<Job> {
        (0..n)
            .map(|i| Job {
                seq: i,
                case_index: i,
                case_id: format!("c{i}"),
                provider_index: 0,
                provider_id: "flaky".into(),
                sample: 0,
                case: crate::model::CaseRef::default(),
            })
            .collect()
    }

    fn render() -> RenderFn {
        Arc::new(|job: &Job| {
            Ok(Request {
                case_id: job.case_id.clone(),
                sample: job.sample,
                system: None,
                messages: vec![],
                vars: std::collections::BTreeMap::new(),
            })
        })
    }

    fn slot(p: Arc<Flaky>, concurrency: usize, timeout: Duration) -> Slot {
        Slot {
            provider: p,
            concurrency,
            timeout,
            retries: RetryPolicy {
                max: 2,
                base_delay: Duration::from_millis(10),
                max_delay: Duration::from_millis(20),
            },
            pricing: Some(Pricing {
                input_per_mtok: 1.0,
                output_per_mtok: 2.0,
            }),
            rate_limit: RateLimit::default(),
            limiter: None,
            breaker_after: BREAKER_AFTER,
            max_output_bytes: 0,
            budget: None,
        }
    }

    async fn collect(mut rx: mpsc::Receiver<Event>) -> (Vec<Finished>, u32, bool) {
        let mut done = Vec::new();
        let mut failed_attempts = 0;
        while let Some(ev) = rx.recv().await {
            match ev {
                Event::JobFinished(f) => done.push(*f),
                Event::AttemptFailed { .. } => failed_attempts += 1,
                Event::CircuitOpened { .. } | Event::BudgetSpent { .. } => {}
                Event::RunFinished { cancelled } => return (done, failed_attempts, cancelled),
            }
        }
        panic!("no RunFinished event");
    }

    #[tokio::test(start_paused = true)]
    async fn bounds_concurrency_retries_and_prices() {
        let p = flaky(2, Duration::from_millis(5));
        let (done, failed, cancelled) = run_jobs(
            &p,
            20,
            3,
            Duration::from_secs(5),
            64,
            CancellationToken::new(),
        )
        .await;
        assert!(!cancelled);
        assert_eq!(done.len(), 20);
        assert_eq!(failed, 2);
        assert!(done.iter().all(|f| f.result.is_ok()));
        assert_eq!(p.max_in_flight.load(Ordering::SeqCst), 3);
        let c = done[0].result.as_ref().unwrap().cost_usd.unwrap();
        assert!((c - 0.002).abs() < 1e-12, "{c}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_after_hook_runs_on_successes_only_and_rides_on_the_event() {
        let p = flaky(0, Duration::from_millis(5));
        let calls = Arc::new(AtomicU32::new(0));
        let seen = Arc::clone(&calls);
        let after: AfterFn = Arc::new(move |job, _request, completion| {
            seen.fetch_add(1, Ordering::SeqCst);
            let outcome = crate::model::AssertionOutcome {
                type_name: "llm-rubric".into(),
                pass: true,
                score: 1.0,
                reason: format!("{} judged {}", job.case_id, completion.output),
                details: serde_json::Value::Null,
                weight: 1.0,
                metric: None,
                unscorable: false,
            };
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Judged {
                    outcomes: vec![(0, outcome)],
                    cache: Vec::new(),
                }
            })
        });
        let (tx, rx) = mpsc::channel(16);
        let mut jobs = jobs(3);
        // A job whose prompt cannot render never reaches the hook.
        jobs[2].case_id = "unrenderable".into();
        let render: RenderFn = Arc::new(|job: &Job| {
            if job.case_id == "unrenderable" {
                return Err("undefined variable".into());
            }
            Ok(Request {
                case_id: job.case_id.clone(),
                sample: job.sample,
                system: None,
                messages: vec![],
                vars: std::collections::BTreeMap::new(),
            })
        });
        let run = execute(
            jobs,
            vec![slot(Arc::clone(&p), 2, Duration::from_secs(5))],
            4,
            render,
            Some(after),
            CancellationToken::new(),
            tx,
        );
        let ((done, _, _), ()) = tokio::join!(collect(rx), run);
        assert_eq!(done.len(), 3);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        for f in &done {
            match &f.judged {
                Some(j) => assert_eq!(
                    j.outcomes[0].1.reason,
                    format!("{0} judged {0}", f.job.case_id)
                ),
                None => assert_eq!(f.job.case_id, "unrenderable"),
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn call_with_retries_reports_each_failure_and_gives_up() {
        let limiter = Limiter::new(RateLimit::default());
        let retries = RetryPolicy {
            max: 2,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(20),
        };
        let limits = CallLimits {
            provider_id: "judge",
            limiter: &limiter,
            timeout: Duration::from_secs(1),
            retries: &retries,
        };
        let failures = std::sync::Mutex::new(Vec::new());
        let got = call_with_retries(
            &limits,
            &CancellationToken::new(),
            || async { Err::<(), _>(CallError::new(ErrorKind::Server, "500")) },
            |attempt, _e, wait| {
                failures.lock().unwrap().push((attempt, wait.is_some()));
                async {}
            },
        )
        .await;
        let (result, attempts) = got.expect("not cancelled");
        assert!(result.is_err());
        assert_eq!(attempts, 3);
        assert_eq!(
            *failures.lock().unwrap(),
            [(1, true), (2, true), (3, false)]
        );
        let cancel = CancellationToken::new();
        cancel.cancel();
        let none = call_with_retries(
            &limits,
            &cancel,
            || async { Ok::<u8, CallError>(1) },
            |_, _, _| async {},
        )
        .await;
        assert!(none.is_none(), "a cancelled run makes no call");
    }

    #[tokio::test(start_paused = true)]
    async fn global_cap_applies_across_providers() {
        let p = flaky(0, Duration::from_millis(5));
        let (done, _, _) = run_jobs(
            &p,
            10,
            8,
            Duration::from_secs(5),
            2,
            CancellationToken::new(),
        )
        .await;
        assert_eq!(done.len(), 10);
        assert_eq!(p.max_in_flight.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn timeout_is_an_error_after_retries() {
        let p = flaky(0, Duration::from_secs(10));
        let (done, failed, _) = run_jobs(
            &p,
            1,
            1,
            Duration::from_secs(1),
            4,
            CancellationToken::new(),
        )
        .await;
        assert_eq!(failed, 3, "first attempt and two retries");
        let err = done[0].result.as_ref().unwrap_err();
        assert_eq!(err.kind, ErrorKind::Timeout);
        assert_eq!(done[0].attempts, 3);
    }

    /// Refuses every call, like a closed port.
    struct Dead {
        calls: AtomicU32,
        answer_from: u32,
    }

    #[async_trait]
    impl Provider for Dead {
        fn id(&self) -> &'static str {
            "dead"
        }
        async fn complete(&self, _request: &Request) -> Result<Completion, CallError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if n >= self.answer_from {
                return Ok(Completion::default());
            }
            Err(CallError::new(
                ErrorKind::Transport,
                "connect to http://127.0.0.1:9/v1: connection refused",
            ))
        }
    }

    async fn run_dead(answer_from: u32, n: usize) -> (Vec<Finished>, Vec<String>, u32) {
        run_dead_with(answer_from, n, |_| {}).await
    }

    /// [`run_dead`] with the slot adjusted by `adjust`; budget events count as openings.
    async fn run_dead_with(
        answer_from: u32,
        n: usize,
        adjust: impl FnOnce(&mut Slot),
    ) -> (Vec<Finished>, Vec<String>, u32) {
        let p = Arc::new(Dead {
            calls: AtomicU32::new(0),
            answer_from,
        });
        let mut slot = slot(flaky(0, Duration::ZERO), 1, Duration::from_secs(5));
        slot.provider = Arc::clone(&p) as Arc<dyn Provider>;
        slot.retries.max = 0;
        adjust(&mut slot);
        let (tx, mut rx) = mpsc::channel(16);
        let run = execute(
            jobs(n),
            vec![slot],
            4,
            render(),
            None,
            CancellationToken::new(),
            tx,
        );
        let gather = async move {
            let (mut done, mut opened) = (Vec::new(), Vec::new());
            while let Some(ev) = rx.recv().await {
                match ev {
                    Event::JobFinished(f) => done.push(*f),
                    Event::CircuitOpened { reason, .. } | Event::BudgetSpent { reason } => {
                        opened.push(reason);
                    }
                    Event::AttemptFailed { .. } => {}
                    Event::RunFinished { .. } => break,
                }
            }
            (done, opened)
        };
        let ((done, opened), ()) = tokio::join!(gather, run);
        (done, opened, p.calls.load(Ordering::SeqCst))
    }

    #[tokio::test(start_paused = true)]
    async fn a_dead_provider_opens_the_breaker_and_the_rest_is_not_called() {
        let (done, opened, calls) = run_dead(u32::MAX, 1000).await;
        assert_eq!(calls, BREAKER_AFTER, "calls stop once the breaker opens");
        assert_eq!(done.len(), 1000, "every job is still reported");
        assert_eq!(opened.len(), 1, "{opened:?}");
        assert!(
            opened[0].contains("no answer to 10 calls in a row"),
            "{}",
            opened[0]
        );
        let skipped: Vec<_> = done
            .iter()
            .filter_map(|f| f.result.as_ref().err())
            .filter(|e| e.kind == ErrorKind::CircuitOpen)
            .collect();
        assert_eq!(skipped.len(), 1000 - BREAKER_AFTER as usize);
        assert!(
            skipped[0].message.contains("connection refused"),
            "{}",
            skipped[0].message
        );
        assert!(
            done.iter()
                .filter(|f| f.result.is_err())
                .all(|f| f.attempts <= 1)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_breaker_switched_off_calls_every_job() {
        let (done, opened, calls) = run_dead_with(u32::MAX, 40, |s| s.breaker_after = 0).await;
        assert!(opened.is_empty(), "{opened:?}");
        assert_eq!(calls, 40);
        assert_eq!(done.len(), 40);
    }

    #[tokio::test(start_paused = true)]
    async fn a_configured_breaker_opens_after_its_count() {
        let (done, opened, calls) = run_dead_with(u32::MAX, 40, |s| s.breaker_after = 3).await;
        assert_eq!(calls, 3);
        assert_eq!(opened.len(), 1, "{opened:?}");
        assert!(opened[0].contains("no answer to 3 calls"), "{}", opened[0]);
        assert_eq!(done.len(), 40);
    }

    #[tokio::test(start_paused = true)]
    async fn a_spent_error_budget_stops_every_call() {
        // Breaker off: only the budget can stop it. 100 jobs, 50%: the 51st error spends it.
        let budget = Arc::new(ErrorBudget::new(0.5, 100, 0));
        let b = Arc::clone(&budget);
        let (done, opened, calls) = run_dead_with(u32::MAX, 100, move |s| {
            s.breaker_after = 0;
            s.budget = Some(b);
        })
        .await;
        assert_eq!(calls, 51, "calls stop once the budget cannot be met");
        assert_eq!(done.len(), 100, "every job is still reported");
        assert_eq!(opened.len(), 1, "{opened:?}");
        assert_eq!(
            opened[0],
            "error budget of 50% cannot be met: 51 of 100 results already errored, so the run fails whatever the rest answers; evalwatch stopped calling providers"
        );
        let skipped = done
            .iter()
            .filter_map(|f| f.result.as_ref().err())
            .filter(|e| e.kind == ErrorKind::CircuitOpen && e.message.contains("error budget"))
            .count();
        assert_eq!(skipped, 49);
        assert!(budget.spent().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_budget_that_can_still_be_met_never_stops_the_run() {
        // 50 errors of 100 is exactly the budget, not over it.
        let budget = Arc::new(ErrorBudget::new(0.5, 100, 0));
        let b = Arc::clone(&budget);
        let (done, opened, calls) = run_dead_with(50, 100, move |s| {
            s.breaker_after = 0;
            s.budget = Some(b);
        })
        .await;
        assert!(opened.is_empty(), "{opened:?}");
        assert_eq!(calls, 100);
        assert_eq!(done.iter().filter(|f| f.result.is_ok()).count(), 50);
        assert!(budget.spent().is_none());
    }

    #[test]
    fn a_long_answer_is_cut_at_the_cap_on_a_character_boundary_and_marked() {
        let mut c = Completion {
            output: "aé".repeat(10), // 30 bytes; byte 4 is inside an é
            ..Completion::default()
        };
        cap_output(&mut c, 4);
        assert!(c.truncated);
        assert_eq!(c.output_bytes, Some(30));
        assert_eq!(
            c.output,
            "aéa\n[evalwatch: output truncated at max_output_bytes = 4 bytes; the answer was longer]"
        );
        let mut short = Completion {
            output: "ok".to_owned(),
            ..Completion::default()
        };
        cap_output(&mut short, 4);
        assert!(!short.truncated);
        assert_eq!((short.output.as_str(), short.output_bytes), ("ok", Some(2)));
    }

    #[test]
    fn shares_print_without_needless_decimals() {
        assert_eq!(fmt_share(0.5), "50");
        assert_eq!(fmt_share(0.125), "12.5");
        assert_eq!(fmt_share(0.0), "0");
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_in_between_keeps_the_breaker_closed() {
        // Nine failures, then answers: never ten in a row.
        let (done, opened, calls) = run_dead(BREAKER_AFTER - 1, 50).await;
        assert!(opened.is_empty(), "{opened:?}");
        assert_eq!(calls, 50);
        assert_eq!(done.iter().filter(|f| f.result.is_ok()).count(), 41);
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_keeps_what_finished_and_reports_it() {
        let p = flaky(0, Duration::from_millis(100));
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(250)).await;
            c2.cancel();
        });
        let (done, _, cancelled) = run_jobs(&p, 100, 1, Duration::from_secs(5), 4, cancel).await;
        assert!(cancelled);
        assert_eq!(
            done.len(),
            2,
            "two calls finished before the cancel at 250 ms"
        );
    }
}
