//! YAML examples of the docs: decide what each one is, wrap fragments into a suite, and load it
//! through the real binary (`validate`, or `run` for the `# output:` examples).

use std::fmt::Write as _;
use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

use super::markdown::{Block, Directive};
use crate::support::{Project, copy_dir, stderr, stdout};

/// What a YAML block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A whole suite file (`suite:` at the top).
    Suite,
    /// A whole or partial evalwatch.yaml.
    Config,
    /// Some top-level keys of a suite (`gates:`, `defaults:`, `repeat:` ...).
    SuiteFragment,
    /// A YAML case file: a list of cases and includes.
    CaseFile,
    /// The body of one case (`expected:`, `assert:` ...).
    Case,
    /// A list of assertions.
    Assertions,
    /// A list of provider definitions.
    Providers,
}

const SUITE_KEYS: &[&str] = &[
    "suite",
    "description",
    "tags",
    "schedule",
    "timezone",
    "catch_up",
    "jitter",
    "providers",
    "system",
    "prompt",
    "messages",
    "repeat",
    "repeat_policy",
    "defaults",
    "cases",
    "gates",
    "alerts",
    "review",
];
const CONFIG_ONLY_KEYS: &[&str] = &[
    "store",
    "reports",
    "judge",
    "sinks",
    "error_budget",
    "traffic",
];
const CASE_KEYS: &[&str] = &[
    "id",
    "description",
    "tags",
    "vars",
    "expected",
    "context",
    "assert",
    "threshold",
    "repeat_policy",
];

/// The suite name every wrapped example gets.
const NAME: &str = "doc-example";
/// A case added to fragments that bring none. Tagged `billing` as cases of the shipped
/// support-faq suite are, so that a tag-scoped rule of the docs (`tag: billing`) has a case to
/// watch: `validate` refuses a rule on a tag no case has.
const DEFAULT_CASE: &str =
    "  - {id: doc-case, tags: [billing], vars: {question: \"What is 6 x 7?\"}, expected: \"42\"}\n";

