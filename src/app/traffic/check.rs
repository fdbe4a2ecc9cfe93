//! What `validate` says about traffic sources beyond their syntax: a field whose pointer (or
//! column) matches nothing in the first records of the source's files is a warning, since a
//! typo there would otherwise only show as empty figures.

use std::io::BufRead;

use serde_json::Value;

use crate::model::{ProjectConfig, TrafficFormat, TrafficSource};
use crate::suite::Diagnostic;
use crate::traffic::{FieldRef, otlp};

/// How many records of a source's files the check reads.
const FIRST_RECORDS: usize = 100;

/// One warning per field that matches nothing in the first records of its source's files.
pub(crate) fn pointer_warnings(project: &ProjectConfig) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for source in &project.traffic {
        let Ok(files) = super::source_files(source) else {
            continue;
        };
        let records = first_records(source, &files);
        if records.is_empty() {
            continue;
        }
        let shown = files
            .first()
            .map(|f| {
                f.strip_prefix(&project.root)
                    .unwrap_or(f)
                    .display()
                    .to_string()
            })
            .unwrap_or_default();
        for f in &source.fields {
            let found = match source.format {
                TrafficFormat::Csv => records.iter().any(|r| r.get(&f.from).is_some()),
                TrafficFormat::Jsonl | TrafficFormat::Otlp => {
                    let pointer = match source.format {
                        TrafficFormat::Otlp => otlp::field_ref(&f.from),
                        _ => FieldRef::pointer(&f.from),
                    };
                    let Ok(FieldRef::Pointer(p)) = pointer else {
                        continue;
                    };
                    records.iter().any(|r| r.pointer(&p).is_some())
                }
            };
            if !found {
                out.push(Diagnostic {
                    location: f.location.clone(),
                    message: format!(
                        "`fields.{}` (`{}`) matches nothing in the first {} records of {shown}",
                        f.name,
                        f.from,
                        records.len()
                    ),
                });
            }
        }
    }
    out
}

/// The first records of the files, as JSON (CSV rows as objects of their columns).
fn first_records(source: &TrafficSource, files: &[std::path::PathBuf]) -> Vec<Value> {
    let mut out = Vec::new();
    for file in files {
        let Ok(f) = std::fs::File::open(file) else {
            continue;
        };
        // A rotated, compressed log is read as `ingest` reads it.
        let Ok(reader) = crate::traffic::reader::text_of(std::io::BufReader::new(f)) else {
            continue;
        };
        match source.format {
            TrafficFormat::Csv => {
                let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
                let Ok(headers) = csv.headers().cloned() else {
                    continue;
                };
                for row in csv.records().take(FIRST_RECORDS - out.len()).flatten() {
                    let object = headers
                        .iter()
                        .zip(row.iter())
                        .map(|(h, c)| (h.to_owned(), Value::String(c.to_owned())))
                        .collect();
                    out.push(Value::Object(object));
                }
            }
            TrafficFormat::Jsonl | TrafficFormat::Otlp => {
                for line in reader.lines().map_while(Result::ok) {
                    if out.len() >= FIRST_RECORDS {
                        break;
                    }
                    if source.format == TrafficFormat::Otlp {
                        if let Ok(d) = otlp::decode_json(line.as_bytes()) {
                            out.extend(d.records);
                        }
                    } else if let Ok(v) = serde_json::from_str::<Value>(&line) {
                        out.push(v);
                    }
                }
            }
        }
        if out.len() >= FIRST_RECORDS {
            break;
        }
    }
    out.truncate(FIRST_RECORDS);
    out
}
