//! `evalwatch init`: a project that runs offline out of the box.

use std::path::{Component, Path, PathBuf};

use super::{Ctx, Failure, exit};
use crate::cli::init::InitArgs;

const CONFIG: &str = r#"# evalwatch project config. See docs/suite-reference.md.
store: evalwatch.db
reports: reports
providers:
  # Recorded outputs: scores logged production traffic, needs no key and no network.
  - id: recorded
    type: replay
    file: suites/recordings/example.jsonl
  # A real model: uncomment, export OPENAI_API_KEY, and add `prod-gpt` to a suite's providers.
  # - id: prod-gpt
  #   type: openai
  #   model: gpt-4o-mini
  #   params: {temperature: 0, max_tokens: 256}
  #   pricing: {input_per_mtok: 0.15, output_per_mtok: 0.60}
"#;

const SUITE: &str = r#"suite: example
description: A first suite. Run it with `evalwatch run`.
providers: [recorded]
prompt: |
  Answer in one sentence. Question: {{ question }}
cases:
  - id: capital-france
    vars: {question: "What is the capital of France?"}
    expected: Paris
  - id: refund-window
    tags: [billing]
    vars: {question: "How long do I have to return an item?"}
    expected: "30 days"
    assert:
      - type: icontains
      - type: not-icontains
        value: "90 days"
  - id: order-total
    tags: [billing]
    vars: {question: "What is 12 items at $4.50?"}
    expected: "54"
    assert:
      - type: numeric
        tolerance: 0.01
gates:
  pass_rate: {min: 0.9}
  error_rate: {max: 0.05}
"#;

const RECORDINGS: &str = r#"{"case_id": "capital-france", "output": "The capital of France is Paris.", "latency_ms": 412, "tokens_in": 21, "tokens_out": 8}
{"case_id": "refund-window", "output": "You can return an item within 30 days of delivery.", "latency_ms": 530, "tokens_in": 24, "tokens_out": 12}
{"case_id": "order-total", "output": "12 items at $4.50 cost $54.00.", "latency_ms": 388, "tokens_in": 25, "tokens_out": 10}
"#;

fn write_new(path: &Path, text: &str, force: bool) -> anyhow::Result<bool> {
    if path.exists() && !force {
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text).map_err(|e| anyhow::anyhow!("write {}: {e}", path.display()))?;
    Ok(true)
}

/// `path` without `.` segments and with `dir/..` folded (lexically: the folder is created,
/// so no symlink is crossed that could make `..` mean something else).
fn tidy(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// How a written file is named to the user: relative to the working folder when below it.
fn shown(ctx: &Ctx, path: &Path) -> String {
    path.strip_prefix(tidy(&ctx.cwd))
        .unwrap_or(path)
        .display()
        .to_string()
}

pub fn run(ctx: &Ctx, args: &InitArgs) -> anyhow::Result<u8> {
    let dir = tidy(&if args.dir.is_absolute() {
        args.dir.clone()
    } else {
        ctx.cwd.join(&args.dir)
    });
    let files = [
        (dir.join("evalwatch.yaml"), CONFIG),
        (dir.join("suites/example.yaml"), SUITE),
        (dir.join("suites/recordings/example.jsonl"), RECORDINGS),
    ];
    let existing: Vec<String> = files
        .iter()
        .filter(|(p, _)| p.exists())
        .map(|(p, _)| shown(ctx, p))
        .collect();
    if !existing.is_empty() && !args.force {
        return Err(Failure::invalid(format!(
            "init: {} already exist{}; nothing was written (use --force to overwrite)",
            existing.join(", "),
            if existing.len() == 1 { "s" } else { "" }
        )));
    }
    for (path, text) in &files {
        write_new(path, text, args.force)?;
        ctx.printer.info(&format!("wrote {}", shown(ctx, path)));
    }
    ctx.printer
        .info("next: `evalwatch run` runs suites/ offline against the recorded outputs");
    Ok(exit::OK)
}
