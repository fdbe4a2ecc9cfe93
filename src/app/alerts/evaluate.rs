//! Evaluation of one suite's rules against the runs the store holds.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::FLAKY_WINDOW;
use crate::alert::eval::{self, EvalInput, Finding, ResultSample, RunSnapshot};
use crate::alert::rule::{BaselineKind, HUMAN_SCORE, MISSED_RUN, Rule};
use crate::model::{CaseStatus, ProviderMetrics, RunInfo, RunStatus, Suite};
use crate::store::Store;

/// Evaluation of one suite's rules, with its store reads cached. A run's per-result rows are
/// read only when a rule needs them ([`eval::needs_statuses`], [`eval::needs_samples`]).
pub(super) struct SuiteEval<'a> {
    suite: &'a Suite,
    rules: &'a [Rule],
    /// Tags of each case, when a rule is on a tag (empty otherwise: nothing looks them up).
    case_tags: HashMap<String, Vec<String>>,
    /// Snapshots by run id, each read once.
    pub(super) cache: HashMap<String, Arc<RunSnapshot>>,
    /// The complete runs before a run (its id, how many), newest first, each read once.
    pub(super) windows: HashMap<(String, usize), Arc<Vec<RunSnapshot>>>,
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
    pub(super) fn new(suite: &'a Suite, rules: &'a [Rule], store: &Store) -> Self {
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
    pub(super) fn findings(
        &mut self,
        store: &Store,
        current: Option<(&RunInfo, &[ProviderMetrics])>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Vec<(usize, Finding)>> {
        let mut out = Vec::new();
        let rules = self.rules;
        // The run is read only when a rule judges it.
        let judged = rules.iter().any(|r| r.metric != MISSED_RUN);
        let cur = match current {
            Some((info, metrics)) if judged => {
                Some((info, self.snapshot(store, info, Some(metrics))?))
            }
            _ => None,
        };
        for (i, rule) in rules.iter().enumerate() {
            if rule.metric == MISSED_RUN {
                out.push((i, self.missed_run(store, rule, now)?));
                continue;
            }
            let Some((info, snap)) = &cur else { continue };
            // Grades come days after a run: `human_score` judges the newest graded run.
            let graded = if rule.metric == HUMAN_SCORE {
                self.newest_graded(store, info)?
            } else {
                None
            };
            let (info, snap) = graded.as_ref().map_or((*info, snap), |(i, s)| (i, s));
            for provider in &info.providers {
                if rule.provider.as_ref().is_some_and(|p| p != provider) {
                    continue;
                }
                out.push((i, self.evaluate(store, rule, provider, info, snap)?));
            }
        }
        Ok(out)
    }

    /// Whether the suite missed its runs: the latest complete run against `after`.
    fn missed_run(
        &self,
        store: &Store,
        rule: &Rule,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Finding> {
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
        Ok(eval::missed_run(rule, last, first, now))
    }

    /// The newest run with human grades, when it is not `current`.
    fn newest_graded(
        &mut self,
        store: &Store,
        current: &RunInfo,
    ) -> anyhow::Result<Option<(RunInfo, Arc<RunSnapshot>)>> {
        let newest = store.latest_human_scored_run(&self.suite.name)?;
        match newest.as_deref() {
            Some(id) if id != current.run_id => match store.run(id)? {
                Some(info) => {
                    let snap = self.snapshot(store, &info, None)?;
                    Ok(Some((info, snap)))
                }
                None => Ok(None),
            },
            _ => Ok(None),
        }
    }

    /// One rule on one provider of a run, against its baseline.
    fn evaluate(
        &mut self,
        store: &Store,
        rule: &Rule,
        provider: &str,
        info: &RunInfo,
        snap: &RunSnapshot,
    ) -> anyhow::Result<Finding> {
        // While an alert is open, the baseline stays what it was before the regression
        // began: otherwise `previous` would compare a regressed run with a regressed run and
        // call the regression resolved.
        let anchor =
            match store.open_alert(&self.suite.name, &rule.name, provider, rule.tag.as_deref())? {
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
        // Runs during which a pass-rate alert of this provider and tag was firing are left
        // out of the flakiness window: a regression and its fix are a step down and up, not
        // flakiness (else the same regression would not page twice).
        let calm;
        let flaky_window: &[RunSnapshot] = if eval::needs_statuses(rule) {
            let alerted =
                store.pass_rate_alerted_runs(&self.suite.name, provider, rule.tag.as_deref())?;
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
        Ok(eval::evaluate(rule, provider, &input))
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
