//! `evalwatch alerts` and `evalwatch baseline`, and the alert step of `run`.
//!
//! The flow: parse the suite's rules (plus the project's defaults), read the baseline runs
//! from the store, evaluate each rule per provider ([`crate::alert::eval`]), turn the
//! findings into state (open once, touch while firing, resolve once), queue a notice per
//! sink in the same transaction, then deliver everything pending. A sink that is down never
//! fails the run: its notices stay queued for the next `run` or `alerts check`.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Ctx, Failure, exit};
use crate::alert::eval::{self, EvalInput, Finding, ResultSample, RunSnapshot, Verdict};
use crate::alert::message::{self, NoticeContext};
use crate::alert::rule::{
    BaselineKind, HUMAN_SCORE, MISSED_RUN, Rule, rules_for, severity_parse, severity_str,
};
use crate::alert::sink::{self, Env, Notice, Sink};
use crate::cli::ReadFormat;
use crate::cli::alerts::{AlertsArgs, AlertsCommand, BaselineArgs, BaselineCommand};
use crate::model::Severity;
use crate::model::{CaseStatus, ProjectConfig, ProviderMetrics, RunInfo, RunStatus, Suite};
use crate::store::Store;
use crate::store::{AlertRow, NewAlert};

/// Complete runs looked at for known-flaky cases, at least.
pub const FLAKY_WINDOW: usize = 5;
/// How far back `alerts list` shows resolved alerts.
const RECENT_DAYS: i64 = 7;

