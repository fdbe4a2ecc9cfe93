//! `evalwatch init`: a project that runs offline out of the box.

use std::path::{Component, Path, PathBuf};

use super::{Ctx, Failure, exit};
use crate::cli::init::InitArgs;

const CONFIG: &str = r#"# evalwatch project config. See docs/suite-reference.md.
store: evalwatch.db
reports: reports
providers:
  # Recorded outputs: scores logged production traffic, needs no key and no network.
  - id: recorded
    type: replay
    file: suites/recordings/example.jsonl
  # A real model: uncomment, export OPENAI_API_KEY, and add `prod-gpt` to a suite's providers.
  # - id: prod-gpt
  #   type: openai
  #   model: gpt-4o-mini
  #   params: {temperature: 0, max_tokens: 256}
  #   pricing: {input_per_mtok: 0.15, output_per_mtok: 0.60}
# Production traffic: `evalwatch ingest` reads the example app's log (written by `init`, five
# days up to the moment it ran) into the store; `evalwatch report` shows it on
# reports/traffic-example-app.html. See docs/traffic.md.
traffic:
  - id: example-app
    format: jsonl
    path: logs/example-app.jsonl
    fields:
      time: /ts
      input: /request/prompt
      output: /response/text
      context: /retrieval/passages
      model: /model
      feature: /meta/feature
      segment: /user/plan
      region: /geo/country
      trace_id: /trace_id
      latency_ms: /latency_ms
      tokens_in: /usage/prompt_tokens
      tokens_out: /usage/completion_tokens
      cost_usd: /cost
      error: /error
      error_kind: /error/type
      feedback: /feedback
    sample: 20%
    redact: [email, phone, card, secret]
    monitor:
      - type: hallucination
      - type: not-is-refusal
    # The starting rules (docs/alerts.md, "Traffic rules"). A rule judges a window only when
    # it holds `min_requests` requests (default 20): this example log holds about three an
    # hour, so the 15-minute rules say "not judged" under `ingest -v` until real traffic
    # comes, while the daily cost rule judges each whole day. The satisfaction rule compares
    # this week's votes with the same 7 days a week before: not judged until there are two
    # weeks of votes.
    alerts:
      - {metric: traffic.error_rate, max: 0.05, window: 15m, severity: critical, runbook: "check the provider's status page, then the app's recent deploys"}
      - {metric: traffic.latency_p95_ms, ratio: 3, baseline: "trailing:7d", window: 15m, severity: warning}
      - {metric: traffic.cost_usd, ratio: 1.2, baseline: "trailing:7d", window: 1d, severity: warning}
      - {metric: traffic.satisfaction, drop: 0.10, relative: true, baseline: same_window_last_week, window: 7d, severity: warning}
"#;

const SUITE: &str = r#"suite: example
description: A first suite. Run it with `evalwatch run`.
providers: [recorded]
prompt: |
  Answer in one sentence. Question: {{ question }}
cases:
  - id: capital-france
    vars: {question: "What is the capital of France?"}
    expected: Paris
  - id: refund-window
    tags: [billing]
    vars: {question: "How long do I have to return an item?"}
    expected: "30 days"
    assert:
      - type: icontains
      - type: not-icontains
        value: "90 days"
  - id: order-total
    tags: [billing]
    vars: {question: "What is 12 items at $4.50?"}
    expected: "54"
    assert:
      - type: numeric
        tolerance: 0.01
gates:
  pass_rate: {min: 0.9}
  error_rate: {max: 0.05}
"#;

const RECORDINGS: &str = r#"{"case_id": "capital-france", "output": "The capital of France is Paris.", "latency_ms": 412, "tokens_in": 21, "tokens_out": 8}
{"case_id": "refund-window", "output": "You can return an item within 30 days of delivery.", "latency_ms": 530, "tokens_in": 24, "tokens_out": 12}
{"case_id": "order-total", "output": "12 items at $4.50 cost $54.00.", "latency_ms": 388, "tokens_in": 25, "tokens_out": 10}
"#;

