//! Bounds on every input: `validate` refuses what would hang a command or exhaust its
//! memory, with a located error (see docs/suite-reference.md, "Limits"). Every input here is
//! bounded itself: nothing in these tests can hang before the bound catches it.

use std::fmt::Write as _;

use crate::support::{Project, code, stderr, stdout};

/// A suite answered by `echo` with `extra` lines inserted before `cases:`.
fn suite(p: &Project, extra: &str, cases: &str) {
    p.write(
        "suites/a.yaml",
        &format!(
            "suite: a\nproviders:\n  - id: e\n    type: echo\nprompt: \"{{{{ q }}}}\"\n{extra}cases:\n{cases}"
        ),
    );
}

const ONE_CASE: &str = "  - {id: c1, vars: {q: hello}, expected: hello}\n";

/// `validate` exits 2 and its output holds every needle.
fn refused(p: &Project, needles: &[&str]) {
    let out = p.run(&["validate"]);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(code(&out), 2, "{text}");
    for n in needles {
        assert!(text.contains(n), "no `{n}` in:\n{text}");
    }
}

#[test]
fn repeat_is_bounded_in_the_suite_and_on_the_command_line() {
    let p = Project::new();
    suite(&p, "repeat: 4294967295\n", ONE_CASE);
    refused(
        &p,
        &["suites/a.yaml:6:9: repeat 4294967295 is over the limit of 1000"],
    );
    suite(&p, "repeat: 1000\n", ONE_CASE);
    let out = p.run(&["validate"]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let out = p.run(&["run", "--dry-run", "--repeat", "100000000"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("1..=1000"), "{}", stderr(&out));
}

#[test]
fn includes_that_are_not_regular_files_are_refused_not_called_missing() {
    let p = Project::new();
    let cases = p.path().join("suites/cases");
    std::fs::create_dir_all(&cases).expect("mkdir");
    std::os::unix::fs::symlink("/dev/zero", cases.join("zero.jsonl")).expect("symlink");
    let fifo = cases.join("pipe.csv");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    suite(
        &p,
        "",
        "  - include: cases/zero.jsonl\n  - include: cases/pipe.csv\n  - include: cases/none.yaml\n",
    );
    refused(
        &p,
        &[
            "suites/a.yaml:7:14: included file `cases/zero.jsonl` is a character device, not a regular file",
            "suites/a.yaml:8:14: included file `cases/pipe.csv` is a FIFO (named pipe), not a regular file",
            "suites/a.yaml:9:14: included file `cases/none.yaml` not found",
        ],
    );
}

#[test]
fn a_suite_path_that_is_a_fifo_is_named_as_such() {
    let p = Project::new();
    let made = std::process::Command::new("mkfifo")
        .arg(p.path().join("pipe.yaml"))
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let out = p.run(&["validate", "pipe.yaml"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("pipe.yaml: the path is a FIFO (named pipe), not a regular file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_replay_file_that_is_a_device_is_refused_at_validate() {
    let p = Project::new();
    std::os::unix::fs::symlink("/dev/zero", p.path().join("suites-rec.jsonl")).expect("symlink");
    p.write(
        "suites/a.yaml",
        &format!(
            "suite: a\nproviders:\n  - id: r\n    type: replay\n    file: ../suites-rec.jsonl\nprompt: \"{{{{ q }}}}\"\ncases:\n{ONE_CASE}"
        ),
    );
    refused(
        &p,
        &[
            "suites/a.yaml:5:11: replay file `../suites-rec.jsonl` is a character device, not a regular file",
        ],
    );
}

#[test]
fn schema_files_are_bounded_and_regular_only() {
    let p = Project::new();
    // A valid schema, but over 4 MiB.
    let big = format!("{{\"description\": \"{}\"}}", "x".repeat(5 << 20));
    p.write("suites/big.json", &big);
    std::os::unix::fs::symlink("/dev/zero", p.path().join("suites/zero.json")).expect("symlink");
    suite(
        &p,
        "",
        "  - {id: c1, vars: {q: hello}, assert: [{type: is-json, schema: big.json}]}\n  - {id: c2, vars: {q: hello}, assert: [{type: is-json, schema: zero.json}]}\n",
    );
    refused(
        &p,
        &[
            "suites/a.yaml:7:65: schema file `big.json` is 5 MiB (5242899 bytes), over the limit of 4 MiB",
            "suites/a.yaml:8:65: schema file `zero.json` is a character device, not a regular file",
        ],
    );
}

#[test]
fn templates_run_on_bounded_fuel_and_output() {
    let p = Project::new();
    p.write(
        "suites/a.yaml",
        &format!(
            "suite: a\nproviders:\n  - id: e\n    type: echo\nprompt: \"{{% for i in range(10000) %}}{{% for j in range(10000) %}}{{{{ q }}}}{{% endfor %}}{{% endfor %}}\"\ncases:\n{ONE_CASE}"
        ),
    );
    refused(
        &p,
        &[
            "suites/a.yaml:7:5: case `c1` does not render: failed to render prompt: it takes more than 2000000 template steps (the limit)",
        ],
    );
    p.write(
        "suites/a.yaml",
        "suite: a\nproviders:\n  - id: e\n    type: echo\nprompt: \"{{ q * 9000000 }}{{ q * 9000000 }}\"\ncases:\n  - {id: c1, vars: {q: x}, expected: x}\n",
    );
    refused(
        &p,
        &[
            "suites/a.yaml:7:5: case `c1` does not render: failed to render prompt: the result is larger than 16 MiB (the limit)",
        ],
    );
}

#[test]
fn yaml_files_lines_and_alias_expansions_are_bounded() {
    let p = Project::new();
    // A suite file over 16 MiB (a long comment).
    suite(&p, &format!("# {}\n", "x".repeat(17 << 20)), ONE_CASE);
    refused(
        &p,
        &[
            "suites/a.yaml: the file is 17 MiB",
            "over the limit of 16 MiB",
        ],
    );
    // A few aliases of a long text: few nodes, much memory.
    let long = "y".repeat(1 << 20);
    let mut aliases = String::new();
    for i in 0..100 {
        let _ = write!(aliases, ", v{i}: *long");
    }
    suite(
        &p,
        &format!("defaults:\n  vars: {{text: &long \"{long}\"{aliases}}}\n"),
        ONE_CASE,
    );
    refused(&p, &["aliases expand to more than 64 MiB of text"]);
    // A JSONL line over 16 MiB.
    let mut line = String::from("{\"id\": \"c2\", \"vars\": {\"q\": \"");
    line.push_str(&"z".repeat(17 << 20));
    line.push_str("\"}}\n");
    p.write("suites/cases/long.jsonl", &line);
    suite(
        &p,
        "",
        &format!("{ONE_CASE}  - include: cases/long.jsonl\n"),
    );
    refused(
        &p,
        &["suites/cases/long.jsonl:1:1: line longer than 16 MiB"],
    );
}

#[test]
fn a_suite_holds_a_bounded_number_of_cases() {
    // The limit is a million; EVALWATCH_MAX_CASES lowers it so that the test stays small.
    let p = Project::new();
    let mut text = String::new();
    for i in 0..=1_000 {
        let _ = writeln!(
            text,
            "{{\"id\":\"c{i}\",\"expected\":\"x\",\"vars\":{{\"q\":\"x\"}}}}"
        );
    }
    p.write("suites/cases/many.jsonl", &text);
    suite(&p, "", "  - include: cases/many.jsonl\n");
    let out = p
        .cmd()
        .env("EVALWATCH_MAX_CASES", "1000")
        .arg("validate")
        .output()
        .expect("run");
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("suites/cases/many.jsonl:1001:1: more than 1000 cases in one suite (the limit; EVALWATCH_MAX_CASES sets another): split the suite"),
        "{}",
        stdout(&out)
    );
    let out = p
        .cmd()
        .env("EVALWATCH_MAX_CASES", "1001")
        .arg("validate")
        .output()
        .expect("run");
    assert_eq!(code(&out), 0, "{}", stdout(&out));
}
