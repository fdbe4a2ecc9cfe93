//! From one log record (a JSON value, or a CSV row read as one) to a [`Record`], by the
//! source's `fields:`: JSON pointers (RFC 6901) for JSON, column names for CSV.
//!
//! A field that is absent is `None`; a field that is present with the wrong type is an error
//! that names the field, its pointer and what was found, so that `ingest` can count and show it.
//! What was found is quoted with the source's redaction applied (the messages reach terminals,
//! cron mail and CI logs), and a `user` value is never quoted: only its kind is said.

use chrono::{DateTime, TimeZone, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::record::{Feedback, Record, RecordError};
use super::redact::Redactor;
use super::text::{self, Read, TextKind};

/// Where a field is found in a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldRef {
    /// An RFC 6901 JSON pointer (`/response/text`); `""` is the whole record.
    Pointer(String),
    /// A CSV column, by its header.
    Column(String),
}

impl FieldRef {
    /// A JSON pointer as written in `fields:`, checked: it is `""` or starts with `/`, and every
    /// `~` is `~0` or `~1`.
    pub fn pointer(text: &str) -> Result<Self, String> {
        if !text.is_empty() && !text.starts_with('/') {
            return Err(format!(
                "`{text}` is not a JSON pointer: it must start with `/` (did you mean `/{text}`?)"
            ));
        }
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '~' && !matches!(chars.peek(), Some('0' | '1')) {
                return Err(format!(
                    "`{text}` is not a JSON pointer: `~` must be followed by 0 (for `~`) or 1 (for `/`)"
                ));
            }
        }
        Ok(Self::Pointer(text.to_owned()))
    }

    fn get<'v, R: Lookup + ?Sized>(&self, record: &'v R) -> Option<&'v Value> {
        let found = match self {
            Self::Pointer(p) => record.pointer(p),
            Self::Column(c) => record.column(c),
        };
        found.filter(|v| !v.is_null())
    }

    /// As written, for messages.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Pointer(p) | Self::Column(p) => p,
        }
    }
}

/// Where [`Mapping::apply`] reads a record's fields: a whole `Value` (a CSV row read as an
/// object, an OTLP span), or only the values a source's pointers name
/// ([`super::sparse::Parsed`]).
pub trait Lookup {
    /// The value at an RFC 6901 pointer of the source's `fields:`.
    fn pointer(&self, pointer: &str) -> Option<&Value>;
    /// The value of a CSV column (a key of the record's object).
    fn column(&self, name: &str) -> Option<&Value>;
}

impl Lookup for Value {
    fn pointer(&self, pointer: &str) -> Option<&Value> {
        walk(self, pointer)
    }

    fn column(&self, name: &str) -> Option<&Value> {
        self.get(name)
    }
}

/// `Value::pointer` without its allocations: it unescapes every token into a new `String`, which
/// for a dozen fields a record was most of the mapping's time. Tokens are read in place and
/// unescaped only when they hold a `~`.
fn walk<'v>(record: &'v Value, pointer: &str) -> Option<&'v Value> {
    if pointer.is_empty() {
        return Some(record);
    }
    let mut at = record;
    for token in pointer.strip_prefix('/')?.split('/') {
        let token = unescape(token);
        at = match at {
            Value::Object(map) => map.get(token.as_ref())?,
            Value::Array(items) => items.get(array_index(&token)?)?,
            _ => return None,
        };
    }
    Some(at)
}

/// A pointer's token as the key it names (`~1` is `/`, `~0` is `~`); borrowed when it has no `~`.
pub(crate) fn unescape(token: &str) -> std::borrow::Cow<'_, str> {
    if token.contains('~') {
        token.replace("~1", "/").replace("~0", "~").into()
    } else {
        token.into()
    }
}

/// An RFC 6901 array index: digits, without a leading zero (except `0` itself).
pub(crate) fn array_index(token: &str) -> Option<usize> {
    if token.is_empty() || (token.len() > 1 && token.starts_with('0')) || token.starts_with('+') {
        return None;
    }
    token.parse().ok()
}

