//! `evalwatch traffic [SOURCE] [--window 1h|24h|7d|30d] [--by LABEL]`: the four pillars of a
//! source for the window that ends now, beside the window before it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};

use super::pillars::{Fold, Pillars, Usage};
use crate::app::alerts::traffic::confidence::{Spread, spread};
use crate::app::{Ctx, exit};
use crate::cli::ReadFormat;
use crate::cli::traffic::{By, TrafficArgs, Window};
use crate::store::JudgeTotals;
use crate::traffic::{BucketKey, Resolution};

/// The window's length and the buckets it is counted in: minutes up to a day, hours for a
/// week, days for a month (what `retention` keeps longest).
fn span(w: Window) -> (&'static str, i64, Resolution) {
    match w {
        Window::Hour => ("1h", 3_600, Resolution::Minute),
        Window::Day => ("24h", 86_400, Resolution::Minute),
        Window::Week => ("7d", 7 * 86_400, Resolution::Hour),
        Window::Month => ("30d", 30 * 86_400, Resolution::Day),
    }
}

fn label(key: &BucketKey, by: By) -> &str {
    match by {
        By::Feature => &key.feature,
        By::Model => &key.model,
        By::Segment => &key.segment,
        By::Region => &key.region,
    }
}

fn by_name(by: By) -> &'static str {
    match by {
        By::Feature => "feature",
        By::Model => "model",
        By::Segment => "segment",
        By::Region => "region",
    }
}

