//! An OTLP/HTTP receiver: `POST /v1/traces` in protobuf or JSON, gzip or not, as OpenTelemetry
//! SDKs and the Collector export them.
//!
//! The receiver only decodes: each export's model-call spans go, as flattened records
//! ([`super::otlp`]), onto a bounded queue with a oneshot reply. One consumer (the composer's
//! store writer) maps, redacts, samples and stores them, and replies once they are durable; only
//! then is the export answered 200. A full queue is answered 429 with `Retry-After`, a consumer
//! that has stopped 503, so that an exporter retries rather than loses spans. What is skipped
//! (spans that are not model calls) or rejected (records the mapping refuses) is said in the
//! answer's `partial_success`, as the OTLP specification asks.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use prost::Message;
use serde_json::Value;
use subtle::ConstantTimeEq;
use tokio::sync::{mpsc, oneshot};

use super::ingest::{Ingestor, Kept};
use super::otlp::{self, Broken, Decoded};

/// Where `collect` listens when not told: OTLP/HTTP's port, on loopback.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4318";
/// The OTLP/HTTP path for traces.
pub const TRACES_PATH: &str = "/v1/traces";
/// The largest export accepted, before and after gzip (the OpenTelemetry Collector's default
/// is 20 MiB; SDKs send batches of 512 spans).
pub const DEFAULT_MAX_BODY: usize = 16 * 1024 * 1024;
/// What `Retry-After` says when the receiver is behind, in seconds.
pub const RETRY_AFTER_SECS: u32 = 1;

/// A receiver that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error(
        "listen on {addr}: it is not a loopback address, and without a token anyone who reaches it could write traffic; give --token-env VAR (a bearer token senders must present) or listen on 127.0.0.1"
    )]
    NotLoopback { addr: SocketAddr },
    #[error("serve OTLP/HTTP: {0}")]
    Serve(String),
}

/// What the receiver needs, beyond where it listens.
#[derive(Clone)]
pub struct Settings {
    /// Largest body, compressed or not, in bytes.
    pub max_body: usize,
    /// When set, every export must carry `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("max_body", &self.max_body)
            .field("token", &self.token.as_ref().map(|_| "[set]"))
            .finish()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_body: DEFAULT_MAX_BODY,
            token: None,
        }
    }
}

/// Refuses a non-loopback address unless a token guards it.
pub fn check_listen(addr: SocketAddr, has_token: bool) -> Result<(), CollectError> {
    if addr.ip().is_loopback() || has_token {
        Ok(())
    } else {
        Err(CollectError::NotLoopback { addr })
    }
}

/// One export's model-call spans, waiting for the consumer.
#[derive(Debug)]
pub struct Export {
    /// Flattened spans ([`otlp`]'s record shape), in the order they came.
    pub records: Vec<Value>,
    /// Model-call spans whose ids or timing cannot be read: rejected, counted by the consumer.
    pub broken: Vec<Broken>,
    /// The consumer's answer: stored (with how many it rejected), or why not.
    pub done: oneshot::Sender<Result<Stored, String>>,
}

/// What the consumer did with an export, once it is durable.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Records the mapping refused (malformed); the rest are stored.
    pub rejected: u64,
    /// The first refusal's reason.
    pub reason: Option<String>,
}

/// An export's records through the source's pure stage. Returns the records read (each to be
/// counted, and stored whole when kept) and what the export's answer says about those refused:
/// the `broken` spans, and the records the mapping refuses.
pub fn take(
    ingestor: &mut Ingestor<'_>,
    records: &[Value],
    broken: &[Broken],
) -> (Vec<Kept>, Stored) {
    let before = ingestor.counts.malformed;
    let mut stored = Stored::default();
    let mut kept = Vec::new();
    for b in broken {
        ingestor.malformed(b.at.clone(), b.why.clone());
        if stored.reason.is_none() {
            stored.reason = Some(format!("{}: {}", b.at, b.why));
        }
    }
    for v in records {
        let at = || otlp::span_name(v);
        let shown = ingestor.counts.shown.len();
        kept.extend(ingestor.value(v, &[], at));
        if stored.reason.is_none() && ingestor.counts.shown.len() > shown {
            stored.reason = ingestor
                .counts
                .shown
                .last()
                .map(|(a, w)| format!("{a}: {w}"));
        }
    }
    stored.rejected = ingestor.counts.malformed - before;
    if stored.rejected > 0 && stored.reason.is_none() {
        stored.reason = Some("records the source's fields cannot read".into());
    }
    (kept, stored)
}

