//! The verdict of one assertion before negation, and the case verdict from its assertions.

use serde_json::Value;

use crate::model::{Assertion, AssertionOutcome, CaseStatus};

/// What a check found, in the sense of the un-negated assertion.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub pass: bool,
    /// In [0,1].
    pub score: f64,
    /// A statement of fact that explains the verdict ("output does not contain \"x\"").
    pub reason: String,
    pub details: Value,
    pub unscorable: bool,
}

impl Verdict {
    /// Pass scores 1, fail 0.
    pub fn binary(pass: bool, reason: String, details: Value) -> Self {
        Self {
            pass,
            score: if pass { 1.0 } else { 0.0 },
            reason,
            details,
            unscorable: false,
        }
    }

    pub fn graded(pass: bool, score: f64, reason: String, details: Value) -> Self {
        Self {
            pass,
            score,
            reason,
            details,
            unscorable: false,
        }
    }

    pub fn unscorable(reason: impl Into<String>) -> Self {
        Self {
            pass: false,
            score: 0.0,
            reason: reason.into(),
            details: Value::Null,
            unscorable: true,
        }
    }

    /// The outcome of `assertion`: negation applied, weight and metric copied.
    pub fn into_outcome(self, assertion: &Assertion) -> AssertionOutcome {
        let score = if self.score.is_finite() {
            self.score.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let (pass, score, reason) = if self.unscorable {
            (false, 0.0, self.reason)
        } else if assertion.negate {
            (!self.pass, 1.0 - score, format!("negated: {}", self.reason))
        } else {
            (self.pass, score, self.reason)
        };
        AssertionOutcome {
            type_name: assertion.type_name.clone(),
            pass,
            score,
            reason,
            details: self.details,
            weight: effective_weight(assertion.weight),
            metric: assertion.metric.clone(),
            unscorable: self.unscorable,
        }
    }
}

/// A weight as used: negative or non-finite weights count as 0.
pub fn effective_weight(w: f64) -> f64 {
    if w.is_finite() && w > 0.0 { w } else { 0.0 }
}

/// The case status and score from its outcomes.
///
/// - `score` is the weighted mean of the scorable outcomes' scores (None when no scorable
///   outcome has a positive weight). Weight-0 outcomes are informative only: they count
///   neither in the score nor in the verdict.
/// - With a `threshold`, the case passes when `score >= threshold`; without a score it is
///   unscorable.
/// - Without one, the case fails when any weighted outcome fails (a definite failure wins
///   over an undecided one), else is unscorable when any weighted outcome is unscorable or
///   none decides, else passes.
pub fn case_verdict(
    outcomes: &[AssertionOutcome],
    threshold: Option<f64>,
) -> (CaseStatus, Option<f64>) {
    let mut sum = 0.0;
    let mut total = 0.0;
    let mut any_fail = false;
    let mut any_unscorable = false;
    let mut any_decisive = false;
    for o in outcomes {
        if o.weight <= 0.0 {
            continue;
        }
        if o.unscorable {
            any_unscorable = true;
            continue;
        }
        any_decisive = true;
        sum += o.weight * o.score;
        total += o.weight;
        any_fail |= !o.pass;
    }
    let score = (total > 0.0).then(|| sum / total);
    let status = match (threshold, score) {
        (Some(_), None) => CaseStatus::Unscorable,
        (Some(t), Some(s)) => {
            // Tolerate floating-point noise in the mean (0.1 + 0.2 style sums).
            if s + 1e-9 >= t {
                CaseStatus::Passed
            } else {
                CaseStatus::Failed
            }
        }
        (None, _) if any_fail => CaseStatus::Failed,
        (None, _) if any_unscorable || !any_decisive => CaseStatus::Unscorable,
        (None, _) => CaseStatus::Passed,
    };
    (status, score)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(pass: bool, score: f64, weight: f64, unscorable: bool) -> AssertionOutcome {
        AssertionOutcome {
            type_name: "contains".into(),
            pass,
            score,
            reason: String::new(),
            details: Value::Null,
            weight,
            metric: None,
            unscorable,
        }
    }

    #[test]
    fn all_pass_passes() {
        let o = [
            outcome(true, 1.0, 1.0, false),
            outcome(true, 0.9, 1.0, false),
        ];
        let (s, score) = case_verdict(&o, None);
        assert_eq!(s, CaseStatus::Passed);
        assert!((score.unwrap() - 0.95).abs() < 1e-12);
    }

    #[test]
    fn one_fail_fails() {
        let o = [
            outcome(true, 1.0, 1.0, false),
            outcome(false, 0.0, 1.0, false),
        ];
        assert_eq!(case_verdict(&o, None).0, CaseStatus::Failed);
    }

    #[test]
    fn weighted_mean_and_threshold() {
        // (3*1 + 1*0) / 4 = 0.75
        let o = [
            outcome(true, 1.0, 3.0, false),
            outcome(false, 0.0, 1.0, false),
        ];
        let (s, score) = case_verdict(&o, Some(0.75));
        assert_eq!(s, CaseStatus::Passed);
        assert!((score.unwrap() - 0.75).abs() < 1e-12);
        assert_eq!(case_verdict(&o, Some(0.8)).0, CaseStatus::Failed);
    }

    #[test]
    fn weight_zero_is_informative_only() {
        let o = [
            outcome(true, 1.0, 1.0, false),
            outcome(false, 0.0, 0.0, false),
        ];
        let (s, score) = case_verdict(&o, None);
        assert_eq!(s, CaseStatus::Passed);
        assert_eq!(score, Some(1.0));
    }

    #[test]
    fn unscorable_paths() {
        let o = [
            outcome(true, 1.0, 1.0, false),
            outcome(false, 0.0, 1.0, true),
        ];
        let (s, score) = case_verdict(&o, None);
        assert_eq!(s, CaseStatus::Unscorable);
        assert_eq!(score, Some(1.0));
        // With a threshold, the scorable ones decide.
        assert_eq!(case_verdict(&o, Some(0.5)).0, CaseStatus::Passed);
        // A definite failure wins over an undecided assertion.
        let o = [
            outcome(false, 0.0, 1.0, false),
            outcome(false, 0.0, 1.0, true),
        ];
        assert_eq!(case_verdict(&o, None).0, CaseStatus::Failed);
        // Nothing scorable at all.
        let o = [outcome(false, 0.0, 1.0, true)];
        assert_eq!(case_verdict(&o, None), (CaseStatus::Unscorable, None));
        assert_eq!(case_verdict(&o, Some(0.5)), (CaseStatus::Unscorable, None));
        assert_eq!(case_verdict(&[], None), (CaseStatus::Unscorable, None));
    }

    #[test]
    fn effective_weights() {
        assert!((effective_weight(2.5) - 2.5).abs() < f64::EPSILON);
        assert!(effective_weight(-1.0).abs() < f64::EPSILON);
        assert!(effective_weight(f64::NAN).abs() < f64::EPSILON);
    }
}
