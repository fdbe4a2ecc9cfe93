//! What happens to a record between reading and storing, for `ingest` and `collect` alike: a
//! cost from the providers' pricing when the record has none, and, for the sample, the
//! verdict of the source's `monitor` assertions from the suite scorer. A monitor that needs a
//! judge gives a sampled record a pending verdict instead: it is judged after its batch
//! commits ([`super::judging`]), so that judging never holds up reading.

use super::Scored;
use crate::app::Failure;
use crate::judge::engine::may_call;
use crate::model::{Case, CaseStatus, Pricing, ProjectConfig, Score, TrafficSource};
use crate::score::verdict::Verdict;
use crate::score::{ScoreInput, Scorer};
use crate::traffic::ingest::Kept;

/// Prices and scores the records of one source.
pub struct Prepare {
    monitor: Monitor,
    /// (model, pricing) of the providers in evalwatch.yaml that have both.
    pricing: Vec<(String, Pricing)>,
}

impl Prepare {
    /// Exit 2 when a monitor assertion cannot be built.
    pub fn new(project: &ProjectConfig, source: &TrafficSource) -> anyhow::Result<Self> {
        Ok(Self {
            monitor: Monitor::new(source)?,
            pricing: project
                .providers
                .iter()
                .filter_map(|p| Some((p.model.clone()?, p.pricing?)))
                .collect(),
        })
    }

    /// The record priced (when it has no cost, and its model's pricing is known) and, when
    /// sampled, scored.
    pub fn scored(&mut self, kept: Kept) -> Scored {
        let mut scored = self.priced(kept);
        self.monitor.judge(&mut scored);
        scored
    }

    /// The record priced, its verdict left to [`Monitor::judge`] (which `ingest` runs on
    /// another thread than the reading).
    pub fn priced(&self, mut kept: Kept) -> Scored {
        let r = &mut kept.record;
        if r.cost_usd.is_none()
            && let (Some(model), Some(tin), Some(tout)) = (&r.model, r.tokens_in, r.tokens_out)
            && let Some((_, price)) = self.pricing.iter().find(|(m, _)| m == model)
        {
            r.cost_usd = Some(price.cost(tin, tout));
        }
        Scored {
            kept,
            score: None,
            shape: None,
        }
    }

    /// The monitor, for a thread of its own during a pass; [`Self::give_back`] returns it.
    pub fn take_monitor(&mut self) -> Monitor {
        std::mem::replace(&mut self.monitor, Monitor::none())
    }

    pub fn give_back(&mut self, monitor: Monitor) {
        self.monitor = monitor;
    }
}

/// Scores sampled records with the source's `monitor`, through the suite scorer.
pub struct Monitor {
    case: Option<Case>,
    scorer: Scorer,
    /// Whether an assertion of the monitor calls a judge: sampled records then wait for it.
    judged: bool,
}

impl Monitor {
    /// No assertions: nothing is scored.
    fn none() -> Self {
        Self {
            case: None,
            scorer: Scorer::empty(),
            judged: false,
        }
    }

    fn new(source: &TrafficSource) -> anyhow::Result<Self> {
        if source.monitor.is_empty() {
            return Ok(Self::none());
        }
        let mut scorer = Scorer::empty();
        let case = source.monitor_case();
        scorer.prepare_case(&case).map_err(|e| {
            Failure::invalid(format!(
                "{}: monitor of `{}`: {e}",
                source.location, source.id
            ))
        })?;
        Ok(Self {
            judged: crate::judge::Engine::wants(&case),
            case: Some(case),
            scorer,
        })
    }

    /// Gives a sampled record its verdict (`None` for a failed request or one without output).
    pub fn judge(&mut self, scored: &mut Scored) {
        if scored.kept.sampled {
            scored.score = self.score(&scored.kept);
        }
    }

    /// The verdict on a sampled record; `None` for a failed request or one without output.
    fn score(&mut self, kept: &Kept) -> Option<Score> {
        let case = self.case.as_mut()?;
        let r = &kept.record;
        if r.error.is_some() {
            return None;
        }
        let output = r.output.as_deref()?;
        case.context.clone_from(&r.context);
        let input = ScoreInput {
            output,
            prompt: r.input.as_deref().unwrap_or(""),
            latency_ms: r.latency_ms,
            cost_usd: r.cost_usd,
        };
        if !self.judged {
            return Some(self.scorer.score(0, case, &input));
        }
        Some(pending(&self.scorer, case, &input))
    }
}

/// The verdict of a sampled record before the judge has answered: unscorable, counted
/// nowhere, its judged assertions marked `details.pending` (what [`super::judging`] looks
/// for) and the others as the scorer decides them.
fn pending(scorer: &Scorer, case: &Case, input: &ScoreInput<'_>) -> Score {
    let waiting: Vec<_> = case
        .asserts
        .iter()
        .enumerate()
        .filter(|(_, a)| may_call(case, a))
        .map(|(i, a)| (i, waiting_outcome(a, "awaiting the judge")))
        .collect();
    let mut score = scorer.score_with(0, case, input, &waiting);
    score.status = CaseStatus::Unscorable;
    score.score = None;
    score
}

/// Whether a verdict has assertions still waiting for the judge.
pub(super) fn awaits_judge(score: &Score) -> bool {
    score
        .assertions
        .iter()
        .any(|a| a.details.get("pending") == Some(&serde_json::Value::Bool(true)))
}

/// A judged assertion still waiting for the judge, and why.
pub(super) fn waiting_outcome(
    a: &crate::model::Assertion,
    why: &str,
) -> crate::model::AssertionOutcome {
    let mut v = Verdict::unscorable(why);
    v.details = serde_json::json!({ "pending": true, "judge": null });
    v.into_outcome(a)
}
