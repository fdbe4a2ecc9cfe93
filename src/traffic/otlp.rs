//! OpenTelemetry traces in: OTLP protobuf (the collector's and SDKs' HTTP exporter) and OTLP/JSON
//! (the Collector's file exporter), decoded with OpenTelemetry's own generated types, and each
//! model-call span flattened into one JSON record that a [`super::Mapping`] reads.
//!
//! The flattened record:
//!
//! ```text
//! { "trace_id", "span_id", "name", "start_ms", "duration_ms", "error", "error_kind",
//!   "attributes": {key: value}, "resource": {key: value},
//!   "genai": {"model", "input", "output", "tokens_in", "tokens_out"} }
//! ```
//!
//! `genai` holds what the OpenTelemetry GenAI semantic conventions (current attributes, and the
//! per-message events of instrumentations on v1.36 and before) or OpenInference's attributes say,
//! so that [`default_fields`] needs no configuration. Spans with neither are not model calls: they
//! are counted, not read.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{Map, Value, json};

use super::mapping::{FieldMap, FieldRef};

/// Spans of one export, flattened.
#[derive(Debug, Default)]
pub struct Decoded {
    /// One record per model-call span.
    pub records: Vec<Value>,
    /// Spans that were not model calls (no GenAI or OpenInference LLM attributes).
    pub skipped: usize,
    /// Model-call spans that cannot be read (their timing or ids are broken), in order.
    pub broken: Vec<Broken>,
}

/// A model-call span that cannot be read: which, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// `span <trace id>:<span id>`, in hex.
    pub at: String,
    pub why: String,
}

/// An export that is not OTLP.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not an OTLP protobuf trace export: {0}")]
    Protobuf(String),
    #[error("not an OTLP/JSON trace export: {0}")]
    Json(String),
}

/// Decodes an `ExportTraceServiceRequest` in protobuf.
pub fn decode_protobuf(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let request = ExportTraceServiceRequest::decode(bytes)
        .map_err(|e| DecodeError::Protobuf(e.to_string()))?;
    Ok(flatten(&request))
}

/// Decodes an `ExportTraceServiceRequest` (or `TracesData`, the same shape) in OTLP/JSON: one
/// request, as an HTTP body or one line of the Collector's file exporter. Unknown fields are
/// ignored at any depth, as OTLP asks of receivers; a body that is no JSON object, or an object
/// with other keys and no `resourceSpans` at all, is not an export.
pub fn decode_json(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let request: ExportTraceServiceRequest = match serde_json::from_slice(bytes) {
        Ok(r) => r,
        Err(e) => {
            let kind = match serde_json::from_slice::<Value>(bytes) {
                Ok(Value::Array(_)) => Some("a JSON array"),
                Ok(Value::Number(_)) => Some("a JSON number"),
                Ok(Value::String(_)) => Some("a JSON string"),
                Ok(Value::Bool(_)) => Some("a JSON boolean"),
                Ok(Value::Null) => Some("JSON null"),
                Ok(Value::Object(_)) | Err(_) => None,
            };
            return Err(DecodeError::Json(kind.map_or_else(
                || e.to_string(),
                |k| format!("it is {k}, not an object with `resourceSpans`"),
            )));
        }
    };
    if request.resource_spans.is_empty() {
        // Any JSON object reads as an export, empty when it has no `resourceSpans`: one with
        // keys and none of them `resourceSpans` is something else (a log line, say).
        let keys: Map<String, Value> =
            serde_json::from_slice(bytes).map_err(|e| DecodeError::Json(e.to_string()))?;
        let has = |k: &str| keys.contains_key(k);
        if let Some(k) = keys.keys().next()
            && !has("resourceSpans")
            && !has("resource_spans")
        {
            return Err(DecodeError::Json(format!(
                "it has `{k}` and no `resourceSpans`"
            )));
        }
    }
    Ok(flatten(&request))
}

/// How a flattened record (or a [`Broken`] span) is named in messages: `span <trace>:<span>`,
/// as `collect`'s answers and `ingest`'s errors say it.
pub fn span_name(record: &Value) -> String {
    let id = |k: &str| record.get(k).and_then(Value::as_str).unwrap_or("?");
    format!("span {}:{}", id("trace_id"), id("span_id"))
}

