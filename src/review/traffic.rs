//! Review of production traffic: the strata of the traffic spec, and reviewers' verdicts
//! against users' votes on the same records.
//!
//! A record belongs to the first stratum that applies, in the spec's order: `thumbs_down`
//! (its user voted it down), `hallucination` (the monitor's hallucination check failed),
//! `low_confidence` (its confidence is in the window's lowest decile), `monitor_fail` (another
//! monitor assertion failed), `error` (the request failed), else `random`.

use std::collections::BTreeSet;

use serde::Serialize;

use super::sample::{Strata, hallucination_flagged};
use crate::model::{AssertionOutcome, CaseStatus, Confusion};

/// Share of a window's records (those that carry a confidence) counted as low confidence.
pub const LOW_CONFIDENCE_SHARE: f64 = 0.1;

/// Why a traffic record was sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrafficStratum {
    ThumbsDown,
    Hallucination,
    LowConfidence,
    MonitorFail,
    Error,
    Random,
}

impl TrafficStratum {
    /// In priority order: a record belongs to the first that applies.
    pub const ALL: [Self; 6] = [
        Self::ThumbsDown,
        Self::Hallucination,
        Self::LowConfidence,
        Self::MonitorFail,
        Self::Error,
        Self::Random,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ThumbsDown => "thumbs_down",
            Self::Hallucination => "hallucination",
            Self::LowConfidence => "low_confidence",
            Self::MonitorFail => "monitor_fail",
            Self::Error => "error",
            Self::Random => "random",
        }
    }
}

impl Strata for TrafficStratum {
    const ORDER: &'static [Self] = &Self::ALL;

    fn name(self) -> &'static str {
        self.as_str()
    }
}

/// What classifying a record needs.
#[derive(Debug, Clone, Copy)]
pub struct RecordSigns<'a> {
    /// The user's vote: `negative` is a thumbs-down.
    pub vote: Option<&'a str>,
    /// The monitor's verdict, when the record was scored.
    pub status: Option<CaseStatus>,
    pub assertions: &'a [AssertionOutcome],
    pub confidence: Option<f64>,
    pub error: bool,
}

/// The stratum of a record; `low_cut` is the confidence at or below which a record counts as
/// low confidence (see [`low_confidence_cut`]).
#[must_use]
pub fn classify(r: &RecordSigns<'_>, low_cut: Option<f64>) -> TrafficStratum {
    if r.vote == Some("negative") {
        TrafficStratum::ThumbsDown
    } else if r.assertions.iter().any(hallucination_flagged) {
        TrafficStratum::Hallucination
    } else if let (Some(c), Some(cut)) = (r.confidence, low_cut)
        && c <= cut
    {
        TrafficStratum::LowConfidence
    } else if r.status == Some(CaseStatus::Failed) {
        TrafficStratum::MonitorFail
    } else if r.error {
        TrafficStratum::Error
    } else {
        TrafficStratum::Random
    }
}

/// Which confidence, counted from the lowest (1-based), is the low-confidence cut among `n`
/// records that carry one: the last of the lowest [`LOW_CONFIDENCE_SHARE`], at least the first.
#[must_use]
pub fn low_confidence_rank(n: u64) -> u64 {
    (((n as f64) * LOW_CONFIDENCE_SHARE).ceil() as u64).clamp(1, n.max(1))
}

/// The confidence at or below which a record is low confidence, from the value at
/// [`low_confidence_rank`] and the largest: None when they are equal (most records alike:
/// calling them all unsure says nothing).
#[must_use]
pub fn low_confidence_cut(at_rank: f64, max: f64) -> Option<f64> {
    (at_rank < max).then_some(at_rank)
}

/// One graded traffic record: the reviewer's verdict and the user's vote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VotedGrade {
    pub sheet_id: String,
    pub source: String,
    pub key: String,
    pub feature: Option<String>,
    pub reviewer: String,
    pub pass: bool,
    pub note: String,
    /// positive, negative or neutral; None when the user gave none.
    pub vote: Option<String>,
    pub comment: Option<String>,
}

/// Reviewers' verdicts against users' votes, per source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VoteAgreement {
    pub source: String,
    /// Grades compared (the user voted up or down).
    pub n: u64,
    /// Rows: reviewer pass, fail; columns: user up (positive), down (negative).
    pub confusion: Confusion,
    pub agreement: Option<f64>,
    pub kappa: Option<f64>,
    /// Graded records whose user gave no vote or a neutral one.
    pub unrated: u64,
    /// Reviewer pass with a thumbs-down, or reviewer fail with a thumbs-up.
    pub disagreements: Vec<VotedGrade>,
}