struct Shared {
    settings: Settings,
    queue: mpsc::Sender<Export>,
}

/// The routes, for a server or a test.
pub fn router(settings: Settings, queue: mpsc::Sender<Export>) -> Router {
    Router::new()
        .route(TRACES_PATH, post(traces))
        .with_state(Arc::new(Shared { settings, queue }))
}

/// Serves on `listener` until `shutdown` completes; exports already accepted are answered
/// before this returns. Dropping the queue's sender then ends the consumer.
pub async fn serve(
    listener: tokio::net::TcpListener,
    settings: Settings,
    queue: mpsc::Sender<Export>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), CollectError> {
    axum::serve(listener, router(settings, queue))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| CollectError::Serve(e.to_string()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    Protobuf,
    Json,
}

impl Wire {
    fn content_type(self) -> &'static str {
        match self {
            Self::Protobuf => "application/x-protobuf",
            Self::Json => "application/json",
        }
    }
}

/// An export not taken: the status, the reason (the body, as text), and whether the sender
/// should retry (`Retry-After`).
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    reason: String,
    retry: bool,
}

fn refuse(status: StatusCode, reason: impl std::fmt::Display) -> Refusal {
    Refusal {
        status,
        reason: reason.to_string(),
        retry: false,
    }
}

fn behind(status: StatusCode, reason: impl std::fmt::Display) -> Refusal {
    Refusal {
        retry: true,
        ..refuse(status, reason)
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut r = (self.status, format!("{}\n", self.reason)).into_response();
        if self.retry {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        r
    }
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).map(|v| v.to_str().unwrap_or("?"))
}

async fn traces(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Response {
    match receive(&s, &headers, body).await {
        Ok(r) => r,
        Err(refusal) => refusal.into_response(),
    }
}

async fn receive(s: &Shared, headers: &HeaderMap, body: Body) -> Result<Response, Refusal> {
    if let Some(token) = &s.settings.token {
        authorize(token, headers)?;
    }
    let wire = wire(headers)?;
    let gzip = match header_text(headers, header::CONTENT_ENCODING).map(str::trim) {
        None | Some("" | "identity") => false,
        Some(e) if e.eq_ignore_ascii_case("gzip") => true,
        Some(other) => {
            return Err(refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format_args!("content encoding `{other}` is not supported: send gzip or none"),
            ));
        }
    };
    let max = s.settings.max_body;
    let too_large = || {
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            format_args!("the export is over {max} bytes: send smaller batches"),
        )
    };
    let declared = header_text(headers, header::CONTENT_LENGTH).and_then(|l| l.parse::<u64>().ok());
    if declared.is_some_and(|l| l > max as u64) {
        return Err(too_large());
    }
    let bytes = axum::body::to_bytes(body, max).await.map_err(|e| {
        if std::error::Error::source(&e)
            .is_some_and(<dyn std::error::Error>::is::<http_body_util::LengthLimitError>)
        {
            too_large()
        } else {
            refuse(
                StatusCode::BAD_REQUEST,
                format_args!("read the export: {e}"),
            )
        }
    })?;
    let bytes = if gzip {
        gunzip(&bytes, max).map_err(|e| e.refusal(max))?
    } else {
        bytes
    };
    let decoded = match wire {
        Wire::Protobuf => otlp::decode_protobuf(&bytes),
        Wire::Json => otlp::decode_json(&bytes),
    }
    .map_err(|e| refuse(StatusCode::BAD_REQUEST, e))?;
    let Decoded {
        records,
        skipped,
        broken,
    } = decoded;
    let stored = if records.is_empty() && broken.is_empty() {
        Stored::default()
    } else {
        let (done, answer) = oneshot::channel();
        match s.queue.try_send(Export {
            records,
            broken,
            done,
        }) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                return Err(behind(
                    StatusCode::TOO_MANY_REQUESTS,
                    "the receiver is behind: retry later",
                ));
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                return Err(behind(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the receiver is shutting down: retry later",
                ));
            }
        }
        match answer.await {
            Ok(Ok(stored)) => stored,
            Ok(Err(reason)) => {
                return Err(behind(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format_args!("the spans could not be stored: {reason}"),
                ));
            }
            Err(_) => {
                return Err(behind(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the receiver stopped before storing the spans: retry later",
                ));
            }
        }
    };
    Ok(answer(wire, skipped as u64, &stored))
}

