//! Production traffic: `ingest`, `traffic` and `prune`, and what they share: picking a source,
//! building its rules (mapping, redaction, sample) and finding its files.

mod check;
mod files;
pub mod ingest;
pub mod judging;
mod models;
mod monitor;
pub mod pillars;
pub mod prune;
pub mod quiet;
pub mod satisfaction;
pub mod show;
mod write;

pub(crate) use check::pointer_warnings;
pub use monitor::Prepare;
pub use write::{Batch, Scored, Written, write_batch};

use std::path::PathBuf;

use super::Failure;
use crate::model::{ProjectConfig, RedactSpec, TextKept, TrafficFormat, TrafficSource};
use crate::traffic::ingest::{SourceRules, StoreText};
use crate::traffic::{
    FieldMap, FieldRef, Mapping, RedactRule, Redactor, SampleRate, UserHasher, otlp,
};

/// The environment variable holding the salt that user ids are hashed with.
pub const SALT_ENV: &str = "EVALWATCH_TRAFFIC_SALT";

/// The source named, or the only one; exit 2 when there is none or the choice is unclear.
pub(crate) fn pick_source<'p>(
    project: &'p ProjectConfig,
    id: Option<&str>,
) -> anyhow::Result<&'p TrafficSource> {
    let ids = || {
        project
            .traffic
            .iter()
            .map(|s| format!("`{}`", s.id))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match id {
        Some(id) => project.traffic.iter().find(|s| s.id == id).ok_or_else(|| {
            if project.traffic.is_empty() {
                Failure::invalid(format!(
                    "find traffic source `{id}`: evalwatch.yaml defines no `traffic:` sources (docs/traffic.md shows one)"
                ))
            } else {
                let hint = crate::suite::did_you_mean(
                    id,
                    project.traffic.iter().map(|s| s.id.as_str()),
                );
                Failure::invalid(format!(
                    "find traffic source `{id}`: no such source in evalwatch.yaml{hint} (sources: {})",
                    ids()
                ))
            }
        }),
        None => match project.traffic.as_slice() {
            [] => Err(Failure::invalid(
                "find a traffic source: evalwatch.yaml defines no `traffic:` sources (docs/traffic.md shows one)",
            )),
            [only] => Ok(only),
            _ => Err(Failure::invalid(format!(
                "find a traffic source: evalwatch.yaml defines several ({}); name one",
                ids()
            ))),
        },
    }
}

/// The source's field map: what `fields:` says, over the conventions' defaults for `otlp`.
pub(crate) fn field_map(source: &TrafficSource) -> anyhow::Result<FieldMap> {
    let mut map = match source.format {
        TrafficFormat::Otlp => otlp::default_fields(),
        TrafficFormat::Jsonl | TrafficFormat::Csv => {
            FieldMap::new(FieldRef::Pointer(String::new()))
        }
    };
    for f in &source.fields {
        let r = match source.format {
            TrafficFormat::Jsonl => FieldRef::pointer(&f.from),
            TrafficFormat::Otlp => otlp::field_ref(&f.from),
            TrafficFormat::Csv => Ok(FieldRef::Column(f.from.clone())),
        }
        .map_err(|e| Failure::invalid(format!("{}: {e}", f.location)))?;
        let slot = match f.name.as_str() {
            "time" => {
                map.time = r;
                continue;
            }
            "input" => &mut map.input,
            "output" => &mut map.output,
            "context" => &mut map.context,
            "model" => &mut map.model,
            "feature" => &mut map.feature,
            "segment" => &mut map.segment,
            "region" => &mut map.region,
            "user" => &mut map.user,
            "trace_id" => &mut map.trace_id,
            "latency_ms" => &mut map.latency_ms,
            "tokens_in" => &mut map.tokens_in,
            "tokens_out" => &mut map.tokens_out,
            "cost_usd" => &mut map.cost_usd,
            "error" => &mut map.error,
            "error_kind" => &mut map.error_kind,
            "confidence" => &mut map.confidence,
            "feedback" => &mut map.feedback,
            other => {
                return Err(Failure::invalid(format!(
                    "{}: unknown field `{other}`",
                    f.location
                )));
            }
        };
        *slot = Some(r);
    }
    Ok(map)
}

/// Everything the pure stage needs to read the source's records. A mapped `user` needs the
/// salt (exit 2 without it): user ids are only ever stored hashed.
pub(crate) fn rules(source: &TrafficSource) -> anyhow::Result<SourceRules> {
    let fields = field_map(source)?;
    let users = if fields.user.is_some() {
        let salt = std::env::var(SALT_ENV).unwrap_or_default();
        Some(UserHasher::new(salt.as_bytes()).ok_or_else(|| {
            Failure::invalid(format!(
                "read traffic source `{}`: `fields.user` is mapped, and user ids are stored only as salted hashes: set {SALT_ENV} to a secret salt (keep it stable, or distinct users are counted anew)",
                source.id
            ))
        })?)
    } else {
        None
    };
    let redact: Vec<RedactRule> = source
        .redact
        .iter()
        .filter_map(|r| match r {
            RedactSpec::BuiltIn(name) => RedactRule::built_in(name),
            RedactSpec::Regex(p) => Some(RedactRule::Regex(p.clone())),
        })
        .collect();
    let redactor = Redactor::new(&redact)
        .map_err(|e| Failure::invalid(format!("{}: {e}", source.location)))?;
    Ok(SourceRules {
        mapping: Mapping { fields, users },
        redactor,
        sample: SampleRate::new(source.sample).unwrap_or(SampleRate::ALL),
        store_text: match source.store_text {
            TextKept::None => StoreText::None,
            TextKept::Sampled => StoreText::Sampled,
            TextKept::All => StoreText::All,
        },
    })
}

/// The files of the source's `path:` (a file, a folder's files, or a glob), sorted.
pub(crate) fn source_files(source: &TrafficSource) -> anyhow::Result<Vec<PathBuf>> {
    match &source.path {
        None => Ok(Vec::new()),
        Some(p) => files::expand(p),
    }
}
