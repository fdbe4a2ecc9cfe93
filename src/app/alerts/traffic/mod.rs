//! Traffic alert rules: each rule walks its source's closed windows in order, from where it
//! last stopped (a cursor in the store), and turns each window into alert state through the
//! same episodes, notices and delivery claims as suite alerts: open once per (source, rule,
//! split label), touch while firing, resolve once. A window closes when the clock has
//! passed its end and traffic from after its end is stored; a window with no data decides
//! nothing (an alert is never opened, nor resolved, on no data).
//!
//! `ingest` calls [`evaluate_closed_windows`] at the end of a read, `collect` as windows
//! close, and `alerts check` for every source.

pub(crate) mod confidence;
mod context;
pub(crate) mod drift;
mod drift_alerts;
mod figures;

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde_json::{Value, json};

use self::context::{Concentration, Context, concentration};
use self::figures::{Grouped, additive, value};
use super::{flush_queue, process_env, sink_ids, usable_sinks};
use crate::alert::drift_rule::is_drift_rule;
use crate::alert::rule::{RuleProblem, severity_str};
use crate::alert::sink::{Env, Sink};
use crate::alert::traffic::{TrafficBaseline, TrafficRule, WEEK, judge_traffic_rule};
use crate::app::Ctx;
use crate::model::{ProjectConfig, Severity, TrafficSource};
use crate::store::{BucketRow, NewAlert, Store};
use crate::suite::TRAFFIC_METRICS;
use crate::traffic::Resolution;

/// The most windows one evaluation judges per rule (older ones are skipped, and said so).
pub const MAX_WINDOWS: i64 = 96;

/// What the traffic rules of a source did.
#[derive(Debug, Default)]
pub struct TrafficOutcome {
    /// Alerts opened by this evaluation.
    pub opened: usize,
    /// Alerts of the source open after it, by severity.
    pub open: Vec<Severity>,
}

/// The alert state key of a source's alerts.
#[must_use]
pub fn alert_suite(source: &str) -> String {
    format!("traffic:{source}")
}

/// Judge every window of `source` that closed since its rules last looked, record alert
/// state, then deliver pending notices (a sink that is down keeps its notices queued).
/// The entry point for `ingest` (after a read) and `collect` (as windows close): call it
/// with the store the records were written to and `Utc::now()`.
pub fn evaluate_closed_windows(
    ctx: &Ctx,
    store: &mut Store,
    project: &ProjectConfig,
    source: &TrafficSource,
    now: DateTime<Utc>,
) -> anyhow::Result<TrafficOutcome> {
    evaluate_closed_windows_with(ctx, store, project, source, now, &process_env)
}

/// [`evaluate_closed_windows`] with an injected environment lookup.
pub fn evaluate_closed_windows_with(
    ctx: &Ctx,
    store: &mut Store,
    project: &ProjectConfig,
    source: &TrafficSource,
    now: DateTime<Utc>,
    env: Env<'_>,
) -> anyhow::Result<TrafficOutcome> {
    let sinks = usable_sinks(ctx, project);
    let outcome = judge_source(ctx, store, &sinks, source, now)?;
    if let Err(e) = flush_queue(ctx, store, &sinks, env, false) {
        ctx.printer
            .warn(&format!("deliver alerts: {e}; notices stay queued"));
    }
    Ok(outcome)
}

/// Metrics counted from users' votes, which `feedback import` adds to windows already judged.
const FEEDBACK_METRICS: [&str; 3] = [
    "traffic.satisfaction",
    "traffic.thumbs_down_rate",
    "traffic.feedback_rate",
];

/// After `feedback import`: the rules on feedback metrics judge their latest closed window
/// again (votes given after the fact changed it), then every window closed since, as
/// [`evaluate_closed_windows`]. An alert already open for that window is touched, not sent
/// again.
pub fn evaluate_after_feedback(
    ctx: &Ctx,
    store: &mut Store,
    project: &ProjectConfig,
    source: &TrafficSource,
    now: DateTime<Utc>,
) -> anyhow::Result<TrafficOutcome> {
    for rule in rules(ctx, source) {
        if !FEEDBACK_METRICS.contains(&rule.rule.metric.as_str()) {
            continue;
        }
        let step = rule.window.min(86_400);
        if let Some(c) = store.traffic_alert_cursor(&source.id, &rule.rule.name)? {
            store.rewind_traffic_alert_cursor(&source.id, &rule.rule.name, c - step)?;
        }
    }
    evaluate_closed_windows(ctx, store, project, source, now)
}

