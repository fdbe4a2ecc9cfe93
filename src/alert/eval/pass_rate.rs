//! The pass-rate change test (`pass_rate` with `drop`/`rise`, test `auto`): per-case
//! outcomes, known-flaky cases, the flips against the baseline, and the paired exact test
//! (McNemar with one baseline run, a permutation test over trailing runs, Fisher's exact
//! test on pooled counts when no case is in common).

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use fnv::FnvHashMap;

use super::text::{fmt_change, fmt_p, fmt_value, p_text};
use super::{
    EvalInput, Finding, Flip, MAX_FLIPS, RunSnapshot, TestResult, Verdict, concentration, has_tag,
};
use crate::alert::rule::{Condition, Rule};
use crate::alert::stats;
use crate::model::CaseStatus;

type Key<'r> = (&'r str, u32);

/// Pass/fail of each (case, sample) of one provider (errors and unscorable left out), in key
/// order, each key once (its last result).
fn outcomes<'r>(
    run: &'r RunSnapshot,
    provider: &str,
    tag: Option<&str>,
    case_tags: &HashMap<String, Vec<String>>,
) -> Vec<(Key<'r>, bool)> {
    let mut decided: Vec<(Key<'r>, bool)> = Vec::with_capacity(run.statuses.len());
    for (case, p, sample, status) in &run.statuses {
        if p != provider || !has_tag(case_tags, case, tag) {
            continue;
        }
        match status {
            CaseStatus::Passed => decided.push(((case.as_str(), *sample), true)),
            CaseStatus::Failed => decided.push(((case.as_str(), *sample), false)),
            CaseStatus::Error | CaseStatus::Unscorable => {}
        }
    }
    // Stable: of equal keys, the last one read stays last, and is the one kept.
    decided.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<(Key<'r>, bool)> = Vec::with_capacity(decided.len());
    for item in decided {
        match out.last_mut() {
            Some(last) if last.0 == item.0 => *last = item,
            _ => out.push(item),
        }
    }
    out
}

/// [`outcomes`] for lookups.
fn outcome_map<'r>(o: &[(Key<'r>, bool)]) -> FnvHashMap<Key<'r>, bool> {
    o.iter().copied().collect()
}

/// Known-flaky cases: mixed pass/fail outcomes among the samples of one run (a window run
/// or the current one), or an outcome that changed at least twice across the window runs
/// (pass -> fail -> pass). A single change that stays is a step, not flakiness.
fn flaky_cases(provider: &str, tag: Option<&str>, input: &EvalInput<'_>) -> BTreeSet<String> {
    let mut flaky = BTreeSet::new();
    // case -> (last outcome seen, changes), walking the window oldest first.
    let mut seq: FnvHashMap<&str, (bool, u32)> = FnvHashMap::default();
    let runs = input
        .window
        .iter()
        .rev()
        .chain(std::iter::once(input.current));
    let n_window = input.window.len();
    for (i, run) in runs.enumerate() {
        let mut per_case: FnvHashMap<&str, (bool, bool)> = FnvHashMap::default();
        for (case, p, _, status) in &run.statuses {
            if p != provider || !has_tag(input.case_tags, case, tag) {
                continue;
            }
            let e = per_case.entry(case.as_str()).or_default();
            match status {
                CaseStatus::Passed => e.0 = true,
                CaseStatus::Failed => e.1 = true,
                CaseStatus::Error | CaseStatus::Unscorable => {}
            }
        }
        for (case, (passed, failed)) in per_case {
            if passed && failed {
                flaky.insert(case.to_owned());
                continue;
            }
            if i >= n_window || !(passed || failed) {
                continue; // the current run counts for mixed samples only
            }
            match seq.get_mut(case) {
                Some((last, changes)) => {
                    if *last != passed {
                        *changes += 1;
                        *last = passed;
                    }
                }
                None => {
                    seq.insert(case, (passed, 0));
                }
            }
        }
    }
    flaky.extend(
        seq.into_iter()
            .filter(|(_, (_, changes))| *changes >= 2)
            .map(|(c, _)| c.to_owned()),
    );
    flaky
}

fn status_word(pass: bool) -> &'static str {
    if pass { "passed" } else { "failed" }
}