/// What the alert step of `run` found, for the machine output and the exit code.
#[derive(Debug, Default)]
pub struct AlertOutcome {
    /// Alerts fired by this run, as the spec's machine-output objects.
    pub alerts: Vec<serde_json::Value>,
    /// Whether one is at or above `--fail-on`.
    pub fail: bool,
}

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn now_rfc3339(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn shown(ctx: &Ctx, path: &Path) -> String {
    path.strip_prefix(&ctx.cwd)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The suite's rules, or every problem with them, located in the files they come from.
pub fn suite_rules(
    ctx: &Ctx,
    project: &ProjectConfig,
    suite: &Suite,
) -> Result<Vec<Rule>, Vec<String>> {
    let named: BTreeSet<String> = suite
        .named_metrics
        .iter()
        .cloned()
        .chain(
            suite
                .cases
                .iter()
                .flat_map(|c| c.asserts.iter().filter_map(|a| a.metric.clone())),
        )
        .collect();
    let (rules, errors) = rules_for(&suite.alerts, &project.alerts, &named);
    if errors.is_empty() {
        return Ok(rules);
    }
    Err(errors
        .iter()
        .map(|e| {
            let file = if e.origin == "suite" {
                shown(ctx, &suite.source)
            } else {
                project
                    .source
                    .as_deref()
                    .map_or_else(|| "evalwatch.yaml".into(), |p| shown(ctx, p))
            };
            format!("{file}: suite `{}`: {e}", suite.name)
        })
        .collect())
}

/// The configured sinks, or every problem with them.
pub fn project_sinks(project: &ProjectConfig) -> Result<Vec<Sink>, Vec<String>> {
    let mut sinks = Vec::new();
    let mut errors = Vec::new();
    for spec in &project.sinks {
        match sink::parse_sink(spec, &project.root) {
            Ok(s) => sinks.push(s),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(sinks)
    } else {
        Err(errors)
    }
}

/// Evaluation of one suite's rules, with its store reads cached. A run's per-result rows are
/// read only when a rule needs them ([`eval::needs_statuses`], [`eval::needs_samples`]).
struct SuiteEval<'a> {
    suite: &'a Suite,
    rules: &'a [Rule],
    /// Tags of each case, when a rule is on a tag (empty otherwise: nothing looks them up).
    case_tags: HashMap<String, Vec<String>>,
    /// Snapshots by run id, each read once.
    cache: HashMap<String, Arc<RunSnapshot>>,
    /// The complete runs before a run (its id, how many), newest first, each read once.
    windows: HashMap<(String, usize), Arc<Vec<RunSnapshot>>>,
    need_samples: bool,
    need_statuses: bool,
}

/// The baseline runs of one rule: the newest `n` of a window, or the pinned run.
enum Baseline {
    Newest(usize),
    Pinned(Option<Arc<RunSnapshot>>),
}

impl<'a> SuiteEval<'a> {
    /// `store` gives the cases' tags when `suite` comes without its cases (a run streamed
    /// them): the newest version of each case stored.
    fn new(suite: &'a Suite, rules: &'a [Rule], store: &Store) -> Self {
        let case_tags = if !rules.iter().any(|r| r.tag.is_some()) {
            HashMap::new()
        } else if suite.cases.is_empty() {
            store.case_tags(&suite.name).unwrap_or_default()
        } else {
            suite
                .cases
                .iter()
                .map(|c| (c.id.clone(), c.tags.clone()))
                .collect()
        };
        Self {
            suite,
            rules,
            case_tags,
            cache: HashMap::new(),
            windows: HashMap::new(),
            need_samples: rules.iter().any(eval::needs_samples),
            need_statuses: rules.iter().any(eval::needs_statuses),
        }
    }

    /// Read what evaluation needs of one run.
    fn load(
        &self,
        store: &Store,
        info: &RunInfo,
        metrics: Option<&[ProviderMetrics]>,
    ) -> anyhow::Result<RunSnapshot> {
        let mut metrics = match metrics {
            Some(m) => m.to_vec(),
            None => store.run_metrics(&info.run_id)?,
        };
        // Human grades (`evalwatch review`) give the run its `human_score`.
        for h in store.human_scores(None, Some(&info.run_id))? {
            if let Some(m) = metrics
                .iter_mut()
                .find(|m| m.provider == h.provider && m.tag.is_none())
            {
                m.metrics
                    .named
                    .insert(HUMAN_SCORE.to_owned(), h.mean_quality);
            }
        }
        let statuses = if self.need_statuses {
            store.result_statuses(&info.run_id)?
        } else {
            Vec::new()
        };
        let mut samples = Vec::new();
        if self.need_samples {
            store.for_each_result(&info.run_id, |rec| {
                let ok = rec.status != CaseStatus::Error;
                samples.push(ResultSample {
                    case_id: rec.job.case_id,
                    provider: rec.job.provider_id,
                    latency_ms: rec.latency_ms.filter(|_| ok),
                    score: rec.score,
                    output_chars: rec
                        .output
                        .as_ref()
                        .filter(|_| ok)
                        .map(|o| o.chars().count() as f64),
                    label: rec
                        .label
                        .map(|l| l.predicted.unwrap_or_else(|| "(none)".into())),
                });
                Ok(())
            })?;
        }
        Ok(RunSnapshot {
            run_id: info.run_id.clone(),
            started_at: info.started_at.clone(),
            metrics,
            statuses,
            samples,
        })
    }

    fn snapshot(
        &mut self,
        store: &Store,
        info: &RunInfo,
        metrics: Option<&[ProviderMetrics]>,
    ) -> anyhow::Result<Arc<RunSnapshot>> {
        if let Some(s) = self.cache.get(&info.run_id) {
            return Ok(Arc::clone(s));
        }
        let snap = Arc::new(self.load(store, info, metrics)?);
        self.cache.insert(info.run_id.clone(), Arc::clone(&snap));
        Ok(snap)
    }

    /// Every rule's findings: per provider of `current` (when there is a run to judge),
    /// and the missed-run checks.
    fn findings(
        &mut self,
        store: &Store,
        current: Option<(&RunInfo, &[ProviderMetrics])>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<(usize, Finding)>> {
        let mut out = Vec::new();
        // The run is read only when a rule judges it.
        let judged = self.rules.iter().any(|r| r.metric != MISSED_RUN);
        let cur = match current {
            Some((info, metrics)) if judged => {
                Some((info, self.snapshot(store, info, Some(metrics))?))
            }
            _ => None,
        };
        for (i, rule) in self.rules.iter().enumerate() {
            if rule.metric == MISSED_RUN {
                let last = store.latest_complete_run(&self.suite.name)?;
                let parse = |s: &str| {
                    DateTime::parse_from_rfc3339(s)
                        .ok()
                        .map(|d| d.with_timezone(&Utc))
                };
                let last = last.and_then(|r| parse(&r.started_at));
                let first = store
                    .suite_first_seen(&self.suite.name)?
                    .and_then(|s| parse(&s));
                out.push((i, eval::missed_run(rule, last, first, now)));
                continue;
            }
            let Some((info, snap)) = &cur else { continue };
            // Grades come days after a run: `human_score` judges the newest graded run.
            let graded;
            let (info, snap) = if rule.metric == HUMAN_SCORE {
                let newest = store.latest_human_scored_run(&self.suite.name)?;
                match newest.as_deref() {
                    Some(id) if id != info.run_id => match store.run(id)? {
                        Some(i) => {
                            let s = self.snapshot(store, &i, None)?;
                            graded = (i, s);
                            (&graded.0, &graded.1)
                        }
                        None => (*info, snap),
                    },
                    _ => (*info, snap),
                }
            } else {
                (*info, snap)
            };
            for provider in &info.providers {
                if rule.provider.as_ref().is_some_and(|p| p != provider) {
                    continue;
                }
                // While an alert is open, the baseline stays what it was before the
                // regression began: otherwise `previous` would compare a regressed run with
                // a regressed run and call the regression resolved.
                let anchor = match store.open_alert(
                    &self.suite.name,
                    &rule.name,
                    provider,
                    rule.tag.as_deref(),
                )? {
                    Some(a) => match a.opened_run.as_deref() {
                        Some(r) if r != info.run_id => store.run(r)?,
                        _ => None,
                    },
                    None => None,
                };
                let (window, baseline) =
                    self.baseline_runs(store, rule, anchor.as_ref().unwrap_or(info))?;
                let pinned;
                let baseline: &[RunSnapshot] = match &baseline {
                    Baseline::Newest(n) => &window[..(*n).min(window.len())],
                    Baseline::Pinned(Some(s)) => {
                        pinned = [RunSnapshot::clone(s)];
                        &pinned
                    }
                    Baseline::Pinned(None) => &[],
                };
                // Runs during which a pass-rate alert of this provider and tag was firing
                // are left out of the flakiness window: a regression and its fix are a step
                // down and up, not flakiness (else the same regression would not page twice).
                let calm;
                let flaky_window: &[RunSnapshot] = if eval::needs_statuses(rule) {
                    let alerted = store.pass_rate_alerted_runs(
                        &self.suite.name,
                        provider,
                        rule.tag.as_deref(),
                    )?;
                    if window.iter().any(|r| alerted.contains(&r.run_id)) {
                        calm = window
                            .iter()
                            .filter(|r| !alerted.contains(&r.run_id))
                            .cloned()
                            .collect::<Vec<_>>();
                        &calm
                    } else {
                        &window
                    }
                } else {
                    &window
                };
                let input = EvalInput {
                    current: snap,
                    baseline,
                    window: flaky_window,
                    case_tags: &self.case_tags,
                };
                out.push((i, eval::evaluate(rule, provider, &input)));
            }
        }
        Ok(out)
    }

    /// The window of complete runs before `current` and the rule's baseline among them (or
    /// the pinned run).
    fn baseline_runs(
        &mut self,
        store: &Store,
        rule: &Rule,
        current: &RunInfo,
    ) -> anyhow::Result<(Arc<Vec<RunSnapshot>>, Baseline)> {
        let n = match rule.baseline {
            BaselineKind::Trailing(n) => n as usize,
            _ => 1,
        };
        let limit = n.max(FLAKY_WINDOW);
        let key = (current.run_id.clone(), limit);
        let window = if let Some(w) = self.windows.get(&key) {
            Arc::clone(w)
        } else {
            let before =
                store.complete_runs_before(&self.suite.name, &current.started_at, limit)?;
            let mut window = Vec::with_capacity(before.len());
            for info in &before {
                window.push(self.load(store, info, None)?);
            }
            let window = Arc::new(window);
            self.windows.insert(key, Arc::clone(&window));
            window
        };
        let baseline = match rule.baseline {
            BaselineKind::Previous | BaselineKind::Trailing(_) => Baseline::Newest(n),
            BaselineKind::Pinned => {
                Baseline::Pinned(match store.pinned_baseline(&self.suite.name)? {
                    Some(id) if id != current.run_id => match store.run(&id)? {
                        Some(info) if info.status == RunStatus::Complete => {
                            Some(self.snapshot(store, &info, None)?)
                        }
                        _ => None,
                    },
                    _ => None,
                })
            }
        };
        Ok((window, baseline))
    }
}

/// Turns findings into state and notices.
struct Apply<'a> {
    ctx: &'a Ctx,
    sinks: &'a [Sink],
    reports: String,
    now: String,
}

impl Apply<'_> {
    fn sinks_for(&self, severity: Severity) -> Vec<String> {
        self.sinks
            .iter()
            .filter(|s| s.accepts(severity))
            .map(|s| s.id.clone())
            .collect()
    }

    /// Record the findings of one suite; returns the firing ones as machine-output objects.
    fn apply(
        &self,
        store: &mut Store,
        suite: &Suite,
        rules: &[Rule],
        findings: &[(usize, Finding)],
        run_id: Option<&str>,
    ) -> anyhow::Result<Vec<(Severity, Value)>> {
        let mut fired = Vec::new();
        for (i, f) in findings {
            let Some(rule) = rules.get(*i) else { continue };
            let open = store.open_alert(&suite.name, &rule.name, &f.provider, f.tag.as_deref())?;
            // -v: every rule, what was tested and why it did or did not fire (a rule that
            // fires or resolves says it in its own line, printed without -v too).
            let said =
                f.verdict == Verdict::Firing || (f.verdict == Verdict::Clear && open.is_some());
            if !said {
                self.ctx.printer.detail(&format!(
                    "alert rule `{}` on {}{}{}: {}: {}",
                    rule.name,
                    suite.name,
                    if f.provider == "*" {
                        String::new()
                    } else {
                        format!("/{}", f.provider)
                    },
                    f.tag
                        .as_deref()
                        .map_or_else(String::new, |t| format!(" [tag {t}]")),
                    match f.verdict {
                        Verdict::Firing => "fires",
                        Verdict::Clear => "quiet",
                        Verdict::Unknown => "undecided, state kept",
                    },
                    f.detail
                ));
            }
            let sinks = self.sinks_for(rule.severity);
            let severity = severity_str(rule.severity);
            let mut ctx = NoticeContext {
                suite: &suite.name,
                run_id,
                since_run: run_id,
                opened_at: &self.now,
                at: &self.now,
                reports: &self.reports,
            };
            let headline = |f: &Finding| {
                format!(
                    "{}{}: {}: {}",
                    suite.name,
                    if f.provider == "*" {
                        String::new()
                    } else {
                        format!("/{}", f.provider)
                    },
                    rule.name,
                    f.detail
                )
            };
            match (f.verdict, open) {
                (Verdict::Firing, None) => {
                    let message = headline(f);
                    let id = store.open_new_alert(
                        &NewAlert {
                            suite: &suite.name,
                            rule: &rule.name,
                            metric: &rule.metric,
                            provider: &f.provider,
                            tag: f.tag.as_deref(),
                            severity,
                            run_id,
                            at: &self.now,
                            value: f.value,
                            baseline_value: f.baseline_value,
                            message: &message,
                        },
                        |id| message::alert_payload(rule, f, &ctx, id).to_string(),
                        &sinks,
                    )?;
                    self.ctx
                        .printer
                        .warn(&format!("alert [{severity}] {message}"));
                    fired.push((rule.severity, machine(rule, f, &message, true, id)));
                }
                (Verdict::Firing, Some(a)) => {
                    store.touch_alert(a.id, run_id, &self.now, f.value, f.baseline_value)?;
                    let message = headline(f);
                    self.ctx.printer.note(&format!(
                        "alert [{severity}] still open since {}: {message}",
                        a.opened_run.as_deref().unwrap_or(&a.opened_at)
                    ));
                    fired.push((rule.severity, machine(rule, f, &message, false, a.id)));
                }
                (Verdict::Clear, Some(a)) => {
                    ctx.since_run = a.opened_run.as_deref();
                    ctx.opened_at = &a.opened_at;
                    let payload = message::resolved_payload(rule, f, &ctx, a.id).to_string();
                    store.resolve_alert(a.id, run_id, &self.now, &payload, &sinks)?;
                    self.ctx
                        .printer
                        .note(&format!("resolved [{severity}] {}", headline(f)));
                }
                (Verdict::Clear | Verdict::Unknown, None) | (Verdict::Unknown, Some(_)) => {}
            }
        }
        Ok(fired)
    }
}

/// The spec's machine-output object of a firing alert, with extra context fields.
fn machine(rule: &Rule, f: &Finding, message: &str, new: bool, id: i64) -> Value {
    json!({
        "rule": rule.name,
        "metric": rule.metric,
        "severity": severity_str(rule.severity),
        "baseline": if rule.condition.uses_baseline() { Some(rule.baseline.label()) } else { None },
        "value": f.value,
        "message": message,
        "provider": f.provider,
        "tag": f.tag,
        "baseline_value": f.baseline_value,
        "test": f.test,
        "flipped": f.flipped_total,
        "new": new,
        "alert_id": id,
        "runbook": rule.runbook,
    })
}

/// Remember the cases the pass-rate rules of `suite` counted as known-flaky on run `run_id`
/// (the trend page lists them with the flaky cases).
fn record_known_flaky(
    store: &mut Store,
    suite: &str,
    run_id: &str,
    rules: &[Rule],
    findings: &[(usize, Finding)],
) -> anyhow::Result<()> {
    if !rules.iter().any(eval::needs_statuses) {
        return Ok(());
    }
    let cases: BTreeSet<(String, String)> = findings
        .iter()
        .filter(|(i, _)| rules.get(*i).is_some_and(eval::needs_statuses))
        .flat_map(|(_, f)| {
            f.known_flaky
                .iter()
                .map(|c| (f.provider.clone(), c.clone()))
        })
        .collect();
    store.set_known_flaky(suite, run_id, &cases.into_iter().collect::<Vec<_>>())?;
    Ok(())
}

/// The first pause after a failed delivery round; each further failed round doubles it.
const ROUND_BACKOFF: chrono::Duration = chrono::Duration::seconds(30);
/// The longest pause between delivery rounds.
const MAX_ROUND_BACKOFF: chrono::Duration = chrono::Duration::hours(1);
/// Added to a delivery's longest possible duration to make its claim.
const CLAIM_MARGIN: chrono::Duration = chrono::Duration::seconds(30);

/// When a delivery that failed its `rounds`-th round is tried again: 30 s, 1 min, 2 min, ...
/// up to an hour after `now`.
fn next_attempt(now: DateTime<Utc>, rounds: u32) -> DateTime<Utc> {
    let factor = 2i32.saturating_pow(rounds.saturating_sub(1).min(20));
    now + (ROUND_BACKOFF * factor).min(MAX_ROUND_BACKOFF)
}

/// Who is sending: this process, for delivery claims.
fn sender_id() -> String {
    format!("pid {} on {}", std::process::id(), now_rfc3339(Utc::now()))
}

/// What one delivery round did to one notice.
struct Round {
    id: i64,
    sink: String,
    result: Result<(), String>,
    next: Option<String>,
}

/// Deliver every pending notice that is due. Each delivery is claimed in the store before
/// it is sent (so that concurrent senders, two `alerts check` or a daemon and a `run`, never
/// send a notice twice) and recorded as soon as it is done. A failed delivery stays queued
/// and is tried again after a backoff (30 s, doubling, up to an hour) that `run` honours and
/// `alerts check` (`ignore_backoff`) does not. Failures are warnings, one per sink with that
/// sink's queue. Returns (delivered, still pending).
/// The project's sinks that parse; each one that does not is a warning (its notices stay
/// queued in the store until it is fixed), never a lost run or a lost alert.
pub(super) fn usable_sinks(ctx: &Ctx, project: &ProjectConfig) -> Vec<Sink> {
    project_sinks(project).unwrap_or_else(|errors| {
        for e in errors {
            ctx.printer.warn(&format!(
                "{e}; alerts are kept in the store until the sink is fixed"
            ));
        }
        project
            .sinks
            .iter()
            .filter_map(|s| sink::parse_sink(s, &project.root).ok())
            .collect()
    })
}

pub fn flush_queue(
    ctx: &Ctx,
    store: &mut Store,
    sinks: &[Sink],
    env: Env<'_>,
    ignore_backoff: bool,
) -> anyhow::Result<(usize, usize)> {
    let pending = store.pending_deliveries()?;
    if pending.is_empty() {
        return Ok((0, 0));
    }
    let client = crate::provider::http_client()?;
    let owner = sender_id();
    // Sends happen on a thread of their own with its own runtime, so that this works
    // whether or not the caller is inside one.
    let rounds: anyhow::Result<Vec<Round>> = std::thread::scope(|scope| {
        scope
            .spawn(|| -> anyhow::Result<Vec<Round>> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                rt.block_on(async {
                    let mut out = Vec::new();
                    // Sinks that failed, or whose next notice another sender holds: a
                    // sink's notices go out in order, so later ones wait.
                    let mut blocked: BTreeSet<&str> = BTreeSet::new();
                    for d in &pending {
                        if blocked.contains(d.sink.as_str()) {
                            continue;
                        }
                        let sink = sinks.iter().find(|s| s.id == d.sink);
                        let lease = sink.map_or(std::time::Duration::ZERO, Sink::max_delivery_time);
                        let now = Utc::now();
                        let until = now
                            + chrono::Duration::from_std(lease).unwrap_or(MAX_ROUND_BACKOFF)
                            + CLAIM_MARGIN;
                        if !store.claim_delivery(
                            d.id,
                            &owner,
                            &now_rfc3339(now),
                            &now_rfc3339(until),
                            ignore_backoff,
                        )? {
                            blocked.insert(d.sink.as_str());
                            continue;
                        }
                        let (attempts, result) = match sink {
                            Some(sink) => {
                                let notice = Notice {
                                    delivery_id: d.id,
                                    kind: &d.kind,
                                    body: &d.payload,
                                };
                                let (a, r) = sink.deliver(&client, &notice, env).await;
                                (a, r.map_err(|e| e.message))
                            }
                            None => (0, Err(format!("sink `{}` is no longer configured", d.sink))),
                        };
                        let done = Utc::now();
                        let next = result
                            .is_err()
                            .then(|| now_rfc3339(next_attempt(done, d.failed_rounds + 1)));
                        store.record_delivery(
                            d.id,
                            &now_rfc3339(done),
                            result.as_ref().err().map(String::as_str),
                            attempts,
                            next.as_deref(),
                        )?;
                        if result.is_err() {
                            blocked.insert(d.sink.as_str());
                        }
                        out.push(Round {
                            id: d.id,
                            sink: d.sink.clone(),
                            result,
                            next,
                        });
                    }
                    Ok(out)
                })
            })
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the delivery thread panicked")))
    });
    let rounds = rounds?;
    let delivered = rounds.iter().filter(|r| r.result.is_ok()).count();
    let backlog = store.pending_by_sink()?;
    let left: u64 = backlog.iter().map(|b| b.notices).sum();
    for r in &rounds {
        let Err(e) = &r.result else { continue };
        let queued = backlog
            .iter()
            .find(|b| b.sink == r.sink)
            .map_or(0, |b| b.notices);
        let when = r.next.as_deref().map_or_else(String::new, |t| {
            format!(" (by `run` from {t}; `alerts check` at once)")
        });
        ctx.printer.warn(&format!(
            "deliver alerts: sink `{}`: notice {}: {e}; {queued} notice(s) for this sink stay queued and are retried{when}",
            r.sink, r.id
        ));
    }
    Ok((delivered, usize::try_from(left).unwrap_or(usize::MAX)))
}

