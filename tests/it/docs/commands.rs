//! Command examples of the docs (`evalwatch ...` lines of sh/console/bash/text blocks) run
//! through the real binary in a scratch project, and documented output compared.

use std::path::Path;

use super::markdown::{Block, Directive};
use crate::support::{Project, stderr, stdout};

/// Blocks whose `evalwatch` lines are run.
pub fn is_shell(block: &Block) -> bool {
    matches!(
        block.lang.as_str(),
        "sh" | "console" | "bash" | "shell" | "text"
    )
}

/// One `evalwatch ...` line of a block.
#[derive(Debug)]
pub struct Line {
    pub offset: usize,
    pub raw: String,
    /// Arguments after `evalwatch`, comment and shell plumbing removed.
    pub args: Vec<String>,
    /// `> FILE`: stdout is written there (relative to the project).
    pub redirect: Option<String>,
    /// The exit code the line's comment documents (`# exits 1 ...`), else 0.
    pub exit: i32,
}

/// The `evalwatch` lines of a shell block; other commands (cargo, systemctl, ...) are not run.
pub fn lines(block: &Block) -> Result<Vec<Line>, String> {
    let exit_re = regex::Regex::new(r"\bexits? (\d+)\b").expect("exit regex");
    let mut out = Vec::new();
    for (i, raw) in block.text.lines().enumerate() {
        let l = raw.trim().trim_start_matches("$ ");
        if !l.starts_with("evalwatch ") && l != "evalwatch" {
            continue;
        }
        let tokens = shlex::split(l)
            .ok_or_else(|| format!("{}: cannot split `{l}` like a shell", block.at(i)))?;
        let mut args = Vec::new();
        let mut redirect = None;
        let mut it = tokens.into_iter().skip(1);
        while let Some(t) = it.next() {
            if t.starts_with('#') || t == "|" || t == "&&" || t == ";" {
                break;
            }
            if t == ">" {
                redirect = it.next();
                break;
            }
            args.push(t);
        }
        let exit = l
            .split_once(" #")
            .and_then(|(_, comment)| exit_re.captures(comment).and_then(|c| c[1].parse().ok()))
            .unwrap_or(0);
        out.push(Line {
            offset: i,
            raw: l.to_owned(),
            args,
            redirect,
            exit,
        });
    }
    Ok(out)
}

/// Commands that cannot run to an end in a test, with the reason; they are checked with
/// `--help` appended instead (the subcommand and every flag shown must exist).
fn not_runnable(args: &[String]) -> Option<&'static str> {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a.as_slice() {
        ["schedule", rest @ ..]
            if !rest
                .iter()
                .any(|x| matches!(*x, "--once" | "--list" | "status" | "emit")) =>
        {
            Some("the scheduler daemon runs until stopped")
        }
        ["review", "serve", ..] => Some("the review server runs until stopped"),
        ["collect", ..] => Some("the OTLP receiver runs until stopped"),
        _ => None,
    }
}

/// `review import FILE` needs what a browser exports from a sheet: write FILE as the sheet's
/// export would be, grading every item of the newest sheet (sampled first if there is none).
fn export_grades(p: &Project, file: &str) -> Result<(), String> {
    let newest_sheet = || {
        let mut sheets: Vec<_> = std::fs::read_dir(p.path().join("reports/review"))
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|f| f.extension().is_some_and(|x| x == "html"))
            .collect();
        sheets.sort();
        sheets.pop()
    };
    if newest_sheet().is_none() {
        p.run(&["review", "sample", "--since", "all"]);
    }
    let page = newest_sheet()
        .and_then(|f| std::fs::read_to_string(f).ok())
        .ok_or("no review sheet to export grades from")?;
    let start = r#"<script type="application/json" id="evalwatch-sheet">"#;
    let json = page
        .split_once(start)
        .and_then(|(_, rest)| rest.split_once("</script>"))
        .map(|(json, _)| json)
        .ok_or("the sheet carries no evalwatch-sheet JSON")?;
    let sheet: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("the sheet's JSON: {e}"))?;
    let grades: Vec<serde_json::Value> = sheet["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            serde_json::json!({"result_id": i["result_id"], "verdict": "pass", "quality": 4,
                               "hallucination": false})
        })
        .collect();
    let export = serde_json::json!({
        "sheet_id": sheet["sheet_id"], "reviewer": "Doc Test",
        "exported_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true), "sheet_mac": sheet["mac"], "grades": grades,
    });
    p.write(file, &export.to_string());
    Ok(())
}