fn keys(y: &Yaml) -> Vec<String> {
    y.as_hash()
        .map(|h| {
            h.keys()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn first_comment(text: &str) -> Option<&str> {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .and_then(|l| l.strip_prefix('#'))
        .map(str::trim)
}

/// Decide the kind of a YAML block, or say why it cannot be told.
pub fn classify(block: &Block, text: &str) -> Result<Kind, String> {
    if let Some(Directive::FragmentOf(k)) = &block.directive {
        return Ok(match k.as_str() {
            "suite" => Kind::SuiteFragment,
            "config" => Kind::Config,
            "case-file" => Kind::CaseFile,
            "assertions" => Kind::Assertions,
            "case" => Kind::Case,
            _ => Kind::Providers,
        });
    }
    let docs = YamlLoader::load_from_str(text).map_err(|e| format!("not YAML: {e}"))?;
    let doc = docs.first().ok_or("an empty YAML block")?;
    let undecided = || {
        "cannot tell what this YAML is (a suite, evalwatch.yaml, a case file, cases, \
         assertions or providers); annotate it with `<!-- doctest: fragment-of KIND -->`"
            .to_owned()
    };
    match doc {
        Yaml::Hash(_) => {
            let ks = keys(doc);
            let has = |k: &str| ks.iter().any(|x| x == k);
            if first_comment(text) == Some("evalwatch.yaml") {
                Ok(Kind::Config)
            } else if has("suite") && has("providers") && has("cases") {
                Ok(Kind::Suite)
            } else if CONFIG_ONLY_KEYS.iter().any(|k| has(k)) {
                Ok(Kind::Config)
            } else if ks.iter().all(|k| SUITE_KEYS.contains(&k.as_str())) {
                Ok(Kind::SuiteFragment)
            } else if ks.iter().all(|k| CASE_KEYS.contains(&k.as_str())) {
                Ok(Kind::Case)
            } else {
                Err(undecided())
            }
        }
        Yaml::Array(items) => {
            let all = |f: &dyn Fn(&[String]) -> bool| items.iter().all(|i| f(&keys(i)));
            let has = |ks: &[String], k: &str| ks.iter().any(|x| x == k);
            if all(&|ks| has(ks, "id") && has(ks, "type")) {
                Ok(Kind::Providers)
            } else if all(&|ks| has(ks, "type") && !has(ks, "id")) {
                Ok(Kind::Assertions)
            } else if all(&|ks| (has(ks, "id") || has(ks, "include")) && !has(ks, "type")) {
                Ok(Kind::CaseFile)
            } else {
                Err(undecided())
            }
        }
        _ => Err(undecided()),
    }
}

fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.lines().fold(String::new(), |mut s, l| {
        if l.trim().is_empty() {
            s.push('\n');
        } else {
            let _ = writeln!(s, "{pad}{l}");
        }
        s
    })
}

fn head(providers: &str) -> String {
    format!("suite: {NAME}\nproviders: {providers}\nprompt: \"Answer: 42\"\n")
}

const ECHO: &str = "[{id: doc-echo, type: echo}]";

/// The files a block of `kind` becomes: (path relative to the project, text), the suite last.
fn wrap(kind: Kind, text: &str, providers: &str) -> Vec<(String, String)> {
    let suite_path = format!("suites/{NAME}.yaml");
    match kind {
        Kind::Suite => vec![(suite_path, text.to_owned())],
        Kind::Config => vec![
            ("evalwatch.yaml".to_owned(), text.to_owned()),
            (suite_path, format!("{}cases:\n{DEFAULT_CASE}", head(ECHO))),
        ],
        Kind::SuiteFragment => {
            // Appended, so that the example's lines keep their numbers in the file.
            let docs = YamlLoader::load_from_str(text).unwrap_or_default();
            let ks = docs.first().map(keys).unwrap_or_default();
            let has = |k: &str| ks.iter().any(|x| x == k);
            let mut s = text.to_owned();
            if !has("suite") {
                let _ = writeln!(s, "suite: {NAME}");
            }
            if !has("providers") {
                let _ = writeln!(s, "providers: {providers}");
            }
            if !has("prompt") && !has("messages") {
                s.push_str("prompt: \"Answer: 42\"\n");
            }
            if !has("cases") {
                let _ = write!(s, "cases:\n{DEFAULT_CASE}");
            }
            vec![(suite_path, s)]
        }
        Kind::CaseFile => vec![
            (format!("suites/cases/{NAME}.yaml"), text.to_owned()),
            (
                suite_path,
                format!(
                    "{}cases:\n  - include: cases/{NAME}.yaml\n",
                    head(providers)
                ),
            ),
        ],
        Kind::Case => vec![(
            suite_path,
            format!(
                "{}cases:\n  - id: doc-case\n{}",
                head(providers),
                indent(text, 4)
            ),
        )],
        Kind::Assertions => vec![(
            suite_path,
            format!(
                "{}cases:\n  - id: doc-case\n    vars: {{question: \"What is 6 x 7?\"}}\n    expected: \"42\"\n    assert:\n{}",
                head(providers),
                indent(text, 6)
            ),
        )],
        Kind::Providers => vec![(
            suite_path,
            format!(
                "suite: {NAME}\nprompt: \"Answer: 42\"\ncases:\n{DEFAULT_CASE}providers:\n{}",
                indent(text, 2)
            ),
        )],
    }
}

/// A project for YAML examples: the shipped examples plus tests/data/docs (the files the
/// examples name: `cases/more.yaml`, `schemas/answer.json`, ...) under suites/.
fn project() -> Project {
    let p = Project::examples();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    copy_dir(&root.join("tests/data/docs"), &p.path().join("suites"));
    p
}

fn numbered(text: &str) -> String {
    text.lines()
        .enumerate()
        .fold(String::new(), |mut s, (i, l)| {
            let _ = writeln!(s, "{:>4} | {l}", i + 1);
            s
        })
}

fn describe_files(block: &Block, files: &[(String, String)]) -> String {
    files.iter().fold(String::new(), |mut s, (path, text)| {
        // Where the example is the head of the file, its lines keep their numbers.
        let same = if text.starts_with(&block.text) {
            format!(
                " (lines 1-{} are {}-{})",
                block.text.lines().count(),
                block.at(0),
                block.line + block.text.lines().count().saturating_sub(1)
            )
        } else {
            String::new()
        };
        let _ = write!(s, "--- checked as {path}{same} ---\n{}", numbered(text));
        s
    })
}

/// Blocks checked here: YAML, and JSON Lines / CSV case files.
pub fn is_checked(block: &Block) -> bool {
    matches!(block.lang.as_str(), "yaml" | "yml") || case_file_ext(block).is_some()
}

/// `jsonl` for a ```json block of one case object per line, `csv` for a ```csv block whose
/// header has an `id` column: they are case files.
fn case_file_ext(block: &Block) -> Option<&'static str> {
    match block.lang.as_str() {
        "json" | "jsonl" => block
            .text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .all(|l| {
                serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| v.get("id").is_some())
            })
            .then_some("jsonl"),
        "csv" => block
            .text
            .lines()
            .next()
            .is_some_and(|h| h.split(',').any(|c| c.trim() == "id"))
            .then_some("csv"),
        _ => None,
    }
}