/// The pass-rate change test.
pub(super) fn pass_rate_change(
    rule: &Rule,
    provider: &str,
    input: &EvalInput<'_>,
    mut f: Finding,
) -> Finding {
    let tag = rule.tag.as_deref();
    if input.baseline.is_empty() {
        f.detail = format!("no {} baseline run yet", rule.baseline.label());
        return f;
    }
    let (drop, threshold) = match rule.condition {
        Condition::Drop(d) => (true, d),
        Condition::Rise(d) => (false, d),
        _ => return f,
    };
    let flaky = flaky_cases(provider, tag, input);
    let cur = outcomes(input.current, provider, tag, input.case_tags);
    // The baseline runs' outcomes, newest first: the first is the latest run.
    let base_maps: Vec<FnvHashMap<Key<'_>, bool>> = input
        .baseline
        .iter()
        .map(|run| outcome_map(&outcomes(run, provider, tag, input.case_tags)))
        .collect();
    // Every case that went the bad way against the baseline (for a drop: fails now,
    // passed in most of the baseline runs where it has an outcome; not only the flips since
    // the latest run), stable and flaky apart.
    let mut flips = Vec::new();
    let mut flaky_flips = Vec::new();
    for &(key, now) in &cur {
        let (mut n, mut t) = (0u32, 0u32);
        for b in &base_maps {
            if let Some(&pass) = b.get(&key) {
                n += 1;
                t += u32::from(pass);
            }
        }
        let before = match (2 * t).cmp(&n) {
            std::cmp::Ordering::Greater => Some(true),
            std::cmp::Ordering::Less => Some(false),
            // No baseline outcome, or as often passed as failed.
            std::cmp::Ordering::Equal => None,
        };
        if let Some(before) = before
            && before != now
            && before == drop
        {
            let flip = Flip {
                case_id: key.0.to_owned(),
                sample: key.1,
                from: status_word(before),
                to: status_word(now),
            };
            if flaky.contains(key.0) {
                flaky_flips.push(flip);
            } else {
                flips.push(flip);
            }
        }
    }
    f.flipped_total = flips.len();
    f.flaky_flipped_total = flaky_flips.len();
    flips.truncate(MAX_FLIPS);
    flaky_flips.truncate(MAX_FLIPS);
    f.flipped = flips;
    f.flaky_flipped = flaky_flips;

    let all = paired_test(&cur, &base_maps, drop, |_| true);
    let stable = paired_test(&cur, &base_maps, drop, |k| !flaky.contains(k.0));
    let (worse, se, test, stable_p) = if let Some(all) = all {
        // Known-flaky cases do not trigger alone: the test without them must agree (p = 1
        // when every case with a baseline is flaky).
        let stable_p = stable.map_or(1.0, |s| s.test.p_value);
        (all.worse, all.se, all.test, Some(stable_p))
    } else {
        // No case in common with the baseline: compare pooled counts (unpaired).
        let count = |o: &mut dyn Iterator<Item = bool>| {
            o.fold(
                (0u64, 0u64),
                |(p, q), pass| {
                    if pass { (p + 1, q) } else { (p, q + 1) }
                },
            )
        };
        let (mut pb, mut fb) = (0, 0);
        for o in &base_maps {
            let (p, q) = count(&mut o.values().copied());
            pb += p;
            fb += q;
        }
        let (pc, fc) = count(&mut cur.iter().map(|(_, pass)| *pass));
        let (nb, nc) = ((pb + fb) as f64, (pc + fc) as f64);
        if nb == 0.0 || nc == 0.0 {
            f.detail = "no passed or failed results to compare with the baseline".into();
            return f;
        }
        let fisher = stats::fisher_exact(pb, fb, pc, fc);
        let (rb, rc) = (pb as f64 / nb, pc as f64 / nc);
        let se = (rb * (1.0 - rb) / nb + rc * (1.0 - rc) / nc).sqrt();
        (
            if drop { rb - rc } else { rc - rb },
            se,
            TestResult {
                name: "fisher",
                p_value: if drop {
                    fisher.p_greater
                } else {
                    fisher.p_less
                },
                statistic: None,
                n: pb + fb + pc + fc,
            },
            None,
        )
    };
    // Both questions at `alpha`: "no change" is rejected, and "a change of at least the
    // threshold" is not (the one-sided upper confidence bound reaches it).
    let z = stats::normal_quantile(1.0 - rule.alpha);
    let upper = worse + z * se;
    let stable_ok = stable_p.is_none_or(|p| p < rule.alpha);
    let significant = test.p_value < rule.alpha && stable_ok;
    let large_enough = worse > 0.0 && upper >= threshold;
    let word = if drop { "drop" } else { "rise" };
    let value = f.value.unwrap_or(0.0);
    let pct = |x: f64| format!("{:.1}", x * 100.0);
    let conf = format!("{:.0}%", (1.0 - rule.alpha) * 100.0);
    // A rate moves by at most 100 points: the normal bound can pass that, the words do not.
    let bound = upper.min(1.0);
    // The change between the two numbers shown, in points (absolute) and percent
    // (relative); the test's paired estimate is said apart when it differs (it counts only
    // the cases with a baseline outcome, and averages the trailing runs case by case).
    let mut detail = match f.baseline_value {
        Some(b) => format!(
            "pass_rate {} vs baseline {}: {}",
            fmt_value("pass_rate", value),
            fmt_value("pass_rate", b),
            fmt_change("pass_rate", value, b)
        ),
        None => format!("pass_rate {}", fmt_value("pass_rate", value)),
    };
    let shown_worse = f
        .baseline_value
        .map(|b| if drop { b - value } else { value - b });
    if shown_worse.is_none_or(|w| (w - worse).abs() >= 0.0005) {
        let paired = if drop { -worse } else { worse };
        let _ = write!(
            detail,
            "; case by case over {} result(s) with a baseline outcome: {}",
            test.n,
            if paired == 0.0 {
                "unchanged".to_owned()
            } else {
                format!(
                    "{} {} points",
                    if paired < 0.0 { "down" } else { "up" },
                    pct(paired.abs())
                )
            }
        );
    }
    let _ = write!(
        detail,
        "; {} p {} {} alpha {}",
        test.name,
        p_text(test.p_value),
        if test.p_value < rule.alpha { "<" } else { ">=" },
        rule.alpha
    );
    if let Some(p) = stable_p
        && !flaky.is_empty()
    {
        let _ = write!(
            detail,
            "; without the {} known-flaky case(s) p = {}",
            flaky.len(),
            fmt_p(p)
        );
    }
    let why = if worse <= 0.0 {
        format!("no {word}: does not fire")
    } else if test.p_value >= rule.alpha {
        "not significant: does not fire".to_owned()
    } else if !stable_ok {
        "the change rests on known-flaky cases: does not fire".to_owned()
    } else if !large_enough {
        format!(
            "significant, but the {word} is at most {} points at {conf} confidence, under the limit of {} points: does not fire",
            pct(bound),
            pct(threshold)
        )
    } else {
        format!(
            "the {word} could reach the limit ({} points at {conf} confidence >= {} points): fires",
            pct(bound),
            pct(threshold)
        )
    };
    let _ = write!(detail, ": {why}");
    f.detail = detail;
    f.known_flaky = flaky.iter().take(MAX_FLIPS).cloned().collect();
    f.test = Some(test);
    f.verdict = if significant && large_enough {
        Verdict::Firing
    } else {
        Verdict::Clear
    };
    f.concentration = concentration(rule, provider, input, !drop);
    f
}

