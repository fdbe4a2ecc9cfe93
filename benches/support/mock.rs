//! Shared by the benches that call a model endpoint: a local OpenAI-compatible mock that
//! answers each chat completion a fixed latency after the request arrived.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct Seen {
    pub requests: AtomicU64,
    pub first: Mutex<Option<Instant>>,
    /// Sum of the handler's own time per request (arrival to answer), in microseconds: the
    /// latency the mock really served (a few tens of microseconds above the nominal).
    pub served_us: AtomicU64,
    /// When the last answer was ready: first request to last answer is how long the calls
    /// themselves took (the executor's share of the wall time).
    pub last: Mutex<Option<Instant>>,
    /// Per connection, from an answer being ready to the next request arriving on it, in
    /// microseconds: the client's turnaround (reading the answer, sending the next request),
    /// time in which that connection's slot is not being served.
    pub turnaround_us: Mutex<Vec<u32>>,
}

impl Seen {
    /// Mean and 90th and 99th percentile of the client's turnaround, ms.
    #[allow(dead_code)] // `client_floor` runs the mock in another process
    pub fn turnaround_ms(&self) -> (f64, f64, f64) {
        let mut all = self.turnaround_us.lock().expect("lock").clone();
        if all.is_empty() {
            return (f64::NAN, f64::NAN, f64::NAN);
        }
        all.sort_unstable();
        let at = |q: f64| f64::from(all[((all.len() - 1) as f64 * q) as usize]) / 1000.0;
        let mean = all.iter().map(|&u| f64::from(u)).sum::<f64>() / all.len() as f64 / 1000.0;
        (mean, at(0.9), at(0.99))
    }
}

/// The mock: one thread per connection, each with a current-thread runtime serving HTTP/1.1
/// with hyper. A request's answer waits in that thread with a plain OS sleep until exactly
/// `latency` after the request arrived (tens of microseconds late at most), and is written by
/// the same thread: no timer wheel (tokio's rounds a 20 ms sleep up to ~21 ms) and no wake-up
/// handed from one thread to another. An HTTP/1.1 connection carries one request at a time, so
/// blocking its thread while it waits delays nobody else.
///
/// The threads and their runtimes are started before the first connection ([`THREADS`] of
/// them; one more whenever more connections are open than threads), as a server that
/// is up is warm: starting them as the client connects put 1.5-5.7 ms between the client's
/// first connection and its first request being read, in the client's start-up.
pub fn start_mock(latency: Duration) -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = std::sync::mpsc::channel::<std::net::TcpStream>();
    let rx = Arc::new(Mutex::new(rx));
    // Threads waiting for a connection, and connections accepted and not yet closed.
    let idle = Arc::new(AtomicU64::new(0));
    let open = Arc::new(AtomicU64::new(0));
    let spawn = {
        let (seen, rx, idle, open) = (
            Arc::clone(&seen),
            Arc::clone(&rx),
            Arc::clone(&idle),
            Arc::clone(&open),
        );
        move || {
            let (seen, rx, idle, open) = (
                Arc::clone(&seen),
                Arc::clone(&rx),
                Arc::clone(&idle),
                Arc::clone(&open),
            );
            std::thread::spawn(move || connection_thread(&rx, &idle, &open, latency, &seen));
        }
    };
    for _ in 0..THREADS {
        spawn();
    }
    // Ready before the address is handed out.
    while idle.load(Ordering::SeqCst) < THREADS {
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::spawn(move || {
        // A thread serves one connection until it closes: there are always at least as many
        // threads as open connections, or one would wait for a thread (a client's request
        // on it unanswered) until another connection closes.
        let mut threads = THREADS;
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            if open.fetch_add(1, Ordering::SeqCst) + 1 > threads {
                spawn();
                threads += 1;
            }
            if tx.send(stream).is_err() {
                return;
            }
        }
    });
    (format!("http://{addr}/v1"), seen)
}