/// `feedback import FILE --from TOOL [--name NAME]` needs the tool's export: write FILE (when
/// the doc did not make it) as that tool exports scores, thumbs on ten records of the example
/// log (`ex-0000`...) half an hour ago, of the score name given (plus an LLM judge's scores,
/// which `--name` skips), else of one name.
fn score_export(p: &Project, file: &str, args: &[String]) -> Result<(), String> {
    if p.path().join(file).exists() {
        return Ok(());
    }
    let after = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let name = after("--name");
    let when = chrono::Utc::now() - chrono::Duration::minutes(30);
    let mut lines = Vec::new();
    let mut scores: Vec<(String, String, f64)> = (0..10)
        .map(|i| {
            let n = name.clone().unwrap_or_else(|| "user-feedback".into());
            (format!("ex-{i:04}"), n, if i < 7 { 1.0 } else { 0.0 })
        })
        .collect();
    if name.is_some() {
        scores.extend((0..3).map(|i| (format!("ex-{i:04}"), "hallucination".into(), 0.8)));
    }
    for (i, (trace, name, value)) in scores.iter().enumerate() {
        let line = match after("--from").as_deref() {
            Some("langfuse") => serde_json::json!({
                "id": format!("s{i}"), "traceId": trace, "observationId": null, "name": name,
                "source": "API", "timestamp": when.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "value": value, "stringValue": null, "dataType": "NUMERIC", "comment": null,
            }),
            Some("langsmith") => serde_json::json!({
                "id": format!("f{i}"), "run_id": trace, "trace_id": trace, "key": name,
                "score": value, "value": null, "comment": null,
                "created_at": when.naive_utc().format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
                "feedback_source": {"type": "api"},
            }),
            other => return Err(format!("no export to write for --from {other:?}")),
        };
        lines.push(line.to_string());
    }
    p.write(file, &(lines.join("\n") + "\n"));
    Ok(())
}

/// Run ids of the project's history, newest first.
fn run_ids(p: &Project) -> Vec<String> {
    let out = p.run(&["runs", "--format", "json", "--limit", "5"]);
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|r| r["run_id"].as_str().map(str::to_owned))
        .collect()
}

/// Placeholders of the docs stand for runs of the reader's history: `A` and `B` (the older and
/// the newer of `compare A B`), `ID`, and a date prefix such as `20261126` (a unique prefix of
/// the newest run, as short as the history allows). Absolute paths
/// (`--out /etc/systemd/system`) are moved under the project.
fn substitute(p: &Project, args: &[String]) -> Vec<String> {
    let needs_runs = args
        .iter()
        .any(|a| matches!(a.as_str(), "A" | "B" | "ID") || is_date_prefix(a));
    let mut ids = if needs_runs { run_ids(p) } else { Vec::new() };
    if needs_runs && ids.len() < 2 {
        p.run(&["run", "-q"]);
        ids = run_ids(p);
    }
    let newest = ids.first().cloned().unwrap_or_default();
    let older = ids.get(1).cloned().unwrap_or_default();
    // The shortest prefix (8 characters or more) that names the newest run alone, so that a
    // documented prefix is exercised as a prefix.
    let prefix = (8..=newest.len())
        .map(|n| &newest[..n])
        .find(|p| ids.iter().filter(|id| id.starts_with(p)).count() == 1)
        .unwrap_or(&newest)
        .to_owned();
    args.iter()
        .map(|a| match a.as_str() {
            "A" => older.clone(),
            "B" | "ID" => newest.clone(),
            x if is_date_prefix(x) => prefix.clone(),
            x if x.starts_with('/') => {
                let dir = p.path().join(x.trim_start_matches('/'));
                let _ = std::fs::create_dir_all(&dir);
                dir.to_string_lossy().into_owned()
            }
            x => x.to_owned(),
        })
        .collect()
}

fn is_date_prefix(a: &str) -> bool {
    a.len() >= 8 && a.starts_with("20") && a.chars().all(|c| c.is_ascii_digit())
}

/// A project made by `evalwatch init` with two runs in its history (unless the block starts
/// with `init` itself).
fn project_for(lines: &[Line]) -> Project {
    let p = Project::new();
    if lines
        .first()
        .is_some_and(|l| l.args.first().is_some_and(|a| a == "init"))
    {
        return p;
    }
    for args in [&["init"][..], &["run", "-q"], &["run", "-q"]] {
        let out = p.run(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "setting up a project: evalwatch {args:?}: {}",
            stderr(&out)
        );
    }
    p
}

