//! What happens to a record between reading and storing, for `ingest` and `collect` alike: a
//! cost from the providers' pricing when the record has none, and, for the sample, the
//! verdict of the source's `monitor` assertions from the suite scorer.

use super::Scored;
use crate::app::Failure;
use crate::model::{Case, Pricing, ProjectConfig, Score, TrafficSource, Vars};
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
    pub fn scored(&mut self, mut kept: Kept) -> Scored {
        let r = &mut kept.record;
        if r.cost_usd.is_none()
            && let (Some(model), Some(tin), Some(tout)) = (&r.model, r.tokens_in, r.tokens_out)
            && let Some((_, price)) = self.pricing.iter().find(|(m, _)| m == model)
        {
            r.cost_usd = Some(price.cost(tin, tout));
        }
        let score = if kept.sampled {
            self.monitor.score(&kept)
        } else {
            None
        };
        Scored { kept, score }
    }
}

/// Scores sampled records with the source's `monitor`, through the suite scorer.
struct Monitor {
    case: Option<Case>,
    scorer: Scorer,
}

impl Monitor {
    fn new(source: &TrafficSource) -> anyhow::Result<Self> {
        let mut scorer = Scorer::empty();
        if source.monitor.is_empty() {
            return Ok(Self { case: None, scorer });
        }
        let case = Case {
            id: source.id.clone(),
            tags: Vec::new(),
            vars: Vars::new(),
            expected: None,
            context: Vec::new(),
            asserts: source.monitor.clone(),
            threshold: None,
            repeat_policy: None,
            hash: String::new(),
            location: source.location.clone(),
        };
        scorer.prepare_case(&case).map_err(|e| {
            Failure::invalid(format!(
                "{}: monitor of `{}`: {e}",
                source.location, source.id
            ))
        })?;
        Ok(Self {
            case: Some(case),
            scorer,
        })
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
        Some(self.scorer.score(
            0,
            case,
            &ScoreInput {
                output,
                prompt: r.input.as_deref().unwrap_or(""),
                latency_ms: r.latency_ms,
                cost_usd: r.cost_usd,
            },
        ))
    }
}