/// The alert step of `run`, after the run is stored: evaluate the suite's rules against its
/// baselines, record state, notify sinks (queueing what cannot be delivered). `fail_on` is a
/// model severity, or the command line's `--fail-on` as it is.
pub fn after_run(
    ctx: &Ctx,
    store: &mut Store,
    project: &ProjectConfig,
    suite: &Suite,
    info: &RunInfo,
    metrics: &[ProviderMetrics],
    fail_on: impl Into<Severity>,
) -> anyhow::Result<AlertOutcome> {
    after_run_with(
        ctx,
        store,
        project,
        suite,
        info,
        metrics,
        fail_on.into(),
        &process_env,
    )
}

/// [`after_run`] with an injected environment lookup.
#[allow(clippy::too_many_arguments)]
pub fn after_run_with(
    ctx: &Ctx,
    store: &mut Store,
    project: &ProjectConfig,
    suite: &Suite,
    info: &RunInfo,
    metrics: &[ProviderMetrics],
    fail_on: Severity,
    env: Env<'_>,
) -> anyhow::Result<AlertOutcome> {
    // The run is stored already: problems with rules or sinks are warnings here (and errors
    // for `alerts check`), so that they never cost the run its output.
    let rules = suite_rules(ctx, project, suite).unwrap_or_else(|errors| {
        for e in errors {
            ctx.printer.warn(&format!("{e}; the rule is skipped"));
        }
        Vec::new()
    });
    let sinks: Vec<Sink> = usable_sinks(ctx, project)
        .into_iter()
        .map(|s| {
            if ctx.machine_stdout.get() {
                s.off_stdout()
            } else {
                s
            }
        })
        .collect();
    let now = Utc::now();
    let mut eval = SuiteEval::new(suite, &rules, store);
    let findings = eval.findings(store, Some((info, metrics)), now);
    // The runs read (per-result rows of up to the last five, or more) are freed off the
    // run's path.
    if !eval.cache.is_empty() || !eval.windows.is_empty() {
        crate::report::html::drop_later((
            std::mem::take(&mut eval.cache),
            std::mem::take(&mut eval.windows),
        ));
    }
    let findings = findings?;
    let apply = Apply {
        ctx,
        sinks: &sinks,
        reports: reports_dir(project),
        now: now_rfc3339(now),
    };
    let fired = apply.apply(store, suite, &rules, &findings, Some(&info.run_id))?;
    record_known_flaky(store, &suite.name, &info.run_id, &rules, &findings)?;
    if let Err(e) = flush_queue(ctx, store, &sinks, env, false) {
        ctx.printer
            .warn(&format!("deliver alerts: {e}; notices stay queued"));
    }
    Ok(AlertOutcome {
        fail: fired.iter().any(|(s, _)| *s >= fail_on),
        alerts: fired.into_iter().map(|(_, v)| v).collect(),
    })
}