pub fn run(ctx: &Ctx, args: &TrafficArgs) -> anyhow::Result<u8> {
    let project = ctx.project()?;
    let source = super::pick_source(&project, args.source.as_deref())?;
    let store = ctx.existing_store_after(&project, "read traffic", "evalwatch ingest")?;
    let (name, secs, res) = span(args.window);
    // The window ends with the bucket that holds now, so the current minute counts; for a
    // source silent for longer than the window, with the bucket of its last record.
    let (now, quiet) = super::quiet::anchor(Utc::now(), store.traffic_latest(&source.id)?, secs);
    let end = res.floor(now.timestamp()) + res.seconds();
    // Each window's buckets folded as they are read (a day of minutes with many label sets
    // is too many rows to hold), in the store's order, so sums come out as they always did.
    let mut folds: [Fold; 2] = Default::default();
    let mut use_now = Usage::new(res.seconds());
    // With `--by`: each label's value, its folds in the current and the previous window.
    let mut values: BTreeMap<String, [Fold; 2]> = BTreeMap::new();
    for (i, from) in [end - secs, end - 2 * secs].into_iter().enumerate() {
        store.each_traffic_bucket(&source.id, res, from, from + secs, |k, r| {
            folds[i].add(&k, &r);
            if i == 0 {
                use_now.add(&k, &r);
            }
            if let Some(by) = args.by {
                values.entry(label(&k, by).to_owned()).or_default()[i].add(&k, &r);
            }
            Ok(())
        })?;
    }
    let [cur, prev] = folds.map(|f| f.pillars(secs, res.seconds()));
    for (which, p) in [("last", &cur), ("previous", &prev)] {
        if p.tokens_in.max(p.tokens_out) >= crate::traffic::TOKENS_MAX {
            ctx.printer.warn(&format!(
                "traffic `{}`: the {which} {name}'s token total reached {}, the largest the store keeps, and is shown as that: the true sum is larger (records with huge token counts?)",
                source.id,
                crate::traffic::TOKENS_MAX
            ));
        }
    }
    // Judge monitors: what judging the window's sample cost (apart from traffic cost), and
    // what still waits for the judge.
    let judge = crate::judge::Engine::wants(&source.monitor_case())
        .then(|| -> anyhow::Result<_> {
            Ok((
                store.traffic_judge_totals(&source.id, end - secs, end)?,
                store.traffic_judge_totals(&source.id, end - 2 * secs, end - secs)?,
            ))
        })
        .transpose()?;
    let split = args.by.map(|by| {
        let rows = values
            .iter()
            .map(|(v, [c, p])| {
                (
                    v.clone(),
                    c.pillars(secs, res.seconds()),
                    p.pillars(secs, res.seconds()),
                )
            })
            .collect::<Vec<_>>();
        (by, rows)
    });
    let drift = crate::app::alerts::traffic::drift::between(
        &store,
        &source.id,
        (end - secs, end),
        (end - 2 * secs, end - secs),
    )?;
    // Confidence, from the sampled records (buckets keep none).
    // Only the confidences are kept of the window's sample (a month of it is millions of rows).
    let spread_in = |from: i64, to: i64| -> anyhow::Result<Option<Spread>> {
        let mut values = Vec::new();
        store.each_traffic_sample(&source.id, from, to, |r| {
            values.extend(r.confidence);
            Ok(())
        })?;
        Ok(spread(values, source.low_confidence))
    };
    let confidence = (
        spread_in(end - secs, end)?,
        spread_in(end - 2 * secs, end - secs)?,
    );
    let confidence = (confidence.0.is_some() || confidence.1.is_some()).then_some(confidence);
    let time = |t: i64| {
        Utc.timestamp_opt(t, 0)
            .single()
            .map_or_else(String::new, |d| d.format("%Y-%m-%d %H:%M UTC").to_string())
    };
    if args.format == ReadFormat::Json {
        let mut body = json!({
            "source": source.id,
            "window": name,
            "resolution": res.name(),
            "from": Utc.timestamp_opt(end - secs, 0).single().map(|d| d.to_rfc3339()),
            "to": Utc.timestamp_opt(end, 0).single().map(|d| d.to_rfc3339()),
            "current": cur,
            "previous": prev,
            "usage": use_now,
            "quiet": quiet,
            "confidence": confidence.as_ref().map(|(c, p)| json!({
                "threshold": source.low_confidence,
                "current": c,
                "previous": p,
            })),
            "drift": drift.iter().map(crate::app::alerts::traffic::drift::Figure::json).collect::<Vec<Value>>(),
        });
        if let Some((c, p)) = &judge {
            body["judge"] = json!({"current": judge_json(c), "previous": judge_json(p)});
        }
        if let Some((by, rows)) = &split {
            body["by"] = json!({
                "label": by_name(*by),
                "values": rows.iter().map(|(v, c, p)| json!({"value": v, "current": c, "previous": p})).collect::<Vec<Value>>(),
            });
        }
        crate::output::out(&body.to_string());
        return Ok(exit::OK);
    }
    let mut out = format!(
        "traffic `{}`, last {name} ({} to {}), against the {name} before\n",
        source.id,
        time(end - secs),
        time(end)
    );
    if let Some(q) = &quiet {
        let _ = writeln!(out, "quiet source: {q}");
    }
    if cur.volume == 0 && prev.volume == 0 {
        out.push_str("no traffic stored in these windows (`evalwatch ingest` reads a source)\n");
    }
    out.push_str(&table(&cur, &prev));
    if let Some((c, p)) = &judge {
        out.push_str(&judge_rows(c, p));
    }
    if let Some((c, p)) = &confidence {
        out.push_str(&confidence_rows(
            source.low_confidence,
            c.as_ref(),
            p.as_ref(),
        ));
    }
    out.push_str("volume by\n");
    let mix = |name: &str, m: &std::collections::BTreeMap<String, u64>| {
        let parts: Vec<String> = m
            .iter()
            .map(|(k, n)| format!("{}={n}", if k.is_empty() { "(none)" } else { k }))
            .collect();
        format!("  {name:<24} {}\n", parts.join(" "))
    };
    if let Some(h) = &use_now.by_hour {
        let parts: Vec<String> = h.iter().map(|(k, n)| format!("{k:02}h={n}")).collect();
        let _ = writeln!(out, "  {:<24} {}", "hour of day (UTC)", parts.join(" "));
    }
    out.push_str(&mix("feature", &use_now.by_feature));
    out.push_str(&mix("model", &use_now.by_model));
    out.push_str(&mix("segment", &use_now.by_segment));
    out.push_str(&mix("region", &use_now.by_region));
    out.push_str(&crate::app::alerts::traffic::drift::text_section(&drift));
    if let Some((by, rows)) = &split {
        for (v, c, p) in rows {
            let shown = if v.is_empty() { "(none)" } else { v };
            let _ = writeln!(out, "\n{} {shown}", by_name(*by));
            out.push_str(&table(c, p));
        }
    }
    ctx.printer.result(out.trim_end());
    Ok(exit::OK)
}

fn judge_json(t: &JudgeTotals) -> Value {
    json!({
        "calls": t.calls,
        "cached": t.cached,
        "cost_usd": t.cost_usd,
        "pending": t.pending,
        "pending_why": t.why,
    })
}

/// The judge monitors' rows, as the table's: calls, cost, cache hits, records waiting.
fn judge_rows(c: &JudgeTotals, p: &JudgeTotals) -> String {
    let mut out = "judge monitors (apart from traffic cost)\n".to_owned();
    for (name, a, b) in [
        ("judge calls", count(c.calls), count(p.calls)),
        ("judge cost", usd(c.cost_usd), usd(p.cost_usd)),
        ("answers from the cache", count(c.cached), count(p.cached)),
        ("awaiting the judge", count(c.pending), count(p.pending)),
    ] {
        let _ = writeln!(out, "  {name:<24} {a:>16}  {b:>16}");
    }
    if let Some(why) = &c.why {
        let _ = writeln!(out, "  {why}");
    }
    out
}

