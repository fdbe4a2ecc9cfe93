//! `exec`: runs a command with the prompt on stdin; its stdout is the answer. A non-zero exit
//! is an error outcome. The case's variables are passed as `EVALWATCH_VAR_<NAME>` and the case
//! id as `EVALWATCH_CASE_ID`.

use std::process::Stdio;

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;

use super::{Provider, ProviderError};
use crate::model::{CallError, Completion, ErrorKind, ProviderSpec, Request};

pub struct ExecProvider {
    id: String,
    program: String,
    args: Vec<String>,
    cwd: Option<std::path::PathBuf>,
}

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
        })
    }
}

fn exec_error(message: String) -> CallError {
    let mut e = CallError::new(ErrorKind::Exec, message);
    e.retryable = false;
    e
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
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| exec_error(format!("wait for `{}`: {e}", self.program)))?;
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
        })
    }
}