fn authorize(token: &str, headers: &HeaderMap) -> Result<(), Refusal> {
    // The scheme is case-insensitive (RFC 7235): `bearer` is `Bearer`.
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim_start().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    match given {
        Some(g) if bool::from(g.as_bytes().ct_eq(token.as_bytes())) => Ok(()),
        Some(_) => Err(refuse(
            StatusCode::UNAUTHORIZED,
            "the bearer token is wrong",
        )),
        None => Err(refuse(
            StatusCode::UNAUTHORIZED,
            "this receiver needs `Authorization: Bearer <token>`",
        )),
    }
}

fn wire(headers: &HeaderMap) -> Result<Wire, Refusal> {
    let Some(ct) = header_text(headers, header::CONTENT_TYPE) else {
        return Err(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "no content type: send application/x-protobuf or application/json",
        ));
    };
    let essence = ct.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/x-protobuf")
        || essence.eq_ignore_ascii_case("application/protobuf")
    {
        Ok(Wire::Protobuf)
    } else if essence.eq_ignore_ascii_case("application/json") {
        Ok(Wire::Json)
    } else {
        Err(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format_args!(
                "content type `{ct}` is not an OTLP export: send application/x-protobuf or application/json"
            ),
        ))
    }
}

enum GunzipError {
    TooLarge,
    Broken(std::io::Error),
}

impl GunzipError {
    fn refusal(self, max: usize) -> Refusal {
        match self {
            Self::TooLarge => refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                format_args!("the export is over {max} bytes once unzipped: send smaller batches"),
            ),
            Self::Broken(e) => refuse(
                StatusCode::BAD_REQUEST,
                format_args!("the body is not valid gzip: {e}"),
            ),
        }
    }
}

/// Unzips at most `max` bytes: a small body that unzips to gigabytes is refused, not read.
fn gunzip(bytes: &[u8], max: usize) -> Result<Bytes, GunzipError> {
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(4).min(max));
    flate2::read::GzDecoder::new(bytes)
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(GunzipError::Broken)?;
    if out.len() > max {
        return Err(GunzipError::TooLarge);
    }
    Ok(Bytes::from(out))
}

