//! PostgreSQL bulk write benchmark: realistic result rows written into a fresh PostgreSQL
//! store by binary COPY (`store::pg::write_pg`, the bulk path of `store migrate`), on loopback.
//!
//! Run with `scripts/with-pg cargo bench --bench pg_store` (release build; the script starts a
//! throwaway server and passes its URL in `EVALWATCH_TEST_PG`). Prints, per run size, the
//! write rate (first row built to the last commit) and the peak resident memory of this
//! process (`VmHWM`). The server's own time is in the rate; its memory is not.
//!
//! A realistic result, as `benches/store.rs` writes it: a ~400-character output, a prompt
//! reference shared by 3 results, two assertions as compact JSON, latency, tokens and cost.
//! Optional arguments: run sizes (default `100000 1000000`); `BATCH` sets the rows per
//! transaction (default 10000, as `store migrate`).

use std::time::Instant;

use evalwatch::store::pg::{Cell, PgTarget, schema, write_pg};

const CASES: i64 = 20_000;
const PER_PROMPT: i64 = 3;

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![100_000, 1_000_000]
    } else {
        sizes
    };
    let batch: usize = std::env::var("BATCH")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(10_000);
    let Ok(url) = std::env::var("EVALWATCH_TEST_PG") else {
        eprintln!(
            "pg_store bench: EVALWATCH_TEST_PG is unset; run it as `scripts/with-pg cargo bench --bench pg_store`"
        );
        std::process::exit(2);
    };
    let password = std::env::var("EVALWATCH_TEST_PGPASSWORD").unwrap_or_default();
    let with_pw = url.replacen("://evalwatch@", &format!("://evalwatch:{password}@"), 1);
    let admin = PgTarget::parse(&with_pw).expect("URL");
    println!(
        "pg_store bench: batch {batch}, {CASES} cases, one prompt per {PER_PROMPT} results, server {}",
        admin.shown()
    );
    for (i, &n) in sizes.iter().enumerate() {
        let name = format!("bench_pg_store_{}_{i}", std::process::id());
        admin
            .connect()
            .expect("connect")
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        let base = with_pw.rsplit_once('/').expect("URL with a database").0;
        let target = PgTarget::parse(&format!("{base}/{name}")).expect("URL");
        bench(&target, n, batch);
        admin
            .connect()
            .expect("connect")
            .batch_execute(&format!("DROP DATABASE {name}"))
            .expect("drop database");
    }
}

fn bench(target: &PgTarget, size: usize, batch: usize) {
    let n = i64::try_from(size).expect("a run size that fits");
    let mut client = target.connect().expect("connect");
    schema::migrate(
        &mut client,
        target.shown(),
        evalwatch::store::SCHEMA_VERSION,
    )
    .expect("migrate");
    client
        .batch_execute(&format!(
            "INSERT INTO suites (id, name, first_seen, last_seen) VALUES (1, 'bench', 'x', 'x');
             INSERT INTO runs (id, run_id, suite_ref, suite_hash, started_at, status, planned, evalwatch_version)
                 VALUES (1, 'bench-run', 1, 'h', '2024-05-01T06:00:00Z', 'running', {n}, 'bench');
             INSERT INTO cases (id, suite_ref, case_id, hash, first_seen)
                 SELECT g, 1, 'case-' || g, 'h' || g, 'x' FROM generate_series(1, {CASES}) g;
             INSERT INTO prompts (id, hash, text)
                 SELECT g, sha256(g::text::bytea), repeat('p', 300) FROM generate_series(1, {p}) g;",
            p = n / PER_PROMPT + 1
        ))
        .expect("seed");
    let st = client
        .prepare("SELECT * FROM results LIMIT 0")
        .expect("describe");
    let columns: Vec<String> = st.columns().iter().map(|c| c.name().to_owned()).collect();
    let types: Vec<_> = st.columns().iter().map(|c| c.type_().clone()).collect();
    let output = "The capital of France is Paris. ".repeat(13);
    let assertions = r#"[{"type":"contains","pass":true,"score":1.0},{"type":"llm-rubric","pass":false,"score":0.4,"reason":"misses the second point"}]"#;
    clear_refs();
    let started = Instant::now();
    let mut rows = Vec::with_capacity(batch);
    for i in 0..n {
        let row: Vec<Cell> = columns
            .iter()
            .map(|c| match c.as_str() {
                "id" => Cell::Int((1 << 32) | i),
                "seq" | "case_index" => Cell::Int(i),
                "case_ref" => Cell::Int(i % CASES + 1),
                "provider" => Cell::Text("prod-gpt".into()),
                "provider_index" | "sample" | "truncated" => Cell::Int(0),
                "status" => Cell::Text(if i % 7 == 0 { "failed" } else { "passed" }.into()),
                "score" => Cell::Real(0.8),
                "latency_ms" => Cell::Real(412.5 + (i % 100) as f64),
                "tokens_in" => Cell::Int(120),
                "tokens_out" => Cell::Int(96),
                "cost_usd" => Cell::Real(0.000_42),
                "run_ref" | "attempts" => Cell::Int(1),
                "prompt_ref" => Cell::Int(i / PER_PROMPT + 1),
                "finish_reason" => Cell::Text("stop".into()),
                "assertions" => Cell::Text(assertions.into()),
                "output" => Cell::Text(output.clone()),
                "output_bytes" => Cell::Int(i64::try_from(output.len()).unwrap_or(0)),
                _ => Cell::Null,
            })
            .collect();
        rows.push(row);
        if rows.len() == batch || i + 1 == n {
            write_pg(
                &mut client,
                target,
                "results",
                &columns,
                &types,
                &rows,
                true,
            )
            .expect("write");
            rows.clear();
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let stored: i64 = client
        .query_one("SELECT count(*) FROM results", &[])
        .expect("count")
        .get(0);
    assert_eq!(stored, n, "every row stored");
    println!(
        "{n:>9} results: {:>8.0} results/s ({secs:.2} s), peak RSS {} MiB",
        n as f64 / secs,
        peak_rss_kib() / 1024
    );
}

fn clear_refs() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
