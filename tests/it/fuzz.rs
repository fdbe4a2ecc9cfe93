//! Fuzzing the loader and validator: the shipped example suites and suites like the tests'
//! ones, mutated (bytes, tokens, lines, structure), go through what `validate` runs, in
//! process: no panic, every problem located inside the file it names, a bounded number of
//! problems. Then the most hostile inputs go through the real binary under an address-space
//! limit: each is refused (exit 2), never killed for memory. Figures: docs/reliability.md,
//! "Fuzzing".
//!
//! `EVALWATCH_FUZZ_CASES` sets how many mutated suites are tried (default 256, a few seconds
//! in a debug build); proptest's `PROPTEST_RNG_SEED` replays a run.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::support::{Project, code, stderr, stdout};

/// Suites shaped like the integration tests' ones (schedules, alerts, defaults, includes,
/// messages, templates), beside the shipped examples.
const TEST_SUITES: [&str; 4] = [
    "suite: a\nschedule: \"0 6 * * *\"\ntimezone: Europe/Paris\nproviders:\n  - id: e\n    type: echo\nprompt: \"{{ q }}\"\nrepeat: 2\ncases:\n  - {id: c1, vars: {q: hello}, expected: hello}\n  - id: c2\n    vars: {q: \"a {{ b }}\"}\n    assert:\n      - {type: icontains, value: a}\n      - {type: not-is-refusal}\n",
    "suite: b\nproviders:\n  - id: x\n    type: exec\n    command: [sh, -c, 'tr a-z A-Z']\nmessages:\n  - {role: system, content: \"Be brief.\"}\n  - {role: user, content: \"{% for i in items %}{{ i }} {% endfor %}\"}\ndefaults:\n  vars: {items: [a, b]}\n  assert: [{type: regex, value: \"^[A-Z ]+$\"}]\ngates:\n  pass_rate: {min: 0.9}\nalerts:\n  - {metric: pass_rate, drop: 0.05, baseline: \"trailing:7\", severity: critical}\n  - {metric: missed_run, after: 26h, severity: warning}\ncases:\n  - {id: c1}\n  - {id: c2, vars: {items: [c]}}\n",
    "suite: c\nproviders:\n  - id: r\n    type: replay\n    file: recordings/support-bot.jsonl\nprompt: \"{{ question }}\"\nreview: {sample: 5, seed: 7}\ncases:\n  - include: cases/faq.jsonl\n  - include: cases/faq.csv\n",
    "suite: d\nproviders:\n  - id: e\n    type: echo\nprompt: \"{{ q }}\"\ndefaults:\n  vars: &x {q: 1}\ncases:\n  - id: c1\n    vars: {q: \"x\", copy: *x}\n    expected: x\n    assert:\n      - {type: is-json, schema: schemas/invoice.json}\n      - {type: similarity, metric: jaro, threshold: 0.5}\n      - {type: numeric, value: 3, tolerance: 0.1}\n      - {type: length, max: 10}\n",
];

/// Tokens a mutation inserts: YAML structure, template syntax and known-hostile values.
const TOKENS: [&str; 40] = [
    "\n",
    "  ",
    "- ",
    ": ",
    "{",
    "}",
    "[",
    "]",
    ",",
    "\"",
    "'",
    "&a ",
    "*a",
    "<<: *a",
    "---\n",
    "!!binary ",
    "~",
    "\t",
    "#",
    "{{",
    "}}",
    "{% for i in range(10000) %}{% for j in range(10000) %}",
    "{% endfor %}{% endfor %}",
    "{{ q * 100000000 }}",
    "repeat: 4294967295\n",
    "include: /dev/zero",
    "schema: /dev/zero",
    "file: /dev/zero",
    "99 6 * * *",
    "timezone: Mars/Olympus\n",
    "type: not-",
    "threshold: 1e309",
    "-1",
    "é",
    "\u{0}",
    "\u{feff}",
    "${HOME}",
    "${UNSET_VAR_FOR_FUZZ:-x}",
    "@yearly",
    "null",
];

