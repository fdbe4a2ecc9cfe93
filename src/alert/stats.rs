//! The statistics behind alerts, written out so they can be checked against known values:
//! exact McNemar (binomial), Fisher's exact test on a 2x2 table, the two-sample
//! Kolmogorov-Smirnov test and the chi-square test of homogeneity.
//!
//! Every function is total: degenerate input (empty samples, zero counts, NaN) gives a
//! p-value of 1 ("no evidence"), never a panic or a NaN.

// The formulas keep the textbooks' one-letter names.
#![allow(clippy::many_single_char_names)]

/// `ln Γ(x)` for x > 0 (Lanczos, g = 7, n = 9; relative error below 1e-13 here).
#[must_use]
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x) Γ(1 - x) = π / sin(πx).
        let s = (std::f64::consts::PI * x).sin().abs();
        return std::f64::consts::PI.ln() - s.ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// `ln C(n, k)`.
#[must_use]
pub fn ln_choose(n: u64, k: u64) -> f64 {
    if k > n {
        return f64::NEG_INFINITY;
    }
    ln_gamma(n as f64 + 1.0) - ln_gamma(k as f64 + 1.0) - ln_gamma((n - k) as f64 + 1.0)
}

/// `ln(Σ exp(xs))`, stable.
fn log_sum_exp(xs: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = xs.filter(|x| !x.is_nan()).collect();
    let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

fn clamp_p(p: f64) -> f64 {
    if p.is_nan() { 1.0 } else { p.clamp(0.0, 1.0) }
}

/// P(X >= k) for X ~ Binomial(n, 1/2).
#[must_use]
pub fn binomial_half_upper_tail(n: u64, k: u64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n {
        return 0.0;
    }
    let ln_half_n = -(n as f64) * std::f64::consts::LN_2;
    clamp_p(log_sum_exp((k..=n).map(|i| ln_choose(n, i) + ln_half_n)).exp())
}

/// Exact McNemar test on the discordant pairs of a paired comparison: `b` pairs went
/// from pass to fail, `c` from fail to pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct McNemar {
    /// One-sided p-value of "more went pass->fail than chance": P(X >= b), X ~ Bin(b+c, 1/2).
    pub p_worse: f64,
    /// Two-sided p-value: min(1, 2 P(X <= min(b, c))).
    pub p_two_sided: f64,
}

#[must_use]
pub fn mcnemar_exact(b: u64, c: u64) -> McNemar {
    let n = b + c;
    if n == 0 {
        return McNemar {
            p_worse: 1.0,
            p_two_sided: 1.0,
        };
    }
    let lo = b.min(c);
    // P(X <= lo) = P(X >= n - lo) by symmetry.
    let two = clamp_p(2.0 * binomial_half_upper_tail(n, n - lo));
    McNemar {
        p_worse: binomial_half_upper_tail(n, b),
        p_two_sided: two,
    }
}

/// Fisher's exact test on the 2x2 table `[[a, b], [c, d]]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fisher {
    /// One-sided: P(A >= a) with the margins fixed (the first row holds more of the first
    /// column than chance). With rows (baseline, current) and columns (passed, failed) this
    /// is "the current run passes less than the baseline".
    pub p_greater: f64,
    /// One-sided: P(A <= a).
    pub p_less: f64,
    /// Two-sided: sum of the probabilities of tables no more likely than the observed one.
    pub p_two_sided: f64,
}

#[must_use]
pub fn fisher_exact(a: u64, b: u64, c: u64, d: u64) -> Fisher {
    let row1 = a + b;
    let col1 = a + c;
    let n = a + b + c + d;
    if row1 == 0 || col1 == 0 || row1 == n || col1 == n {
        return Fisher {
            p_greater: 1.0,
            p_less: 1.0,
            p_two_sided: 1.0,
        };
    }
    let lo = col1.saturating_sub(n - row1);
    let hi = row1.min(col1);
    let ln_denominator = ln_choose(n, col1);
    let ln_p = |x: u64| ln_choose(row1, x) + ln_choose(n - row1, col1 - x) - ln_denominator;
    let observed = ln_p(a);
    let greater = log_sum_exp((a..=hi).map(ln_p)).exp();
    let less = log_sum_exp((lo..=a).map(ln_p)).exp();
    // Relative tolerance as R and SciPy use, so that ties in floating point count.
    let cutoff = observed + (1.0 + 1e-7_f64).ln();
    let two = log_sum_exp((lo..=hi).map(ln_p).filter(|&lp| lp <= cutoff)).exp();
    Fisher {
        p_greater: clamp_p(greater),
        p_less: clamp_p(less),
        p_two_sided: clamp_p(two),
    }
}

