//! The "Human review" section of a suite page: agreement of human grades with the automatic
//! verdicts (`evalwatch review`), and the human quality score of the graded runs.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{CaseStatus, Confusion};
use crate::store::{Store, StoreError};

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

/// The section of one suite (empty when it has no grades).
pub(super) fn human_review(store: &Store, suite: &str) -> Result<HumanReview, StoreError> {
    let mut tables: BTreeMap<String, Confusion> = BTreeMap::new();
    let mut grades = 0u64;
    store.for_each_graded(Some(suite), None, |g| {
        grades += 1;
        let auto = match g.auto_status {
            CaseStatus::Passed => Some(true),
            CaseStatus::Failed => Some(false),
            CaseStatus::Error | CaseStatus::Unscorable => None,
        };
        if let Some(a) = auto {
            tables.entry(g.provider).or_default().add(g.grade.pass, a);
        }
        Ok(())
    })?;
    let agreement = tables
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
    let all = store.human_scores(Some(suite), None)?;
    let scores = all
        .iter()
        .rev()
        .take(SCORE_RUNS)
        .map(|h| HumanScoreRow {
            run_id: h.run_id.clone(),
            provider: h.provider.clone(),
            score: format!("{:.2}", h.mean_quality),
            n: h.n,
        })
        .collect();
    Ok(HumanReview {
        grades,
        agreement,
        scores,
    })
}
