//! The "Human review" section of a suite page: agreement of human grades with the automatic
//! verdicts (`evalwatch review`), and the human quality score of the graded runs.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{CaseStatus, Confusion, GradedResult};

/// Graded runs shown, newest.
const SCORE_RUNS: usize = 10;

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), |x| format!("{:.1}%", x * 100.0))
}

#[derive(Debug, Clone, Serialize, Default)]
pub(super) struct HumanAgreement {
    pub provider: String,
    pub n: u64,
    pub both_pass: u64,
    pub human_pass_auto_fail: u64,
    pub human_fail_auto_pass: u64,
    pub both_fail: u64,
    pub kappa: String,
    pub false_pass: String,
    pub false_fail: String,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct HumanScoreRow {
    pub run_id: String,
    pub provider: String,
    pub score: String,
    pub n: u64,
}

#[derive(Debug, Clone, Serialize, Default)]
pub(super) struct HumanReview {
    pub grades: u64,
    pub agreement: Vec<HumanAgreement>,
    pub scores: Vec<HumanScoreRow>,
}

/// The section of one suite, tallied from its graded results ([`HumanTally::add`], in any
/// order) by the composer, then [`HumanTally::finish`]ed with the human quality scores of its
/// graded runs (empty when it has no grades). Only counts are kept per provider.
#[derive(Debug, Default)]
pub(super) struct HumanTally {
    tables: BTreeMap<String, Confusion>,
    grades: u64,
}

impl HumanTally {
    /// One current grade.
    pub(super) fn add(&mut self, g: GradedResult) {
        self.grades += 1;
        let auto = match g.auto_status {
            CaseStatus::Passed => Some(true),
            CaseStatus::Failed => Some(false),
            CaseStatus::Error | CaseStatus::Unscorable => None,
        };
        if let Some(a) = auto {
            self.tables
                .entry(g.provider)
                .or_default()
                .add(g.grade.pass, a);
        }
    }

    /// The section, with the scores of the graded runs, oldest first: (run id, provider,
    /// mean quality, grades with a quality); the newest [`SCORE_RUNS`] are shown.
    pub(super) fn finish<'a>(
        self,
        scores: impl DoubleEndedIterator<Item = (&'a str, &'a str, f64, u64)>,
    ) -> HumanReview {
        let agreement = self
            .tables
            .into_iter()
            .map(|(provider, c)| HumanAgreement {
                provider,
                n: c.n(),
                both_pass: c.counts[0][0],
                human_pass_auto_fail: c.counts[0][1],
                human_fail_auto_pass: c.counts[1][0],
                both_fail: c.counts[1][1],
                kappa: c
                    .kappa()
                    .map_or_else(|| "n/a".into(), |k| format!("{k:.2}")),
                false_pass: pct(c.false_pass_rate()),
                false_fail: pct(c.false_fail_rate()),
            })
            .collect();
        let scores = scores
            .rev()
            .take(SCORE_RUNS)
            .map(|(run_id, provider, mean_quality, n)| HumanScoreRow {
                run_id: run_id.to_owned(),
                provider: provider.to_owned(),
                score: format!("{mean_quality:.2}"),
                n,
            })
            .collect();
        HumanReview {
            grades: self.grades,
            agreement,
            scores,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_graded_runs_are_shown_newest_first() {
        let scores: Vec<(String, f64)> = (0..15)
            .map(|i| (format!("run-{i}"), f64::from(i)))
            .collect();
        let review =
            HumanTally::default().finish(scores.iter().map(|(run, q)| (run.as_str(), "p", *q, 2)));
        assert_eq!(review.grades, 0);
        assert!(review.agreement.is_empty());
        assert_eq!(review.scores.len(), SCORE_RUNS);
        assert_eq!(review.scores[0].run_id, "run-14");
        assert_eq!(review.scores[0].score, "14.00");
        assert_eq!(review.scores[SCORE_RUNS - 1].run_id, "run-5");
    }
}