fn answer(wire: Wire, skipped: u64, stored: &Stored) -> Response {
    let mut notes = Vec::new();
    if skipped > 0 {
        notes.push(format!(
            "{skipped} span(s) skipped: not model calls (no gen_ai.* or OpenInference LLM attributes)"
        ));
    }
    if stored.rejected > 0 {
        notes.push(format!(
            "{} span(s) rejected: {}",
            stored.rejected,
            stored.reason.as_deref().unwrap_or("malformed")
        ));
    }
    let response = ExportTraceServiceResponse {
        partial_success: (!notes.is_empty()).then(|| ExportTracePartialSuccess {
            rejected_spans: i64::try_from(skipped + stored.rejected).unwrap_or(i64::MAX),
            error_message: notes.join("; "),
        }),
    };
    let body = match wire {
        Wire::Protobuf => response.encode_to_vec(),
        // A full success is `{}`: the generated type would write `"partialSuccess": null`.
        Wire::Json => response
            .partial_success
            .as_ref()
            .and_then(|p| serde_json::to_vec(&serde_json::json!({ "partialSuccess": p })).ok())
            .unwrap_or_else(|| b"{}".to_vec()),
    };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, wire.content_type())],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::ingest::{SourceRules, StoreText};
    use crate::traffic::mapping::Mapping;
    use crate::traffic::redact::Redactor;
    use crate::traffic::sample::SampleRate;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use std::io::Write;

    fn span(i: u8, model: Option<&str>) -> Span {
        let attributes = model
            .map(|m| KeyValue {
                key: "gen_ai.request.model".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(m.into())),
                }),
                ..KeyValue::default()
            })
            .into_iter()
            .collect();
        Span {
            trace_id: vec![i; 16],
            span_id: vec![i; 8],
            name: "chat".into(),
            start_time_unix_nano: 1_765_000_000_000_000_000,
            end_time_unix_nano: 1_765_000_000_100_000_000,
            attributes,
            ..Span::default()
        }
    }

    fn export(spans: Vec<Span>) -> Vec<u8> {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        }
        .encode_to_vec()
    }

    /// A receiver on a free loopback port; the test plays the consumer through `queue`.
    async fn start(settings: Settings, capacity: usize) -> (String, mpsc::Receiver<Export>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}{TRACES_PATH}", listener.local_addr().unwrap());
        let (tx, rx) = mpsc::channel(capacity);
        tokio::spawn(serve(listener, settings, tx, std::future::pending()));
        (url, rx)
    }

    fn post(url: &str, content_type: &str, body: Vec<u8>) -> reqwest::RequestBuilder {
        crate::provider::http_client()
            .unwrap()
            .post(url)
            .header("content-type", content_type)
            .body(body)
    }

    async fn text(r: reqwest::Response) -> (u16, String) {
        (r.status().as_u16(), r.text().await.unwrap())
    }

    #[tokio::test]
    async fn an_export_is_answered_only_once_the_consumer_says_it_is_stored() {
        let (url, mut rx) = start(Settings::default(), 4).await;
        let body = export(vec![
            span(1, Some("gpt-4o")),
            span(2, None),
            span(3, Some("o3")),
        ]);
        let sent = tokio::spawn(post(&url, "application/x-protobuf", body).send());
        let got = rx.recv().await.unwrap();
        assert_eq!(got.records.len(), 2);
        assert_eq!(got.records[1]["genai"]["model"], "o3");
        // Not answered yet: the consumer has not replied.
        tokio::task::yield_now().await;
        assert!(!sent.is_finished());
        got.done
            .send(Ok(Stored {
                rejected: 1,
                reason: Some("span 03:03: field `time` (/x): missing".into()),
            }))
            .unwrap();
        let r = sent.await.unwrap().unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/x-protobuf");
        let answer = ExportTraceServiceResponse::decode(r.bytes().await.unwrap()).unwrap();
        let partial = answer.partial_success.unwrap();
        assert_eq!(partial.rejected_spans, 2);
        assert!(
            partial
                .error_message
                .contains("1 span(s) skipped: not model calls")
                && partial
                    .error_message
                    .contains("1 span(s) rejected: span 03:03"),
            "{}",
            partial.error_message
        );
    }

    #[tokio::test]
    async fn json_and_gzip_are_read_and_answered_in_kind() {
        let (url, mut rx) = start(Settings::default(), 4).await;
        let json = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c",
          "spanId":"eee19b7ec3c1b174","name":"chat","startTimeUnixNano":"1765000000000000000",
          "endTimeUnixNano":"1765000000250000000",
          "attributes":[{"key":"gen_ai.request.model","value":{"stringValue":"gpt-4o"}}]}]}]}]}"#;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(json).unwrap();
        let sent = tokio::spawn(
            post(
                &url,
                "application/json; charset=utf-8",
                gz.finish().unwrap(),
            )
            .header("content-encoding", "gzip")
            .send(),
        );
        let got = rx.recv().await.unwrap();
        assert_eq!(got.records[0]["duration_ms"], 250.0);
        got.done.send(Ok(Stored::default())).unwrap();
        let (status, body) = text(sent.await.unwrap().unwrap()).await;
        assert_eq!((status, body.as_str()), (200, "{}"));
    }

    #[tokio::test]
    async fn bad_exports_are_refused_with_the_reason() {
        // (content type, content encoding, body, status, part of the reason)
        type Case = (
            &'static str,
            Option<&'static str>,
            Vec<u8>,
            u16,
            &'static str,
        );
        let settings = Settings {
            max_body: 1_000,
            token: None,
        };
        let (url, _rx) = start(settings, 4).await;
        let cases: [Case; 6] = [
            (
                "text/plain",
                None,
                b"hi".to_vec(),
                415,
                "`text/plain` is not an OTLP export",
            ),
            (
                "application/x-protobuf",
                None,
                vec![0xff; 3],
                400,
                "not an OTLP protobuf",
            ),
            (
                "application/json",
                None,
                b"{\"ts\": 1}".to_vec(),
                400,
                "not an OTLP/JSON",
            ),
            (
                "application/json",
                Some("br"),
                b"{}".to_vec(),
                415,
                "`br` is not supported",
            ),
            (
                "application/json",
                Some("gzip"),
                b"{}".to_vec(),
                400,
                "not valid gzip",
            ),
            (
                "application/json",
                None,
                vec![b' '; 1_001],
                413,
                "over 1000 bytes",
            ),
        ];
        for (ct, enc, body, status, reason) in cases {
            let mut req = post(&url, ct, body);
            if let Some(e) = enc {
                req = req.header("content-encoding", e);
            }
            let (got, text) = text(req.send().await.unwrap()).await;
            assert_eq!(got, status, "{ct} {enc:?}: {text}");
            assert!(text.contains(reason), "{ct} {enc:?}: {text}");
        }
        // A zip bomb: small on the wire, over the limit once unzipped.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![b' '; 50_000]).unwrap();
        let bomb = gz.finish().unwrap();
        assert!(bomb.len() < 1_000);
        let r = post(&url, "application/json", bomb)
            .header("content-encoding", "gzip")
            .send()
            .await
            .unwrap();
        let (status, text) = text(r).await;
        assert_eq!(status, 413, "{text}");
        assert!(text.contains("once unzipped"), "{text}");
    }

    #[tokio::test]
    async fn a_full_queue_says_retry_after_and_a_stopped_consumer_says_unavailable() {
        let (url, rx) = start(Settings::default(), 1).await;
        let body = || export(vec![span(1, Some("m"))]);
        let first = tokio::spawn(post(&url, "application/x-protobuf", body()).send());
        // The queue holds the first export until the consumer takes it.
        while rx.is_empty() {
            tokio::task::yield_now().await;
        }
        let r = post(&url, "application/x-protobuf", body())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "1");
        drop(rx);
        let r = first.await.unwrap().unwrap();
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "1");
        let r = post(&url, "application/x-protobuf", body())
            .send()
            .await
            .unwrap();
        let (status, text) = text(r).await;
        assert_eq!(status, 503);
        assert!(text.contains("shutting down"), "{text}");
    }

    #[tokio::test]
    async fn a_token_is_required_when_set_and_compared_whole() {
        let settings = Settings {
            max_body: DEFAULT_MAX_BODY,
            token: Some("s3cret-token".into()),
        };
        let (url, mut rx) = start(settings, 4).await;
        let body = || export(vec![span(1, Some("m"))]);
        for auth in [
            None,
            Some("Bearer s3cret"),
            Some("Bearer s3cret-token-x"),
            Some("Basic s3cret-token"),
            Some("Bearers3cret-token"),
        ] {
            let mut req = post(&url, "application/x-protobuf", body());
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            assert_eq!(req.send().await.unwrap().status(), 401, "{auth:?}");
        }
        assert!(rx.is_empty());
        let sent = tokio::spawn(
            post(&url, "application/x-protobuf", body())
                .header("authorization", "Bearer s3cret-token")
                .send(),
        );
        rx.recv()
            .await
            .unwrap()
            .done
            .send(Ok(Stored::default()))
            .unwrap();
        assert_eq!(sent.await.unwrap().unwrap().status(), 200);
        // The scheme is case-insensitive (RFC 7235): `bearer` and `BEARER` are the same.
        for auth in ["bearer s3cret-token", "BEARER  s3cret-token"] {
            let sent = tokio::spawn(
                post(&url, "application/x-protobuf", body())
                    .header("authorization", auth)
                    .send(),
            );
            // A refused token never reaches the consumer: fail then, rather than wait forever.
            let got = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv()).await;
            let Ok(Some(export)) = got else {
                let r = sent.await.unwrap().unwrap();
                panic!("{auth}: answered {} without storing", r.status());
            };
            export.done.send(Ok(Stored::default())).unwrap();
            assert_eq!(sent.await.unwrap().unwrap().status(), 200, "{auth}");
        }
    }

    #[tokio::test]
    async fn spans_with_broken_timing_are_rejected_in_the_answer_not_stored() {
        let (url, mut rx) = start(Settings::default(), 4).await;
        let mut backwards = span(2, Some("m"));
        backwards.end_time_unix_nano = backwards.start_time_unix_nano - 5_000_000_000;
        let body = export(vec![span(1, Some("m")), backwards]);
        let sent = tokio::spawn(post(&url, "application/x-protobuf", body).send());
        let got = rx.recv().await.unwrap();
        assert_eq!(got.records.len(), 1);
        assert_eq!(got.records[0]["span_id"], "01".repeat(8));
        // The consumer counts the broken span with the records the mapping refuses.
        let rules = otlp_rules();
        let mut ing = Ingestor::new(&rules);
        let (kept, stored) = take(&mut ing, &got.records, &got.broken);
        assert_eq!((kept.len(), ing.counts.malformed), (1, 1));
        got.done.send(Ok(stored)).unwrap();
        let r = sent.await.unwrap().unwrap();
        assert_eq!(r.status(), 200);
        let answer = ExportTraceServiceResponse::decode(r.bytes().await.unwrap()).unwrap();
        let partial = answer.partial_success.unwrap();
        assert_eq!(partial.rejected_spans, 1);
        assert_eq!(
            partial.error_message,
            format!(
                "1 span(s) rejected: span {}:{}: it ends 5000 ms before it starts (endTimeUnixNano < startTimeUnixNano)",
                "02".repeat(16),
                "02".repeat(8)
            )
        );
        // An export of broken spans only is counted too, not answered as a full success.
        let mut unset = span(3, Some("m"));
        unset.start_time_unix_nano = 0;
        let sent = tokio::spawn(post(&url, "application/x-protobuf", export(vec![unset])).send());
        let got = rx.recv().await.unwrap();
        assert_eq!((got.records.len(), got.broken.len()), (0, 1));
        let (_, stored) = take(&mut ing, &got.records, &got.broken);
        got.done.send(Ok(stored)).unwrap();
        let r = sent.await.unwrap().unwrap();
        let answer = ExportTraceServiceResponse::decode(r.bytes().await.unwrap()).unwrap();
        let partial = answer.partial_success.unwrap();
        assert_eq!(partial.rejected_spans, 1);
        assert!(
            partial
                .error_message
                .ends_with("startTimeUnixNano is 0 (unset): the span has no start time"),
            "{}",
            partial.error_message
        );
    }

    /// The rules of an `otlp` source with its default fields: everything kept, nothing redacted.
    fn otlp_rules() -> SourceRules {
        SourceRules {
            mapping: Mapping {
                fields: otlp::default_fields(),
                users: None,
            },
            redactor: Redactor::new(&[]).unwrap(),
            sample: SampleRate::ALL,
            store_text: StoreText::Sampled,
        }
    }

    #[test]
    fn only_loopback_without_a_token() {
        let lo: SocketAddr = "127.0.0.1:4318".parse().unwrap();
        let v6: SocketAddr = "[::1]:4318".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:4318".parse().unwrap();
        assert!(check_listen(lo, false).is_ok() && check_listen(v6, false).is_ok());
        let e = check_listen(any, false).unwrap_err().to_string();
        assert!(
            e.contains("not a loopback address") && e.contains("--token-env"),
            "{e}"
        );
        assert!(check_listen(any, true).is_ok());
    }

    #[test]
    fn take_maps_the_records_and_says_which_it_refused() {
        let rules = otlp_rules();
        let mut ing = Ingestor::new(&rules);
        let mut records =
            otlp::decode_protobuf(&export(vec![span(1, Some("a")), span(2, Some("b"))]))
                .unwrap()
                .records;
        records[1]["start_ms"] = Value::String("soon".into());
        let (kept, stored) = take(&mut ing, &records, &[]);
        assert_eq!(kept.len(), 1);
        assert_eq!(
            kept[0].key,
            format!("{}:{}", "01".repeat(16), "01".repeat(8))
        );
        assert_eq!(stored.rejected, 1);
        let reason = stored.reason.unwrap();
        assert!(
            reason.starts_with(&format!(
                "span {}:{}: field `time`",
                "02".repeat(16),
                "02".repeat(8)
            )),
            "{reason}"
        );
    }
}
