//! Loopback mock servers for provider tests.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::Request as AxumRequest;
use axum::http::HeaderMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::model::{ChatMessage, Request};

/// A request as the mock server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ascii header").to_string())
    }
}

/// What the mock server answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    pub fn raw(status: u16, content_type: &str, body: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

type Responder = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

pub struct MockServer {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockServer {
    /// A server answering every request with `reply`.
    pub async fn start(reply: Reply) -> Self {
        Self::start_with(move |_| reply.clone()).await
    }

    /// A server answering each request with `respond(request)`.
    pub async fn start_with(respond: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Self {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let respond: Responder = Arc::new(respond);
        let log = seen.clone();
        let app = axum::Router::new().fallback(move |req: AxumRequest| {
            let log = log.clone();
            let respond = respond.clone();
            async move {
                let (parts, body) = req.into_parts();
                let body = axum::body::to_bytes(body, usize::MAX)
                    .await
                    .expect("read request body");
                let s = Seen {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_string(),
                    query: parts.uri.query().map(str::to_string),
                    headers: parts.headers,
                    body: body.to_vec(),
                };
                let reply = respond(&s);
                log.lock().expect("lock").push(s);
                let mut builder = axum::http::Response::builder().status(reply.status);
                for (k, v) in &reply.headers {
                    builder = builder.header(k, v);
                }
                builder
                    .body(Body::from(reply.body))
                    .expect("valid response")
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://{addr}"),
            seen,
            task,
        }
    }

    /// Requests received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }

    /// The only request received.
    pub fn only(&self) -> Seen {
        let seen = self.seen();
        assert_eq!(seen.len(), 1, "expected exactly one request, got {seen:?}");
        seen[0].clone()
    }
}

/// A server that writes `raw` bytes as its whole answer to every connection, then closes
/// it: for answers an HTTP framework refuses to produce (bodies cut short).
pub async fn raw_server(raw: &'static str) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let task = tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                // Read the request head and its body (the providers always send a length).
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = find(&buf, b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                let _ = sock.write_all(raw.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (format!("http://{addr}"), task)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A request with an optional system prompt and alternating user/assistant messages.
pub fn request(system: Option<&str>, messages: &[&str]) -> Request {
    Request {
        case_id: "case-1".into(),
        sample: 0,
        system: system.map(str::to_string),
        messages: messages
            .iter()
            .enumerate()
            .map(|(i, m)| ChatMessage {
                role: if i % 2 == 0 { "user" } else { "assistant" }.into(),
                content: (*m).to_string(),
            })
            .collect(),
        vars: std::collections::BTreeMap::new(),
    }
}

/// An environment holding exactly `pairs`.
pub fn env(pairs: &[(&str, &str)]) -> super::EnvLookup {
    let map: std::collections::HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    Arc::new(move |name: &str| map.get(name).cloned())
}

pub fn client() -> reqwest::Client {
    crate::provider::http_client().expect("http client")
}