/// Check one YAML block; `Err` is a located explanation.
pub fn check(block: &Block) -> Result<(), String> {
    if matches!(block.directive, Some(Directive::Skip(_))) {
        return Ok(());
    }
    let outputs = output_segments(block);
    if !outputs.is_empty() {
        return outputs
            .into_iter()
            .map(|seg| check_output_example(block, &seg))
            .collect::<Vec<_>>()
            .into_iter()
            .collect::<Result<Vec<()>, String>>()
            .map(|_| ());
    }
    let files = if let Some(ext) = case_file_ext(block) {
        vec![
            (format!("suites/cases/{NAME}.{ext}"), block.text.clone()),
            (
                format!("suites/{NAME}.yaml"),
                format!("{}cases:\n  - include: cases/{NAME}.{ext}\n", head(ECHO)),
            ),
        ]
    } else {
        let kind = classify(block, &block.text).map_err(|e| format!("{}: {e}", block.at(0)))?;
        wrap(kind, &block.text, ECHO)
    };
    let kind = &block.lang;
    let p = project();
    for (path, text) in &files {
        p.write(path, text);
    }
    let suite = &files.last().expect("a suite").0;
    let out = p.run(&["validate", suite]);
    let code = out.status.code();
    if code == Some(0) && stdout(&out).starts_with("ok:") {
        return check_alert_rules(block, &p, suite, &files);
    }
    Err(format!(
        "{}: {kind} example does not pass `evalwatch validate` (exit {code:?}):\n{}{}{}",
        block.at(0),
        stdout(&out),
        stderr(&out),
        describe_files(block, &files),
    ))
}

/// `alerts check` judges alert rules and sinks in this version beyond what `validate` does: an
/// example with `alerts:` or `sinks:` must pass it too (on an empty history nothing fires).
fn check_alert_rules(
    block: &Block,
    p: &Project,
    suite: &str,
    files: &[(String, String)],
) -> Result<(), String> {
    let docs = YamlLoader::load_from_str(&block.text).unwrap_or_default();
    let ks = docs.first().map(keys).unwrap_or_default();
    if !ks.iter().any(|k| k == "alerts" || k == "sinks") {
        return Ok(());
    }
    let out = p.run(&["alerts", "check", suite]);
    if out.status.code() == Some(0) {
        return Ok(());
    }
    Err(format!(
        "{}: {} example does not pass `evalwatch alerts check` (exit {:?}):\n{}{}{}",
        block.at(0),
        block.lang,
        out.status.code(),
        stdout(&out),
        stderr(&out),
        describe_files(block, files),
    ))
}

/// One `# output: ...` example of a block: the output and the YAML that follows it.
pub struct OutputSegment {
    /// Offset in the block of the `# output:` line.
    pub offset: usize,
    pub output: String,
    pub yaml: String,
}

