//! `exec`: runs a command with the prompt on stdin; its stdout is the answer. A non-zero exit
//! is an error outcome. The case's variables are passed as `EVALWATCH_VAR_<NAME>` and the case
//! id as `EVALWATCH_CASE_ID`.

use std::process::Stdio;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Provider, ProviderError};
use crate::model::{CallError, Completion, ErrorKind, ProviderSpec, Request};

pub struct ExecProvider {
    id: String,
    program: String,
    args: Vec<String>,
    cwd: Option<std::path::PathBuf>,
    max_output: u64,
}

/// The most of a failing command's stderr kept for its error message.
const MAX_STDERR_BYTES: u64 = 64 * 1024;

impl ExecProvider {
    pub fn new(spec: &ProviderSpec) -> Result<Self, ProviderError> {
        let (program, args) = spec
            .command
            .split_first()
            .ok_or_else(|| ProviderError::setup(&spec.id, "an exec provider needs `command:`"))?;
        Ok(Self {
            id: spec.id.clone(),
            program: program.clone(),
            args: args.to_vec(),
            cwd: spec.cwd.clone(),
            max_output: spec.output_cap(),
        })
    }
}

fn exec_error(message: String) -> CallError {
    let mut e = CallError::new(ErrorKind::Exec, message);
    e.retryable = false;
    e
}

/// What is said after an answer cut at `max_output_bytes`.
#[must_use]
pub fn truncation_mark(cap: u64) -> String {
    format!(
        "[evalwatch: output truncated at max_output_bytes = {cap} bytes; the answer was longer]"
    )
}

/// The completion of a command stopped at `cap` bytes of stdout: the valid UTF-8 of what was
/// read, then the truncation mark; `finish_reason` says `truncated`.
fn truncated_completion(stdout: &[u8], cap: u64, started: std::time::Instant) -> Completion {
    let text = match std::str::from_utf8(stdout) {
        Ok(t) => t.to_owned(),
        // A character cut in two by the cap is dropped; anything else is shown replaced.
        Err(e) if e.error_len().is_none() => {
            String::from_utf8_lossy(&stdout[..e.valid_up_to()]).into_owned()
        }
        Err(_) => String::from_utf8_lossy(stdout).into_owned(),
    };
    Completion {
        output: format!("{text}\n{}", truncation_mark(cap)),
        latency_ms: started.elapsed().as_secs_f64() * 1000.0,
        tokens_in: None,
        tokens_out: None,
        finish_reason: Some("truncated".to_owned()),
        cost_usd: None,
        output_bytes: Some(stdout.len() as u64),
        truncated: true,
        reported: None,
    }
}

#[async_trait]
impl Provider for ExecProvider {
    fn id(&self) -> &str {
        &self.id
    }

    async fn complete(&self, request: &Request) -> Result<Completion, CallError> {
        let started = std::time::Instant::now();
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .env("EVALWATCH_CASE_ID", &request.case_id)
            .env("EVALWATCH_SAMPLE", request.sample.to_string());
        for (k, v) in &request.vars {
            let name: String = k
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            let value = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            cmd.env(format!("EVALWATCH_VAR_{name}"), value);
        }
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| exec_error(format!("start `{}`: {e}", self.program)))?;
        let prompt = request.prompt_text();
        if let Some(mut stdin) = child.stdin.take() {
            // A command that does not read its stdin is fine: ignore a broken pipe.
            let _ = stdin.write_all(prompt.as_bytes()).await;
            drop(stdin);
        }
        // Stdout is read up to `max_output_bytes` and no further: a command that writes more
        // is stopped and its answer kept truncated, marked as such.
        let cap = self.max_output;
        let (mut stdout, stderr) = (child.stdout.take(), child.stderr.take());
        // Stderr is read beside (its first 64 KiB kept, the rest let through), so that the
        // command never blocks on it.
        let read_err = tokio::spawn(async move {
            let mut buf = Vec::new();
            if let Some(mut s) = stderr {
                (&mut s)
                    .take(MAX_STDERR_BYTES)
                    .read_to_end(&mut buf)
                    .await?;
                tokio::io::copy(&mut s, &mut tokio::io::sink()).await?;
            }
            Ok::<_, std::io::Error>(buf)
        });
        let read_out = async {
            let (mut buf, mut cut) = (Vec::new(), false);
            if let Some(s) = stdout.as_mut() {
                s.take(cap).read_to_end(&mut buf).await?;
                let mut one = [0u8; 1];
                cut = s.read(&mut one).await? > 0;
            }
            Ok::<_, std::io::Error>((buf, cut))
        };
        let read = read_out.await;
        let wait_err = |e: std::io::Error| exec_error(format!("read from `{}`: {e}", self.program));
        let (stdout_bytes, cut) = match read {
            Ok(r) => r,
            Err(e) => {
                read_err.abort();
                return Err(wait_err(e));
            }
        };
        // A command stopped for writing too much is killed, its stderr no longer waited for
        // (a child of a shell may hold it open); its own children die on the closed pipe.
        drop(stdout);
        let err_bytes = if cut {
            let _ = child.start_kill();
            read_err.abort();
            Vec::new()
        } else {
            read_err.await.ok().and_then(Result::ok).unwrap_or_default()
        };
        let status = child
            .wait()
            .await
            .map_err(|e| exec_error(format!("wait for `{}`: {e}", self.program)))?;
        let out = std::process::Output {
            status,
            stdout: stdout_bytes,
            stderr: err_bytes,
        };
        if cut {
            return Ok(truncated_completion(&out.stdout, cap, started));
        }
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let tail: String = stderr
                .trim()
                .chars()
                .rev()
                .take(300)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            return Err(exec_error(format!(
                "`{}` exited with {}{}",
                self.program,
                out.status,
                if tail.is_empty() {
                    String::new()
                } else {
                    format!(": {tail}")
                }
            )));
        }
        let output = String::from_utf8(out.stdout).map_err(|_| {
            exec_error(format!("`{}` wrote output that is not UTF-8", self.program))
        })?;
        Ok(Completion {
            output: output.trim_end_matches(['\n', '\r']).to_string(),
            latency_ms: started.elapsed().as_secs_f64() * 1000.0,
            tokens_in: None,
            tokens_out: None,
            finish_reason: None,
            cost_usd: None,
            ..crate::model::Completion::default()
        })
    }
}