/// The source's `fields:`. Only `time` is required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldMap {
    pub time: FieldRef,
    pub input: Option<FieldRef>,
    pub output: Option<FieldRef>,
    pub context: Option<FieldRef>,
    pub model: Option<FieldRef>,
    pub feature: Option<FieldRef>,
    pub segment: Option<FieldRef>,
    pub region: Option<FieldRef>,
    pub user: Option<FieldRef>,
    pub trace_id: Option<FieldRef>,
    pub latency_ms: Option<FieldRef>,
    pub tokens_in: Option<FieldRef>,
    pub tokens_out: Option<FieldRef>,
    pub cost_usd: Option<FieldRef>,
    pub error: Option<FieldRef>,
    pub error_kind: Option<FieldRef>,
    pub confidence: Option<FieldRef>,
    pub feedback: Option<FieldRef>,
}

impl FieldMap {
    /// Only a time field: every other field absent.
    pub fn new(time: FieldRef) -> Self {
        Self {
            time,
            input: None,
            output: None,
            context: None,
            model: None,
            feature: None,
            segment: None,
            region: None,
            user: None,
            trace_id: None,
            latency_ms: None,
            tokens_in: None,
            tokens_out: None,
            cost_usd: None,
            error: None,
            error_kind: None,
            confidence: None,
            feedback: None,
        }
    }

    /// Every field that is set, `time` first.
    pub fn refs(&self) -> impl Iterator<Item = &FieldRef> {
        [
            &self.input,
            &self.output,
            &self.context,
            &self.model,
            &self.feature,
            &self.segment,
            &self.region,
            &self.user,
            &self.trace_id,
            &self.latency_ms,
            &self.tokens_in,
            &self.tokens_out,
            &self.cost_usd,
            &self.error,
            &self.error_kind,
            &self.confidence,
            &self.feedback,
        ]
        .into_iter()
        .flatten()
        .chain(std::iter::once(&self.time))
    }

    /// The names of `fields:` keys, for did-you-mean.
    pub const NAMES: [&'static str; 18] = [
        "time",
        "input",
        "output",
        "context",
        "model",
        "feature",
        "segment",
        "region",
        "user",
        "trace_id",
        "latency_ms",
        "tokens_in",
        "tokens_out",
        "cost_usd",
        "error",
        "error_kind",
        "confidence",
        "feedback",
    ];
}

/// A field present with a value it cannot take, or the required time missing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}` ({at}): {reason}")]
pub struct MapError {
    pub field: &'static str,
    /// The pointer or column it was read from.
    pub at: String,
    pub reason: String,
}

/// Hashes user ids with a secret salt (HMAC-SHA256), so that distinct users can be counted
/// and a user's records linked without the id ever being stored.
#[derive(Clone)]
pub struct UserHasher {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for UserHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserHasher(..)")
    }
}

impl UserHasher {
    /// `None` for an empty salt: an unsalted hash of a user id is easily reversed.
    pub fn new(salt: &[u8]) -> Option<Self> {
        if salt.is_empty() {
            return None;
        }
        let mac = <Hmac<Sha256> as KeyInit>::new_from_slice(salt).ok()?;
        Some(Self { mac })
    }

