//! Traffic sources (`traffic:` in evalwatch.yaml), after loading and validation.

use std::path::PathBuf;
use std::sync::Arc;

use super::{Assertion, Location};

/// The format of a source's files (`format:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrafficFormat {
    /// One JSON record per line.
    Jsonl,
    /// A header row, then one record per row.
    Csv,
    /// OTLP/JSON, one `ExportTraceServiceRequest` per line (the Collector's file exporter).
    Otlp,
}

impl TrafficFormat {
    pub const ALL: [&'static str; 3] = ["jsonl", "csv", "otlp"];

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "jsonl" => Self::Jsonl,
            "csv" => Self::Csv,
            "otlp" => Self::Otlp,
            _ => return None,
        })
    }

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Jsonl => "jsonl",
            Self::Csv => "csv",
            Self::Otlp => "otlp",
        }
    }
}

/// Which records keep their text in the store (`store_text:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TextKept {
    None,
    #[default]
    Sampled,
    All,
}

impl TextKept {
    pub const ALL: [&'static str; 3] = ["none", "sampled", "all"];
}

/// One `redact:` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedactSpec {
    /// `email`, `phone`, `card` or `secret`.
    BuiltIn(String),
    /// `{regex: "..."}`.
    Regex(String),
}

/// One entry of `fields:`: the field's name, where it is read from (a JSON pointer, a CSV
/// column, or `attr:` / `resource:` for `otlp`), and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficField {
    pub name: String,
    pub from: String,
    pub location: Location,
}

/// How long each kind of stored traffic is kept (`retention:`), in seconds; `None` is forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub records: Option<i64>,
    pub minute: Option<i64>,
    pub hour: Option<i64>,
    pub day: Option<i64>,
}

impl Default for Retention {
    /// `{records: 30d, minute: 14d, hour: 180d, day: forever}`.
    fn default() -> Self {
        const DAY: i64 = 86_400;
        Self {
            records: Some(30 * DAY),
            minute: Some(14 * DAY),
            hour: Some(180 * DAY),
            day: None,
        }
    }
}

/// One traffic source.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficSource {
    /// Stable name: history, pages and alerts key on it.
    pub id: String,
    pub format: TrafficFormat,
    /// `path:` as written (a file, glob or folder), resolved against the config's folder.
    pub path: Option<PathBuf>,
    /// `fields:` in the order written; `otlp` sources fill the rest from the conventions.
    pub fields: Vec<TrafficField>,
    /// Share of records kept whole and scored, in [0, 1].
    pub sample: f64,
    pub store_text: TextKept,
    pub redact: Vec<RedactSpec>,
    /// Reference-free assertions run on sampled records.
    pub monitor: Vec<Arc<Assertion>>,
    /// Alert rules over traffic metrics, raw (judged by the traffic alerts).
    pub alerts: Vec<serde_json::Value>,
    pub retention: Retention,
    /// `low_confidence:`: a sampled record whose confidence is below it counts in
    /// `traffic.low_confidence_rate`.
    pub low_confidence: f64,
    /// Where the source's entry starts.
    pub location: Location,
}

impl TrafficSource {
    /// The `monitor` as the case sampled records are scored and judged against: its id the
    /// source's, no reference answer, and (set per record) the record's context.
    #[must_use]
    pub fn monitor_case(&self) -> super::Case {
        super::Case {
            id: self.id.clone(),
            tags: Vec::new(),
            vars: super::Vars::new(),
            expected: None,
            context: Vec::new(),
            asserts: self.monitor.clone(),
            threshold: None,
            repeat_policy: None,
            hash: String::new(),
            location: self.location.clone(),
        }
    }
}
