//! Human review: grades, the automatic verdicts they are compared with, and agreement
//! arithmetic (confusion matrix, Cohen's kappa). Plain data and pure functions.

use serde::{Deserialize, Serialize};

use super::CaseStatus;

/// One grade of a result by a person, as a grades file or `review serve` delivers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grade {
    /// `results.id` of the graded result.
    pub result_id: i64,
    /// The reviewer's verdict: pass (true) or fail.
    pub pass: bool,
    /// Quality 1-5, when given.
    pub quality: Option<u8>,
    /// Whether the output hallucinates, when said.
    pub hallucination: Option<bool>,
    pub note: String,
}

/// An assertion's automatic verdict on a graded result: `None` when it was unscorable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AutoAssertion {
    pub type_name: String,
    pub pass: Option<bool>,
}

/// The current grade of a result by one reviewer, with the automatic verdicts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradedResult {
    pub result_id: i64,
    pub suite: String,
    pub run_id: String,
    /// When the graded result's run started (RFC 3339).
    pub run_started_at: String,
    pub case_id: String,
    pub provider: String,
    pub sheet_id: String,
    pub reviewer: String,
    pub graded_at: String,
    pub grade: Grade,
    /// The result's stored status.
    pub auto_status: CaseStatus,
    pub assertions: Vec<AutoAssertion>,
    /// Earlier grades of this result by this reviewer that this one superseded.
    pub superseded: u64,
}

/// A 2x2 confusion matrix of human (rows) against automatic (columns) verdicts; index 0 is
/// pass, 1 is fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Confusion {
    pub counts: [[u64; 2]; 2],
}

impl Confusion {
    /// Count one pair of verdicts.
    pub fn add(&mut self, human_pass: bool, auto_pass: bool) {
        self.counts[usize::from(!human_pass)][usize::from(!auto_pass)] += 1;
    }

    /// Pairs counted.
    #[must_use]
    pub fn n(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    /// Share of pairs where both agree; None with no pair.
    #[must_use]
    pub fn agreement(&self) -> Option<f64> {
        let n = self.n();
        (n > 0).then(|| (self.counts[0][0] + self.counts[1][1]) as f64 / n as f64)
    }

    /// Cohen's kappa of the table (see [`cohen_kappa`]).
    #[must_use]
    pub fn kappa(&self) -> Option<f64> {
        cohen_kappa(&[&self.counts[0][..], &self.counts[1][..]])
    }

    /// Of the results the automatic verdict passed, the share a person failed.
    #[must_use]
    pub fn false_pass_rate(&self) -> Option<f64> {
        let auto_pass = self.counts[0][0] + self.counts[1][0];
        (auto_pass > 0).then(|| self.counts[1][0] as f64 / auto_pass as f64)
    }

    /// Of the results the automatic verdict failed, the share a person passed.
    #[must_use]
    pub fn false_fail_rate(&self) -> Option<f64> {
        let auto_fail = self.counts[0][1] + self.counts[1][1];
        (auto_fail > 0).then(|| self.counts[0][1] as f64 / auto_fail as f64)
    }
}

/// Cohen's kappa of a square contingency table of two raters (rows: rater A's category,
/// columns: rater B's): `(p_o - p_e) / (1 - p_e)`, with `p_o` the observed agreement and
/// `p_e` the agreement expected by chance from the marginals.
///
/// None when it is undefined: an empty or non-square table, or `p_e = 1` (both raters used
/// one and the same category for every item, so agreement cannot be told from chance).
#[must_use]
pub fn cohen_kappa(table: &[&[u64]]) -> Option<f64> {
    let k = table.len();
    if k == 0 || table.iter().any(|row| row.len() != k) {
        return None;
    }
    let n: u64 = table.iter().flat_map(|r| r.iter()).sum();
    if n == 0 {
        return None;
    }
    let n = n as f64;
    let observed: f64 = (0..k).map(|i| table[i][i] as f64).sum::<f64>() / n;
    let chance: f64 = (0..k)
        .map(|i| {
            let row: u64 = table[i].iter().sum();
            let col: u64 = table.iter().map(|r| r[i]).sum();
            (row as f64 / n) * (col as f64 / n)
        })
        .sum();
    if (1.0 - chance).abs() < 1e-12 {
        return None;
    }
    Some((observed - chance) / (1.0 - chance))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-4)
    }

    #[test]
    fn kappa_of_textbook_tables() {
        // 50 items: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no: p_o 0.7, p_e 0.5, kappa 0.4.
        assert!(close(cohen_kappa(&[&[20, 5], &[10, 15]]), 0.4));
        // Same observed agreement (0.6), different marginals, different kappa.
        assert!(close(cohen_kappa(&[&[45, 15], &[25, 15]]), 0.1304));
        assert!(close(cohen_kappa(&[&[25, 35], &[5, 35]]), 0.2593));
        // Three categories: p_o 0.70; marginals 32/34/34 and 35/36/29 give p_e 0.333.
        let t: [&[u64]; 3] = [&[25, 2, 5], &[3, 26, 5], &[7, 8, 19]];
        assert!(close(cohen_kappa(&t), 0.5502));
    }

    #[test]
    fn kappa_of_perfect_chance_and_opposite_agreement() {
        assert!(close(cohen_kappa(&[&[10, 0], &[0, 10]]), 1.0));
        assert!(close(cohen_kappa(&[&[25, 25], &[25, 25]]), 0.0));
        assert!(close(cohen_kappa(&[&[0, 10], &[10, 0]]), -1.0));
    }

    #[test]
    fn kappa_is_undefined_for_degenerate_tables() {
        // Both raters said pass to everything: p_e = 1.
        assert_eq!(cohen_kappa(&[&[12, 0], &[0, 0]]), None);
        assert_eq!(cohen_kappa(&[&[0, 0], &[0, 0]]), None);
        assert_eq!(cohen_kappa(&[]), None);
        assert_eq!(cohen_kappa(&[&[1, 2]]), None, "not square");
        // One rater constant, the other not: defined, and 0 (no better than chance).
        assert!(close(cohen_kappa(&[&[6, 4], &[0, 0]]), 0.0));
    }

    #[test]
    fn confusion_rates() {
        let mut c = Confusion::default();
        for (h, a, times) in [
            (true, true, 6),
            (false, true, 2),
            (true, false, 1),
            (false, false, 3),
        ] {
            for _ in 0..times {
                c.add(h, a);
            }
        }
        assert_eq!(c.n(), 12);
        assert_eq!(c.counts, [[6, 1], [2, 3]]);
        assert!(close(c.false_pass_rate(), 2.0 / 8.0));
        assert!(close(c.false_fail_rate(), 1.0 / 4.0));
        assert!(close(c.agreement(), 9.0 / 12.0));
        assert!(close(
            c.kappa(),
            cohen_kappa(&[&[6, 1], &[2, 3]]).unwrap_or(f64::NAN)
        ));
        let empty = Confusion::default();
        assert_eq!(empty.false_pass_rate(), None);
        assert_eq!(empty.false_fail_rate(), None);
        assert_eq!(empty.kappa(), None);
    }
}