/// The confidence rows, as the table's: the low-confidence share with its counts, then the
/// spread.
fn confidence_rows(threshold: f64, c: Option<&Spread>, p: Option<&Spread>) -> String {
    let mut out = format!("confidence (sampled records carrying one; low = below {threshold})\n");
    let rate = |s: Option<&Spread>| {
        s.map_or_else(
            || "-".into(),
            |s| format!("{} ({}/{})", pct(Some(s.low_confidence_rate)), s.low, s.n),
        )
    };
    let at = |s: Option<&Spread>, get: fn(&Spread) -> f64| {
        s.map_or_else(|| "-".into(), |s| format!("{:.3}", get(s)))
    };
    let rows: [(&str, String, String); 4] = [
        ("low_confidence_rate", rate(c), rate(p)),
        ("confidence p10", at(c, |s| s.p10), at(p, |s| s.p10)),
        ("confidence p50", at(c, |s| s.p50), at(p, |s| s.p50)),
        ("confidence p90", at(c, |s| s.p90), at(p, |s| s.p90)),
    ];
    for (name, a, b) in rows {
        let _ = writeln!(out, "  {name:<24} {a:>16}  {b:>16}");
    }
    out
}

fn count(v: u64) -> String {
    v.to_string()
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{:.2}%", v * 100.0))
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.0} ms"))
}

fn num(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.1}"))
}

fn usd(v: f64) -> String {
    format!("${v:.4}")
}

/// Each figure beside the previous window's.
fn table(c: &Pillars, p: &Pillars) -> String {
    let kinds = |x: &Pillars| {
        if x.errors_by_kind.is_empty() {
            "-".to_owned()
        } else {
            x.errors_by_kind
                .iter()
                .map(|(k, n)| format!("{}={n}", if k.is_empty() { "(none)" } else { k }))
                .collect::<Vec<_>>()
                .join(" ")
        }
    };
    let rows: [(&str, &str, String, String); 24] = [
        ("performance", "volume", count(c.volume), count(p.volume)),
        (
            "",
            "throughput (mean)",
            format!("{:.3} rps", c.throughput_rps),
            format!("{:.3} rps", p.throughput_rps),
        ),
        (
            "",
            "throughput (peak)",
            format!("{:.3} rps", c.throughput_peak_rps),
            format!("{:.3} rps", p.throughput_peak_rps),
        ),
        ("", "error rate", pct(c.error_rate), pct(p.error_rate)),
        ("", "errors by kind", kinds(c), kinds(p)),
        ("", "availability", pct(c.availability), pct(p.availability)),
        (
            "",
            "latency p50",
            ms(c.latency_p50_ms),
            ms(p.latency_p50_ms),
        ),
        (
            "",
            "latency p95",
            ms(c.latency_p95_ms),
            ms(p.latency_p95_ms),
        ),
        (
            "",
            "latency p99",
            ms(c.latency_p99_ms),
            ms(p.latency_p99_ms),
        ),
        (
            "quality",
            "sampled / scored",
            format!("{} / {}", c.sampled, c.scored),
            format!("{} / {}", p.sampled, p.scored),
        ),
        ("", "pass rate", pct(c.pass_rate), pct(p.pass_rate)),
        (
            "",
            "hallucination rate",
            pct(c.hallucination_rate),
            pct(p.hallucination_rate),
        ),
        ("", "refusal rate", pct(c.refusal_rate), pct(p.refusal_rate)),
        ("", "satisfaction", pct(c.satisfaction), pct(p.satisfaction)),
        (
            "",
            "thumbs-down rate",
            pct(c.thumbs_down_rate),
            pct(p.thumbs_down_rate),
        ),
        (
            "",
            "feedback rate",
            pct(c.feedback_rate),
            pct(p.feedback_rate),
        ),
        ("cost", "tokens in", count(c.tokens_in), count(p.tokens_in)),
        ("", "tokens out", count(c.tokens_out), count(p.tokens_out)),
        (
            "",
            "tokens in / request",
            num(c.tokens_in_per_request),
            num(p.tokens_in_per_request),
        ),
        (
            "",
            "tokens out / request",
            num(c.tokens_out_per_request),
            num(p.tokens_out_per_request),
        ),
        ("", "cost", usd(c.cost_usd), usd(p.cost_usd)),
        (
            "",
            "cost / request",
            c.cost_per_request_usd
                .map_or_else(|| "-".into(), |v| format!("${v:.6}")),
            p.cost_per_request_usd
                .map_or_else(|| "-".into(), |v| format!("${v:.6}")),
        ),
        ("usage", "users", count(c.users), count(p.users)),
        ("", "", String::new(), String::new()),
    ];
    let mut out = format!("  {:<24} {:>16}  {:>16}\n", "", "this window", "previous");
    for (pillar, name, a, b) in rows {
        if !pillar.is_empty() {
            let _ = writeln!(out, "{pillar}");
        }
        if !name.is_empty() {
            let _ = writeln!(out, "  {name:<24} {a:>16}  {b:>16}");
        }
    }
    out
}