/// Largest number of non-degenerate trials for which [`poisson_binomial_tails`] is exact
/// (an O(m²) convolution); above it, a normal approximation with continuity correction.
pub const POISSON_BINOMIAL_EXACT_MAX: usize = 4000;

/// Tails of S = Σ X_i, X_i ~ Bernoulli(p_i) independent: `(P(S <= s), P(S >= s))`.
/// Probabilities outside (0, 1) are clamped; NaN counts as 1/2.
#[must_use]
pub fn poisson_binomial_tails(probs: &[f64], s: u64) -> (f64, f64) {
    let mut fixed = 0u64;
    let mut ps = Vec::with_capacity(probs.len());
    for &p in probs {
        let p = if p.is_nan() { 0.5 } else { p.clamp(0.0, 1.0) };
        if p >= 1.0 {
            fixed += 1;
        } else if p > 0.0 {
            ps.push(p);
        }
    }
    if s < fixed {
        return (0.0, 1.0);
    }
    let k = (s - fixed) as usize;
    let m = ps.len();
    if k > m {
        return (1.0, 0.0);
    }
    if m > POISSON_BINOMIAL_EXACT_MAX {
        let mean: f64 = ps.iter().sum();
        let var: f64 = ps.iter().map(|p| p * (1.0 - p)).sum();
        let sd = var.sqrt().max(1e-12);
        let phi = |z: f64| 0.5 * erfc_precise(-z / std::f64::consts::SQRT_2);
        let lo = phi((k as f64 + 0.5 - mean) / sd);
        let hi = 1.0 - phi((k as f64 - 0.5 - mean) / sd);
        return (clamp_p(lo), clamp_p(hi));
    }
    let mut dist = vec![0.0f64; m + 1];
    dist[0] = 1.0;
    for (j, &p) in ps.iter().enumerate() {
        for c in (1..=j + 1).rev() {
            dist[c] = dist[c] * (1.0 - p) + dist[c - 1] * p;
        }
        dist[0] *= 1.0 - p;
    }
    let lo: f64 = dist[..=k].iter().sum();
    let hi: f64 = dist[k..].iter().sum();
    (clamp_p(lo), clamp_p(hi))
}

/// erfc with relative error below 1e-15 over the range used (W. J. Cody's rational
/// approximations would do; this uses the continued fraction / series split of `gamma_q`,
/// since erfc(x) = Q(1/2, x²) for x >= 0).
fn erfc_precise(x: f64) -> f64 {
    if x.is_nan() {
        return 1.0;
    }
    if x >= 0.0 {
        gamma_q(0.5, x * x)
    } else {
        2.0 - gamma_q(0.5, x * x)
    }
}

/// Two-sample Kolmogorov-Smirnov test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ks {
    /// sup |F1(x) - F2(x)|.
    pub statistic: f64,
    /// Asymptotic p-value (Kolmogorov distribution with Stephens' small-sample correction).
    pub p_value: f64,
}

/// The KS test of `x` against `y`. NaN values are ignored; an empty sample gives D = 0, p = 1.
#[must_use]
pub fn ks_two_sample(x: &[f64], y: &[f64]) -> Ks {
    let mut a: Vec<f64> = x.iter().copied().filter(|v| !v.is_nan()).collect();
    let mut b: Vec<f64> = y.iter().copied().filter(|v| !v.is_nan()).collect();
    if a.is_empty() || b.is_empty() {
        return Ks {
            statistic: 0.0,
            p_value: 1.0,
        };
    }
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (n, m) = (a.len(), b.len());
    let (mut i, mut j) = (0, 0);
    let mut d: f64 = 0.0;
    while i < n && j < m {
        let v = if a[i] <= b[j] { a[i] } else { b[j] };
        while i < n && a[i] <= v {
            i += 1;
        }
        while j < m && b[j] <= v {
            j += 1;
        }
        d = d.max((i as f64 / n as f64 - j as f64 / m as f64).abs());
    }
    let en = ((n * m) as f64 / (n + m) as f64).sqrt();
    let lambda = (en + 0.12 + 0.11 / en) * d;
    Ks {
        statistic: d,
        p_value: kolmogorov_q(lambda),
    }
}