/// One mutation of a suite's text.
#[derive(Debug, Clone)]
enum Mutation {
    /// Insert a token at a fraction of the text.
    Insert(f64, usize),
    /// Delete a span (start fraction, length).
    Delete(f64, usize),
    /// Duplicate a span (start fraction, length) in place.
    Duplicate(f64, usize),
    /// Replace a line with another line of the text.
    CopyLine(f64, f64),
    /// Swap two lines.
    SwapLines(f64, f64),
    /// Change a line's indentation by -4..=4 spaces.
    Indent(f64, i8),
    /// Flip one byte.
    Byte(f64, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = 0.0..1.0f64;
    prop_oneof![
        3 => (at.clone(), 0..TOKENS.len()).prop_map(|(a, t)| Mutation::Insert(a, t)),
        2 => (at.clone(), 1..40usize).prop_map(|(a, n)| Mutation::Delete(a, n)),
        1 => (at.clone(), 1..200usize).prop_map(|(a, n)| Mutation::Duplicate(a, n)),
        2 => (at.clone(), at.clone()).prop_map(|(a, b)| Mutation::CopyLine(a, b)),
        1 => (at.clone(), at.clone()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        2 => (at.clone(), -4i8..=4).prop_map(|(a, d)| Mutation::Indent(a, d)),
        1 => (at, any::<u8>()).prop_map(|(a, b)| Mutation::Byte(a, b)),
    ]
}

fn index(len: usize, at: f64) -> usize {
    ((len as f64) * at) as usize % (len + 1)
}

/// Apply mutations to bytes (the result need not be UTF-8: the loader must say so).
fn mutate(text: &str, mutations: &[Mutation]) -> Vec<u8> {
    let mut b = text.as_bytes().to_vec();
    for m in mutations {
        match *m {
            Mutation::Insert(at, t) => {
                let i = index(b.len(), at);
                b.splice(i..i, TOKENS[t].bytes());
            }
            Mutation::Delete(at, n) => {
                let i = index(b.len(), at);
                let end = (i + n).min(b.len());
                b.drain(i..end);
            }
            Mutation::Duplicate(at, n) => {
                let i = index(b.len(), at);
                let end = (i + n).min(b.len());
                let span = b[i..end].to_vec();
                b.splice(end..end, span);
            }
            Mutation::CopyLine(from, to) | Mutation::SwapLines(from, to) => {
                let mut lines: Vec<Vec<u8>> =
                    b.split(|c| *c == b'\n').map(<[u8]>::to_vec).collect();
                let n = lines.len();
                let (f, t) = (index(n - 1, from), index(n - 1, to));
                if matches!(m, Mutation::CopyLine(..)) {
                    let line = lines[f].clone();
                    lines[t] = line;
                } else {
                    lines.swap(f, t);
                }
                b = lines.join(&b'\n');
            }
            Mutation::Indent(at, d) => {
                let mut lines: Vec<Vec<u8>> =
                    b.split(|c| *c == b'\n').map(<[u8]>::to_vec).collect();
                let n = lines.len();
                let line = &mut lines[index(n - 1, at)];
                if d >= 0 {
                    line.splice(0..0, std::iter::repeat_n(b' ', d as usize));
                } else {
                    let strip = line
                        .iter()
                        .take((-d) as usize)
                        .take_while(|c| **c == b' ')
                        .count();
                    line.drain(..strip);
                }
                b = lines.join(&b'\n');
            }
            Mutation::Byte(at, v) => {
                if !b.is_empty() {
                    let i = index(b.len() - 1, at);
                    b[i] = v;
                }
            }
        }
    }
    b
}

/// What `validate` runs for one file, in process: load (every located diagnostic), then
/// the schedule, the scorer and every case's rendering. Returns the number of problems.
fn judge(file: &Path, project: &evalwatch::model::ProjectConfig) -> usize {
    let (suites, diags) = evalwatch::suite::load_suites(&[file.to_path_buf()], project);
    let text_lines = std::fs::read(file).map_or(0, |b| b.split(|c| *c == b'\n').count());
    for d in &diags.0 {
        // Located: in the suite file (within it) or in a file it names.
        assert!(!d.message.is_empty(), "an empty message");
        if d.location.file.as_ref() == file {
            assert!(
                d.location.line <= text_lines + 1,
                "{d} lies past the end of the file ({text_lines} lines)"
            );
        }
    }
    let mut problems = diags.0.len();
    for suite in &suites {
        if let Some(expr) = &suite.schedule
            && evalwatch::schedule::Schedule::parse(expr, suite.timezone.as_deref()).is_err()
        {
            problems += 1;
        }
        if evalwatch::score::Scorer::new(suite).is_err() {
            problems += 1;
        }
        match evalwatch::suite::Renderer::new(suite) {
            Err(d) => problems += d.0.len(),
            Ok(renderer) => {
                for case in &suite.cases {
                    if let Ok(request) = renderer.render(case, 0) {
                        let size: usize = request.messages.iter().map(|m| m.content.len()).sum();
                        assert!(
                            size <= evalwatch::model::limits::MAX_RENDERED_BYTES,
                            "a rendering over the limit"
                        );
                    } else {
                        problems += 1;
                    }
                }
            }
        }
    }
    problems
}

/// The seeds: (name, text) of each shipped example suite and test-like suite.
fn seeds(root: &Path) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(root.join("suites"))
        .expect("suites")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            (
                p.file_name().expect("name").to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).expect("read"),
            )
        })
        .collect();
    out.sort();
    assert!(out.len() >= 3, "the shipped examples are seeds");
    out.extend(
        TEST_SUITES
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("test-{i}.yaml"), (*t).to_owned())),
    );
    out
}