/// The fields of an `otlp` source with nothing configured: what the conventions say.
pub fn default_fields() -> FieldMap {
    let p = |s: &str| FieldRef::Pointer(s.to_owned());
    let mut f = FieldMap::new(p("/start_ms"));
    f.latency_ms = Some(p("/duration_ms"));
    f.error = Some(p("/error"));
    f.error_kind = Some(p("/error_kind"));
    f.trace_id = Some(p("/trace_id"));
    f.model = Some(p("/genai/model"));
    f.input = Some(p("/genai/input"));
    f.output = Some(p("/genai/output"));
    f.tokens_in = Some(p("/genai/tokens_in"));
    f.tokens_out = Some(p("/genai/tokens_out"));
    f
}

/// `attr:NAME` (a span attribute) or `resource:NAME` (a resource attribute), as an `otlp`
/// source's `fields:` write them; anything else is a JSON pointer into the flattened record.
pub fn field_ref(text: &str) -> Result<FieldRef, String> {
    if let Some(name) = text.strip_prefix("attr:") {
        return Ok(FieldRef::Pointer(format!("/attributes/{}", escape(name))));
    }
    if let Some(name) = text.strip_prefix("resource:") {
        return Ok(FieldRef::Pointer(format!("/resource/{}", escape(name))));
    }
    FieldRef::pointer(text)
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn flatten(request: &ExportTraceServiceRequest) -> Decoded {
    let mut out = Decoded::default();
    for rs in &request.resource_spans {
        let resource = rs
            .resource
            .as_ref()
            .map(|r| attributes(&r.attributes))
            .unwrap_or_default();
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                match record(span, &resource) {
                    Ok(Some(r)) => out.records.push(r),
                    Ok(None) => out.skipped += 1,
                    Err(why) => out.broken.push(Broken {
                        at: format!(
                            "span {}:{}",
                            hex::encode(&span.trace_id),
                            hex::encode(&span.span_id)
                        ),
                        why,
                    }),
                }
            }
        }
    }
    out
}

/// A model-call span flattened, `None` for another span, or why a model-call span cannot be
/// read ([`broken`]).
fn record(span: &Span, resource: &Map<String, Value>) -> Result<Option<Value>, String> {
    let attrs = attributes(&span.attributes);
    let is_llm = attrs
        .keys()
        .any(|k| k.starts_with("gen_ai.") || k.starts_with("llm."))
        || attrs.get("openinference.span.kind").and_then(Value::as_str) == Some("LLM");
    if !is_llm {
        return Ok(None);
    }
    if let Some(why) = broken(span) {
        return Err(why);
    }
    let first = |keys: &[&str]| keys.iter().find_map(|k| attrs.get(*k).cloned());
    let start_ns = span.start_time_unix_nano;
    let duration_ns = span.end_time_unix_nano - start_ns;
    // STATUS_CODE_ERROR = 2.
    let failed = span.status.as_ref().is_some_and(|s| s.code == 2);
    let error_kind = attrs
        .get("error.type")
        .cloned()
        .or_else(|| {
            span.status
                .as_ref()
                .filter(|s| failed && !s.message.is_empty())
                .map(|s| Value::String(s.message.clone()))
        })
        .unwrap_or(Value::Null);
    let input = first(&["gen_ai.input.messages", "gen_ai.prompt", "input.value"])
        .map(parse_json_text)
        .or_else(|| {
            events_text(
                span,
                &[
                    "gen_ai.system.message",
                    "gen_ai.user.message",
                    "gen_ai.assistant.message",
                    "gen_ai.tool.message",
                ],
            )
        });
    let output = first(&[
        "gen_ai.output.messages",
        "gen_ai.completion",
        "output.value",
    ])
    .map(parse_json_text)
    .or_else(|| events_text(span, &["gen_ai.choice"]));
    Ok(Some(json!({
        "trace_id": hex::encode(&span.trace_id),
        "span_id": hex::encode(&span.span_id),
        "name": span.name,
        "start_ms": start_ns as f64 / 1e6,
        "duration_ms": duration_ns as f64 / 1e6,
        "error": failed,
        "error_kind": error_kind,
        "attributes": attrs.clone(),
        "resource": resource.clone(),
        "genai": {
            "model": first(&["gen_ai.response.model", "gen_ai.request.model", "llm.model_name"]),
            "input": input,
            "output": output,
            "tokens_in": first(&["gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt"]),
            "tokens_out": first(&["gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion"]),
        },
    })))
}