/// Split a block at its `# output:` lines; empty when it has none.
pub fn output_segments(block: &Block) -> Vec<OutputSegment> {
    let mut segs: Vec<OutputSegment> = Vec::new();
    for (i, line) in block.text.lines().enumerate() {
        if let Some(rest) = line.trim_start().strip_prefix("# output:") {
            let output = if let Some(Directive::Output(o)) = &block.directive {
                o.clone()
            } else {
                let rest = rest.trim();
                serde_json::from_str::<String>(rest).unwrap_or_else(|_| rest.to_owned())
            };
            segs.push(OutputSegment {
                offset: i,
                output,
                yaml: String::new(),
            });
        } else if let Some(seg) = segs.last_mut() {
            seg.yaml.push_str(line);
            seg.yaml.push('\n');
        }
    }
    segs
}

/// Run one `# output:` example against a replay of that output: the doc promises that the case
/// passes and that every assertion shown passes (a case with a `threshold` only has to pass).
fn check_output_example(block: &Block, seg: &OutputSegment) -> Result<(), String> {
    let at = block.at(seg.offset);
    let kind = classify(block, &seg.yaml).map_err(|e| format!("{at}: {e}"))?;
    if !matches!(kind, Kind::Case | Kind::Assertions | Kind::CaseFile) {
        return Err(format!(
            "{at}: an `# output:` example must be a case, a list of cases or a list of \
             assertions, not {kind:?}"
        ));
    }
    let files = wrap(
        kind,
        &seg.yaml,
        &format!("[{{id: doc-replay, type: replay, file: {NAME}.jsonl}}]"),
    );
    let ids: Vec<String> = if kind == Kind::CaseFile {
        YamlLoader::load_from_str(&seg.yaml)
            .ok()
            .and_then(|d| d.into_iter().next())
            .and_then(Yaml::into_vec)
            .unwrap_or_default()
            .iter()
            .filter_map(|c| c["id"].as_str().map(str::to_owned))
            .collect()
    } else {
        vec!["doc-case".to_owned()]
    };
    let recording = ids.iter().fold(String::new(), |mut s, id| {
        let line = serde_json::json!({"case_id": id, "output": seg.output});
        let _ = writeln!(s, "{line}");
        s
    });
    let p = project();
    p.write(&format!("suites/{NAME}.jsonl"), &recording);
    for (path, text) in &files {
        p.write(path, text);
    }
    let suite = &files.last().expect("a suite").0;
    let out = p.run(&[
        "run",
        suite,
        "--format",
        "json",
        "--no-reports",
        "--no-alerts",
    ]);
    let context = || {
        format!(
            "output replayed: {:?}\n{}{}",
            seg.output,
            stderr(&out),
            describe_files(block, &files)
        )
    };
    if out.status.code() != Some(0) {
        return Err(format!(
            "{at}: `# output:` example does not run (exit {:?}):\n{}\n{}",
            out.status.code(),
            stdout(&out),
            context()
        ));
    }
    let run: serde_json::Value = serde_json::from_str(stdout(&out).lines().next().unwrap_or(""))
        .map_err(|e| {
            format!(
                "{at}: run --format json printed no JSON ({e})\n{}",
                context()
            )
        })?;
    let cases = run["cases"].as_array().cloned().unwrap_or_default();
    let mut wrong = Vec::new();
    for c in &cases {
        let id = c["case_id"].as_str().unwrap_or("?");
        if c["status"] != "passed" {
            wrong.push(format!("case `{id}` is {}", c["status"]));
        }
        let all_must_pass = kind != Kind::CaseFile;
        for a in c["assertions"].as_array().into_iter().flatten() {
            if all_must_pass && a["pass"] != true {
                wrong.push(format!(
                    "assertion `{}` does not pass: {}",
                    a["type"].as_str().unwrap_or("?"),
                    a["reason"].as_str().unwrap_or("?")
                ));
            }
        }
    }
    if cases.len() != ids.len() {
        wrong.push(format!(
            "{} case result(s), expected {}",
            cases.len(),
            ids.len()
        ));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{at}: the doc says every assertion shown passes on this output, but {}\n{}",
            wrong.join("; "),
            context()
        ))
    }
}