fn cases() -> u32 {
    std::env::var("EVALWATCH_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

#[test]
fn mutated_suites_never_panic_and_every_problem_is_located() {
    let p = Project::examples();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let seeds = seeds(&root);
    let project = evalwatch::suite::load_project(Some(&p.path().join("evalwatch.yaml")), p.path())
        .expect("the example config loads");
    // Unmutated, every seed is valid: the mutations are what breaks them.
    for (name, text) in &seeds {
        let file = p.write(&format!("suites/{name}"), text);
        assert_eq!(judge(&file, &project), 0, "seed {name} is valid");
    }
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let file = p.path().join("suites/fuzzed.yaml");
    let strategy = (0..seeds.len(), proptest::collection::vec(mutation(), 1..8));
    let result = runner.run(&strategy, |(seed, mutations)| {
        let bytes = mutate(&seeds[seed].1, &mutations);
        std::fs::write(&file, &bytes).expect("write");
        let problems = judge(&file, &project);
        // Bounded: a few problems per line at most, never one per byte of an expansion.
        let lines = bytes.split(|c| *c == b'\n').count();
        prop_assert!(
            problems <= 4 * lines + 50,
            "{problems} problems for {lines} lines"
        );
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// The most hostile inputs, through the real binary with its address space limited to
/// 1 GiB: each is refused with exit 2 (never a crash, an abort or a kill).
#[test]
fn hostile_suites_are_refused_within_bounded_memory() {
    let p = Project::new();
    let echo = "providers:\n  - id: e\n    type: echo\n";
    let one = "cases:\n  - {id: c1, vars: {q: hello}, expected: hello}\n";
    let long = "y".repeat(1 << 20);
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for (i, prev) in ["a", "b", "c", "d", "e", "f", "g", "h"].iter().enumerate() {
        let name = ["b", "c", "d", "e", "f", "g", "h", "i"][i];
        let _ = writeln!(
            bomb,
            "{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]"
        );
    }
    let hostile: Vec<(&str, String)> = vec![
        (
            "repeat",
            format!("suite: a\n{echo}prompt: \"{{{{ q }}}}\"\nrepeat: 4294967295\n{one}"),
        ),
        (
            "nested-loops",
            format!(
                "suite: a\n{echo}prompt: \"{{% for i in range(10000) %}}{{% for j in range(10000) %}}{{{{ q }}}}{{% endfor %}}{{% endfor %}}\"\n{one}"
            ),
        ),
        (
            "big-string",
            format!(
                "suite: a\n{echo}prompt: \"{{% for i in range(100) %}}{{{{ q * 9000000 }}}}{{% endfor %}}\"\n{one}"
            ),
        ),
        (
            "alias-nodes",
            format!(
                "suite: a\n{echo}prompt: \"{{{{ q }}}}\"\ndefaults:\n  vars:\n    {}\n{one}",
                bomb.trim_end().replace('\n', "\n    ")
            ),
        ),
        (
            "alias-text",
            format!(
                "suite: a\n{echo}prompt: \"{{{{ q }}}}\"\ndefaults:\n  vars: {{t: &t \"{long}\", {}}}\n{one}",
                (0..200)
                    .map(|i| format!("v{i}: *t"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        (
            "dev-zero",
            format!(
                "suite: a\n{echo}prompt: \"{{{{ q }}}}\"\ncases:\n  - include: /dev/zero\n  - {{id: c1, vars: {{q: x}}, assert: [{{type: is-json, schema: /dev/zero}}]}}\n"
            ),
        ),
        (
            "deep",
            format!(
                "suite: a\n{echo}prompt: \"{{{{ q }}}}\"\n{one}x: {}{}\n",
                "[".repeat(10_000),
                "]".repeat(10_000)
            ),
        ),
    ];
    for (name, text) in &hostile {
        p.write("suites/a.yaml", text);
        let bin = assert_cmd::cargo::cargo_bin("evalwatch");
        let out = std::process::Command::new("sh")
            .current_dir(p.path())
            .env("NO_COLOR", "1")
            .env_remove("EVALWATCH_DB")
            .env_remove("EVALWATCH_CONFIG")
            .args([
                "-c",
                "ulimit -v 1048576 && exec \"$0\" validate",
                &bin.display().to_string(),
            ])
            .output()
            .expect("run");
        assert_eq!(code(&out), 2, "{name}: {}\n{}", stdout(&out), stderr(&out));
        assert!(
            stdout(&out).contains("suites/a.yaml:"),
            "{name}: {}",
            stdout(&out)
        );
    }
}