/// The source's rules (judged at load already; one that fails here is skipped, said so).
fn rules(ctx: &Ctx, source: &TrafficSource) -> Vec<TrafficRule> {
    let mut out: Vec<TrafficRule> = Vec::new();
    for (i, raw) in source.alerts.iter().enumerate() {
        if is_drift_rule(raw) {
            continue; // judged by `drift_alerts`
        }
        match judge_traffic_rule(raw, &TRAFFIC_METRICS) {
            Ok(mut r) => {
                // Two rules with one name would share alert state: number the later ones.
                let base = r.rule.name.clone();
                let mut k = 2;
                while out.iter().any(|o| o.rule.name == r.rule.name) {
                    r.rule.name = format!("{base} #{k}");
                    k += 1;
                }
                out.push(r);
            }
            Err(p) => skipped(ctx, source, i, p),
        }
    }
    out
}

/// Says that rule `i` of `source` is skipped, and why.
fn skipped(ctx: &Ctx, source: &TrafficSource, i: usize, problems: Vec<RuleProblem>) {
    let why: Vec<String> = problems.into_iter().map(|p| p.message).collect();
    ctx.printer.warn(&format!(
        "traffic source `{}`: alert rule {}: {}; the rule is skipped",
        source.id,
        i + 1,
        why.join("; ")
    ));
}

/// The windows a rule judges now: the ends of its windows from `first` to `closed` (the
/// last closed one), `step` apart, from where its cursor stopped; at most [`MAX_WINDOWS`].
struct Pending {
    step: i64,
    first: i64,
    closed: i64,
}