pub(super) fn reports_dir(project: &ProjectConfig) -> String {
    project
        .reports
        .as_ref()
        .map_or_else(|| "reports".into(), |p| p.display().to_string())
}

pub fn run(ctx: &Ctx, args: &AlertsArgs) -> anyhow::Result<u8> {
    run_with(ctx, args, &process_env)
}

/// [`run`] with an injected environment lookup.
pub fn run_with(ctx: &Ctx, args: &AlertsArgs, env: Env<'_>) -> anyhow::Result<u8> {
    match &args.command {
        AlertsCommand::Check { paths, fail_on } => check(ctx, paths, (*fail_on).into(), env),
        AlertsCommand::List { format } => list(ctx, *format),
    }
}

fn check(
    ctx: &Ctx,
    paths: &[std::path::PathBuf],
    fail_on: Severity,
    env: Env<'_>,
) -> anyhow::Result<u8> {
    let project = ctx.project()?;
    let files = super::suite_files(ctx, &project, paths)?;
    let (suites, diags) = crate::suite::load_suites(&files, &project);
    if !diags.is_empty() {
        return Err(Failure::invalid(super::render_diagnostics(ctx, &diags)));
    }
    let mut problems = Vec::new();
    let mut all_rules = Vec::new();
    for suite in &suites {
        match suite_rules(ctx, &project, suite) {
            Ok(r) => all_rules.push(r),
            Err(e) => {
                problems.extend(e);
                all_rules.push(Vec::new());
            }
        }
    }
    let sinks = project_sinks(&project).unwrap_or_else(|e| {
        problems.extend(e);
        Vec::new()
    });
    if !problems.is_empty() {
        return Err(Failure::invalid(problems.join("\n")));
    }
    let db = ctx.db_path(&project);
    let mut store = ctx.open_store(&db)?;
    let now = Utc::now();
    let apply = Apply {
        ctx,
        sinks: &sinks,
        reports: reports_dir(&project),
        now: now_rfc3339(now),
    };
    let mut worst: Option<Severity> = None;
    for (suite, rules) in suites.iter().zip(&all_rules) {
        let latest = store.latest_complete_run(&suite.name)?;
        let metrics = match &latest {
            Some(info) => store.run_metrics(&info.run_id)?,
            None => Vec::new(),
        };
        let mut eval = SuiteEval::new(suite, rules, &store);
        let current = latest.as_ref().map(|i| (i, metrics.as_slice()));
        let findings = eval.findings(&store, current, now)?;
        let run_id = latest.as_ref().map(|i| i.run_id.as_str());
        // A missed-run finding belongs to no run.
        let (missed, regular): (Vec<_>, Vec<_>) = findings
            .into_iter()
            .partition(|(i, _)| rules.get(*i).is_some_and(|r| r.metric == MISSED_RUN));
        apply.apply(&mut store, suite, rules, &regular, run_id)?;
        if let Some(r) = run_id {
            record_known_flaky(&mut store, &suite.name, r, rules, &regular)?;
        }
        apply.apply(&mut store, suite, rules, &missed, None)?;
        let open = store.open_alerts(Some(&suite.name))?;
        if open.is_empty() {
            ctx.printer.info(&format!("{}: no open alerts", suite.name));
        }
        for a in &open {
            ctx.printer
                .result(&format!("open [{}] {}", a.severity, a.message));
            if let Some(s) = severity_parse(&a.severity) {
                worst = worst.max(Some(s));
            }
        }
    }
    let (delivered, left) = flush_queue(ctx, &mut store, &sinks, env, true)?;
    if delivered > 0 || left > 0 {
        ctx.printer
            .info(&format!("notices: {delivered} delivered, {left} queued"));
    }
    Ok(if worst.is_some_and(|w| w >= fail_on) {
        exit::GATE
    } else {
        exit::OK
    })
}

