//! Every example of README.md and docs/*.md goes through the real binary, so a doc cannot drift
//! from it unnoticed.
//!
//! - YAML blocks (and ```json / ```csv case files) are loaded by `evalwatch validate` in a copy
//!   of the shipped examples. What a block is (a suite, evalwatch.yaml, suite keys, a case file,
//!   one case, assertions, providers) is decided from its keys; fragments are wrapped into a
//!   minimal suite (`yaml_check::wrap`).
//! - Blocks with `# output: ...` comments are run against a replay of that output: the case
//!   must pass, and each assertion shown too (the docs promise it).
//! - `evalwatch ...` lines of sh/console/bash/text blocks run in order in a project made by
//!   `evalwatch init` with two runs of history, and must exit 0 (or the code a comment on the
//!   line documents: `# exits 1 when a gate is breached`). Placeholders (`A`, `B`, `ID`,
//!   a date prefix) stand for runs of that history; the grades file of `review import` is
//!   written as a sheet's export would be, and the score export of `feedback import FILE
//!   --from TOOL` as that tool's (when the block did not write FILE); daemons are checked with
//!   `--help` (the reasons are in `commands::not_runnable`).
//! - A block annotated `<!-- doctest: output-of PROJECT COMMAND -->` must match what the
//!   command prints (`...` skips lines; run ids, times and durations are masked; the project
//!   folder reads as `/srv/evals` and the binary as `/usr/local/bin/evalwatch`).
//! - Inline alert rules (`{metric: ...}`) and `gates: {...}` load like blocks; every
//!   `evalwatch ...` mention (code spans and blocks, synopses included) names real subcommands
//!   and flags of `--help`; repository paths in code spans and `cargo bench --bench NAME` exist;
//!   relative links reach an existing file and heading.
//! - `<!-- doctest: skip REASON -->` and `<!-- doctest: fragment-of KIND -->` are the explicit,
//!   rare exceptions.
//!
//! Every failure names the example as `file:line` and says why.

mod commands;
mod markdown;
mod yaml_check;

use markdown::{Block, Directive, all_blocks, blocks};

fn report(what: &str, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} {what} of the docs drifted from the binary:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

fn check_all(blocks: &[Block], check: fn(&Block) -> Result<(), String>) -> Vec<String> {
    blocks.iter().filter_map(|b| check(b).err()).collect()
}

fn yaml_blocks(all: Vec<Block>) -> Vec<Block> {
    all.into_iter().filter(yaml_check::is_checked).collect()
}

#[test]
fn doc_yaml_examples_load_through_validate() {
    let blocks = yaml_blocks(all_blocks(commands::root()));
    assert!(
        blocks.len() > 30,
        "found only {} YAML examples",
        blocks.len()
    );
    report("YAML example(s)", &check_all(&blocks, yaml_check::check));
}

#[test]
fn doc_inline_rules_and_gates_load() {
    let blocks: Vec<Block> = markdown::doc_files(commands::root())
        .iter()
        .flat_map(|(file, text)| markdown::inline_yaml(file, text))
        .collect();
    assert!(
        blocks.len() >= 4,
        "found only {} inline examples",
        blocks.len()
    );
    report(
        "inline YAML example(s)",
        &check_all(&blocks, yaml_check::check),
    );
}

#[test]
fn doc_command_examples_run() {
    let blocks: Vec<Block> = all_blocks(commands::root())
        .into_iter()
        .filter(commands::is_shell)
        .collect();
    let lines: usize = blocks
        .iter()
        .map(|b| commands::lines(b).map_or(0, |l| l.len()))
        .sum();
    assert!(lines > 20, "found only {lines} command examples");
    report("command example(s)", &check_all(&blocks, commands::check));
}

#[test]
fn doc_output_examples_match_the_binary() {
    let blocks: Vec<Block> = all_blocks(commands::root())
        .into_iter()
        .filter(|b| matches!(b.directive, Some(Directive::OutputOf { .. })))
        .collect();
    assert!(!blocks.is_empty(), "no `doctest: output-of` block");
    report(
        "output example(s)",
        &check_all(&blocks, commands::check_output),
    );
}

#[test]
fn doc_command_mentions_name_real_subcommands_and_flags() {
    let mut help = std::collections::HashMap::new();
    let mut failures = Vec::new();
    let mut count = 0;
    for (file, text) in markdown::doc_files(commands::root()) {
        for (at, mention) in commands::mentions(&file, &text) {
            count += 1;
            if let Err(e) = commands::check_mention(&at, &mention, &mut help) {
                failures.push(e);
            }
        }
    }
    assert!(count > 50, "found only {count} command mentions");
    report("command mention(s)", &failures);
}

