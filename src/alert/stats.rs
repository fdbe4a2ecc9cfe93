//! The statistics behind alerts, checked against known values: exact McNemar (binomial),
//! Fisher's exact test on a 2x2 table, the two-sample Kolmogorov-Smirnov test and the
//! chi-square test of homogeneity. The special functions (ln Γ, erfc, the incomplete gamma
//! function, the normal quantile) come from `statrs`; the exact tests and the Kolmogorov
//! series, which no maintained crate offers, are written out here.
//!
//! Every function is total: degenerate input (empty samples, zero counts, NaN) gives a
//! p-value of 1 ("no evidence"), never a panic or a NaN.

// The formulas keep the textbooks' one-letter names.
#![allow(clippy::many_single_char_names)]

/// `ln Γ(x)` for x > 0 (`statrs`).
#[must_use]
pub fn ln_gamma(x: f64) -> f64 {
    statrs::function::gamma::ln_gamma(x)
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
        let phi = |z: f64| 0.5 * statrs::function::erf::erfc(-z / std::f64::consts::SQRT_2);
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
    clamp_p(statrs::function::gamma::gamma_ur(df / 2.0, x / 2.0))
}

/// The standard normal quantile (`statrs`). `p` outside (0, 1) is clamped.
#[must_use]
pub fn normal_quantile(p: f64) -> f64 {
    let p = if p.is_nan() {
        0.5
    } else {
        p.clamp(1e-300, 1.0 - 1e-16)
    };
    // Φ⁻¹(p) = -√2 · erfc⁻¹(2p).
    -std::f64::consts::SQRT_2 * statrs::function::erf::erfc_inv(2.0 * p)
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
        // statrs's erfc is good to ~5e-11 here (the hand-written one was to 1e-13): p-values
        // may move by no more than 1e-9.
        close(
            statrs::function::erf::erfc(1.0),
            0.157_299_207_050_285_13,
            1e-9,
        );
    }

    #[test]
    fn normal_quantile_known_values() {
        close(normal_quantile(0.975), 1.959_963_984_540_054, 1e-7);
        close(normal_quantile(0.995), 2.575_829_303_548_901, 1e-7);
        close(normal_quantile(0.5), 0.0, 1e-9);
        close(normal_quantile(0.01), -2.326_347_874_040_841, 1e-7);
    }

    /// P-values computed by the hand-written special functions this module had before it
    /// used `statrs` (Lanczos ln Γ, a series/continued-fraction incomplete gamma, Acklam's
    /// normal quantile): the swap must not move any of them by more than 1e-9.
    #[test]
    #[allow(clippy::unreadable_literal, clippy::excessive_precision)]
    fn statrs_swap_changed_no_p_value_beyond_1e_9() {
        let tol = 1e-9;
        close(chi_square_sf(0.5_f64, 1_f64), 4.7950012218695315e-1, tol);
        close(chi_square_sf(3_f64, 2_f64), 2.2313016014842935e-1, tol);
        close(chi_square_sf(7.8_f64, 3_f64), 5.03310978598534e-2, tol);
        close(chi_square_sf(20_f64, 5_f64), 1.2497305630313747e-3, tol);
        close(chi_square_sf(45_f64, 12_f64), 1.0305007240780814e-5, tol);
        close(chi_square_sf(0.1_f64, 7_f64), 9.999976885812014e-1, tol);
        close(chi_square_sf(100_f64, 40_f64), 4.791357300338062e-7, tol);
        close(chi_square_sf(250_f64, 150_f64), 5.534914104395246e-7, tol);
        close_rel(normal_quantile(0.000000000001), -7.0344838179376135e0, 2e-9);
        close_rel(normal_quantile(0.000001), -4.753424313836687e0, 2e-9);
        close_rel(normal_quantile(0.001), -3.090232304709404e0, 2e-9);
        close_rel(normal_quantile(0.01), -2.326347874388028e0, 2e-9);
        close_rel(normal_quantile(0.025), -1.959963986120195e0, 2e-9);
        close_rel(normal_quantile(0.05), -1.6448536251336814e0, 2e-9);
        close_rel(normal_quantile(0.3), -5.244005132792953e-1, 2e-9);
        close_rel(normal_quantile(0.5), 0e0, 2e-9);
        close_rel(normal_quantile(0.8), 8.416212327266186e-1, 2e-9);
        close_rel(normal_quantile(0.95), 1.644853625133699e0, 2e-9);
        close_rel(normal_quantile(0.999), 3.090232304709404e0, 2e-9);
        close_rel(normal_quantile(0.999999), 4.753424313830874e0, 2e-9);
        let f = fisher_exact(3, 1, 1, 3);
        close(f.p_two_sided, 4.8571428571428105e-1, tol);
        close(f.p_greater, 2.4285714285714052e-1, tol);
        close(f.p_less, 9.85714285714274e-1, tol);
        let f = fisher_exact(10, 2, 3, 15);
        close(f.p_two_sided, 5.367241191434423e-4, tol);
        close(f.p_greater, 4.651809433629104e-4, tol);
        close(f.p_less, 9.99984519018691e-1, tol);
        let f = fisher_exact(40, 60, 55, 45);
        close(f.p_two_sided, 4.716548538300183e-2, tol);
        close(f.p_greater, 9.88381650032477e-1, tol);
        close(f.p_less, 2.3582742691500923e-2, tol);
        let f = fisher_exact(0, 9, 4, 2);
        close(f.p_two_sided, 1.0989010989011032e-2, tol);
        close(f.p_greater, 1e0, tol);
        close(f.p_less, 1.0989010989011032e-2, tol);
        let m = mcnemar_exact(10, 2);
        close(m.p_two_sided, 3.8574218749999854e-2, tol);
        close(m.p_worse, 1.9287109374999927e-2, tol);
        let m = mcnemar_exact(30, 18);
        close(m.p_two_sided, 1.1140289106101528e-1, tol);
        close(m.p_worse, 5.570144553050764e-2, tol);
        let m = mcnemar_exact(200, 150);
        close(m.p_two_sided, 8.720036530557527e-3, tol);
        close(m.p_worse, 4.360018265278764e-3, tol);
        let (lo, hi) = poisson_binomial_tails(&[0.9, 0.8, 0.95, 0.6, 0.7, 0.99, 0.85], 2);
        close(lo, 8.752000000000003e-4, tol);
        close(hi, 9.9997453e-1, tol);
        let (lo, hi) = poisson_binomial_tails(&[0.9, 0.8, 0.95, 0.6, 0.7, 0.99, 0.85], 4);
        close(lo, 8.994370000000003e-2, tol);
        close(hi, 9.874591000000001e-1, tol);
        let (lo, hi) = poisson_binomial_tails(&[0.9, 0.8, 0.95, 0.6, 0.7, 0.99, 0.85], 6);
        close(lo, 7.5825388e-1, tol);
        close(hi, 6.516393300000001e-1, tol);
        let probs: Vec<f64> = (0..300)
            .map(|i| 0.5 + 0.4 * (f64::from(i) * 0.37).sin())
            .collect();
        let (lo, hi) = poisson_binomial_tails(&probs, 120);
        close(lo, 5.902633435465717e-6, tol);
        close(hi, 9.999969330720706e-1, tol);
        let probs: Vec<f64> = (0..300)
            .map(|i| 0.5 + 0.4 * (f64::from(i) * 0.37).sin())
            .collect();
        let (lo, hi) = poisson_binomial_tails(&probs, 150);
        close(lo, 4.289354603930285e-1, tol);
        close(hi, 6.251231890586828e-1, tol);
        let probs: Vec<f64> = (0..300)
            .map(|i| 0.5 + 0.4 * (f64::from(i) * 0.37).sin())
            .collect();
        let (lo, hi) = poisson_binomial_tails(&probs, 180);
        close(lo, 9.999719151539849e-1, tol);
        close(hi, 5.0645003008316795e-5, tol);
        let xs: Vec<f64> = (0..50).map(|i| (f64::from(i) * 1.7).sin()).collect();
        let ys: Vec<f64> = (0..60).map(|i| (f64::from(i) * 0.9).cos() + 0.3).collect();
        let k = ks_two_sample(&xs, &ys);
        close(k.statistic, 2.6e-1, tol);
        close(k.p_value, 4.0924654545619533e-2, tol);
        let c = chi_square_homogeneity(&[30, 50, 20], &[45, 35, 20]);
        close(c.statistic, 5.647058823529411e0, tol);
        close(c.p_value, 5.939593960520483e-2, tol);
        let probs: Vec<f64> = (0..5000)
            .map(|i| 0.5 + 0.4 * (f64::from(i) * 0.37).sin())
            .collect();
        let (lo, hi) = poisson_binomial_tails(&probs, 2400);
        close(lo, 2.500187812961822e-4, tol);
        close(hi, 9.997801538397058e-1, tol);
        let probs: Vec<f64> = (0..5000)
            .map(|i| 0.5 + 0.4 * (f64::from(i) * 0.37).sin())
            .collect();
        let (lo, hi) = poisson_binomial_tails(&probs, 2500);
        close(lo, 4.798061456830103e-1, tol);
        close(hi, 5.338458849621466e-1, tol);
        let probs: Vec<f64> = (0..5000)
            .map(|i| 0.5 + 0.4 * (f64::from(i) * 0.37).sin())
            .collect();
        let (lo, hi) = poisson_binomial_tails(&probs, 2560);
        close(lo, 9.776473904622396e-1, tol);
        close(hi, 2.42411389832059e-2, tol);
    }

    fn close_rel(a: f64, b: f64, rel: f64) {
        assert!(
            (a - b).abs() <= rel * b.abs().max(1e-300),
            "{a} vs {b} (relative {rel})"
        );
    }
}
