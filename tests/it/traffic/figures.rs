//! `traffic`: a generated log with known volume, error rate, latency distribution, tokens and
//! cost gives exactly those figures (percentiles within the sketch's 1% relative error).

use super::ingest::{generated_log, ingest, recent_start, source_config};
use crate::support::{Project, code, stderr, stdout};

fn traffic(p: &Project, args: &[&str]) -> serde_json::Value {
    let out = p
        .cmd()
        .args(["traffic", "--format", "json"])
        .args(args)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    serde_json::from_str(stdout(&out).trim()).unwrap()
}

/// Nearest rank: the smallest value with at least `q` of the values at or below it.
fn nearest_rank(sorted: &[f64], q: f64) -> f64 {
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank - 1]
}

#[test]
fn a_generated_log_gives_exactly_its_figures() {
    let p = Project::new();
    p.write("evalwatch.yaml", &source_config("10%"));
    let n = 6000;
    p.write("logs/a.jsonl", &generated_log(recent_start(), n));
    let out = ingest(&p, &[]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let t = traffic(&p, &["--window", "24h"]);
    let c = &t["current"];
    assert_eq!(c["volume"], 6000);
    assert_eq!(c["error_rate"], 0.05);
    assert_eq!(c["availability"], 0.95);
    assert_eq!(c["errors_by_kind"], serde_json::json!({"timeout": 300}));
    assert_eq!(
        (c["tokens_in"].as_u64(), c["tokens_out"].as_u64()),
        (Some(600_000), Some(300_000))
    );
    assert_eq!(
        (
            c["tokens_in_per_request"].as_f64(),
            c["tokens_out_per_request"].as_f64()
        ),
        (Some(100.0), Some(50.0))
    );
    assert!((c["cost_usd"].as_f64().unwrap() - 6.0).abs() < 1e-9, "{c}");
    assert!(
        (c["cost_per_request_usd"].as_f64().unwrap() - 0.001).abs() < 1e-12,
        "{c}"
    );
    assert_eq!(c["users"], 50);
    assert!((c["throughput_rps"].as_f64().unwrap() - 6000.0 / 86_400.0).abs() < 1e-9);
    // Two records a second, every minute of the 50: the peak minute is 2 rps.
    assert_eq!(c["throughput_peak_rps"], 2.0);
    let mut latencies: Vec<f64> = (0..n)
        .filter(|i| i % 20 != 0)
        .map(|i| 100.0 + 10.0 * (i % 100) as f64)
        .collect();
    latencies.sort_by(f64::total_cmp);
    for (name, q) in [
        ("latency_p50_ms", 0.5),
        ("latency_p95_ms", 0.95),
        ("latency_p99_ms", 0.99),
    ] {
        let want = nearest_rank(&latencies, q);
        let got = c[name].as_f64().unwrap();
        assert!(
            (got - want).abs() <= 0.01 * want + 1e-9,
            "{name}: {got} against {want}"
        );
    }
    assert_eq!(
        t["usage"]["by_feature"],
        serde_json::json!({"chat": 3000, "summarise": 3000})
    );
    assert_eq!(t["usage"]["by_region"], serde_json::json!({"fr": 6000}));
    let by_hour: u64 = t["usage"]["by_hour"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(by_hour, 6000);
    assert_eq!(t["previous"]["volume"], 0);
    // Quality on the sample: every sampled request that did not fail was scored, and the
    // share of them the lexical check flagged is the hallucination rate.
    let conn = rusqlite::Connection::open(p.db()).unwrap();
    let (sampled, ok, passed): (i64, i64, i64) = conn
        .query_row(
            "SELECT count(*), sum(error = 0), sum(status = 'passed') FROM traffic_records WHERE sampled",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert!(
        (450..=750).contains(&sampled),
        "{sampled} of 6000 sampled at 10%"
    );
    assert_eq!(
        (c["sampled"].as_i64(), c["scored"].as_i64()),
        (Some(sampled), Some(ok))
    );
    assert_eq!(c["pass_rate"].as_f64(), Some(passed as f64 / ok as f64));
    assert!(
        c["hallucination_rate"].as_f64().is_some() && c["refusal_rate"] == 0.0,
        "{c}"
    );
    // Split by feature: each half has its own figures.
    let by = traffic(&p, &["--by", "feature"]);
    let values = by["by"]["values"].as_array().unwrap();
    assert_eq!(values.len(), 2);
    // Errors are every 20th record: all even, so all in `chat`.
    assert_eq!(values[0]["value"], "chat");
    assert_eq!(values[0]["current"]["error_rate"], 0.1);
    assert_eq!(values[1]["current"]["error_rate"], 0.0);
    // The text form shows the same figures.
    let out = p.run(&["traffic"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    for want in [
        "volume",
        "6000",
        "5.00%",
        "timeout=300",
        "$6.0000",
        "chat=3000 summarise=3000",
    ] {
        assert!(text.contains(want), "`{want}` missing in:\n{text}");
    }
}