/// Connection threads started ahead.
const THREADS: u64 = 80;

const ANSWER: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"mock","choices":[{"index":0,"message":{"role":"assistant","content":"The answer is right: thirty days."},"finish_reason":"stop"}],"usage":{"prompt_tokens":42,"completion_tokens":9,"total_tokens":51}}"#;

/// One of the mock's threads: serves the connections it is handed, one at a time.
fn connection_thread(
    streams: &Mutex<std::sync::mpsc::Receiver<std::net::TcpStream>>,
    idle: &AtomicU64,
    open: &AtomicU64,
    latency: Duration,
    seen: &Arc<Seen>,
) {
    // Sleeps end as close to the deadline as the kernel can: without this, a sleep may end up
    // to 50 us late (the default timer slack), so that timers can be grouped.
    let _ = rustix::thread::set_current_timer_slack(std::num::NonZeroU64::new(1));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("runtime");
    loop {
        idle.fetch_add(1, Ordering::SeqCst);
        let stream = streams.lock().expect("lock").recv();
        idle.fetch_sub(1, Ordering::SeqCst);
        let Ok(stream) = stream else { return };
        serve_connection(&rt, stream, latency, seen);
        open.fetch_sub(1, Ordering::SeqCst);
    }
}

fn serve_connection(
    rt: &tokio::runtime::Runtime,
    stream: std::net::TcpStream,
    latency: Duration,
    seen: &Arc<Seen>,
) {
    let _ = stream.set_nodelay(true);
    stream.set_nonblocking(true).expect("nonblocking");
    let answered_last = std::cell::Cell::new(None::<Instant>);
    rt.block_on(async {
        let stream = tokio::net::TcpStream::from_std(stream).expect("register the connection");
        let service =
            hyper::service::service_fn(|request: hyper::Request<hyper::body::Incoming>| {
                let seen = Arc::clone(seen);
                let answered_last = &answered_last;
                async move {
                    let arrived = Instant::now();
                    if let Some(before) = answered_last.get() {
                        let us = arrived.duration_since(before).as_micros();
                        seen.turnaround_us
                            .lock()
                            .expect("lock")
                            .push(u32::try_from(us).unwrap_or(u32::MAX));
                    }
                    if seen.requests.fetch_add(1, Ordering::SeqCst) == 0 {
                        *seen.first.lock().expect("lock") = Some(arrived);
                    }
                    // Read the whole request, as a real endpoint does, before answering.
                    let _ = http_body_util::BodyExt::collect(request.into_body()).await;
                    // Blocks only this connection's thread (see `start_mock`).
                    std::thread::sleep(
                        (arrived + latency).saturating_duration_since(Instant::now()),
                    );
                    let answered = Instant::now();
                    answered_last.set(Some(answered));
                    seen.served_us.fetch_add(
                        answered.duration_since(arrived).as_micros() as u64,
                        Ordering::SeqCst,
                    );
                    {
                        let mut last = seen.last.lock().expect("lock");
                        if last.is_none_or(|t| t < answered) {
                            *last = Some(answered);
                        }
                    }
                    hyper::Response::builder()
                        .header("content-type", "application/json")
                        .body(http_body_util::Full::new(hyper::body::Bytes::from_static(
                            ANSWER.as_bytes(),
                        )))
                }
            });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
            .await;
    });
}

/// Serve the mock at `latency` until killed: its address on the first line of standard
/// output, then every 5 seconds the requests served so far and their mean latency on standard
/// error.
pub fn serve(latency: Duration) -> ! {
    let (url, seen) = start_mock(latency);
    println!("{url}");
    loop {
        std::thread::sleep(Duration::from_secs(5));
        let n = seen.requests.load(Ordering::SeqCst).max(1);
        eprintln!(
            "mock: {n} requests served, {:.3} ms each on average",
            seen.served_us.load(Ordering::SeqCst) as f64 / n as f64 / 1000.0
        );
    }
}
