//! `replay`: scores recorded outputs (logged production traffic) from a JSONL file, one line
//! `{"case_id", "output", "latency_ms"?, "tokens_in"?, "tokens_out"?, "sample"?,
//! "finish_reason"?, "model"?, "system_fingerprint"?}`.

use std::collections::HashMap;
use std::io::{BufRead, Read as _};

use async_trait::async_trait;
use serde::Deserialize;

use super::{Provider, ProviderError};
use crate::model::limits;
use crate::model::{CallError, Completion, ErrorKind, ProviderSpec, Request};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    case_id: String,
    output: String,
    #[serde(default)]
    latency_ms: Option<f64>,
    #[serde(default)]
    tokens_in: Option<u64>,
    #[serde(default)]
    tokens_out: Option<u64>,
    #[serde(default)]
    sample: Option<u32>,
    #[serde(default)]
    finish_reason: Option<String>,
    /// The model version that answered, when the recording says.
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    system_fingerprint: Option<String>,
}

struct Recorded {
    output: String,
    latency_ms: f64,
    tokens_in: Option<u64>,
    tokens_out: Option<u64>,
    finish_reason: Option<String>,
    reported: Option<crate::model::ReportedModel>,
}

pub struct ReplayProvider {
    id: String,
    /// (case id, sample) -> recording. A line without `sample` is sample 0.
    recordings: HashMap<(String, u32), Recorded>,
}

impl ReplayProvider {
    pub fn new(spec: &ProviderSpec) -> Result<Self, ProviderError> {
        let path = spec
            .file
            .as_ref()
            .ok_or_else(|| ProviderError::setup(&spec.id, "a replay provider needs `file:`"))?;
        let file = limits::open_regular(path, limits::MAX_REPLAY_FILE_BYTES).map_err(|e| {
            ProviderError::setup(&spec.id, format!("read {}: the file {e}", path.display()))
        })?;
        let mut recordings = HashMap::new();
        let mut reader = std::io::BufReader::new(file.take(limits::MAX_REPLAY_FILE_BYTES));
        let mut buf = Vec::new();
        let mut lineno = 0;
        loop {
            buf.clear();
            // Each line is read up to the limit: a file with no newline cannot grow a line
            // without bound.
            let n = (&mut reader)
                .take(limits::MAX_LINE_BYTES as u64 + 1)
                .read_until(b'\n', &mut buf)
                .map_err(|e| {
                    ProviderError::setup(
                        &spec.id,
                        format!("read {}:{}: {e}", path.display(), lineno + 1),
                    )
                })?;
            if n == 0 {
                break;
            }
            lineno += 1;
            if buf.len() > limits::MAX_LINE_BYTES {
                return Err(ProviderError::setup(
                    &spec.id,
                    format!(
                        "{}:{lineno}: line longer than {}; one recording per line",
                        path.display(),
                        limits::fmt_bytes(limits::MAX_LINE_BYTES as u64)
                    ),
                ));
            }
            let line = std::str::from_utf8(&buf).map_err(|e| {
                ProviderError::setup(
                    &spec.id,
                    format!("{}:{lineno}: not UTF-8 ({e})", path.display()),
                )
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let rec: Line = serde_json::from_str(line).map_err(|e| {
                ProviderError::setup(
                    &spec.id,
                    format!(
                        "{}:{lineno}:{}: {e}; each line must be {{\"case_id\", \"output\", \"latency_ms\"?, \"tokens_in\"?, \"tokens_out\"?, \"sample\"?, \"finish_reason\"?, \"model\"?, \"system_fingerprint\"?}}",
                        path.display(),
                        e.column()
                    ),
                )
            })?;
            let key = (rec.case_id, rec.sample.unwrap_or(0));
            if recordings.contains_key(&key) {
                return Err(ProviderError::setup(
                    &spec.id,
                    format!(
                        "{}:{lineno}: a second recording for case `{}` sample {}; give each line a distinct `sample`",
                        path.display(),
                        key.0,
                        key.1
                    ),
                ));
            }
            recordings.insert(
                key,
                Recorded {
                    output: rec.output,
                    latency_ms: rec.latency_ms.unwrap_or(0.0),
                    tokens_in: rec.tokens_in,
                    tokens_out: rec.tokens_out,
                    finish_reason: rec.finish_reason,
                    reported: rec.model.filter(|m| !m.trim().is_empty()).map(|model| {
                        crate::model::ReportedModel {
                            model,
                            fingerprint: rec.system_fingerprint,
                        }
                    }),
                },
            );
        }
        Ok(Self {
            id: spec.id.clone(),
            recordings,
        })
    }
}

#[async_trait]
impl Provider for ReplayProvider {
    fn id(&self) -> &str {
        &self.id
    }

    async fn complete(&self, request: &Request) -> Result<Completion, CallError> {
        let key = (request.case_id.clone(), request.sample);
        let rec = self
            .recordings
            .get(&key)
            .or_else(|| {
                // One recording serves every sample when only sample 0 was recorded.
                self.recordings.get(&(request.case_id.clone(), 0))
            })
            .ok_or_else(|| {
                let mut e = CallError::new(
                    ErrorKind::Missing,
                    format!(
                        "no recording for case `{}` (sample {}) in the replay file",
                        request.case_id, request.sample
                    ),
                );
                e.retryable = false;
                e
            })?;
        Ok(Completion {
            output: rec.output.clone(),
            latency_ms: rec.latency_ms,
            tokens_in: rec.tokens_in,
            tokens_out: rec.tokens_out,
            finish_reason: rec.finish_reason.clone(),
            cost_usd: None,
            reported: rec.reported.clone(),
            ..crate::model::Completion::default()
        })
    }
}