/// Q_KS(λ) = 2 Σ_{j>=1} (-1)^{j-1} exp(-2 j² λ²): the survival function of the
/// Kolmogorov distribution.
#[must_use]
pub fn kolmogorov_q(lambda: f64) -> f64 {
    if lambda.is_nan() || lambda < 0.2 {
        return 1.0;
    }
    let mut sum = 0.0;
    let mut sign = 1.0;
    for j in 1..=100 {
        let j = f64::from(j);
        let term = sign * 2.0 * (-2.0 * j * j * lambda * lambda).exp();
        sum += term;
        if term.abs() < 1e-12 {
            break;
        }
        sign = -sign;
    }
    clamp_p(sum)
}

/// Chi-square test of homogeneity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChiSquare {
    pub statistic: f64,
    pub df: u64,
    pub p_value: f64,
}

/// Chi-square test that two count vectors over the same categories come from one
/// distribution (a 2 x k contingency table). Categories empty in both are dropped.
#[must_use]
pub fn chi_square_homogeneity(x: &[u64], y: &[u64]) -> ChiSquare {
    let k = x.len().max(y.len());
    let get = |v: &[u64], i: usize| v.get(i).copied().unwrap_or(0) as f64;
    let cols: Vec<(f64, f64)> = (0..k)
        .map(|i| (get(x, i), get(y, i)))
        .filter(|(a, b)| a + b > 0.0)
        .collect();
    let n1: f64 = cols.iter().map(|c| c.0).sum();
    let n2: f64 = cols.iter().map(|c| c.1).sum();
    if cols.len() < 2 || n1 == 0.0 || n2 == 0.0 {
        return ChiSquare {
            statistic: 0.0,
            df: 0,
            p_value: 1.0,
        };
    }
    let n = n1 + n2;
    let mut stat = 0.0;
    for (a, b) in &cols {
        let total = a + b;
        let e1 = n1 * total / n;
        let e2 = n2 * total / n;
        stat += (a - e1).powi(2) / e1 + (b - e2).powi(2) / e2;
    }
    let df = cols.len() as u64 - 1;
    ChiSquare {
        statistic: stat,
        df,
        p_value: chi_square_sf(stat, df as f64),
    }
}

/// P(X > x) for X ~ chi-square with `df` degrees of freedom.
#[must_use]
pub fn chi_square_sf(x: f64, df: f64) -> f64 {
    if x.is_nan() || df <= 0.0 {
        return 1.0;
    }
    if x <= 0.0 {
        return 1.0;
    }
    clamp_p(gamma_q(df / 2.0, x / 2.0))
}

/// The regularized upper incomplete gamma function Q(a, x).
fn gamma_q(a: f64, x: f64) -> f64 {
    if x < a + 1.0 {
        1.0 - gamma_p_series(a, x)
    } else {
        gamma_q_fraction(a, x)
    }
}

fn gamma_p_series(a: f64, x: f64) -> f64 {
    let mut sum = 1.0 / a;
    let mut term = sum;
    let mut ap = a;
    for _ in 0..10_000 {
        ap += 1.0;
        term *= x / ap;
        sum += term;
        if term.abs() < sum.abs() * 1e-15 {
            break;
        }
    }
    sum * (-x + a * x.ln() - ln_gamma(a)).exp()
}

fn gamma_q_fraction(a: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let mut b = x + 1.0 - a;
    let mut c = 1.0 / TINY;
    let mut d = 1.0 / b;
    let mut h = d;
    for i in 1..10_000 {
        let an = -f64::from(i) * (f64::from(i) - a);
        b += 2.0;
        d = an * d + b;
        if d.abs() < TINY {
            d = TINY;
        }
        c = b + an / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < 1e-15 {
            break;
        }
    }
    (-x + a * x.ln() - ln_gamma(a)).exp() * h
}