fn row_json(a: &AlertRow) -> Value {
    json!({
        "alert_id": a.id, "suite": a.suite, "rule": a.rule, "metric": a.metric,
        "provider": a.provider, "tag": a.tag, "severity": a.severity,
        "state": if a.resolved_at.is_some() { "resolved" } else { "open" },
        "opened_at": a.opened_at, "opened_run": a.opened_run, "last_seen_at": a.last_seen_at,
        "last_run": a.last_run, "value": a.value, "baseline_value": a.baseline_value,
        "message": a.message, "resolved_at": a.resolved_at, "resolved_run": a.resolved_run,
    })
}

fn list(ctx: &Ctx, format: ReadFormat) -> anyhow::Result<u8> {
    let project = ctx.project()?;
    let db = ctx.db_path(&project);
    if !db.exists() {
        return Err(Failure::invalid(format!(
            "list alerts: no store at {}; run `evalwatch run` first or point --db at it",
            db.display()
        )));
    }
    let store = ctx.open_store(&db)?;
    let since = now_rfc3339(Utc::now() - chrono::Duration::days(RECENT_DAYS));
    let rows = store.recent_alerts(&since, 200)?;
    let pending = store.pending_by_sink()?;
    if format == ReadFormat::Json {
        let out = json!({
            "alerts": rows.iter().map(row_json).collect::<Vec<_>>(),
            "pending": pending.iter().map(|b| json!({
                "sink": b.sink, "notices": b.notices, "last_error": b.last_error,
                "next_attempt_at": b.next_attempt_at,
            })).collect::<Vec<_>>(),
        });
        ctx.printer.result(&serde_json::to_string_pretty(&out)?);
        return Ok(exit::OK);
    }
    if rows.is_empty() {
        ctx.printer.result(&format!(
            "no open alerts, none in the last {RECENT_DAYS} days"
        ));
    }
    for a in &rows {
        let state = match (&a.resolved_at, &a.resolved_run) {
            (None, _) => format!("OPEN since {}", a.opened_at),
            (Some(t), Some(r)) => format!("resolved {t} (run {r})"),
            (Some(t), None) => format!("resolved {t}"),
        };
        ctx.printer.result(&format!(
            "[{}] {} — {state}\n    {}",
            a.severity, a.rule, a.message
        ));
    }
    for b in &pending {
        let why = b
            .last_error
            .as_deref()
            .map_or_else(String::new, |e| format!("; last error: {e}"));
        let when = b.next_attempt_at.as_deref().map_or_else(
            || "the next `run` or `alerts check`".to_owned(),
            |t| format!("`run` from {t}, `alerts check` at once"),
        );
        ctx.printer.result(&format!(
            "sink `{}`: {} notice(s) not yet delivered{why} (retried by {when})",
            b.sink, b.notices
        ));
    }
    Ok(exit::OK)
}