    /// 32 hex digits (128 bits of the HMAC).
    pub fn hash(&self, user: &str) -> String {
        let mut m = self.mac.clone();
        m.update(user.as_bytes());
        // Into a buffer: `hex::encode` builds its string a char at a time.
        let mut out = [0u8; 32];
        hex::encode_to_slice(&m.finalize().into_bytes()[..16], &mut out).expect("32 digits");
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// A record's text fields, as [`Mapping::texts`] builds them.
#[derive(Debug, Default)]
pub struct TextFields {
    pub input: Option<String>,
    pub output: Option<String>,
    pub context: Vec<String>,
}

/// A source's field map with what applying it needs.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub fields: FieldMap,
    /// Without a hasher, a mapped `user` field is an error: ids are never kept as they are.
    pub users: Option<UserHasher>,
}

type Res<T> = Result<T, MapError>;

impl Mapping {
    /// The record's text fields alone (`input`, `output`, `context`), built: what a record
    /// mapped from a line whose text was only checked ([`super::sparse::Paths::parse_light`])
    /// gets once it is kept whole. The first of them with a wrong value is the error.
    /// `quote`: the source's redaction, applied to a value an error quotes.
    pub fn texts<R: Lookup + ?Sized>(&self, record: &R, quote: &Redactor) -> Res<TextFields> {
        let f = &self.fields;
        let q = Some(quote);
        Ok(TextFields {
            input: opt_text(record, f.input.as_ref(), "input", q)?,
            output: opt_text(record, f.output.as_ref(), "output", q)?,
            context: match &f.context {
                None => Vec::new(),
                Some(r) => r.get(record).map_or(Ok(Vec::new()), |v| {
                    passages(v, q).map_err(|reason| err("context", r, reason))
                })?,
            },
        })
    }

    /// Maps one record. Absent optional fields are `None`; the first field with a wrong value
    /// is the error, which quotes the value with `quote` (the source's redaction) applied.
    pub fn apply<R: Lookup + ?Sized>(&self, record: &R, quote: &Redactor) -> Res<Record> {
        let f = &self.fields;
        let q = Some(quote);
        let time = match f.time.get(record) {
            Some(v) => read_time(v, q).map_err(|reason| err("time", &f.time, reason))?,
            None => return Err(err("time", &f.time, "missing".into())),
        };
        // A user id is never quoted, not even redacted: only its kind is said.
        let user_hash = match opt_label(record, f.user.as_ref(), "user", None)? {
            None => None,
            Some(user) => {
                let Some(hasher) = &self.users else {
                    return Err(err(
                        "user",
                        f.user.as_ref().unwrap_or(&f.time),
                        "user ids are stored only as salted hashes, and no salt is set".into(),
                    ));
                };
                Some(hasher.hash(&user))
            }
        };
        let error = match &f.error {
            Some(r) if r.get(record).is_some_and(|v| is_failure(v, r)) => Some(RecordError {
                kind: opt_label(record, f.error_kind.as_ref(), "error_kind", q)?,
            }),
            _ => None,
        };
        let feedback = match &f.feedback {
            None => None,
            Some(r) => match r.get(record) {
                None => None,
                Some(Value::String(s)) if s.trim().is_empty() => None,
                Some(v) => {
                    let mut f = Feedback::from_json(v).ok_or_else(|| {
                        err(
                            "feedback",
                            r,
                            format!(
                                "{} is no vote: use up/down, true/false or 1-5 stars",
                                found(v, q)
                            ),
                        )
                    })?;
                    // The value as given is stored: redacted as the record's text is.
                    quote.apply_in_place(&mut f.raw);
                    Some(f)
                }
            },
        };
        let TextFields {
            input,
            output,
            context,
        } = self.texts(record, quote)?;
        Ok(Record {
            time,
            input,
            output,
            context,
            model: opt_label(record, f.model.as_ref(), "model", q)?,
            feature: opt_label(record, f.feature.as_ref(), "feature", q)?,
            segment: opt_label(record, f.segment.as_ref(), "segment", q)?,
            region: opt_label(record, f.region.as_ref(), "region", q)?,
            user_hash,
            trace_id: opt_label(record, f.trace_id.as_ref(), "trace_id", q)?,
            latency_ms: opt_number(record, f.latency_ms.as_ref(), "latency_ms", 0.0, q)?,
            tokens_in: opt_count(record, f.tokens_in.as_ref(), "tokens_in", q)?,
            tokens_out: opt_count(record, f.tokens_out.as_ref(), "tokens_out", q)?,
            cost_usd: opt_number(record, f.cost_usd.as_ref(), "cost_usd", 0.0, q)?,
            error,
            confidence: opt_number(
                record,
                f.confidence.as_ref(),
                "confidence",
                f64::NEG_INFINITY,
                q,
            )?,
            feedback,
        })
    }

