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