impl Pending {
    fn of(
        ctx: &Ctx,
        store: &Store,
        source: &str,
        rule: &str,
        window: i64,
        latest: i64,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Self> {
        let step = window.min(86_400);
        let closed = now.timestamp().min(latest).div_euclid(step) * step;
        let oldest = closed - (MAX_WINDOWS - 1) * step;
        let cursor = store.traffic_alert_cursor(source, rule)?;
        let first = cursor.map_or(oldest, |c| c + step).max(oldest);
        if cursor.is_some_and(|c| c + step < oldest) {
            ctx.printer.warn(&format!(
                "alert rule `{rule}` on {}: windows before {} were not judged (at most {MAX_WINDOWS} per evaluation)",
                alert_suite(source),
                at(oldest)
            ));
        }
        Ok(Self {
            step,
            first,
            closed,
        })
    }

    /// The ends of the windows to judge, oldest first.
    fn ends(&self) -> impl Iterator<Item = i64> + use<> {
        let (first, closed, step) = (self.first, self.closed, self.step);
        std::iter::successors(Some(first), move |e| Some(e + step))
            .take_while(move |e| *e <= closed)
    }

    /// Moves the rule's cursor past the windows judged.
    fn done(&self, store: &mut Store, source: &str, rule: &str) -> anyhow::Result<()> {
        if self.first <= self.closed {
            store.set_traffic_alert_cursor(source, rule, self.closed)?;
        }
        Ok(())
    }
}

/// Judge the closed windows of every rule of `source` (no delivery).
pub(super) fn judge_source(
    ctx: &Ctx,
    store: &mut Store,
    sinks: &[Sink],
    source: &TrafficSource,
    now: DateTime<Utc>,
) -> anyhow::Result<TrafficOutcome> {
    let mut outcome = TrafficOutcome::default();
    let suite = alert_suite(&source.id);
    let rules = rules(ctx, source);
    let latest = store.traffic_latest(&source.id)?;
    for rule in &rules {
        let Some(latest) = latest else {
            ctx.printer.detail(&format!(
                "alert rule `{}` on {suite}: no traffic stored yet; nothing to judge",
                rule.rule.name
            ));
            continue;
        };
        let pending = Pending::of(
            ctx,
            store,
            &source.id,
            &rule.rule.name,
            rule.window,
            latest,
            now,
        )?;
        let mut judge = Judge {
            ctx,
            store,
            sinks,
            source,
            suite: &suite,
            rule,
            now,
        };
        let mut last = None;
        let (mut judged, mut too_little) = (0_u32, 0_u32);
        for end in pending.ends() {
            let verdicts = judge.window(end, &mut outcome)?;
            judged += 1;
            if verdicts.iter().any(|(_, v)| v.starts_with("not judged")) {
                too_little += 1;
            }
            last = Some((end, verdicts));
        }
        let Some((end, verdicts)) = last else {
            ctx.printer.detail(&format!(
                "alert rule `{}` on {suite}: no window closed since the last evaluation",
                rule.rule.name
            ));
            continue;
        };
        if too_little > 0 {
            ctx.printer.detail(&format!(
                "alert rule `{}` on {suite}: {too_little} of {judged} window(s) judged now held too little data to be judged (min_requests {}); state kept",
                rule.rule.name, rule.min_requests
            ));
        }
        let span = format!("window {}..{}", at(end - rule.window), at(end));
        for (provider, verdict) in &verdicts {
            let label = if provider == "*" {
                String::new()
            } else {
                format!(" [{provider}]")
            };
            ctx.printer.detail(&format!(
                "alert rule `{}` on {suite}{label}, {span}: {verdict}",
                rule.rule.name
            ));
        }
        let summary: Vec<String> = verdicts
            .iter()
            .map(|(p, v)| {
                if p == "*" {
                    v.clone()
                } else {
                    format!("[{p}] {v}")
                }
            })
            .collect();
        pending.done(store, &source.id, &rule.rule.name)?;
        store.set_traffic_alert_verdict(
            &source.id,
            &rule.rule.name,
            &format!("{span}: {}", summary.join("; ")),
        )?;
    }
    if let Some(latest) = latest {
        drift_alerts::judge(ctx, store, sinks, source, latest, now, &mut outcome)?;
    }
    for a in store.open_alerts(Some(&suite))? {
        if let Some(s) = crate::alert::rule::severity_parse(&a.severity) {
            outcome.open.push(s);
        }
    }
    Ok(outcome)
}

/// RFC 3339 of unix seconds.
fn at(unix: i64) -> String {
    instant(unix).to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn instant(unix: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(unix, 0).single().unwrap_or_default()
}

/// The buckets a window of `secs` is counted in.
fn resolution(secs: i64) -> Resolution {
    if secs < 3_600 {
        Resolution::Minute
    } else if secs < 86_400 {
        Resolution::Hour
    } else {
        Resolution::Day
    }
}

/// One rule of one source, judging windows.
struct Judge<'a> {
    ctx: &'a Ctx,
    store: &'a mut Store,
    sinks: &'a [Sink],
    source: &'a TrafficSource,
    suite: &'a str,
    rule: &'a TrafficRule,
    now: DateTime<Utc>,
}

/// The rows a window is compared with (grouped), and the factor that scales additive metrics
/// to the window's length.
struct Normal {
    rows: Grouped,
    scale: f64,
}

impl Judge<'_> {
    /// The buckets of `[from, to)` merged as the rule groups them as they are read (a week of
    /// hours over many label sets is too many rows to hold); by each label too when the rule
    /// has no split, for where a change is concentrated.
    fn rows(&self, res: Resolution, from: i64, to: i64) -> anyhow::Result<Grouped> {
        let mut out = Grouped::default();
        let (split, labels) = (self.rule.by, self.rule.by.is_none());
        self.store
            .each_traffic_bucket(&self.source.id, res, from, to, |key, row| {
                out.add(&key, &row, split, labels);
                Ok(())
            })?;
        Ok(out)
    }

    /// The baseline rows of the window `[start, end)`. Min/max rules have no baseline; their
    /// "normal" (for the context) is the trailing week.
    fn normal(&self, start: i64, end: i64) -> anyhow::Result<Normal> {
        let w = self.rule.window;
        let kind = if self.rule.rule.condition.uses_baseline() {
            self.rule.baseline
        } else {
            TrafficBaseline::Trailing7d
        };
        Ok(match kind {
            TrafficBaseline::Previous => Normal {
                rows: self.rows(resolution(w), start - w, start)?,
                scale: 1.0,
            },
            TrafficBaseline::SameWindowLastWeek => Normal {
                rows: self.rows(resolution(w), start - WEEK, end - WEEK)?,
                scale: 1.0,
            },
            TrafficBaseline::Trailing7d => {
                // Whole hours (whole days for day windows) before the window's start.
                let res = if w < 86_400 {
                    Resolution::Hour
                } else {
                    Resolution::Day
                };
                let to = res.floor(start);
                let rows = self.rows(res, to - WEEK, to)?;
                let mut from = rows.first.unwrap_or(to);
                if res == Resolution::Day && from > to - WEEK {
                    // The source's first day is rarely whole: its coverage starts at its
                    // first hour of traffic, or a first half day would read as half the
                    // normal and the next whole day as twice it.
                    let first_hours = self.rows(Resolution::Hour, from, from + 86_400)?;
                    from = first_hours.first.unwrap_or(from);
                }
                let covered = (to - from).max(1);
                Normal {
                    rows,
                    scale: w as f64 / covered as f64,
                }
            }
        })
    }

