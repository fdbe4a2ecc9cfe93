//! One source's records through the pure part of ingestion: map, decide the sample and the
//! de-duplication key, redact what is kept. Counting into buckets is the caller's, once it
//! knows a record is new (re-reading a file must count nothing twice). Malformed records are
//! counted, and the first few are kept with their place and reason, so that `ingest` can show
//! them.

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::mapping::{FieldRef, Lookup, MapError, Mapping};
use super::record::Record;
use super::redact::Redactor;
use super::sample::SampleRate;
use super::sparse::{Paths, Texts};
use super::text::TextKind;

/// How many malformed records are kept with their reason; the rest are only counted.
pub const SHOWN_ERRORS: usize = 10;

/// How many distinct labels (and error kinds) keep their redacted form at hand: labels repeat
/// from record to record, and most are read from here rather than matched again.
const LABELS_KEPT: usize = 4096;

/// Which records keep their text in the store (`store_text:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreText {
    None,
    Sampled,
    All,
}

/// A source, ready to read records.
#[derive(Debug)]
pub struct SourceRules {
    pub mapping: Mapping,
    pub redactor: Redactor,
    pub sample: SampleRate,
    pub store_text: StoreText,
}

/// A record read and mapped.
#[derive(Debug)]
pub struct Kept {
    /// Its text redacted when kept, and dropped when not.
    pub record: Record,
    /// In the sample: scored by the source's `monitor` assertions.
    pub sampled: bool,
    /// Stored whole: sampled, or kept for its text (`store_text: all`).
    pub keep: bool,
    /// Its (redacted) text is stored too (`store_text:`); a sampled record of a source with
    /// `store_text: none` keeps its text only to be scored.
    pub text: bool,
    /// The de-duplication key: the trace id (with the span id for spans), else a hash of the
    /// raw record, so that reading a file twice stores nothing twice.
    pub key: String,
}

/// What one ingestion has seen.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Records read and mapped (new or seen before).
    pub records: u64,
    pub sampled: u64,
    pub malformed: u64,
    /// The first [`SHOWN_ERRORS`] malformed records: where (`file:line`) and why.
    pub shown: Vec<(String, String)>,
}

/// The pure stage for one source.
#[derive(Debug)]
pub struct Ingestor<'s> {
    rules: &'s SourceRules,
    /// What [`Ingestor::json_line`] reads of a line: the source's pointers and the span id
    /// (shared, so that a line's values can borrow it while the ingestor counts).
    paths: std::sync::Arc<Paths>,
    /// Records timed after this (unix seconds) are malformed: a clock that is wrong would
    /// otherwise fill buckets of the future.
    pub not_after: Option<i64>,
    pub counts: Counts,
    /// Labels and error kinds redacted so far: `None` when the redaction left one as it is.
    labels: std::collections::HashMap<String, Option<String>>,
    /// `Some` (`ingest --follow`): every malformed record is also kept here, up to
    /// [`FRESH_ERRORS`], to be said as it is read and taken with [`Self::take_fresh`].
    pub fresh: Option<Fresh>,
}

/// How many malformed records [`Ingestor::fresh`] holds between two takes; more are counted.
pub const FRESH_ERRORS: usize = 100;

/// Malformed records not said yet (see [`Ingestor::fresh`]).
#[derive(Debug, Default)]
pub struct Fresh {
    pub shown: Vec<(String, String)>,
    /// Malformed records past [`FRESH_ERRORS`], only counted.
    pub more: u64,
}

