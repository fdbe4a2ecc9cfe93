//! `evalwatch collect` measured: the real release binary's OTLP/HTTP receiver on loopback, fed
//! by a Rust client in this bench (reqwest, the project's HTTP client) posting OTLP protobuf
//! exports (`opentelemetry-proto` types) of GenAI spans, several exports in flight at once, as
//! a service's batch span processor sends them. An export is answered only once it is stored,
//! so the time from the first post to the last answer is the time to store every span.
//!
//! `cargo bench --bench traffic_collect [-- SPANS [RUNS [PER_EXPORT [IN_FLIGHT]]]]` (default
//! 200,000 spans, 5 runs, 512 spans an export, 4 in flight). Each run uses a fresh store and
//! checks every span was counted; prints spans/s per run, then the median and range.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, status};
use prost::Message;

#[path = "support/traffic_log.rs"]
#[allow(dead_code)] // each bench uses part of it
mod traffic_log;

const MODELS: [&str; 3] = ["gpt-4o-mini", "gpt-4o", "claude-3-5-haiku"];

fn main() {
    let args = traffic_log::numbers();
    let spans = args.first().copied().unwrap_or(200_000);
    let runs = args.get(1).copied().unwrap_or(5);
    let per_export = args.get(2).copied().unwrap_or(512);
    let in_flight = args.get(3).copied().unwrap_or(4);
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..spans.div_ceil(per_export))
            .map(|e| export(e * per_export, per_export.min(spans - e * per_export)))
            .collect(),
    );
    let bytes: usize = bodies.iter().map(Vec::len).sum();
    println!(
        "{spans} spans in {} protobuf exports of up to {per_export} ({:.0} bytes a span), {in_flight} in flight",
        bodies.len(),
        bytes as f64 / spans as f64
    );
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut rates = Vec::new();
    for run in 1..=runs {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(
            dir.path().join("evalwatch.yaml"),
            "store: evalwatch.db\ntraffic:\n  - id: app\n    format: otlp\n    sample: 10%\n",
        )
        .expect("config");
        let mut child = Command::new(env!("CARGO_BIN_EXE_evalwatch"))
            .current_dir(dir.path())
            .env_remove("EVALWATCH_DB")
            .env_remove("EVALWATCH_CONFIG")
            .args(["collect", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn collect");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = lines.next().expect("a line").expect("read");
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {first:?}"))
            .to_owned();
        std::thread::spawn(move || lines.map_while(Result::ok).count());
        let secs = rt.block_on(post_all(&url, &bodies, in_flight));
        let rate = spans as f64 / secs;
        // SIGTERM: the receiver drains and stops.
        let killed = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(killed.success(), "kill -TERM failed");
        let status = child.wait().expect("wait");
        assert!(status.success(), "collect exited {status}");
        let counted = counted(&dir.path().join("evalwatch.db"));
        assert_eq!(Ok(counted), i64::try_from(spans), "every span counted once");
        println!("run {run}: {rate:>9.0} spans/s ({secs:.2} s, {counted} counted)");
        rates.push(rate);
    }
    println!("{}", traffic_log::median_range(rates, "spans/s"));
}

/// Posts every export, `in_flight` at a time; seconds from the first post to the last answer.
async fn post_all(url: &str, bodies: &Arc<Vec<Vec<u8>>>, in_flight: usize) -> f64 {
    let client = evalwatch::provider::http_client().expect("client");
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..in_flight {
        let (client, url, bodies, next) =
            (client.clone(), url.to_owned(), bodies.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { break };
                loop {
                    let r = client
                        .post(&url)
                        .header("content-type", "application/x-protobuf")
                        .body(body.clone())
                        .send()
                        .await
                        .expect("post");
                    match r.status().as_u16() {
                        200 => break,
                        // Behind: wait as told, then send again (as an exporter does).
                        429 | 503 => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
                        s => panic!("export refused: {s} {}", r.text().await.unwrap_or_default()),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("poster");
    }
    start.elapsed().as_secs_f64()
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

/// One export of `n` GenAI chat spans, numbered from `first`: model, tokens, 0.2-3.2 s of
/// latency, one in 50 failed; timed in the last hour.
fn export(first: usize, n: usize) -> Vec<u8> {
    let now_ns =
        u64::try_from(chrono::Utc::now().timestamp_nanos_opt().expect("time")).expect("after 1970");
    let spans = (first..first + n)
        .map(|i| {
            let start = now_ns - 3_600_000_000_000 + (i as u64 % 3_000_000) * 1_000_000;
            let latency_ns = (200 + (i as u64 * 7919) % 3_000) * 1_000_000;
            let s = |t: &str| any_value::Value::StringValue(t.into());
            let int = |n: usize| any_value::Value::IntValue(i64::try_from(n).expect("tokens"));
            Span {
                trace_id: (i as u128 + 1).to_be_bytes().to_vec(),
                span_id: (i as u64 + 1).to_be_bytes().to_vec(),
                name: "chat".into(),
                start_time_unix_nano: start,
                end_time_unix_nano: start + latency_ns,
                attributes: vec![
                    kv("gen_ai.operation.name", s("chat")),
                    kv("gen_ai.system", s("openai")),
                    kv("gen_ai.request.model", s(MODELS[i % 3])),
                    kv("gen_ai.usage.input_tokens", int(100 + i % 400)),
                    kv("gen_ai.usage.output_tokens", int(20 + i % 200)),
                ],
                status: i.is_multiple_of(50).then(|| Status {
                    code: status::StatusCode::Error as i32,
                    message: "timeout".into(),
                }),
                ..Span::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv(
                    "service.name",
                    any_value::Value::StringValue("support-bot".into()),
                )],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
    .encode_to_vec()
}

/// Requests counted in the source's minute buckets.
fn counted(db: &std::path::Path) -> i64 {
    rusqlite::Connection::open(db)
        .expect("open store")
        .query_row(
            "SELECT coalesce(sum(requests), 0) FROM traffic_buckets
             WHERE source = 'app' AND resolution = 'minute'",
            [],
            |r| r.get(0),
        )
        .expect("count")
}