pub fn baseline(ctx: &Ctx, args: &BaselineArgs) -> anyhow::Result<u8> {
    let BaselineCommand::Pin { run_id } = &args.command;
    let project = ctx.project()?;
    let db = ctx.db_path(&project);
    if !db.exists() {
        return Err(Failure::invalid(format!(
            "pin a baseline: no store at {}; run `evalwatch run` first or point --db at it",
            db.display()
        )));
    }
    let mut store = ctx.open_store(&db)?;
    let info = store
        .run(run_id)
        .map_err(|e| Failure::invalid(e.to_string()))?
        .ok_or_else(|| {
            Failure::invalid(format!(
                "pin run {run_id}: no such run; `evalwatch runs` lists them"
            ))
        })?;
    if info.status != RunStatus::Complete {
        return Err(Failure::invalid(format!(
            "pin run {}: it is {}, only a complete run can be a baseline",
            info.run_id,
            info.status.as_str()
        )));
    }
    store.pin_baseline(&info.suite, &info.run_id, &now_rfc3339(Utc::now()))?;
    ctx.printer.result(&format!(
        "run {} is now the pinned baseline of suite `{}` (rules with `baseline: pinned`)",
        info.run_id, info.suite
    ));
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::report::tests::{history, store_run};

    /// The alert step of a run that regressed, after three that did not.
    fn regressed() -> Vec<Value> {
        let (dir, ctx, project, _) = history(3);
        let db = dir.path().join("h.db");
        let mut store = Store::open(&db).expect("store");
        let files = super::super::suite_files(&ctx, &project, &[]).expect("files");
        let (loaded, _) = crate::suite::load_suites(&files, &project);
        let mut suite = loaded.into_iter().find(|s| s.name == "s").expect("s");
        suite.alerts = vec![
            json!({"metric": "pass_rate", "drop": 0.05, "baseline": "trailing:3", "severity": "critical"}),
            json!({"metric": "latency_p95_ms", "ratio": 3.0, "severity": "warning"}),
            json!({"metric": "missed_run", "after": "26h", "severity": "critical"}),
        ];
        let info = store_run(&mut store, &db, &suite, "bad", Utc::now(), |i| i % 2 == 0);
        let metrics = store.run_metrics(&info.run_id).expect("metrics");
        let outcome = after_run(
            &ctx,
            &mut store,
            &project,
            &suite,
            &info,
            &metrics,
            crate::cli::Severity::Critical,
        )
        .expect("alerts");
        assert!(outcome.fail, "the drop fires at critical");
        outcome.alerts
    }

    #[test]
    fn a_regressed_run_fires_the_pass_rate_drop_with_its_flips() {
        let alerts = regressed();
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0]["metric"], "pass_rate");
        assert!(alerts[0]["flipped"].as_u64().is_some_and(|n| n > 0));
    }
}