    /// Maps a CSV row: each column is a string under its header; empty cells are absent.
    pub fn apply_row(
        &self,
        headers: &csv::StringRecord,
        row: &csv::StringRecord,
        quote: &Redactor,
    ) -> Res<Record> {
        let object = headers
            .iter()
            .zip(row.iter())
            .filter(|(_, cell)| !cell.is_empty())
            .map(|(h, cell)| (h.to_owned(), Value::String(cell.to_owned())))
            .collect::<serde_json::Map<_, _>>();
        self.apply(&Value::Object(object), quote)
    }
}

fn err(field: &'static str, at: &FieldRef, reason: String) -> MapError {
    MapError {
        field,
        at: at.as_str().to_owned(),
        reason,
    }
}

/// What kind of value was found, for an error message.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// What was found, short, for an error message: its kind and its text, redacted with
/// `quote` (the source's redaction) before it is cut to 40 bytes, so that a pattern sees the
/// whole value; without `quote` (a user id), its kind alone.
fn found(v: &Value, quote: Option<&Redactor>) -> String {
    let kind = kind(v);
    let Some(quote) = quote else {
        return format!("{kind} (not shown: user ids are never echoed)");
    };
    let mut text = quote.apply(&v.to_string()).into_owned();
    if text.len() > 40 {
        let cut = (0..=40)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        text.truncate(cut);
        text.push('…');
    }
    format!("{kind} {text}")
}

/// Unix seconds below this, milliseconds from here on (1e11 s is the year 5138).
const MILLIS_FROM: f64 = 1e11;

/// A time as a record holds it (feedback's times); an error quotes the value with `quote`
/// (the source's redaction) applied.
pub(crate) fn parse_time(v: &Value, quote: &Redactor) -> Result<DateTime<Utc>, String> {
    read_time(v, Some(quote))
}

/// [`parse_time`], with `quote` applied to the value an error quotes.
fn read_time(v: &Value, quote: Option<&Redactor>) -> Result<DateTime<Utc>, String> {
    let secs = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                return Ok(t.with_timezone(&Utc));
            }
            s.parse::<f64>().ok()
        }
        _ => None,
    };
    let Some(secs) = secs.filter(|n| n.is_finite() && *n >= 0.0) else {
        return Err(format!(
            "{} is no time: use RFC 3339 (2026-12-06T14:30:00Z) or unix seconds or milliseconds",
            found(v, quote)
        ));
    };
    let millis = if secs >= MILLIS_FROM {
        secs
    } else {
        secs * 1000.0
    };
    Utc.timestamp_millis_opt(millis.round() as i64)
        .single()
        .ok_or_else(|| format!("{} is out of range for a time", found(v, quote)))
}

/// Whether an `error` value says the request failed: present and not `null`, `false` or `""`.
/// A CSV cell is text, the only way it has to write false: `false`, `0` and `no` (any case,
/// spaces around them ignored) are not failures either, nor a blank cell. In JSON the type
/// decides: a string is the error's message, whatever it says.
fn is_failure(v: &Value, at: &FieldRef) -> bool {
    match (v, at) {
        (Value::Null | Value::Bool(false), _) => false,
        (Value::String(s), FieldRef::Column(_)) => {
            let s = s.trim();
            !(s.is_empty()
                || s == "0"
                || s.eq_ignore_ascii_case("false")
                || s.eq_ignore_ascii_case("no"))
        }
        (Value::String(s), FieldRef::Pointer(_)) => !s.is_empty(),
        _ => true,
    }
}

/// `quote`: the source's redaction for a value an error quotes; `None`: not quoted (a user).
fn opt_label<R: Lookup + ?Sized>(
    record: &R,
    at: Option<&FieldRef>,
    field: &'static str,
    quote: Option<&Redactor>,
) -> Res<Option<String>> {
    let Some(r) = at else { return Ok(None) };
    match r.get(record) {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(v) => Err(err(
            field,
            r,
            format!("{} where a label was expected", found(v, quote)),
        )),
    }
}