/// Run every `evalwatch` line of a shell block in order in one project; each must exit 0.
pub fn check(block: &Block) -> Result<(), String> {
    if matches!(block.directive, Some(Directive::Skip(_))) || !is_shell(block) {
        return Ok(());
    }
    let lines = lines(block)?;
    if lines.is_empty() {
        return Ok(());
    }
    let p = project_for(&lines);
    let mut failures = Vec::new();
    for line in &lines {
        if let ["review", "import", file, ..] = line
            .args
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
            && let Err(e) = export_grades(&p, file)
        {
            failures.push(format!(
                "{}: cannot prepare `{file}`: {e}",
                block.at(line.offset)
            ));
            continue;
        }
        if let ["feedback", "import", file, ..] = line
            .args
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
            && line.args.iter().any(|a| a == "--from")
            && let Err(e) = score_export(&p, file, &line.args)
        {
            failures.push(format!(
                "{}: cannot prepare `{file}`: {e}",
                block.at(line.offset)
            ));
            continue;
        }
        let mut args = substitute(&p, &line.args);
        let reason = not_runnable(&line.args);
        if reason.is_some() {
            args.push("--help".to_owned());
        }
        let out = p.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let code = out.status.code();
        let expected = if reason.is_some() { 0 } else { line.exit };
        if code != Some(expected) {
            failures.push(format!(
                "{}: `{}` exits {code:?}, the doc says {expected}{}\n  ran: evalwatch {}\n{}{}",
                block.at(line.offset),
                line.raw,
                reason.map_or(String::new(), |r| format!(" (checked with --help: {r})")),
                args.join(" "),
                stdout(&out),
                stderr(&out)
            ));
            continue;
        }
        if let Some(file) = &line.redirect {
            let path = p.path().join(file);
            if let Some(d) = path.parent() {
                let _ = std::fs::create_dir_all(d);
            }
            std::fs::write(&path, &out.stdout).expect("write redirect");
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

/// Mask what changes from run to run: run ids, times, durations, dates.
pub fn mask(text: &str) -> String {
    let rules = [
        (r"\b\d{8}-\d{6}-[0-9a-f]{4,8}\b", "<RUN_ID>"),
        (
            r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?Z?\b",
            "<TIME>",
        ),
        (r"\b\d+(\.\d+)?s\b", "<SECS>"),
    ];
    let mut s = text.to_owned();
    for (re, with) in rules {
        s = regex::Regex::new(re)
            .expect("mask regex")
            .replace_all(&s, with)
            .into_owned();
    }
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Do the masked lines `act` match the pattern `doc` (`...` = any lines)?
fn go(doc: &[String], act: &[String]) -> bool {
    match doc.split_first() {
        None => act.is_empty(),
        Some((d, rest)) if d == "..." => (0..=act.len()).any(|k| go(rest, &act[k..])),
        Some((d, rest)) => act.first().is_some_and(|a| a == d) && go(rest, &act[1..]),
    }
}

/// Does `actual` show the documented lines? The documented block may be an excerpt: it may
/// start and end anywhere in the output, but within it a documented `...` line is the only
/// place where lines may be left out; other lines must match in order after masking
/// (whitespace runs count as one space).
pub fn matches(documented: &str, actual: &str) -> Result<(), String> {
    let doc: Vec<String> = std::iter::once("...".to_owned())
        .chain(documented.lines().map(mask))
        .chain(std::iter::once("...".to_owned()))
        .collect();
    let act: Vec<String> = actual.lines().map(mask).collect();
    if go(&doc, &act) {
        return Ok(());
    }
    // Name the first documented line that is nowhere in the output, to say what drifted.
    let missing = doc
        .iter()
        .find(|d| *d != "..." && !act.contains(d))
        .map_or_else(
            || "the lines are there but not in this order".to_owned(),
            |d| format!("no output line matches `{d}`"),
        );
    Err(missing)
}

/// Compare a block annotated `output-of PROJECT COMMAND` with what the command prints.
pub fn check_output(block: &Block) -> Result<(), String> {
    let Some(Directive::OutputOf { project, command }) = &block.directive else {
        return Ok(());
    };
    let p = if project == "examples" {
        Project::examples()
    } else {
        let p = Project::new();
        p.run(&["init"]);
        p
    };
    let args = shlex::split(command).unwrap_or_default();
    let args = substitute(&p, &args[1..]);
    let out = p.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    // Docs show a project in /srv/evals and the binary in /usr/local/bin.
    let mut printed = stdout(&out);
    let bin = assert_cmd::cargo::cargo_bin("evalwatch");
    for (from, to) in [
        (
            bin.to_string_lossy().into_owned(),
            "/usr/local/bin/evalwatch",
        ),
        (
            p.path()
                .canonicalize()
                .unwrap_or_else(|_| p.path().to_owned())
                .to_string_lossy()
                .into_owned(),
            "/srv/evals",
        ),
        (p.path().to_string_lossy().into_owned(), "/srv/evals"),
    ] {
        printed = printed.replace(&from, to);
    }
    matches(&block.text, &printed).map_err(|why| {
        format!(
            "{}: the output shown for `{command}` (in a project of {project}) drifted: {why}\n\
             --- the binary printed (exit {:?}) ---\n{}{}",
            block.at(0),
            out.status.code(),
            printed,
            stderr(&out)
        )
    })
}

/// The repository root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every mention of a command in the docs, in code spans or blocks: (`file:line`, the text
/// from `evalwatch` on, with a block's indented continuation lines joined).
pub fn mentions(file: &str, text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut in_block = false;
    for (i, line) in text.lines().enumerate() {
        let at = format!("{file}:{}", i + 1);
        let t = line.trim();
        if t.starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            let t = t.trim_start_matches("$ ");
            if t.starts_with("evalwatch ") {
                out.push((at, t.to_owned()));
            } else if t.starts_with("--")
                && line.starts_with(' ')
                && let Some(last) = out.last_mut()
            {
                last.1.push(' ');
                last.1.push_str(t);
            }
            continue;
        }
        for (k, span) in line.split('`').enumerate() {
            if k % 2 == 1 && span.starts_with("evalwatch ") {
                out.push((at.clone(), span.to_owned()));
            }
        }
    }
    out
}

/// The subcommands listed under `Commands:` in a help text.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// Check that the subcommands and `--flags` of a mention exist: `evalwatch <path> --help` must
/// list each flag. `help` caches help texts by subcommand path.
pub fn check_mention(
    at: &str,
    mention: &str,
    help: &mut std::collections::HashMap<Vec<String>, String>,
) -> Result<(), String> {
    let mut get = |path: &[String]| -> Result<String, String> {
        if let Some(h) = help.get(path) {
            return Ok(h.clone());
        }
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let out = Project::new().run(&args);
        if out.status.code() != Some(0) {
            return Err(format!(
                "{at}: `evalwatch {}` is not a command: {}",
                path.join(" "),
                stderr(&out)
            ));
        }
        help.insert(path.to_vec(), stdout(&out));
        Ok(stdout(&out))
    };
    let tokens: Vec<String> = mention
        .split_whitespace()
        .skip(1)
        .take_while(|t| !t.starts_with('#') && *t != "|" && *t != ">" && *t != "&&")
        .map(|t| {
            t.trim_matches(|c| matches!(c, '[' | ']' | '(' | ')' | ',' | ';' | '.'))
                .to_owned()
        })
        .collect();
    let mut path: Vec<String> = Vec::new();
    let mut h = get(&path)?;
    let mut missing = Vec::new();
    let mut tokens = tokens.iter();
    while let Some(t) = tokens.next() {
        if t.starts_with("--") {
            let flag = t.split('=').next().unwrap_or(t);
            let shown = h.lines().any(|l| {
                l.split(|c: char| c.is_whitespace() || c == ',')
                    .any(|w| w == flag)
            });
            if !shown {
                missing.push(flag.to_owned());
            }
            // A flag that takes a value (`--db <PATH>`) written without `=`: the next word is
            // its value, not a subcommand.
            let takes_value = h.lines().any(|l| l.contains(&format!("{flag} <")));
            if takes_value && !t.contains('=') {
                tokens.next();
            }
        } else if subcommands(&h).iter().any(|s| s == t) {
            path.push(t.clone());
            h = get(&path)?;
        } else if h
            .lines()
            .any(|l| l.starts_with("Usage:") && l.ends_with("<COMMAND>"))
        {
            return Err(format!(
                "{at}: `{mention}`: `{t}` is not a subcommand of `evalwatch {}` ({})",
                path.join(" "),
                subcommands(&h).join(", ")
            ));
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{at}: `{mention}`: `evalwatch {} --help` lists no {}",
            path.join(" "),
            missing.join(", ")
        ))
    }
}
