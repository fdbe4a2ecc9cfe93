//! Agreement of human and automatic verdicts, per suite: over whole results (the result's
//! status) and per assertion type (that assertion's verdict), with the confusion matrix,
//! Cohen's kappa, and false-pass and false-fail rates. A result whose automatic verdict is
//! not pass or fail (unscorable, error) counts as undecided and stays out of the table.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::model::{CaseStatus, Confusion, GradedResult};

/// The scope of the whole result, beside assertion types.
pub const RESULT_SCOPE: &str = "result";

/// Agreement of one suite on one scope (`result` or an assertion type).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Agreement {
    pub suite: String,
    pub scope: String,
    pub n: u64,
    pub confusion: Confusion,
    pub agreement: Option<f64>,
    pub kappa: Option<f64>,
    pub false_pass_rate: Option<f64>,
    pub false_fail_rate: Option<f64>,
    /// Graded results whose automatic verdict was neither pass nor fail.
    pub undecided: u64,
}

/// Collects graded results into per-suite agreement tables.
#[derive(Debug, Default)]
pub struct AgreementBuilder {
    tables: BTreeMap<(String, String), (Confusion, u64)>,
    reviewers: BTreeSet<String>,
    grades: u64,
}

impl AgreementBuilder {
    fn count(&mut self, suite: &str, scope: &str, human: bool, auto: Option<bool>) {
        let e = self
            .tables
            .entry((suite.to_owned(), scope.to_owned()))
            .or_default();
        match auto {
            Some(a) => e.0.add(human, a),
            None => e.1 += 1,
        }
    }

    /// Count one current grade.
    pub fn add(&mut self, g: &GradedResult) {
        self.grades += 1;
        self.reviewers.insert(g.reviewer.clone());
        let human = g.grade.pass;
        let auto = match g.auto_status {
            CaseStatus::Passed => Some(true),
            CaseStatus::Failed => Some(false),
            CaseStatus::Error | CaseStatus::Unscorable => None,
        };
        self.count(&g.suite, RESULT_SCOPE, human, auto);
        // Per assertion type: pass when every scored assertion of the type passed, fail
        // when one failed, undecided when none was scored.
        let mut per_type: BTreeMap<&str, Option<bool>> = BTreeMap::new();
        for a in &g.assertions {
            let e = per_type.entry(a.type_name.as_str()).or_insert(None);
            *e = match (*e, a.pass) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), _) | (None, Some(true)) => Some(true),
                (None, None) => None,
            };
        }
        for (scope, auto) in per_type {
            self.count(&g.suite, scope, human, auto);
        }
    }

    /// Current grades counted.
    #[must_use]
    pub fn grades(&self) -> u64 {
        self.grades
    }

    /// Reviewers seen.
    #[must_use]
    pub fn reviewers(&self) -> Vec<String> {
        self.reviewers.iter().cloned().collect()
    }

    /// The tables, by suite, the `result` scope first, then assertion types by name.
    #[must_use]
    pub fn finish(self) -> Vec<Agreement> {
        let mut out: Vec<Agreement> = self
            .tables
            .into_iter()
            .map(|((suite, scope), (c, undecided))| Agreement {
                suite,
                scope,
                n: c.n(),
                agreement: c.agreement(),
                kappa: c.kappa(),
                false_pass_rate: c.false_pass_rate(),
                false_fail_rate: c.false_fail_rate(),
                confusion: c,
                undecided,
            })
            .collect();
        out.sort_by(|a, b| {
            (&a.suite, a.scope != RESULT_SCOPE, &a.scope).cmp(&(
                &b.suite,
                b.scope != RESULT_SCOPE,
                &b.scope,
            ))
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AutoAssertion, Grade};

    fn graded(human: bool, status: CaseStatus, asserts: &[(&str, Option<bool>)]) -> GradedResult {
        GradedResult {
            result_id: 1,
            suite: "s".into(),
            run_id: "r".into(),
            run_started_at: "t".into(),
            case_id: "c".into(),
            provider: "p".into(),
            sheet_id: "sh".into(),
            reviewer: "ann".into(),
            graded_at: "t".into(),
            grade: Grade {
                result_id: 1,
                pass: human,
                quality: None,
                hallucination: None,
                note: String::new(),
            },
            auto_status: status,
            assertions: asserts
                .iter()
                .map(|(t, p)| AutoAssertion {
                    type_name: (*t).into(),
                    pass: *p,
                })
                .collect(),
            superseded: 0,
        }
    }

    #[test]
    fn tables_per_result_and_assertion_type() {
        use CaseStatus::{Error, Failed, Passed, Unscorable};
        let mut b = AgreementBuilder::default();
        // Two false passes, one false fail, three agreements.
        b.add(&graded(false, Passed, &[("contains", Some(true))]));
        b.add(&graded(false, Passed, &[("contains", Some(true))]));
        b.add(&graded(
            true,
            Failed,
            &[("contains", Some(true)), ("regex", Some(false))],
        ));
        b.add(&graded(true, Passed, &[("contains", Some(true))]));
        b.add(&graded(false, Failed, &[("contains", Some(false))]));
        b.add(&graded(
            false,
            Failed,
            &[("contains", Some(false)), ("contains", Some(true))],
        ));
        b.add(&graded(true, Unscorable, &[("llm-rubric", None)]));
        b.add(&graded(true, Error, &[]));
        assert_eq!(b.grades(), 8);
        let t = b.finish();
        let scopes: Vec<&str> = t.iter().map(|a| a.scope.as_str()).collect();
        assert_eq!(scopes, ["result", "contains", "llm-rubric", "regex"]);
        let r = &t[0];
        assert_eq!(r.n, 6);
        assert_eq!(r.undecided, 2);
        // rows human pass/fail, columns auto pass/fail
        assert_eq!(r.confusion.counts, [[1, 1], [2, 2]]);
        assert!((r.false_pass_rate.unwrap() - 2.0 / 3.0).abs() < 1e-9);
        assert!((r.false_fail_rate.unwrap() - 1.0 / 3.0).abs() < 1e-9);
        // kappa of [[1,1],[2,2]]: p_o 0.5, p_e (2*3 + 4*3)/36 = 0.5 -> 0.
        assert!(r.kappa.unwrap().abs() < 1e-9);
        let contains = &t[1];
        // A result with one failing `contains` among two counts as a contains failure.
        assert_eq!(contains.confusion.counts, [[2, 0], [2, 2]]);
        assert_eq!(t[2].undecided, 1);
        assert_eq!(t[2].n, 0);
        assert_eq!(t[2].kappa, None);
        assert_eq!(t[3].confusion.counts, [[0, 1], [0, 0]]);
    }
}