fn opt_number<R: Lookup + ?Sized>(
    record: &R,
    at: Option<&FieldRef>,
    field: &'static str,
    min: f64,
    quote: Option<&Redactor>,
) -> Res<Option<f64>> {
    let Some(r) = at else { return Ok(None) };
    let Some(v) = r.get(record) else {
        return Ok(None);
    };
    let n = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if n.is_finite() && n >= min => Ok(Some(n)),
        Some(n) if n.is_finite() => Err(err(field, r, format!("{n} is below {min}"))),
        _ => Err(err(
            field,
            r,
            format!("{} where a number was expected", found(v, quote)),
        )),
    }
}

fn opt_count<R: Lookup + ?Sized>(
    record: &R,
    at: Option<&FieldRef>,
    field: &'static str,
    quote: Option<&Redactor>,
) -> Res<Option<u64>> {
    let Some(r) = at else { return Ok(None) };
    let Some(v) = r.get(record) else {
        return Ok(None);
    };
    // Read wide, so that a count too large for the store (an i64) is said as such rather
    // than stored cut to its largest value.
    let n = match v {
        Value::Number(n) => n.as_u64().map(u128::from).or_else(|| {
            n.as_f64()
                .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f > i64::MAX as f64)
                .map(|_| u128::MAX)
        }),
        Value::String(s) => s.trim().parse::<u128>().ok(),
        _ => None,
    };
    match n {
        Some(n) => u64::try_from(n)
            .ok()
            .filter(|n| i64::try_from(*n).is_ok())
            .map(Some)
            .ok_or_else(|| {
                let shown = if n == u128::MAX || quote.is_none() {
                    found(v, quote)
                } else {
                    n.to_string()
                };
                err(
                    field,
                    r,
                    format!(
                        "{shown} is too large: a count up to {} was expected",
                        i64::MAX
                    ),
                )
            }),
        None => Err(err(
            field,
            r,
            format!("{} where a whole number >= 0 was expected", found(v, quote)),
        )),
    }
}

fn opt_text<R: Lookup + ?Sized>(
    record: &R,
    at: Option<&FieldRef>,
    field: &'static str,
    quote: Option<&Redactor>,
) -> Res<Option<String>> {
    let Some(r) = at else { return Ok(None) };
    let Some(v) = r.get(record) else {
        return Ok(None);
    };
    match text::read(TextKind::Text, v, true) {
        Ok(Read::Text(t)) => Ok(Some(t)),
        _ => Err(err(
            field,
            r,
            format!("{} is neither text nor chat messages", found(v, quote)),
        )),
    }
}