    /// Judge the window ending at `end`; returns what each group came to (its label, as
    /// the alerts table keys it, and the verdict), for -v and the stored last verdict.
    fn window(
        &mut self,
        end: i64,
        outcome: &mut TrafficOutcome,
    ) -> anyhow::Result<Vec<(String, String)>> {
        let rule = self.rule;
        let metric = rule.rule.metric.as_str();
        let start = end - rule.window;
        let rows = self.rows(resolution(rule.window), start, end)?;
        let normal = self.normal(start, end)?;
        let now_groups = &rows.by_rule;
        let before = &normal.rows.by_rule;
        let mut said = Vec::new();
        let mut labels: Vec<String> = now_groups.keys().cloned().collect();
        // A split label with an open alert and no traffic now is judged too (undecided).
        for a in self.store.open_alerts(Some(self.suite))? {
            if a.rule == rule.rule.name && !labels.contains(&group_of(&a.provider)) {
                labels.push(group_of(&a.provider));
            }
        }
        if labels.is_empty() {
            said.push((
                "*".to_owned(),
                "no data (no traffic in the window); never fires on no data".to_owned(),
            ));
        }
        // Read from the sampled records, not the buckets.
        let from_records = (metric == confidence::LOW_CONFIDENCE_RATE)
            .then(|| confidence::window_rates(self.store, self.source, rule, start, end))
            .transpose()?;
        for group in labels {
            let v = now_groups
                .get(&group)
                .and_then(|r| value(metric, r, rule.window));
            let b = before
                .get(&group)
                .and_then(|r| value(metric, r, rule.window))
                .map(|b| {
                    if additive(metric) {
                        b * normal.scale
                    } else {
                        b
                    }
                });
            let (v, b) = from_records.as_ref().map_or((v, b), |(now, base)| {
                (now.get(&group).copied(), base.get(&group).copied())
            });
            let provider = provider_of(rule, &group);
            let mut say = |verdict: String| said.push((provider.clone(), verdict));
            let Some(v) = v else {
                say(format!(
                    "no data (nothing in the window to compute `{metric}` from); never fires on no data, state kept"
                ));
                continue;
            };
            if let Some(short) = self.too_little(&group, now_groups, before) {
                say(format!("not judged: {short}; state kept"));
                continue;
            }
            let Some(fires) = rule.fires(v, b) else {
                say(format!(
                    "{} against no baseline ({} has no data); undecided, state kept",
                    figures::show(metric, v),
                    rule.baseline.label()
                ));
                continue;
            };
            let shown_b = b.map_or_else(|| "none".to_owned(), |b| figures::show(metric, b));
            say(format!(
                "{} (normal {shown_b}): {}",
                figures::show(metric, v),
                if fires { "fires" } else { "quiet" }
            ));
            let open = self
                .store
                .open_alert(self.suite, &rule.rule.name, &provider, None)?;
            match (fires, open) {
                (true, None) => {
                    let conc: Option<Concentration> = if rule.by.is_none() {
                        concentration(rule, &rows, &normal.rows, b, normal.scale)
                    } else {
                        None
                    };
                    let feature = context::alert_feature(rule, &group, conc.as_ref());
                    let marks =
                        context::marks_before(self.store, &self.source.id, feature, start, end)?;
                    let until = at(end);
                    let cx = Context {
                        rule,
                        group: &group,
                        value: v,
                        normal: b,
                        started: instant(start),
                        now: self.now,
                        concentration: conc,
                        marks,
                    };
                    self.open(&cx, &provider, &until)?;
                    outcome.opened += 1;
                }
                (true, Some(a)) => {
                    self.store
                        .touch_alert(a.id, None, &at(end), (Some(v), b), None)?;
                }
                (false, Some(a)) => {
                    let message = format!(
                        "{}: resolved: {} is {} (normally {shown_b})",
                        self.subject(&provider),
                        figures::metric_words(metric),
                        figures::show(metric, v),
                    );
                    let payload = json!({
                        "event": "resolved",
                        "alert_id": a.id,
                        "source": self.source.id,
                        "rule": rule.rule.name,
                        "metric": metric,
                        "severity": a.severity,
                        "window": rule.window_label(),
                        "split": split_json(rule, &group),
                        "value": v,
                        "normal": b,
                        "opened_at": a.opened_at,
                        "resolved_at": at(end),
                        "message": message,
                        "text": message,
                    });
                    let sinks = sink_ids(self.sinks, rule.rule.severity);
                    self.store
                        .resolve_alert(a.id, None, &at(end), &payload.to_string(), &sinks)?;
                    self.ctx
                        .printer
                        .note(&format!("resolved [{}] {message}", a.severity));
                }
                (false, None) => {}
            }
        }
        Ok(said)
    }