#[test]
fn repository_paths_named_in_the_docs_exist() {
    let root = commands::root();
    let mut missing = Vec::new();
    let mut count = 0;
    for (file, text) in markdown::doc_files(root) {
        for (at, path) in markdown::named_paths(&file, &text) {
            count += 1;
            if !root.join(&path).exists() {
                missing.push(format!("{at}: `{path}` does not exist"));
            }
        }
    }
    assert!(count > 20, "found only {count} named paths");
    report("named path(s)", &missing);
}

#[test]
fn doc_links_reach_their_file_and_heading() {
    let root = commands::root();
    let files = markdown::doc_files(root);
    let mut broken = Vec::new();
    let mut count = 0;
    for (file, text) in &files {
        let dir = std::path::Path::new(file)
            .parent()
            .unwrap_or(std::path::Path::new(""));
        for (at, target) in markdown::links(file, text) {
            count += 1;
            let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let linked = if path.is_empty() {
                file.clone()
            } else {
                dir.join(path).to_string_lossy().into_owned()
            };
            if !root.join(&linked).exists() {
                broken.push(format!("{at}: link `{target}`: `{linked}` does not exist"));
                continue;
            }
            if anchor.is_empty() {
                continue;
            }
            let Some((_, linked_text)) = files.iter().find(|(f, _)| *f == linked) else {
                continue;
            };
            if !markdown::anchors(linked_text).iter().any(|a| a == anchor) {
                broken.push(format!(
                    "{at}: link `{target}`: `{linked}` has no heading `#{anchor}`"
                ));
            }
        }
    }
    assert!(count > 20, "found only {count} links");
    report("link(s)", &broken);
}

#[test]
fn anchors_are_githubs() {
    assert_eq!(
        markdown::slug(" Environment variables: `${VAR}`"),
        "environment-variables-var"
    );
    assert_eq!(markdown::slug(" Negation: `not-`"), "negation-not-");
    assert_eq!(markdown::slug(" evalwatch.yaml"), "evalwatchyaml");
    assert_eq!(
        markdown::anchors("# A\n## A\n```\n# A\n```\n"),
        ["a", "a-1"]
    );
    let l = markdown::links(
        "docs/x.md",
        "See [a](b.md#c) and [d](https://e) and [f](#g).\n",
    );
    assert_eq!(
        l,
        [
            ("docs/x.md:1".to_owned(), "b.md#c".to_owned()),
            ("docs/x.md:1".to_owned(), "#g".to_owned())
        ]
    );
}

#[test]
fn named_paths_are_found() {
    let found = markdown::named_paths(
        "docs/x.md",
        "Intro.\nSee `src/score/nope.rs`, `reports/x.html` and `cargo bench --bench nope -- 5`.\n",
    );
    assert_eq!(
        found,
        [
            ("docs/x.md:2".to_owned(), "src/score/nope.rs".to_owned()),
            ("docs/x.md:2".to_owned(), "benches/nope.rs".to_owned()),
        ]
    );
}

#[test]
fn skips_in_the_docs_give_a_reason() {
    // `markdown::blocks` refuses a bare `skip`; this keeps the count of exceptions visible.
    let skipped: Vec<String> = all_blocks(commands::root())
        .iter()
        .filter_map(|b| match &b.directive {
            Some(Directive::Skip(why)) => Some(format!("{}: {why}", b.at(0))),
            _ => None,
        })
        .collect();
    assert!(
        skipped.len() <= 6,
        "doc examples should be checked, not skipped:\n{}",
        skipped.join("\n")
    );
}

/// The checks fail, located, on a broken example of each kind.
#[test]
fn a_broken_doc_example_is_reported_at_its_line() {
    let md = r#"# Fake

```yaml
suite: broken
providers: [{id: e, type: echo}]
prompt: hi
cases:
  - id: a
    expected: hi
    asert: []
```

```yaml
# output: "Paris"
- type: contains
  value: Berlin
```

```yaml
gates:
  pass_rte: {min: 0.9}
```

```sh
evalwatch runs --no-such-flag
```

<!-- doctest: output-of init evalwatch validate -->
```
ok: 9 suites, 3 cases, 1 providers
```
"#;
    let b = blocks("docs/fake.md", md).expect("blocks");
    assert_eq!(b.len(), 5);

    let suite = yaml_check::check(&b[0]).expect_err("a misspelt key must fail");
    assert!(suite.starts_with("docs/fake.md:4: yaml example"), "{suite}");
    assert!(suite.contains("unknown field `asert`"), "{suite}");

    let output = yaml_check::check(&b[1]).expect_err("a failing assertion must fail");
    assert!(output.starts_with("docs/fake.md:14: "), "{output}");
    assert!(output.contains("does not pass"), "{output}");

    let fragment = yaml_check::check(&b[2]).expect_err("an unknown gate must fail");
    assert!(fragment.starts_with("docs/fake.md:20: "), "{fragment}");
    assert!(fragment.contains("pass_rte"), "{fragment}");

    let cmd = commands::check(&b[3]).expect_err("an unknown flag must fail");
    assert!(
        cmd.starts_with(
            "docs/fake.md:25: `evalwatch runs --no-such-flag` exits Some(2), the doc says 0"
        ),
        "{cmd}"
    );

    let shown = commands::check_output(&b[4]).expect_err("a wrong count must fail");
    assert!(shown.starts_with("docs/fake.md:30: "), "{shown}");
    assert!(
        shown.contains("no output line matches `ok: 9 suites"),
        "{shown}"
    );
}