/// A string, or a list of strings or of objects with `text` / `content` (retrieved chunks).
fn passages(v: &Value, quote: Option<&Redactor>) -> Result<Vec<String>, String> {
    match text::read(TextKind::Passages, v, true) {
        Ok(Read::Passages(p)) => Ok(p),
        Ok(Read::Wrong(Some(i))) => Err(format!("{} is no passage: use text", found(&v[i], quote))),
        _ => Err(format!(
            "{} is no passage: use text or a list of texts",
            found(v, quote)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::record::Vote;
    use serde_json::json;

    #[allow(clippy::unnecessary_wraps)] // reads like the optional fields it fills
    fn p(s: &str) -> Option<FieldRef> {
        Some(FieldRef::pointer(s).unwrap())
    }

    fn full() -> Mapping {
        let mut f = FieldMap::new(FieldRef::pointer("/ts").unwrap());
        f.input = p("/request/messages");
        f.output = p("/response/text");
        f.context = p("/retrieval/passages");
        f.model = p("/model");
        f.feature = p("/meta/feature");
        f.segment = p("/user/plan");
        f.region = p("/geo/country");
        f.user = p("/user/id");
        f.trace_id = p("/trace_id");
        f.latency_ms = p("/latency_ms");
        f.tokens_in = p("/usage/prompt_tokens");
        f.tokens_out = p("/usage/completion_tokens");
        f.cost_usd = p("/cost");
        f.error = p("/error");
        f.error_kind = p("/error/type");
        f.confidence = p("/mean_logprob");
        f.feedback = p("/feedback");
        Mapping {
            fields: f,
            users: UserHasher::new(b"pepper"),
        }
    }

    #[test]
    fn pointers_are_walked_as_rfc_6901_reads_them() {
        let doc = json!({
            "a": {"b": 1}, "a/b": 2, "m~n": 3, "": 4, "~1": 5,
            "arr": [10, 11, {"x": 12}], "n": null
        });
        let pointers = [
            "", "/", "/a", "/a/b", "/a~1b", "/m~0n", "/~01", "/arr/0", "/arr/2/x", "/arr/01",
            "/arr/+1", "/arr/-", "/arr/3", "/arr/x", "/a/b/c", "/n", "/missing", "/a/",
        ];
        for ptr in pointers {
            assert_eq!(walk(&doc, ptr), doc.pointer(ptr), "{ptr}");
        }
        assert_eq!(walk(&doc, "a"), None);
    }

    #[test]
    fn a_full_record_maps_every_field() {
        let line = json!({
            "ts": "2026-12-06T14:30:00.250+01:00",
            "request": {"messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Refund window?"}]}
            ]},
            "response": {"text": "30 days."},
            "retrieval": {"passages": ["Returns within 30 days.", {"text": "Ship in 2 days."}]},
            "model": "gpt-4o-mini", "meta": {"feature": "faq"},
            "user": {"plan": "pro", "id": "u-42"}, "geo": {"country": "DE"},
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "latency_ms": 812.5, "usage": {"prompt_tokens": 120, "completion_tokens": "9"},
            "cost": 0.00012, "error": {"type": "timeout"}, "mean_logprob": -0.4,
            "feedback": "down"
        });
        let r = full().apply(&line, &Redactor::default()).unwrap();
        assert_eq!(r.time.to_rfc3339(), "2026-12-06T13:30:00.250+00:00");
        assert_eq!(r.input.as_deref(), Some("Be brief.\nRefund window?"));
        assert_eq!(r.output.as_deref(), Some("30 days."));
        assert_eq!(r.context, ["Returns within 30 days.", "Ship in 2 days."]);
        assert_eq!(r.model.as_deref(), Some("gpt-4o-mini"));
        assert_eq!(r.feature.as_deref(), Some("faq"));
        assert_eq!(r.segment.as_deref(), Some("pro"));
        assert_eq!(r.region.as_deref(), Some("DE"));
        let hash = r.user_hash.unwrap();
        assert_eq!(hash.len(), 32);
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()), "{hash}");
        assert_eq!(hash, UserHasher::new(b"pepper").unwrap().hash("u-42"));
        assert_ne!(hash, UserHasher::new(b"salt").unwrap().hash("u-42"));
        assert_eq!(r.latency_ms, Some(812.5));
        assert_eq!((r.tokens_in, r.tokens_out), (Some(120), Some(9)));
        assert_eq!(r.cost_usd, Some(0.00012));
        assert_eq!(r.error.unwrap().kind.as_deref(), Some("timeout"));
        assert_eq!(r.confidence, Some(-0.4));
        assert_eq!(r.feedback.unwrap().vote, Vote::Negative);
    }

    #[test]
    fn an_inline_vote_keeps_its_value_redacted() {
        use crate::traffic::redact::RedactRule;
        let q = Redactor::new(&[RedactRule::Regex("(?i)thumbs".into())]).unwrap();
        let r = full()
            .apply(&json!({"ts": 1, "feedback": "Thumbs_Down"}), &q)
            .unwrap();
        let f = r.feedback.unwrap();
        assert_eq!(
            (f.vote, f.raw.as_str()),
            (Vote::Negative, "[redacted]_Down")
        );
    }

    #[test]
    fn absent_and_null_fields_are_none_and_errors_follow_the_spec() {
        let m = full();
        let base = json!({"ts": 1_765_000_000});
        let r = m.apply(&base, &Redactor::default()).unwrap();
        assert_eq!(r.time.timestamp(), 1_765_000_000);
        assert_eq!((r.output, r.error, r.feedback), (None, None, None));
        for (error, failed) in [
            (json!(null), false),
            (json!(false), false),
            (json!(""), false),
            (json!(true), true),
            (json!("boom"), true),
            (json!({"type": "rate_limit"}), true),
        ] {
            let r = m
                .apply(
                    &json!({"ts": 1_765_000_000, "error": error}),
                    &Redactor::default(),
                )
                .unwrap();
            assert_eq!(r.error.is_some(), failed, "{error}");
        }
    }

    #[test]
    fn times_in_seconds_milliseconds_and_text_agree() {
        let m = Mapping {
            fields: FieldMap::new(FieldRef::pointer("/t").unwrap()),
            users: None,
        };
        let at = |t: Value| {
            m.apply(&json!({ "t": t }), &Redactor::default())
                .map(|r| r.time.timestamp_millis())
        };
        assert_eq!(at(json!(1_765_000_000)), Ok(1_765_000_000_000));
        assert_eq!(at(json!(1_765_000_000.5)), Ok(1_765_000_000_500));
        assert_eq!(at(json!(1_765_000_000_123_i64)), Ok(1_765_000_000_123));
        assert_eq!(at(json!("1765000000123")), Ok(1_765_000_000_123));
        assert_eq!(at(json!("2025-12-06T05:46:40Z")), Ok(1_765_000_000_000));
        for bad in [json!("yesterday"), json!(-5), json!([1]), json!(true)] {
            let e = at(bad.clone()).unwrap_err();
            assert_eq!((e.field, e.at.as_str()), ("time", "/t"), "{bad}");
            assert!(e.to_string().starts_with("field `time` (/t): "), "{e}");
        }
        let missing = m
            .apply(&json!({"ts": 1}), &Redactor::default())
            .unwrap_err();
        assert_eq!(missing.to_string(), "field `time` (/t): missing");
    }

    #[test]
    fn wrong_types_name_the_field_and_what_was_found() {
        let m = full();
        let cases = [
            (
                json!({"ts": 1, "latency_ms": "fast"}),
                "latency_ms",
                "a string \"fast\"",
            ),
            (json!({"ts": 1, "latency_ms": -3}), "latency_ms", "below 0"),
            (
                json!({"ts": 1, "usage": {"prompt_tokens": 1.5}}),
                "tokens_in",
                "a number 1.5",
            ),
            (
                json!({"ts": 1, "model": {"name": "x"}}),
                "model",
                "an object",
            ),
            (
                json!({"ts": 1, "response": {"text": 7}}),
                "output",
                "a number 7",
            ),
            (json!({"ts": 1, "feedback": "meh"}), "feedback", "no vote"),
            (
                json!({"ts": 1, "usage": {"completion_tokens": u64::MAX}}),
                "tokens_out",
                "18446744073709551615 is too large: a count up to 9223372036854775807 was expected",
            ),
            (
                json!({"ts": 1, "usage": {"prompt_tokens": "9223372036854775808"}}),
                "tokens_in",
                "9223372036854775808 is too large",
            ),
            (
                json!({"ts": 1, "retrieval": {"passages": 3}}),
                "context",
                "no passage",
            ),
        ];
        for (line, field, says) in cases {
            let e = m.apply(&line, &Redactor::default()).unwrap_err();
            assert_eq!(e.field, field, "{line}");
            assert!(e.reason.contains(says), "{line}: {e}");
        }
    }

    #[test]
    fn quoted_values_are_redacted_whole_and_user_ids_never_quoted() {
        use crate::traffic::redact::RedactRule;
        let m = full();
        let q = Redactor::new(&[RedactRule::Email, RedactRule::Secret]).unwrap();
        let key = "sk-proj-abcdefghijklmnopqrstuvwx1234567890";
        let e = m
            .apply(&json!({"ts": 1, "latency_ms": key}), &q)
            .unwrap_err();
        assert_eq!(
            e.reason,
            "a string \"[redacted:secret]\" where a number was expected"
        );
        // Redacted before it is cut: a long address cut first would no longer match.
        let long = format!("{}@example.com", "a".repeat(40));
        let e = m.apply(&json!({"ts": 1, "model": [long]}), &q).unwrap_err();
        assert!(e.reason.contains("[redacted:email]"), "{e}");
        let e = m
            .apply(
                &json!({"ts": 1, "user": {"id": {"u-1": "x@example.com"}}}),
                &q,
            )
            .unwrap_err();
        assert_eq!(e.field, "user");
        assert!(!e.reason.contains("u-1"), "{e}");
        assert!(e.reason.starts_with("an object (not shown"), "{e}");
    }

    #[test]
    fn user_ids_are_refused_without_a_salt() {
        let mut m = full();
        m.users = None;
        let e = m
            .apply(
                &json!({"ts": 1, "user": {"id": "u-1"}}),
                &Redactor::default(),
            )
            .unwrap_err();
        assert_eq!(e.field, "user");
        assert!(e.reason.contains("salt"), "{e}");
        assert!(UserHasher::new(b"").is_none());
    }

    #[test]
    fn pointers_are_checked_as_written() {
        assert!(FieldRef::pointer("").is_ok());
        assert!(FieldRef::pointer("/a~1b/~0c").is_ok());
        assert!(
            FieldRef::pointer("ts")
                .unwrap_err()
                .contains("did you mean `/ts`")
        );
        assert!(
            FieldRef::pointer("/a~2")
                .unwrap_err()
                .contains("`~` must be followed")
        );
        // ~1 is a slash inside a key.
        let m = Mapping {
            fields: FieldMap::new(FieldRef::pointer("/a~1b").unwrap()),
            users: None,
        };
        assert!(m.apply(&json!({"a/b": 5}), &Redactor::default()).is_ok());
    }

    #[test]
    fn csv_rows_map_by_column_with_empty_cells_absent() {
        let mut f = FieldMap::new(FieldRef::Column("time".into()));
        f.latency_ms = Some(FieldRef::Column("latency".into()));
        f.error = Some(FieldRef::Column("error".into()));
        f.feedback = Some(FieldRef::Column("stars".into()));
        let m = Mapping {
            fields: f,
            users: None,
        };
        let headers = csv::StringRecord::from(vec!["time", "latency", "error", "stars"]);
        let row = csv::StringRecord::from(vec!["2026-12-06T10:00:00Z", "250", "", "5"]);
        let r = m.apply_row(&headers, &row, &Redactor::default()).unwrap();
        assert_eq!((r.latency_ms, r.error.is_some()), (Some(250.0), false));
        assert_eq!(r.feedback.unwrap().vote, Vote::Positive);
        // Every cell is text: false is written `false` (or `0`, `no`), which is no failure.
        for (cell, failed) in [
            ("false", false),
            ("FALSE", false),
            (" False ", false),
            ("0", false),
            ("no", false),
            ("No", false),
            ("  ", false),
            ("true", true),
            ("1", true),
            ("timeout", true),
            ("nothing", true),
        ] {
            let row = csv::StringRecord::from(vec!["2026-12-06T10:00:00Z", "1", cell, ""]);
            let r = m.apply_row(&headers, &row, &Redactor::default()).unwrap();
            assert_eq!(r.error.is_some(), failed, "{cell:?}");
        }
        // In JSON the type decides: a string is the error's message, even `"false"`.
        let mut f = FieldMap::new(FieldRef::pointer("/t").unwrap());
        f.error = Some(FieldRef::pointer("/e").unwrap());
        let j = Mapping {
            fields: f,
            users: None,
        };
        for (e, failed) in [
            (json!(false), false),
            (json!("false"), true),
            (json!(0), true),
        ] {
            let r = j
                .apply(&json!({"t": 1, "e": e}), &Redactor::default())
                .unwrap();
            assert_eq!(r.error.is_some(), failed, "{e}");
        }
        let row = csv::StringRecord::from(vec!["2026-12-06T10:00:00Z", "x", "", ""]);
        assert_eq!(
            m.apply_row(&headers, &row, &Redactor::default())
                .unwrap_err()
                .field,
            "latency_ms"
        );
    }
}