/// The outcome of [`paired_test`].
struct Paired {
    /// Estimated worsening of the pass rate (positive = worse).
    worse: f64,
    se: f64,
    test: TestResult,
}

/// Exact conditional (permutation) test of the current run against its baseline runs, case
/// by case. Under "nothing changed", the current outcome of a case is exchangeable with its
/// outcomes in the N baseline runs, so given t passes among the N + 1, the current run
/// passes with probability t / (N + 1), independently across cases; the number of current
/// passes is then Poisson-binomial, and its tail is the p-value. With one baseline run this
/// is exactly McNemar's exact test (only discordant pairs carry probability 1/2). Cases
/// without a baseline outcome carry no information and are left out. None when no case
/// (after `keep`) has one.
fn paired_test(
    cur: &[(Key<'_>, bool)],
    baseline: &[FnvHashMap<Key<'_>, bool>],
    drop: bool,
    keep: impl Fn(&Key<'_>) -> bool,
) -> Option<Paired> {
    let mut probs = Vec::new();
    let (mut passes, mut worse_sum, mut var, mut used) = (0u64, 0.0, 0.0, 0u64);
    let mut single = true;
    for (key, now) in cur {
        if !keep(key) {
            continue;
        }
        let now = *now;
        let (mut n, mut t) = (0u64, 0u64);
        for b in baseline {
            if let Some(&pass) = b.get(key) {
                n += 1;
                t += u64::from(pass);
            }
        }
        if n == 0 {
            continue;
        }
        single &= n == 1;
        used += 1;
        let x = u64::from(now);
        let nf = n as f64;
        let pi = (t + x) as f64 / (nf + 1.0);
        probs.push(pi);
        passes += x;
        worse_sum += t as f64 / nf - x as f64;
        var += ((nf + 1.0) / nf).powi(2) * pi * (1.0 - pi);
    }
    if used == 0 {
        return None;
    }
    let (lo, hi) = stats::poisson_binomial_tails(&probs, passes);
    let n = used as f64;
    let worse = if drop { worse_sum / n } else { -worse_sum / n };
    Some(Paired {
        worse,
        se: var.sqrt() / n,
        test: TestResult {
            name: if single { "mcnemar" } else { "permutation" },
            p_value: if drop { lo } else { hi },
            statistic: Some(worse_sum),
            n: used,
        },
    })
}