/// Count graded records into one table per source (in the order of `grades`' sources, sorted).
#[must_use]
pub fn vote_agreement(grades: &[VotedGrade]) -> Vec<VoteAgreement> {
    let sources: BTreeSet<&str> = grades.iter().map(|g| g.source.as_str()).collect();
    sources
        .into_iter()
        .map(|source| {
            let mut confusion = Confusion::default();
            let mut unrated = 0;
            let mut disagreements = Vec::new();
            for g in grades.iter().filter(|g| g.source == source) {
                let up = match g.vote.as_deref() {
                    Some("positive") => true,
                    Some("negative") => false,
                    _ => {
                        unrated += 1;
                        continue;
                    }
                };
                confusion.add(g.pass, up);
                if g.pass != up {
                    disagreements.push(g.clone());
                }
            }
            VoteAgreement {
                source: source.to_owned(),
                n: confusion.n(),
                agreement: confusion.agreement(),
                kappa: confusion.kappa(),
                confusion,
                unrated,
                disagreements,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signs<'a>(vote: Option<&'a str>, assertions: &'a [AssertionOutcome]) -> RecordSigns<'a> {
        RecordSigns {
            vote,
            status: Some(CaseStatus::Passed),
            assertions,
            confidence: None,
            error: false,
        }
    }

    fn failed(type_name: &str) -> AssertionOutcome {
        AssertionOutcome {
            type_name: type_name.into(),
            pass: false,
            score: 0.0,
            reason: String::new(),
            details: serde_json::Value::Null,
            weight: 1.0,
            metric: None,
            unscorable: false,
        }
    }

    #[test]
    fn strata_follow_the_spec_order() {
        let halluc = [failed("hallucination")];
        let plain: [AssertionOutcome; 0] = [];
        // A thumbs-down outranks everything else.
        assert_eq!(
            classify(&signs(Some("negative"), &halluc), None),
            TrafficStratum::ThumbsDown
        );
        assert_eq!(
            classify(&signs(Some("positive"), &halluc), None),
            TrafficStratum::Hallucination
        );
        let mut low = signs(None, &plain);
        low.confidence = Some(-2.0);
        low.status = Some(CaseStatus::Failed);
        assert_eq!(classify(&low, Some(-1.5)), TrafficStratum::LowConfidence);
        assert_eq!(classify(&low, Some(-2.5)), TrafficStratum::MonitorFail);
        assert_eq!(classify(&low, None), TrafficStratum::MonitorFail);
        let mut err = signs(Some("neutral"), &plain);
        err.error = true;
        err.status = None;
        assert_eq!(classify(&err, None), TrafficStratum::Error);
        assert_eq!(
            classify(&signs(Some("positive"), &plain), None),
            TrafficStratum::Random
        );
        let names: Vec<&str> = TrafficStratum::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            names,
            [
                "thumbs_down",
                "hallucination",
                "low_confidence",
                "monitor_fail",
                "error",
                "random"
            ]
        );
    }

    #[test]
    fn the_low_confidence_cut_is_the_lowest_decile() {
        assert_eq!(low_confidence_rank(100), 10, "10 of 100 at or below");
        assert_eq!(low_confidence_rank(101), 11);
        assert_eq!(low_confidence_rank(3), 1, "at least one");
        assert_eq!(low_confidence_rank(1), 1);
        assert_eq!(low_confidence_rank(0), 1);
        assert_eq!(low_confidence_cut(9.0, 99.0), Some(9.0));
        assert_eq!(low_confidence_cut(0.5, 0.5), None, "all alike: none is low");
    }

    fn voted(pass: bool, vote: Option<&str>) -> VotedGrade {
        VotedGrade {
            sheet_id: "s".into(),
            source: "bot".into(),
            key: "k".into(),
            feature: None,
            reviewer: "ann".into(),
            pass,
            note: String::new(),
            vote: vote.map(str::to_owned),
            comment: None,
        }
    }

    #[test]
    fn votes_are_compared_with_verdicts() {
        let grades = [
            voted(true, Some("positive")),
            voted(true, Some("positive")),
            voted(false, Some("negative")),
            voted(true, Some("negative")),
            voted(false, Some("positive")),
            voted(false, None),
            voted(true, Some("neutral")),
        ];
        let t = vote_agreement(&grades);
        assert_eq!(t.len(), 1);
        let a = &t[0];
        assert_eq!(a.confusion.counts, [[2, 1], [1, 1]]);
        assert_eq!((a.n, a.unrated), (5, 2));
        assert_eq!(a.agreement, Some(0.6));
        // Cohen's kappa: p_o = 0.6, p_e = 0.6 * 0.6 + 0.4 * 0.4 = 0.52.
        let kappa = a.kappa.unwrap();
        assert!(
            (kappa - (0.6 - 0.52) / (1.0 - 0.52)).abs() < 1e-9,
            "{kappa}"
        );
        assert_eq!(a.disagreements.len(), 2);
    }
}