#[test]
fn a_wrong_command_mention_is_reported() {
    let md = "Run `evalwatch review close SHEET` or\n\n```\nevalwatch export --format csv\n    --frobnicate\n```\nthen `evalwatch alerts purge`.\n";
    let found = commands::mentions("docs/fake.md", md);
    assert_eq!(found.len(), 3, "{found:?}");
    let mut help = std::collections::HashMap::new();
    let errors: Vec<String> = found
        .iter()
        .filter_map(|(at, m)| commands::check_mention(at, m, &mut help).err())
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].starts_with("docs/fake.md:4: `evalwatch export --format csv --frobnicate`")
            && errors[0].ends_with("lists no --frobnicate"),
        "{errors:?}"
    );
    assert!(
        errors[1].starts_with("docs/fake.md:7: ")
            && errors[1].contains("`purge` is not a subcommand of `evalwatch alerts`"),
        "{errors:?}"
    );
}

#[test]
fn a_broken_alert_rule_example_is_reported() {
    let md = "Rules:\n\n```yaml\nalerts:\n  - {metric: pass_rte, drop: 0.05}\n```\n";
    let b = blocks("docs/fake.md", md).expect("blocks");
    let e = yaml_check::check(&b[0]).expect_err("an unknown alert metric must fail");
    assert!(
        e.starts_with("docs/fake.md:4: yaml example does not pass"),
        "{e}"
    );
    assert!(e.contains("unknown metric `pass_rte`"), "{e}");
}

#[test]
fn a_documented_exit_code_is_checked() {
    let md = "```sh\nevalwatch runs --no-such-flag   # exits 2: usage\nevalwatch runs   # exits 1\n```\n";
    let b = blocks("docs/fake.md", md).expect("blocks");
    let lines = commands::lines(&b[0]).expect("lines");
    assert_eq!((lines[0].exit, lines[1].exit), (2, 1));
    let e = commands::check(&b[0]).expect_err("runs exits 0, not 1");
    assert!(
        e.starts_with("docs/fake.md:3: `evalwatch runs   # exits 1` exits Some(0), the doc says 1"),
        "{e}"
    );
    assert!(!e.contains("docs/fake.md:2"), "{e}");
}

#[test]
fn annotations_are_parsed_strictly() {
    let bad = blocks("docs/x.md", "<!-- doctest: skip -->\n```yaml\na: 1\n```\n")
        .expect_err("a skip needs a reason");
    assert_eq!(bad, ["docs/x.md:1: `doctest: skip` needs a reason"]);
    let unknown = blocks(
        "docs/x.md",
        "<!-- doctest: frobnicate -->\n```yaml\na: 1\n```\n",
    )
    .expect_err("unknown annotation");
    assert!(unknown[0].contains("unknown doctest annotation `frobnicate`"));
    let ok = blocks(
        "docs/x.md",
        "<!-- doctest: output \"a\\nb\" -->\n\n```yaml\n# output: x\n- type: contains\n```\n",
    )
    .expect("ok");
    assert_eq!(ok[0].directive, Some(Directive::Output("a\nb".into())));
    assert_eq!(ok[0].line, 4);
}

#[test]
fn masked_output_matching() {
    let doc = "suite  run 20261126-181502-3fa2  complete  0.05s\n...\nlast line\n";
    let act = "suite run 20301212-000000-beef complete 1.20s\nx\ny\nlast   line\n";
    assert_eq!(commands::matches(doc, act), Ok(()));
    assert!(
        commands::matches(doc, "suite run 20301212-000000-beef failed 1s\nlast line\n").is_err()
    );
    assert!(commands::matches("a\nb\n", "a\n").is_err());
    // An excerpt may start and end anywhere, but leaves nothing out between its lines.
    assert_eq!(commands::matches("b\nc\n", "a\nb\nc\nd\n"), Ok(()));
    assert!(commands::matches("a\nc\n", "a\nb\nc\n").is_err());
}
