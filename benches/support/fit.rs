//! A learned combiner for the lexical check's signals: features of one `Lexical` result, and
//! a logistic regression fitted by gradient descent (no dependency, deterministic).

use evalwatch::score::lexical::{Lexical, UnitKind};

/// Names of the features, in the order `features` returns them.
pub const NAMES: [&str; 12] = [
    "share",
    "worst_claim",
    "number spans / checked",
    "name spans / checked",
    "word spans / checked",
    "negation span",
    "ln(1 + checked)",
    "ln(claims)",
    "claims with a gap / claims",
    "mean claim score",
    "nothing checkable",
    "question mark",
];

pub const N: usize = NAMES.len();

/// The features of one result (`output` is the text that was checked).
pub fn features(r: &Lexical, output: &str) -> [f64; N] {
    let checked = r.checked.max(1) as f64;
    let kind = |k: UnitKind| r.unsupported.iter().filter(|s| s.kind == k).count() as f64;
    let claims = r.claims.len().max(1) as f64;
    [
        r.share,
        r.worst_claim,
        kind(UnitKind::Number) / checked,
        kind(UnitKind::Name) / checked,
        kind(UnitKind::Word) / checked,
        f64::from(u8::from(kind(UnitKind::Negation) > 0.0)),
        (1.0 + r.checked as f64).ln(),
        claims.ln(),
        r.claims.iter().filter(|c| c.score > 0.0).count() as f64 / claims,
        r.claims.iter().map(|c| c.score).sum::<f64>() / claims,
        f64::from(u8::from(r.checked == 0)),
        f64::from(u8::from(output.contains('?'))),
    ]
}

/// A fitted model: `sigmoid(bias + sum(w[i] * (x[i] - mean[i]) / sd[i]))`.
pub struct Model {
    pub mean: [f64; N],
    pub sd: [f64; N],
    pub w: [f64; N],
    pub bias: f64,
}

impl Model {
    pub fn score(&self, x: &[f64; N]) -> f64 {
        let z: f64 = (0..N)
            .map(|i| self.w[i] * (x[i] - self.mean[i]) / self.sd[i])
            .sum::<f64>()
            + self.bias;
        1.0 / (1.0 + (-z).exp())
    }
}

/// Fit a logistic regression (L2 penalty `lambda`) to `rows` (features, label, weight).
pub fn fit(rows: &[([f64; N], bool, f64)], lambda: f64, iters: usize) -> Model {
    let total: f64 = rows.iter().map(|r| r.2).sum();
    let mut mean = [0.0; N];
    let mut sd = [0.0; N];
    for i in 0..N {
        mean[i] = rows.iter().map(|r| r.2 * r.0[i]).sum::<f64>() / total;
        let var = rows
            .iter()
            .map(|r| r.2 * (r.0[i] - mean[i]).powi(2))
            .sum::<f64>()
            / total;
        sd[i] = var.sqrt().max(1e-9);
    }
    let mut m = Model {
        mean,
        sd,
        w: [0.0; N],
        bias: 0.0,
    };
    let rate = 0.5;
    for _ in 0..iters {
        let mut gw = [0.0; N];
        let mut gb = 0.0;
        for (x, y, wt) in rows {
            let err = m.score(x) - f64::from(u8::from(*y));
            gb += wt * err;
            for i in 0..N {
                gw[i] += wt * err * (x[i] - m.mean[i]) / m.sd[i];
            }
        }
        m.bias -= rate * gb / total;
        for (w, g) in m.w.iter_mut().zip(gw) {
            *w -= rate * (g / total + lambda * *w);
        }
    }
    m
}