/// Records in the example traffic log.
const TRAFFIC_RECORDS: u64 = 360;
/// Days the example traffic log spans, up to the moment `init` runs.
const TRAFFIC_DAYS: i64 = 5;

/// The example app's log: [`TRAFFIC_RECORDS`] requests spread over the [`TRAFFIC_DAYS`] days
/// before `now` (unix seconds, from the start of that hour), so that the last 24h, 7d and 30d
/// all hold some. Everything but the times is fixed (a small linear congruential generator):
/// three features, two models taking turns and tokens in narrow ranges (so that a day's cost
/// is steady whatever minute the day boundaries fall on, and the daily cost rule stays
/// quiet: the test below checks every minute of a day), two plans, three countries, about
/// 4% failed requests, latencies with a long tail, tokens and cost per request, a few answers
/// the context does not support, and a thumbs up or down from one user in four.
fn example_traffic(now: i64) -> String {
    use std::fmt::Write as _;
    const FEATURES: [&str; 3] = ["chat", "summarise", "search"];
    const MODELS: [(&str, f64, f64); 2] = [
        ("gpt-4o-mini", 0.15e-6, 0.60e-6),
        ("claude-3-5-haiku", 0.80e-6, 4.0e-6),
    ];
    const PLANS: [&str; 2] = ["free", "pro"];
    const COUNTRIES: [&str; 3] = ["FR", "US", "DE"];
    const CONTEXT: &str = "Orders can be returned within 30 days of delivery. Refunds reach the card in 5 business days.";
    const ANSWERS: [&str; 4] = [
        "You can return an order within 30 days of delivery.",
        "Refunds reach the card in 5 business days.",
        "Returns are accepted within 30 days of delivery; the refund takes 5 business days.",
        "You can return an order within 90 days, and shipping is always free.",
    ];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |n: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let span = TRAFFIC_DAYS * 86_400;
    // From the start of an hour: the daily cost rule counts the first day from its first hour.
    let start = (now - span) / 3_600 * 3_600;
    let step = span / TRAFFIC_RECORDS.cast_signed();
    let mut out = String::new();
    for i in 0..TRAFFIC_RECORDS {
        let ts = start + i.cast_signed() * step + next(step.unsigned_abs()).cast_signed();
        let feature = FEATURES[usize::try_from(next(3)).unwrap_or(0)];
        let (model, per_in, per_out) = MODELS[usize::from(i % 2 == 1)];
        let plan = PLANS[usize::try_from(next(2)).unwrap_or(0)];
        let country = COUNTRIES[usize::try_from(next(3)).unwrap_or(0)];
        let tokens_in = 300 + next(300);
        let tokens_out = 60 + next(80);
        let latency = 300 + next(700) + if next(20) == 0 { 2000 + next(3000) } else { 0 };
        let cost = tokens_in as f64 * per_in + tokens_out as f64 * per_out;
        let when = chrono::DateTime::from_timestamp(ts, 0)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let (answer, error) = if next(25) == 0 {
            (String::new(), r#", "error": {"type": "timeout"}"#)
        } else {
            let a = ANSWERS[usize::try_from(next(4)).unwrap_or(0)];
            (a.to_string(), "")
        };
        // One user in four votes (taken from the index, so the other fields stay as they
        // were): down on a failure or the unsupported answer, up otherwise.
        let feedback = match (i % 4, error.is_empty() && answer != ANSWERS[3]) {
            (0, true) => r#", "feedback": "up""#,
            (0, false) => r#", "feedback": "down""#,
            _ => "",
        };
        let _ = writeln!(
            out,
            r#"{{"ts": "{when}", "trace_id": "ex-{i:04}", "model": "{model}", "meta": {{"feature": "{feature}"}}, "user": {{"plan": "{plan}"}}, "geo": {{"country": "{country}"}}, "request": {{"prompt": "How do returns and refunds work?"}}, "response": {{"text": "{answer}"}}, "retrieval": {{"passages": ["{CONTEXT}"]}}, "latency_ms": {latency}, "usage": {{"prompt_tokens": {tokens_in}, "completion_tokens": {tokens_out}}}, "cost": {cost:.6}{error}{feedback}}}"#
        );
    }
    out
}

fn write_new(path: &Path, text: &str, force: bool) -> anyhow::Result<bool> {
    if path.exists() && !force {
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text).map_err(|e| anyhow::anyhow!("write {}: {e}", path.display()))?;
    Ok(true)
}

/// `path` without `.` segments and with `dir/..` folded (lexically: the folder is created,
/// so no symlink is crossed that could make `..` mean something else).
fn tidy(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// How a written file is named to the user: relative to the working folder when below it.
fn shown(ctx: &Ctx, path: &Path) -> String {
    path.strip_prefix(tidy(&ctx.cwd))
        .unwrap_or(path)
        .display()
        .to_string()
}

pub fn run(ctx: &Ctx, args: &InitArgs) -> anyhow::Result<u8> {
    let dir = tidy(&if args.dir.is_absolute() {
        args.dir.clone()
    } else {
        ctx.cwd.join(&args.dir)
    });
    let traffic = example_traffic(chrono::Utc::now().timestamp());
    let files = [
        (dir.join("evalwatch.yaml"), CONFIG),
        (dir.join("suites/example.yaml"), SUITE),
        (dir.join("suites/recordings/example.jsonl"), RECORDINGS),
        (dir.join("logs/example-app.jsonl"), traffic.as_str()),
    ];
    let existing: Vec<String> = files
        .iter()
        .filter(|(p, _)| p.exists())
        .map(|(p, _)| shown(ctx, p))
        .collect();
    if !existing.is_empty() && !args.force {
        return Err(Failure::invalid(format!(
            "init: {} already exist{}; nothing was written (use --force to overwrite)",
            existing.join(", "),
            if existing.len() == 1 { "s" } else { "" }
        )));
    }
    for (path, text) in &files {
        write_new(path, text, args.force)?;
        ctx.printer.info(&format!("wrote {}", shown(ctx, path)));
    }
    ctx.printer.info(
        "next: `evalwatch run` runs suites/ offline against the recorded outputs; \
         `evalwatch ingest` reads the example app's traffic log, `evalwatch report` shows it",
    );
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The daily cost rule (`ratio: 1.2` against the trailing week, whole days, the first
    /// day's coverage from its first hour) over the example log, wherever the day boundaries
    /// fall: no whole day of it costs 1.2 times its normal.
    #[test]
    fn the_example_log_does_not_trip_the_daily_cost_rule() {
        const DAY: i64 = 86_400;
        let start = 1_800_000_000 / DAY * DAY;
        // Every minute of a day: a record crosses a day boundary at its own second, and
        // half-hour steps missed an alignment (04:54 UTC) where one day came to 1.202.
        for minutes in 0..1_440 {
            let now = start + minutes * 60;
            let records: Vec<(i64, f64)> = example_traffic(now)
                .lines()
                .map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).expect("json");
                    let ts = chrono::DateTime::parse_from_rfc3339(v["ts"].as_str().expect("ts"))
                        .expect("time")
                        .timestamp();
                    (ts, v["cost"].as_f64().expect("cost"))
                })
                .collect();
            let first = records.iter().map(|r| r.0).min().expect("records");
            let last = records.iter().map(|r| r.0).max().expect("records");
            let first_hour = first / 3_600 * 3_600;
            let (mut day, closed) = (first / DAY * DAY + DAY, last / DAY * DAY);
            while day + DAY <= closed {
                let sum = |from: i64, to: i64| -> (usize, f64) {
                    let within = records.iter().filter(|r| r.0 >= from && r.0 < to);
                    (within.clone().count(), within.map(|r| r.1).sum())
                };
                let (n, cost) = sum(day, day + DAY);
                let (nb, before) = sum(day - 7 * DAY, day);
                let normal = before * DAY as f64 / (day - first_hour.max(day - 7 * DAY)) as f64;
                assert!(n >= 20, "a whole day holds enough to be judged");
                // A first part-day of fewer than 20 requests is no baseline (not judged).
                assert!(
                    nb < 20 || cost < 1.2 * normal,
                    "now {now}: day {day} costs {cost} against a normal of {normal}"
                );
                day += DAY;
            }
        }
    }
}
