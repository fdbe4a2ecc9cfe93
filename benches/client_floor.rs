//! The floor of the calls: how long 10,000 requests take through 64 connections against the
//! same mock as `benches/executor.rs` (in a process of its own, as the mock is for
//! `evalwatch run`), from a bare client that does nothing else: reqwest as evalwatch builds it
//! (`provider::http_client`), and hyper with one connection per worker (no pool).
//!
//! Run: `cargo bench --bench client_floor` (optionally `-- REQUESTS ROUNDS`). Each line gives
//! the time of the requests against the nominal limit (requests x 20 ms / 64) and against
//! the rounds a connection must make (ceil(requests / 64) x 20 ms), and the mean latency one
//! request saw.
//!
//! `STAGGER_US=N` starts worker k k*N microseconds late instead of all at once (an
//! experiment: docs/performance.md, executor section, session 8, "the calls move in a train").

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[path = "support/mock.rs"]
mod mock;

const LATENCY: Duration = Duration::from_millis(20);
const CONNECTIONS: usize = 64;
const BODY: &str = r#"{"model":"mock","messages":[{"role":"user","content":"Answer briefly. What is the return window for order 1?"}]}"#;

#[derive(Clone, Copy)]
enum Client {
    Reqwest,
    /// reqwest with its own TLS set-up (roots loaded as it is built) instead of evalwatch's:
    /// the same for plain HTTP, which this shows.
    ReqwestOwnTls,
    Hyper,
}

/// Send `requests` requests through `CONNECTIONS` workers; (elapsed, summed latency in us).
async fn drive(client: Client, url: &str, requests: usize) -> (Duration, u64) {
    let next = Arc::new(AtomicUsize::new(0));
    let latency_us = Arc::new(AtomicU64::new(0));
    let http = evalwatch::provider::http_client().expect("client");
    let http = match client {
        Client::ReqwestOwnTls => reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .build()
            .expect("client"),
        Client::Reqwest | Client::Hyper => http,
    };
    let uri: hyper::Uri = url.parse().expect("uri");
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    let stagger: u64 = std::env::var("STAGGER_US")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    for slot in 0..CONNECTIONS {
        let (next, latency_us) = (Arc::clone(&next), Arc::clone(&latency_us));
        let (http, url, uri) = (http.clone(), url.to_owned(), uri.clone());
        workers.spawn(async move {
            if stagger > 0 {
                tokio::time::sleep(Duration::from_micros(stagger * slot as u64)).await;
            }
            let mut sender = match client {
                Client::Reqwest | Client::ReqwestOwnTls => None,
                Client::Hyper => {
                    let addr = (uri.host().expect("host"), uri.port_u16().expect("port"));
                    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
                    stream.set_nodelay(true).expect("nodelay");
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let (sender, conn) = hyper::client::conn::http1::handshake::<
                        _,
                        http_body_util::Full<hyper::body::Bytes>,
                    >(io)
                    .await
                    .expect("handshake");
                    tokio::spawn(conn);
                    Some(sender)
                }
            };
            while next.fetch_add(1, Ordering::Relaxed) < requests {
                let sent = Instant::now();
                let body: hyper::body::Bytes = match &mut sender {
                    None => http
                        .post(&url)
                        .bearer_auth("sk-floor-not-a-secret")
                        .header("content-type", "application/json")
                        .body(BODY)
                        .send()
                        .await
                        .expect("send")
                        .bytes()
                        .await
                        .expect("body"),
                    Some(sender) => {
                        let request = hyper::Request::post(uri.clone())
                            .header("host", uri.authority().expect("authority").as_str())
                            .header("content-type", "application/json")
                            .header("authorization", "Bearer sk-floor-not-a-secret")
                            .body(http_body_util::Full::new(hyper::body::Bytes::from_static(
                                BODY.as_bytes(),
                            )))
                            .expect("request");
                        let response = sender.send_request(request).await.expect("send");
                        http_body_util::BodyExt::collect(response.into_body())
                            .await
                            .expect("body")
                            .to_bytes()
                    }
                };
                let answer: serde_json::Value = serde_json::from_slice(&body).expect("json");
                assert!(answer.get("choices").is_some(), "an OpenAI answer");
                latency_us.fetch_add(sent.elapsed().as_micros() as u64, Ordering::Relaxed);
            }
        });
    }
    while workers.join_next().await.is_some() {}
    (started.elapsed(), latency_us.load(Ordering::Relaxed))
}

fn main() {
    if std::env::args().any(|a| a == "--serve") {
        mock::serve(LATENCY);
    }
    let numbers: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let requests = numbers.first().copied().unwrap_or(10_000);
    let rounds = numbers.get(1).copied().unwrap_or(2);
    // The mock in a process of its own, as it is for `evalwatch run` in `executor`.
    let mut server = std::process::Command::new(std::env::current_exe().expect("this bench"))
        .arg("--serve")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the mock");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.take().expect("stdout")),
        &mut line,
    )
    .expect("the mock's address");
    let url = format!("{}/chat/completions", line.trim());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let nominal = requests as f64 * LATENCY.as_secs_f64() / CONNECTIONS as f64;
    let ceil = requests.div_ceil(CONNECTIONS) as f64 * LATENCY.as_secs_f64();
    println!("| client | requests | s | / nominal limit | / rounds limit | mean latency ms |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for _ in 0..rounds {
        for (name, client) in [
            ("reqwest", Client::Reqwest),
            ("reqwest, its own TLS set-up", Client::ReqwestOwnTls),
            ("hyper", Client::Hyper),
        ] {
            let (took, latency_us) = runtime.block_on(drive(client, &url, requests));
            let s = took.as_secs_f64();
            println!(
                "| {name} | {requests} | {s:.3} | {:.4} | {:.4} | {:.3} |",
                s / nominal,
                s / ceil,
                latency_us as f64 / requests as f64 / 1000.0
            );
        }
    }
    let _ = server.kill();
    let _ = server.wait();
}