/// Why a span's ids or timing cannot be read, if they cannot: OTLP requires a 16-byte trace id
/// and an 8-byte span id, neither all zeros, and a start and an end time. A span that ends
/// before it starts has no duration to read (stored as 0 ms it would pull the latency down).
fn broken(span: &Span) -> Option<String> {
    for (what, id, len) in [("trace", &span.trace_id, 16), ("span", &span.span_id, 8)] {
        if id.len() != len {
            return Some(format!(
                "its {what} id is {} bytes: OTLP {what} ids are {len}",
                id.len()
            ));
        }
        if id.iter().all(|b| *b == 0) {
            return Some(format!(
                "its {what} id is all zeros, which OTLP calls invalid"
            ));
        }
    }
    let (start, end) = (span.start_time_unix_nano, span.end_time_unix_nano);
    if start == 0 {
        return Some("startTimeUnixNano is 0 (unset): the span has no start time".into());
    }
    if end == 0 {
        return Some("endTimeUnixNano is 0 (unset): the span has no end time".into());
    }
    (end < start).then(|| {
        format!(
            "it ends {} ms before it starts (endTimeUnixNano < startTimeUnixNano)",
            (start - end) as f64 / 1e6
        )
    })
}

/// GenAI message attributes are JSON text (`[{"role", "parts": [...]}]`): parsed when they are,
/// kept as text when not.
fn parse_json_text(v: Value) -> Value {
    match &v {
        Value::String(s) if s.starts_with(['[', '{']) => serde_json::from_str(s).unwrap_or(v),
        _ => v,
    }
}

/// The older per-message events: each event's `content` attribute (or its `message`, a JSON
/// object with `content`), in order, as chat messages.
fn events_text(span: &Span, names: &[&str]) -> Option<Value> {
    let messages: Vec<Value> = span
        .events
        .iter()
        .filter(|e| names.contains(&e.name.as_str()))
        .filter_map(|e| {
            let a = attributes(&e.attributes);
            a.get("content")
                .cloned()
                .or_else(|| a.get("message").cloned().map(parse_json_text))
        })
        .collect();
    (!messages.is_empty()).then_some(Value::Array(messages))
}

fn attributes(kvs: &[KeyValue]) -> Map<String, Value> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), kv.value.as_ref().map_or(Value::Null, any)))
        .collect()
}

