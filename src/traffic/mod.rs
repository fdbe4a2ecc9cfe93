//! Production traffic: records read from logs or OpenTelemetry spans, mapped onto evalwatch's
//! fields, redacted, sampled and counted into minute buckets.
//!
//! This module is pure: it knows nothing of suites, the store or the command line. The composer
//! (`app`) reads bytes from a source, hands them here, and passes the sampled records to the
//! scorer and the buckets to the store (`../shared/spec/traffic.md`, `docs/architecture.md`).
//!
//! - [`otlp`]: OTLP protobuf and JSON trace exports -> one record per model-call span.
//! - [`reader`]: log lines with resume offsets; long, broken and unfinished lines handled.
//! - [`mapping`]: JSON pointers (RFC 6901) or CSV columns -> a [`Record`], with typed errors.
//! - [`redact`]: built-in patterns (email, phone, card, secret) and custom regexes.
//! - [`sparse`]: builds of a JSON line only what the source's pointers read.
//! - [`text`]: how a text field's value reads as text (messages, passages), built or only checked.
//! - [`sample`]: a deterministic keep/drop decision by trace id, so feedback finds its record.
//! - [`collect`]: an OTLP/HTTP receiver that hands each export to one consumer and answers once stored.
//! - [`ingest`]: one source's records through map, redact, sample and count.
//! - [`bucket`]: per-minute aggregates with a mergeable latency sketch, rolled up to hour and day.
//! - [`shape`]: a sampled record's input and output lengths and input language, for drift.
//! - [`feedback`]: users' feedback given after the fact (JSONL or CSV rows), read and normalised.

pub mod bucket;
pub mod collect;
pub mod feedback;
pub mod feedback_export;
pub mod ingest;
pub mod language;
pub mod mapping;
pub mod otlp;
pub mod reader;
pub mod record;
pub mod redact;
pub mod sample;
pub mod shape;
pub mod sparse;
pub mod text;

pub use bucket::{Aggregator, Bucket, BucketKey, MinuteOf, Resolution, TOKENS_MAX};
pub use mapping::{FieldMap, FieldRef, MapError, Mapping, UserHasher};
pub use record::{Feedback, Record, Vote};
pub use redact::{RedactRule, Redactor};
pub use sample::SampleRate;
