//! Shared by the traffic benches: a generated JSONL log of a support bot, ~580 bytes a record
//! (~730 with retrieved passages), and the source that reads it.

use std::io::Write;

/// 4 features, 3 models, 3 plans, 5 regions; one request in 50 failed; 5,000 users.
pub const FEATURES: [&str; 4] = ["faq", "search", "summarise", "chat"];
pub const MODELS: [&str; 3] = ["gpt-4o-mini", "gpt-4o", "claude-3-5-haiku"];
const PLANS: [&str; 3] = ["free", "pro", "team"];
const REGIONS: [&str; 5] = ["DE", "US", "FR", "BR", "JP"];

/// Record `i`'s trace id: `i` itself, so that ids grow with time and the trace index is
/// appended to; with `TRACE_IDS=random` in the environment, `i` scrambled (multiplied by an
/// odd 128-bit constant: unique, and spread as OpenTelemetry's random W3C ids are), so that
/// each record's index entry goes to a random place.
fn trace_id(i: usize) -> u128 {
    static RANDOM: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let random = *RANDOM.get_or_init(|| std::env::var("TRACE_IDS").is_ok_and(|v| v == "random"));
    if random {
        (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
    } else {
        i as u128
    }
}

/// Record `i` of `n`, spread evenly over the day that starts at `day_start` (unix seconds),
/// appended to `out` with its newline. `context`: with two retrieved passages (what the
/// `hallucination` monitor checks the answer against).
pub fn record(out: &mut Vec<u8>, i: usize, n: usize, day_start: i64, context: bool) {
    let error = if i.is_multiple_of(50) {
        r#"{"type":"timeout"}"#
    } else {
        "null"
    };
    let passages = if context {
        concat!(
            r#""retrieval":{"passages":["Items can be returned within 30 days of delivery.","#,
            r#""Refunds reach your card in 5 to 7 days after the return is received."]},"#
        )
    } else {
        ""
    };
    let _ = write!(
        out,
        concat!(
            r#"{{"ts":{ts},"trace_id":"{trace:032x}","model":"{model}","meta":{{"feature":"{feature}"}},"#,
            r#""user":{{"id":"user-{user}","plan":"{plan}"}},"geo":{{"country":"{region}"}},"#,
            r#""request":{{"messages":[{{"role":"system","content":"You are the support assistant of Acme."}},"#,
            r#"{{"role":"user","content":"How long do I have to return item {i}? Order placed on the 3rd."}}]}},{passages}"#,
            r#""response":{{"text":"You can return any item within 30 days of delivery; refunds reach your card in 5 to 7 days."}},"#,
            r#""latency_ms":{latency},"usage":{{"prompt_tokens":{tin},"completion_tokens":{tout}}},"cost":0.00012,"error":{error}}}"#,
            "\n"
        ),
        ts = day_start + i64::try_from(i * 86_400 / n.max(1)).expect("a second of the day"),
        i = i,
        trace = trace_id(i),
        model = MODELS[i % 3],
        feature = FEATURES[i % 4],
        user = i % 5_000,
        plan = PLANS[i % 3],
        region = REGIONS[i % 5],
        passages = passages,
        latency = 200 + (i * 7919) % 3_000,
        tin = 100 + i % 400,
        tout = 20 + i % 200,
        error = error,
    );
}

/// `n` records of one day written to `path` a megabyte at a time, so that the writer's own
/// memory stays small (a child's peak RSS as `wait4` reads it includes its parent's at the fork).
pub fn write(path: &std::path::Path, n: usize, day_start: i64, context: bool) {
    let mut file = std::fs::File::create(path).expect("create log");
    let mut buf = Vec::with_capacity(1 << 20);
    for i in 0..n {
        record(&mut buf, i, n, day_start, context);
        if buf.len() >= 1 << 20 {
            file.write_all(&buf).expect("write log");
            buf.clear();
        }
    }
    file.write_all(&buf).expect("write log");
}

/// `n` records of one day, as one buffer.
pub fn generate(n: usize, day_start: i64, context: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * if context { 740 } else { 590 });
    for i in 0..n {
        record(&mut out, i, n, day_start, context);
    }
    out
}

/// The bench's numeric arguments (`cargo bench` adds `--bench`, which is skipped).
pub fn numbers() -> Vec<usize> {
    std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .filter_map(|a| a.parse().ok())
        .collect()
}

/// `median M UNIT, range LO-HI (N runs)` of the runs' rates.
pub fn median_range(mut rates: Vec<f64>, unit: &str) -> String {
    rates.sort_by(f64::total_cmp);
    match (rates.first(), rates.last()) {
        (Some(lo), Some(hi)) => format!(
            "median {:.0} {unit}, range {lo:.0}-{hi:.0} ({} runs)",
            rates[rates.len() / 2],
            rates.len()
        ),
        _ => "no runs".to_owned(),
    }
}