fn any(v: &AnyValue) -> Value {
    use any_value::Value as V;
    match &v.value {
        Some(V::StringValue(s)) => Value::String(s.clone()),
        Some(V::BoolValue(b)) => Value::Bool(*b),
        Some(V::IntValue(i)) => json!(i),
        Some(V::DoubleValue(d)) => json!(d),
        Some(V::ArrayValue(a)) => Value::Array(a.values.iter().map(any).collect()),
        Some(V::KvlistValue(l)) => Value::Object(attributes(&l.values)),
        Some(V::BytesValue(b)) => Value::String(hex::encode(b)),
        // No value, or a kind of a newer protocol version (string-table references).
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::mapping::Mapping;
    use crate::traffic::redact::Redactor;
    use opentelemetry_proto::tonic::common::v1::ArrayValue;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Status, span::Event};

    fn kv(key: &str, v: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(v) }),
            ..KeyValue::default()
        }
    }

    fn s(text: &str) -> any_value::Value {
        any_value::Value::StringValue(text.into())
    }

    fn span(name: &str, attrs: Vec<KeyValue>) -> Span {
        Span {
            trace_id: vec![0xab; 16],
            span_id: vec![0x01; 8],
            name: name.into(),
            start_time_unix_nano: 1_765_000_000_000_000_000,
            end_time_unix_nano: 1_765_000_000_812_500_000,
            attributes: attrs,
            ..Span::default()
        }
    }

    fn export(spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", s("support-bot"))],
                    ..Resource::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..ScopeSpans::default()
                }],
                ..ResourceSpans::default()
            }],
        }
    }

    fn mapping() -> Mapping {
        let mut fields = default_fields();
        fields.feature = Some(field_ref("attr:app.feature").unwrap());
        fields.segment = Some(field_ref("resource:service.name").unwrap());
        Mapping {
            fields,
            users: None,
        }
    }

    #[test]
    fn genai_spans_in_protobuf_map_with_the_conventions_and_others_are_counted() {
        let chat = span(
            "chat gpt-4o-mini",
            vec![
                kv("gen_ai.operation.name", s("chat")),
                kv("gen_ai.request.model", s("gpt-4o")),
                kv("gen_ai.response.model", s("gpt-4o-mini-2024-07-18")),
                kv("gen_ai.usage.input_tokens", any_value::Value::IntValue(120)),
                kv("gen_ai.usage.output_tokens", any_value::Value::IntValue(9)),
                kv(
                    "gen_ai.input.messages",
                    s(r#"[{"role":"user","parts":[{"type":"text","content":"Refund window?"}]}]"#),
                ),
                kv(
                    "gen_ai.output.messages",
                    s(r#"[{"role":"assistant","parts":[{"type":"text","content":"30 days."}]}]"#),
                ),
                kv("app.feature", s("faq")),
            ],
        );
        let mut failed = span("chat", vec![kv("gen_ai.request.model", s("gpt-4o"))]);
        failed.status = Some(Status {
            message: "upstream timeout".into(),
            code: 2,
        });
        let db = span("SELECT orders", vec![kv("db.system", s("postgresql"))]);
        let bytes = export(vec![chat, failed, db]).encode_to_vec();
        let decoded = decode_protobuf(&bytes).unwrap();
        assert_eq!((decoded.records.len(), decoded.skipped), (2, 1));
        let m = mapping();
        let r = m.apply(&decoded.records[0], &Redactor::default()).unwrap();
        assert_eq!(r.time.timestamp_millis(), 1_765_000_000_000);
        assert_eq!(r.latency_ms, Some(812.5));
        assert_eq!(r.model.as_deref(), Some("gpt-4o-mini-2024-07-18"));
        assert_eq!((r.tokens_in, r.tokens_out), (Some(120), Some(9)));
        assert_eq!(r.input.as_deref(), Some("Refund window?"));
        assert_eq!(r.output.as_deref(), Some("30 days."));
        assert_eq!(
            r.trace_id.as_deref(),
            Some("abababababababababababababababab")
        );
        assert_eq!(r.feature.as_deref(), Some("faq"));
        assert_eq!(r.segment.as_deref(), Some("support-bot"));
        assert!(r.error.is_none());
        let f = m.apply(&decoded.records[1], &Redactor::default()).unwrap();
        assert_eq!(f.model.as_deref(), Some("gpt-4o"));
        assert_eq!(f.error.unwrap().kind.as_deref(), Some("upstream timeout"));
    }

    #[test]
    fn older_events_and_openinference_attributes_are_understood() {
        let mut old = span("chat", vec![kv("gen_ai.system", s("openai"))]);
        old.events = vec![
            Event {
                name: "gen_ai.user.message".into(),
                attributes: vec![kv("content", s("Hi there"))],
                ..Event::default()
            },
            Event {
                name: "gen_ai.choice".into(),
                attributes: vec![kv(
                    "message",
                    s(r#"{"role":"assistant","content":"Hello!"}"#),
                )],
                ..Event::default()
            },
        ];
        let oi = span(
            "llm",
            vec![
                kv("openinference.span.kind", s("LLM")),
                kv("llm.model_name", s("claude-3-5-haiku")),
                kv("input.value", s("What is 2+2?")),
                kv("output.value", s("4")),
                kv("llm.token_count.prompt", any_value::Value::IntValue(7)),
                kv("llm.token_count.completion", any_value::Value::IntValue(1)),
                kv(
                    "tags",
                    any_value::Value::ArrayValue(ArrayValue {
                        values: vec![AnyValue {
                            value: Some(s("a")),
                        }],
                    }),
                ),
            ],
        );
        let decoded = decode_protobuf(&export(vec![old, oi]).encode_to_vec()).unwrap();
        let m = mapping();
        let a = m.apply(&decoded.records[0], &Redactor::default()).unwrap();
        assert_eq!(
            (a.input.as_deref(), a.output.as_deref()),
            (Some("Hi there"), Some("Hello!"))
        );
        let b = m.apply(&decoded.records[1], &Redactor::default()).unwrap();
        assert_eq!(b.model.as_deref(), Some("claude-3-5-haiku"));
        assert_eq!(
            (b.input.as_deref(), b.output.as_deref()),
            (Some("What is 2+2?"), Some("4"))
        );
        assert_eq!((b.tokens_in, b.tokens_out), (Some(7), Some(1)));
    }

    #[test]
    fn otlp_json_as_the_collector_file_exporter_writes_it() {
        // Field names in lowerCamelCase, ids in hex, 64-bit integers as strings (OTLP/JSON).
        let line = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"bot"}}]},
          "scopeSpans":[{"scope":{"name":"openai"},"spans":[{"traceId":"5b8efff798038103d269b633813fc60c",
          "spanId":"eee19b7ec3c1b174","name":"chat gpt-4o","kind":3,
          "startTimeUnixNano":"1765000000000000000","endTimeUnixNano":"1765000000250000000",
          "attributes":[{"key":"gen_ai.request.model","value":{"stringValue":"gpt-4o"}},
                        {"key":"gen_ai.usage.input_tokens","value":{"intValue":"42"}}],
          "status":{"code":2,"message":"rate limited"}}]}]}]}"#;
        let decoded = decode_json(line.as_bytes()).unwrap();
        assert_eq!(decoded.records.len(), 1);
        let r = mapping()
            .apply(&decoded.records[0], &Redactor::default())
            .unwrap();
        assert_eq!(
            r.trace_id.as_deref(),
            Some("5b8efff798038103d269b633813fc60c")
        );
        assert_eq!((r.latency_ms, r.tokens_in), (Some(250.0), Some(42)));
        assert_eq!(r.segment.as_deref(), Some("bot"));
        assert_eq!(r.error.unwrap().kind.as_deref(), Some("rate limited"));
    }

    #[test]
    fn spans_with_broken_timing_or_ids_are_refused_with_the_reason() {
        let model = || vec![kv("gen_ai.request.model", s("gpt-4o"))];
        let good = span("chat", model());
        let mut backwards = span("chat", model());
        backwards.span_id = vec![0x02; 8];
        backwards.end_time_unix_nano = backwards.start_time_unix_nano - 5_000_000_000;
        let mut unstarted = span("chat", model());
        unstarted.span_id = vec![0x03; 8];
        unstarted.start_time_unix_nano = 0;
        let mut unended = span("chat", model());
        unended.span_id = vec![0x04; 8];
        unended.end_time_unix_nano = 0;
        let mut short_trace = span("chat", model());
        short_trace.trace_id = vec![0xcd; 15];
        let mut zero_trace = span("chat", model());
        zero_trace.trace_id = vec![0; 16];
        let mut short_span = span("chat", model());
        short_span.span_id = vec![0x05; 7];
        let spans = vec![
            good,
            backwards,
            unstarted,
            unended,
            short_trace,
            zero_trace,
            short_span,
        ];
        let decoded = decode_protobuf(&export(spans).encode_to_vec()).unwrap();
        assert_eq!((decoded.records.len(), decoded.skipped), (1, 0));
        let ab = "ab".repeat(16);
        let broken: Vec<(String, String)> = decoded
            .broken
            .iter()
            .map(|b| (b.at.clone(), b.why.clone()))
            .collect();
        let expected = [
            (
                format!("span {ab}:0202020202020202"),
                "it ends 5000 ms before it starts (endTimeUnixNano < startTimeUnixNano)",
            ),
            (
                format!("span {ab}:0303030303030303"),
                "startTimeUnixNano is 0 (unset): the span has no start time",
            ),
            (
                format!("span {ab}:0404040404040404"),
                "endTimeUnixNano is 0 (unset): the span has no end time",
            ),
            (
                format!("span {}:0101010101010101", "cd".repeat(15)),
                "its trace id is 15 bytes: OTLP trace ids are 16",
            ),
            (
                format!("span {}:0101010101010101", "00".repeat(16)),
                "its trace id is all zeros, which OTLP calls invalid",
            ),
            (
                format!("span {ab}:05050505050505"),
                "its span id is 7 bytes: OTLP span ids are 8",
            ),
        ];
        let expected: Vec<(String, String)> = expected
            .into_iter()
            .map(|(a, w)| (a, w.to_owned()))
            .collect();
        assert_eq!(broken, expected);
        // The same in OTLP/JSON: an unset start is an absent field, ids are hex.
        let json = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[
          {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"chat",
           "startTimeUnixNano":"1765000005000000000","endTimeUnixNano":"1765000000000000000",
           "attributes":[{"key":"gen_ai.request.model","value":{"stringValue":"m"}}]},
          {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b175","name":"chat",
           "endTimeUnixNano":"1765000000000000000",
           "attributes":[{"key":"gen_ai.request.model","value":{"stringValue":"m"}}]},
          {"traceId":"5b8efff798038103d269b633813fc6","spanId":"eee19b7ec3c1b176","name":"chat",
           "startTimeUnixNano":"1765000000000000000","endTimeUnixNano":"1765000000250000000",
           "attributes":[{"key":"gen_ai.request.model","value":{"stringValue":"m"}}]}]}]}]}"#;
        let decoded = decode_json(json.as_bytes()).unwrap();
        assert!(decoded.records.is_empty(), "{:?}", decoded.records);
        let why: Vec<&str> = decoded.broken.iter().map(|b| b.why.as_str()).collect();
        assert_eq!(
            why,
            [
                "it ends 5000 ms before it starts (endTimeUnixNano < startTimeUnixNano)",
                "startTimeUnixNano is 0 (unset): the span has no start time",
                "its trace id is 15 bytes: OTLP trace ids are 16",
            ]
        );
        // Spans that are not model calls are skipped whatever their timing.
        let mut db = span("SELECT", vec![kv("db.system", s("sqlite"))]);
        db.start_time_unix_nano = 0;
        let decoded = decode_protobuf(&export(vec![db]).encode_to_vec()).unwrap();
        assert_eq!(
            (decoded.records.len(), decoded.skipped, decoded.broken.len()),
            (0, 1, 0)
        );
    }

    #[test]
    fn unknown_fields_are_ignored_at_any_depth() {
        let body = br#"{"resourceSpans":[{"pad":1,"scopeSpans":[{"extra":[],"spans":[
          {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"chat",
           "futureField":{"a":1},"startTimeUnixNano":"1765000000000000000",
           "endTimeUnixNano":"1765000000250000000",
           "attributes":[{"key":"gen_ai.request.model","value":{"stringValue":"m"},"x":2}]}]}]}],
          "pad":"x"}"#;
        let decoded = decode_json(body).unwrap();
        assert_eq!(decoded.records.len(), 1);
        assert_eq!(decoded.records[0]["genai"]["model"], "m");
        let empty = decode_json(br#"{"resourceSpans":[],"pad":"x"}"#).unwrap();
        assert!(empty.records.is_empty() && empty.skipped == 0);
    }

    #[test]
    fn what_is_not_otlp_is_refused_with_the_reason() {
        let e = decode_json(b"{\"ts\": 1}").unwrap_err().to_string();
        assert!(e.ends_with("it has `ts` and no `resourceSpans`"), "{e}");
        assert!(matches!(decode_json(b"{}"), Ok(d) if d.records.is_empty() && d.skipped == 0));
        assert!(decode_json(b"{\"resourceSpans\": []}").is_ok());
        assert!(matches!(
            decode_json(b"not json"),
            Err(DecodeError::Json(_))
        ));
        for (body, says) in [
            (
                &b"[1]"[..],
                "it is a JSON array, not an object with `resourceSpans`",
            ),
            (
                b"7",
                "it is a JSON number, not an object with `resourceSpans`",
            ),
            (
                b"null",
                "it is JSON null, not an object with `resourceSpans`",
            ),
        ] {
            let e = decode_json(body).unwrap_err().to_string();
            assert!(e.ends_with(says), "{e}");
        }
        let e = decode_protobuf(&[0xff, 0xff, 0xff]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("not an OTLP protobuf trace export"),
            "{e}"
        );
        assert_eq!(
            field_ref("attr:a/b~c").unwrap(),
            FieldRef::Pointer("/attributes/a~1b~0c".into())
        );
        assert!(field_ref("ts").is_err());
    }
}