/// The standard normal quantile (Acklam's rational approximation, relative error below
/// 1.2e-9). `p` outside (0, 1) is clamped.
#[must_use]
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let p = if p.is_nan() {
        0.5
    } else {
        p.clamp(1e-300, 1.0 - 1e-16)
    };
    let low = 0.024_25;
    if p < low {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - low {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() <= tol, "{a} vs {b} (tol {tol})");
    }

    #[test]
    fn ln_gamma_matches_factorials() {
        close(ln_gamma(1.0), 0.0, 1e-12);
        close(ln_gamma(5.0), 24f64.ln(), 1e-12);
        close(ln_gamma(0.5), std::f64::consts::PI.sqrt().ln(), 1e-12);
        // ln(170!) = 706.5730622457874
        close(ln_gamma(171.0), 706.573_062_245_787_4, 1e-9);
        close(ln_choose(10, 3), 120f64.ln(), 1e-12);
        assert_eq!(ln_choose(3, 4), f64::NEG_INFINITY);
    }

    #[test]
    fn mcnemar_exact_b10_c2() {
        // P(X <= 2 | n=12, 1/2) = (1 + 12 + 66) / 4096 = 79/4096.
        let m = mcnemar_exact(10, 2);
        close(m.p_two_sided, 158.0 / 4096.0, 1e-12); // 0.038574...
        close(m.p_worse, 79.0 / 4096.0, 1e-12);
        // The other direction gives no evidence of getting worse.
        let r = mcnemar_exact(2, 10);
        close(r.p_worse, 1.0 - 13.0 / 4096.0, 1e-12);
        close(r.p_two_sided, 158.0 / 4096.0, 1e-12);
        assert_eq!(mcnemar_exact(0, 0).p_worse, 1.0);
        assert_eq!(mcnemar_exact(5, 5).p_two_sided, 1.0);
    }

    #[test]
    fn binomial_tail_large_n_is_finite() {
        let p = binomial_half_upper_tail(10_000, 5_400);
        assert!(p > 0.0 && p < 1e-14, "{p}");
        close(binomial_half_upper_tail(10_000, 0), 1.0, 0.0);
        assert_eq!(binomial_half_upper_tail(3, 4), 0.0);
    }

    #[test]
    fn fisher_lady_tasting_tea() {
        // Fisher's own example: [[3, 1], [1, 3]].
        let f = fisher_exact(3, 1, 1, 3);
        close(f.p_greater, 17.0 / 70.0, 1e-12); // 0.242857
        close(f.p_two_sided, 34.0 / 70.0, 1e-12); // 0.485714
        close(f.p_less, 69.0 / 70.0, 1e-12);
    }

    #[test]
    fn fisher_textbook_table() {
        // [[8, 2], [1, 5]]: the hypergeometric weights of a = 3..=9 are
        // 120, 1260, 3780, 4200, 1800, 270, 10 out of C(16, 9) = 11440.
        let f = fisher_exact(8, 2, 1, 5);
        close(f.p_two_sided, 400.0 / 11_440.0, 1e-12); // 0.034965, as R's fisher.test
        close(f.p_greater, 280.0 / 11_440.0, 1e-12);
        // Degenerate margins tell nothing.
        assert_eq!(fisher_exact(0, 0, 3, 4).p_two_sided, 1.0);
        assert_eq!(fisher_exact(5, 0, 7, 0).p_greater, 1.0);
    }

    #[test]
    fn fisher_large_counts_stay_in_range() {
        let f = fisher_exact(4500, 500, 400, 100);
        assert!(f.p_greater < 1e-6 && f.p_greater > 0.0, "{f:?}");
        assert!(f.p_less > 0.99, "{f:?}");
    }

    #[test]
    fn ks_statistic_on_known_samples() {
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        let y = [6.0, 7.0, 8.0, 9.0, 10.0];
        close(ks_two_sample(&x, &y).statistic, 1.0, 1e-12);
        // Interleaved: F_x - F_y peaks at 1/5 (x = 1, 3, 5, 7, 9 vs 2, 4, 6, 8, 10).
        let a = [1.0, 3.0, 5.0, 7.0, 9.0];
        let b = [2.0, 4.0, 6.0, 8.0, 10.0];
        close(ks_two_sample(&a, &b).statistic, 0.2, 1e-12);
        // With ties: x = [1, 2, 2, 3], y = [2, 2, 3, 4]; at 1: 1/4 - 0, at 2: 3/4 - 2/4,
        // at 3: 1 - 3/4 -> D = 1/4.
        close(
            ks_two_sample(&[1.0, 2.0, 2.0, 3.0], &[2.0, 2.0, 3.0, 4.0]).statistic,
            0.25,
            1e-12,
        );
        let same = ks_two_sample(&a, &a);
        assert_eq!(same.statistic, 0.0);
        assert_eq!(same.p_value, 1.0);
        assert_eq!(ks_two_sample(&[], &a).p_value, 1.0);
    }

    #[test]
    fn ks_p_value_separates_shift_from_noise() {
        let base: Vec<f64> = (0..400).map(|i| f64::from(i % 100)).collect();
        let shifted: Vec<f64> = base.iter().map(|v| v + 30.0).collect();
        let ks = ks_two_sample(&base, &shifted);
        close(ks.statistic, 0.3, 1e-12);
        assert!(ks.p_value < 1e-10, "{ks:?}");
        let nudged: Vec<f64> = base.iter().map(|v| v + 0.5).collect();
        assert!(ks_two_sample(&base, &nudged).p_value > 0.5);
        // Q_KS(1.36) ≈ 0.0494, the classic 5% critical value.
        close(kolmogorov_q(1.36), 0.0494, 5e-4);
    }

    #[test]
    fn chi_square_survival_known_values() {
        close(chi_square_sf(3.841_458_820_694_124, 1.0), 0.05, 1e-9);
        close(chi_square_sf(2.0, 2.0), (-1.0f64).exp(), 1e-12);
        close(chi_square_sf(18.307_038_053_275_146, 10.0), 0.05, 1e-9);
        assert_eq!(chi_square_sf(0.0, 3.0), 1.0);
        assert_eq!(chi_square_sf(f64::NAN, 3.0), 1.0);
    }

    #[test]
    fn chi_square_homogeneity_table() {
        // [[10, 20, 30], [30, 20, 10]]: expected 20 everywhere, statistic = 4 * 100 / 20 = 20.
        let c = chi_square_homogeneity(&[10, 20, 30], &[30, 20, 10]);
        close(c.statistic, 20.0, 1e-12);
        assert_eq!(c.df, 2);
        close(c.p_value, (-10.0f64).exp(), 1e-12);
        let same = chi_square_homogeneity(&[5, 5], &[10, 10]);
        close(same.statistic, 0.0, 1e-12);
        close(same.p_value, 1.0, 1e-12);
        assert_eq!(chi_square_homogeneity(&[3], &[4]).p_value, 1.0);
    }

    #[test]
    fn poisson_binomial_reduces_to_the_binomial() {
        // Twelve fair coins: McNemar with b + c = 12.
        let half = vec![0.5; 12];
        let (lo, hi) = poisson_binomial_tails(&half, 2);
        close(lo, 79.0 / 4096.0, 1e-12);
        close(hi, 1.0 - 13.0 / 4096.0, 1e-12);
        // Certain trials shift the count; impossible ones do nothing.
        let mixed = [1.0, 1.0, 0.0, 0.5, 0.5];
        assert_eq!(poisson_binomial_tails(&mixed, 1), (0.0, 1.0));
        close(poisson_binomial_tails(&mixed, 2).0, 0.25, 1e-12);
        close(poisson_binomial_tails(&mixed, 4).1, 0.25, 1e-12);
        assert_eq!(poisson_binomial_tails(&mixed, 5), (1.0, 0.0));
        // Unequal probabilities: P(S = 0) = 0.9 * 0.8.
        close(poisson_binomial_tails(&[0.1, 0.2], 0).0, 0.72, 1e-12);
        // The normal approximation agrees with the exact sum near the centre.
        let many = vec![0.3; 5000];
        let (lo, _) = poisson_binomial_tails(&many, 1500);
        close(lo, 0.5056, 2e-3);
        close(erfc_precise(1.0), 0.157_299_207_050_285_13, 1e-13);
    }

    #[test]
    fn normal_quantile_known_values() {
        close(normal_quantile(0.975), 1.959_963_984_540_054, 1e-7);
        close(normal_quantile(0.995), 2.575_829_303_548_901, 1e-7);
        close(normal_quantile(0.5), 0.0, 1e-9);
        close(normal_quantile(0.01), -2.326_347_874_040_841, 1e-7);
    }
}