    /// Why `group` of the window (or of its baseline) holds too little to be judged:
    /// `15m window holds 1 request, needs 20`; None when both hold enough.
    fn too_little(
        &self,
        group: &str,
        now: &BTreeMap<String, BucketRow>,
        before: &BTreeMap<String, BucketRow>,
    ) -> Option<String> {
        let rule = self.rule;
        let metric = rule.rule.metric.as_str();
        let need = rule.min_requests;
        let n = now.get(group).map_or(0, |r| figures::count(metric, r));
        if n < need {
            return Some(format!(
                "{} window holds {}, needs {need} (min_requests)",
                rule.window_label(),
                figures::counted(metric, n)
            ));
        }
        if !rule.rule.condition.uses_baseline() {
            return None;
        }
        let nb = before.get(group).map_or(0, |r| figures::count(metric, r));
        (nb > 0 && nb < need).then(|| {
            format!(
                "its {} baseline holds {}, needs {need} (min_requests)",
                rule.baseline.label(),
                figures::counted(metric, nb)
            )
        })
    }

    /// `traffic:bot: RULE` or `traffic:bot: RULE [feature=summarise]`.
    fn subject(&self, provider: &str) -> String {
        let label = if provider == "*" {
            String::new()
        } else {
            format!(" [{provider}]")
        };
        format!("{}: {}{label}", self.suite, self.rule.rule.name)
    }

    /// Open an alert with its notice queued per sink.
    fn open(&mut self, cx: &Context<'_>, provider: &str, when: &str) -> anyhow::Result<()> {
        let rule = self.rule;
        let severity = severity_str(rule.rule.severity);
        let sentence = cx.sentence();
        let headline = format!("{}: {sentence}", self.subject(provider));
        let sinks = sink_ids(self.sinks, rule.rule.severity);
        let payload = |id: i64| -> String {
            let mut text = vec![format!("[{}] {headline}", severity.to_uppercase())];
            if let Some(r) = &rule.rule.runbook {
                text.push(format!("runbook: {r}"));
            }
            json!({
                "event": "alert",
                "alert_id": id,
                "source": self.source.id,
                "rule": rule.rule.name,
                "metric": rule.rule.metric,
                "severity": severity,
                "window": rule.window_label(),
                "baseline": rule.rule.condition.uses_baseline().then(|| rule.baseline.label()),
                "split": split_json(rule, cx.group),
                "context": cx.json(),
                "runbook": rule.rule.runbook,
                "opened_at": when,
                "message": headline,
                "text": text.join("\n"),
            })
            .to_string()
        };
        let opened = self.store.open_new_alert(
            &NewAlert {
                suite: self.suite,
                rule: &rule.rule.name,
                metric: &rule.rule.metric,
                provider,
                tag: None,
                severity,
                run_id: None,
                at: when,
                value: Some(cx.value),
                baseline_value: cx.normal,
                message: &headline,
            },
            payload,
            &sinks,
        )?;
        // None: opened meanwhile by another process, which said so.
        if opened.is_some() {
            self.ctx
                .printer
                .warn(&format!("alert [{severity}] {headline}"));
        }
        Ok(())
    }
}

/// The alerts table's `provider` of a group: `*`, or `feature=summarise`.
fn provider_of(rule: &TrafficRule, group: &str) -> String {
    rule.by
        .map_or_else(|| "*".to_owned(), |s| format!("{}={group}", s.name()))
}

/// The group of an alert's `provider`.
fn group_of(provider: &str) -> String {
    provider
        .split_once('=')
        .map_or_else(|| provider.to_owned(), |(_, g)| g.to_owned())
}

fn split_json(rule: &TrafficRule, group: &str) -> Value {
    rule.by
        .map_or(Value::Null, |s| json!({"by": s.name(), "label": group}))
}