impl<'s> Ingestor<'s> {
    pub fn new(rules: &'s SourceRules) -> Self {
        let f = &rules.mapping.fields;
        let pointer = |r: &'s FieldRef| match r {
            FieldRef::Pointer(p) => Some(p.as_str()),
            FieldRef::Column(_) => None,
        };
        let pointers: Vec<&str> = f.refs().filter_map(pointer).chain(["/span_id"]).collect();
        let mut paths = Paths::new(pointers.iter().copied());
        // A pointer read only as text of one kind is checked while the line is parsed, and
        // its text built only for a record kept whole (`json_line`).
        let texts = [
            (&f.input, TextKind::Text),
            (&f.output, TextKind::Text),
            (&f.context, TextKind::Passages),
        ];
        for (r, kind) in texts {
            let Some(p) = r.as_ref().and_then(pointer) else {
                continue;
            };
            let uses = pointers.iter().filter(|q| **q == p).count();
            let as_kind = texts
                .iter()
                .filter(|(o, k)| *k == kind && o.as_ref().and_then(pointer) == Some(p))
                .count();
            if uses == as_kind {
                paths.light(p, kind);
            }
        }
        Self {
            rules,
            paths: std::sync::Arc::new(paths),
            not_after: None,
            counts: Counts::default(),
            labels: std::collections::HashMap::new(),
            fresh: None,
        }
    }

    /// A line of JSONL. `at` says where it is (`logs/app.jsonl:12`) for an error.
    ///
    /// The line's text fields are first only checked ([`Paths::parse_light`]): most records
    /// are left out of the sample and keep no text, and building it (chat messages are a
    /// list of objects) was a fifth of the reading. A record kept whole gets its text from the
    /// line parsed again whole; one whose text is not text is read whole as before (the error
    /// then says why).
    pub fn json_line(&mut self, line: &str, at: impl FnOnce() -> String) -> Option<Kept> {
        let paths = std::sync::Arc::clone(&self.paths);
        let raw = line.as_bytes();
        let light = match paths.parse_light(line) {
            Ok(v) => v,
            Err(e) => {
                self.malformed(at(), format!("not JSON: {e}"));
                return None;
            }
        };
        if light.texts() == Texts::Unread {
            let span = light.pointer("/span_id").and_then(Value::as_str);
            let mut record = match self.rules.mapping.apply(&light, &self.rules.redactor) {
                Ok(record) => record,
                Err(e) => {
                    self.map_error(&e, at);
                    return None;
                }
            };
            let decided = self.key_and_sample(&record, span, raw);
            if self.keep_of(decided.1).0 {
                // Checked as text, so built without an error (a parse error is not possible
                // either: the same line was just parsed).
                let texts = paths
                    .parse(line)
                    .map_err(|e| format!("not JSON: {e}"))
                    .and_then(|whole| {
                        self.rules
                            .mapping
                            .texts(&whole, &self.rules.redactor)
                            .map_err(|e| e.to_string())
                    });
                match texts {
                    Ok(t) => {
                        record.input = t.input;
                        record.output = t.output;
                        record.context = t.context;
                    }
                    Err(why) => {
                        self.malformed(at(), why);
                        return None;
                    }
                }
            }
            return self.record_as(record, decided, at);
        }
        if light.texts() == Texts::None {
            return self.value(&light, raw, at);
        }
        // A text that is not text: the whole parse says where and why.
        match paths.parse(line) {
            Ok(v) => self.value(&v, raw, at),
            Err(e) => {
                self.malformed(at(), format!("not JSON: {e}"));
                None
            }
        }
    }

    /// The record's de-duplication key (see [`Kept::key`]) and whether it is in the sample.
    fn key_and_sample(&self, record: &Record, span: Option<&str>, raw: &[u8]) -> (String, bool) {
        let key = match (&record.trace_id, span) {
            (Some(t), Some(s)) => format!("{t}:{s}"),
            (Some(t), None) => t.clone(),
            (None, _) => hex::encode(&Sha256::digest(raw)[..16]),
        };
        let sample_key = record.trace_id.as_deref().unwrap_or(&key);
        let sampled = self.rules.sample.keeps(sample_key.as_bytes());
        (key, sampled)
    }

    /// Whether a record in the sample or not (`sampled`) keeps its text: (stored whole, its
    /// text stored).
    fn keep_of(&self, sampled: bool) -> (bool, bool) {
        let text = match self.rules.store_text {
            StoreText::All => true,
            StoreText::Sampled => sampled,
            StoreText::None => false,
        };
        (sampled || text, text)
    }

    /// A record already parsed; `raw` is what the de-duplication hash is of when the record
    /// has no trace id.
    pub fn value<R: Lookup + ?Sized>(
        &mut self,
        v: &R,
        raw: &[u8],
        at: impl FnOnce() -> String,
    ) -> Option<Kept> {
        let span = v.pointer("/span_id").and_then(Value::as_str);
        match self.rules.mapping.apply(v, &self.rules.redactor) {
            Ok(record) => self.record(record, span, raw, at),
            Err(e) => {
                self.map_error(&e, at);
                None
            }
        }
    }

    /// A CSV row under its headers; `raw` as for [`Self::value`].
    pub fn row(
        &mut self,
        headers: &csv::StringRecord,
        row: &csv::StringRecord,
        raw: &[u8],
        at: impl FnOnce() -> String,
    ) -> Option<Kept> {
        match self
            .rules
            .mapping
            .apply_row(headers, row, &self.rules.redactor)
        {
            Ok(record) => self.record(record, None, raw, at),
            Err(e) => {
                self.map_error(&e, at);
                None
            }
        }
    }

    fn map_error(&mut self, e: &MapError, at: impl FnOnce() -> String) {
        self.malformed(at(), e.to_string());
    }

    /// Counts a record that cannot be read, keeping the first few with where and why. The
    /// reason is redacted with the source's patterns too (it is printed, and may quote the
    /// record); a value the mapping quotes is redacted whole before it is cut short.
    pub fn malformed(&mut self, at: String, mut why: String) {
        self.counts.malformed += 1;
        let fresh = match self.fresh.as_mut() {
            Some(f) if f.shown.len() < FRESH_ERRORS => Some(f),
            Some(f) => {
                f.more += 1;
                None
            }
            None => None,
        };
        if self.counts.shown.len() >= SHOWN_ERRORS && fresh.is_none() {
            return;
        }
        self.rules.redactor.apply_in_place(&mut why);
        if let Some(f) = fresh {
            f.shown.push((at.clone(), why.clone()));
        }
        if self.counts.shown.len() < SHOWN_ERRORS {
            self.counts.shown.push((at, why));
        }
    }

    /// The malformed records not said yet (`--follow`; empty without [`Self::fresh`]).
    pub fn take_fresh(&mut self) -> Fresh {
        self.fresh.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// A label or error kind with the source's redaction applied (see [`Self::labels`]).
    fn redact_label(&mut self, label: &mut String) {
        if self.rules.redactor.is_empty() {
            return;
        }
        if let Some(known) = self.labels.get(label.as_str()) {
            if let Some(redacted) = known {
                label.clone_from(redacted);
            }
            return;
        }
        let redacted = match self.rules.redactor.apply(label) {
            std::borrow::Cow::Borrowed(_) => None,
            std::borrow::Cow::Owned(r) => Some(r),
        };
        if self.labels.len() < LABELS_KEPT {
            self.labels.insert(label.clone(), redacted.clone());
        }
        if let Some(r) = redacted {
            *label = r;
        }
    }

    fn record(
        &mut self,
        record: Record,
        span: Option<&str>,
        raw: &[u8],
        at: impl FnOnce() -> String,
    ) -> Option<Kept> {
        let decided = self.key_and_sample(&record, span, raw);
        self.record_as(record, decided, at)
    }

    /// [`Self::record`] with its key and sample decision already worked out.
    fn record_as(
        &mut self,
        mut record: Record,
        (key, sampled): (String, bool),
        at: impl FnOnce() -> String,
    ) -> Option<Kept> {
        if let Some(limit) = self.not_after
            && record.time.timestamp() > limit
        {
            self.malformed(
                at(),
                format!(
                    "field `time`: {} is in the future (a clock that is off?); skipped",
                    record.time.to_rfc3339()
                ),
            );
            return None;
        }
        self.counts.records += 1;
        self.counts.sampled += u64::from(sampled);
        // Labels and error kinds are stored (buckets, label sets) and shown (`traffic`, the
        // page) for every record: redacted like its text. The trace id is left as it is: it
        // is the de-duplication key and feedback's link (docs/traffic.md says so).
        let Record {
            model,
            feature,
            segment,
            region,
            error,
            ..
        } = &mut record;
        for label in [model, feature, segment, region]
            .into_iter()
            .chain(error.as_mut().map(|e| &mut e.kind))
            .flatten()
        {
            self.redact_label(label);
        }
        let (keep, text) = self.keep_of(sampled);
        if keep {
            let redact = |text: &mut String| self.rules.redactor.apply_in_place(text);
            record
                .input
                .iter_mut()
                .chain(record.output.iter_mut())
                .chain(record.context.iter_mut())
                .for_each(redact);
        } else {
            record.input = None;
            record.output = None;
            record.context = Vec::new();
        }
        Some(Kept {
            record,
            sampled,
            keep,
            text,
            key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::mapping::{FieldMap, FieldRef};
    use crate::traffic::redact::RedactRule;

    fn rules(sample: &str, store_text: StoreText) -> SourceRules {
        let p = |s: &str| Some(FieldRef::pointer(s).unwrap());
        let mut f = FieldMap::new(FieldRef::pointer("/ts").unwrap());
        f.input = p("/q");
        f.output = p("/a");
        f.trace_id = p("/trace");
        f.latency_ms = p("/ms");
        SourceRules {
            mapping: Mapping {
                fields: f,
                users: None,
            },
            redactor: Redactor::new(&[RedactRule::Email]).unwrap(),
            sample: SampleRate::parse(sample).unwrap(),
            store_text,
        }
    }

    /// A line's text is built only for a record kept whole, but checked in every record: a
    /// text field that is not text makes the record malformed, in the sample or out of it,
    /// with the error a whole parse gives.
    #[test]
    fn text_is_built_for_the_sample_and_checked_in_every_record() {
        let r = rules("50%", StoreText::Sampled);
        let mut ing = Ingestor::new(&r);
        let (mut kept, mut dropped) = (0, 0);
        for i in 0..200 {
            let line = format!(
                r#"{{"ts": 1765000000, "trace": "t{i}", "q": [{{"role": "user", "content": "q{i}"}}, "more"], "a": {{"content": [{{"text": "a{i}"}}]}}}}"#
            );
            let k = ing.json_line(&line, String::new).expect("a record");
            if k.keep {
                kept += 1;
                assert_eq!(k.record.input, Some(format!("q{i}\nmore")));
                assert_eq!(k.record.output, Some(format!("a{i}")));
            } else {
                dropped += 1;
                assert_eq!((k.record.input, k.record.output), (None, None));
            }
        }
        assert!(kept > 50 && dropped > 50, "{kept} kept, {dropped} not");
        assert_eq!(ing.counts.malformed, 0);
        // Not text: malformed whether the trace is in the sample or not.
        for i in 0..40 {
            let line = format!(r#"{{"ts": 1765000000, "trace": "w{i}", "q": [{{"content": 5}}]}}"#);
            assert!(ing.json_line(&line, || format!("log:{i}")).is_none());
        }
        assert_eq!(ing.counts.malformed, 40);
        assert!(
            ing.counts.shown[0]
                .1
                .contains("is neither text nor chat messages"),
            "{:?}",
            ing.counts.shown[0]
        );
        // `null` is no text at all.
        let k = ing
            .json_line(
                r#"{"ts": 1765000000, "trace": "n", "q": null}"#,
                String::new,
            )
            .expect("a record");
        assert_eq!(k.record.input, None);
    }

    #[test]
    fn every_record_is_counted_and_only_the_sample_comes_back_redacted() {
        let r = rules("10%", StoreText::Sampled);
        let mut ing = Ingestor::new(&r);
        let mut kept = Vec::new();
        for i in 0..2_000 {
            let line = format!(
                r#"{{"ts": {}, "trace": "t{i}", "q": "mail me at u{i}@example.com", "a": "ok", "ms": 5}}"#,
                1_765_000_000 + i
            );
            kept.extend(
                ing.json_line(&line, || format!("log:{}", i + 1))
                    .filter(|k| k.keep),
            );
        }
        assert_eq!(ing.counts.records, 2_000);
        assert_eq!(ing.counts.sampled, kept.len() as u64);
        assert!((150..=250).contains(&kept.len()), "{}", kept.len());
        assert!(kept.iter().all(|k| k.sampled));
        assert!(
            kept.iter()
                .all(|k| k.record.input.as_deref() == Some("mail me at [redacted:email]"))
        );
        // The same trace is in or out of the sample in any process.
        let mut again = Ingestor::new(&r);
        let line = format!(r#"{{"ts": 1, "trace": "{}"}}"#, kept[0].key);
        assert!(
            again
                .json_line(&line, String::new)
                .is_some_and(|k| k.sampled)
        );
    }

    #[test]
    fn malformed_records_are_counted_and_the_first_ten_shown_with_their_place() {
        let r = rules("100%", StoreText::Sampled);
        let mut ing = Ingestor::new(&r);
        for i in 1..=15 {
            assert!(
                ing.json_line("{\"ts\": \"soon\"}", || format!("a.jsonl:{i}"))
                    .is_none()
            );
        }
        assert!(ing.json_line("{not json", || "a.jsonl:16".into()).is_none());
        assert!(
            ing.json_line(r#"{"ts": 5}"#, || "a.jsonl:17".into())
                .is_some()
        );
        assert_eq!((ing.counts.records, ing.counts.malformed), (1, 16));
        assert_eq!(ing.counts.shown.len(), SHOWN_ERRORS);
        assert_eq!(ing.counts.shown[0].0, "a.jsonl:1");
        assert!(
            ing.counts.shown[0].1.starts_with("field `time` (/ts): "),
            "{:?}",
            ing.counts.shown[0]
        );
    }

    #[test]
    fn keys_are_the_trace_or_a_hash_of_the_raw_record() {
        let r = rules("0%", StoreText::All);
        let mut ing = Ingestor::new(&r);
        let traced = ing
            .json_line(r#"{"ts": 5, "trace": "abc"}"#, String::new)
            .unwrap();
        assert_eq!(
            (traced.key.as_str(), traced.sampled, traced.text),
            ("abc", false, true)
        );
        let first = ing.json_line(r#"{"ts": 5}"#, String::new).unwrap();
        let same = ing.json_line(r#"{"ts": 5}"#, String::new).unwrap();
        let other = ing.json_line(r#"{"ts": 6}"#, String::new).unwrap();
        assert_eq!(first.key, same.key);
        assert_ne!(first.key, other.key);
        assert_eq!(first.key.len(), 32);
        let none = rules("0%", StoreText::None);
        let mut ing = Ingestor::new(&none);
        let k = ing
            .json_line(r#"{"ts": 5, "q": "hi"}"#, String::new)
            .unwrap();
        assert!(!k.keep && !k.text && k.record.input.is_none());
        assert_eq!(ing.counts.records, 1);
        // A record timed after `not_after` is malformed, with the reason.
        ing.not_after = Some(4);
        assert!(ing.json_line(r#"{"ts": 5}"#, || "f:9".into()).is_none());
        assert!(
            ing.counts.shown[0].1.contains("in the future"),
            "{:?}",
            ing.counts.shown
        );
    }
}
