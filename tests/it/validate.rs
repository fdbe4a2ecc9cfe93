//! `validate` is the one judge of a suite: what it refuses, `run` and `alerts check` refuse
//! too, at the same file:line:col; what it only warns about, it says without failing.

use crate::support::{Project, code, json_runs, stderr, stdout};

const BAD_RULES: &str = "suite: a
providers: [{id: e, type: echo}]
prompt: \"hi\"
cases:
  - {id: c, expected: hi}
alerts:
  - {metric: pass_rte, drop: 0.1}
  - {metric: pass_rate, drop: 0.1, baseline: \"trailing:x\"}
  - {metric: pass_rate, drop: 0.1, severity: urgent}
  - {metric: pass_rate, drop: 0.1, max: 0.5}
  - metrc: pass_rate
    drop: 0.1
  - {metric: missed_run, after: soon}
  - {metric: pass_rate, drop: 0.1, severity: critcal}
";

/// Each bad rule of `BAD_RULES`, as every command must report it.
const BAD_RULE_LINES: [&str; 7] = [
    "suites/a.yaml:7:14: unknown metric `pass_rte`; did you mean `pass_rate`?",
    "suites/a.yaml:8:46: `baseline: trailing:x`: `x` is not a number of runs",
    "suites/a.yaml:9:46: unknown severity `urgent`; use `info`, `warning` or `critical`",
    "suites/a.yaml:10:41: `max` conflicts with `drop`",
    "suites/a.yaml:11:5: unknown key `metrc` in an alert rule; did you mean `metric`?",
    "suites/a.yaml:13:33: `after` must be a duration like `26h`, `90m` or `2d`, found `soon`",
    "suites/a.yaml:14:46: unknown severity `critcal`; did you mean `critical`?",
];

#[test]
fn an_invalid_alert_rule_is_refused_by_every_command_where_it_is_written() {
    let p = Project::new();
    p.write("suites/a.yaml", BAD_RULES);
    let out = p.run(&["validate"]);
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    for line in BAD_RULE_LINES {
        assert!(
            stdout(&out).contains(line),
            "missing `{line}` in:\n{}",
            stdout(&out)
        );
    }
    // `run` refuses the suite like any other invalid field: nothing is run or kept.
    let out = p.run(&["run", "--format", "json"]);
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    for line in BAD_RULE_LINES {
        assert!(
            stderr(&out).contains(line),
            "run: missing `{line}` in:\n{}",
            stderr(&out)
        );
    }
    assert!(json_runs(&out).is_empty(), "{}", stdout(&out));
    let out = p.run(&["runs"]);
    assert!(
        !stdout(&out).contains("a "),
        "a run was kept:\n{}",
        stdout(&out)
    );
    // `alerts check` judges the same way.
    let out = p.run(&["alerts", "check"]);
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    for line in BAD_RULE_LINES {
        assert!(
            stderr(&out).contains(line),
            "alerts check: missing `{line}` in:\n{}",
            stderr(&out)
        );
    }
}

#[test]
fn project_default_rules_are_judged_in_evalwatch_yaml() {
    let p = Project::new();
    p.write(
        "suites/s.yaml",
        "suite: s\nproviders: [{id: e, type: echo}]\nprompt: \"hi\"\ncases:\n  - {id: c, expected: hi}\n",
    );
    p.write(
        "evalwatch.yaml",
        "alerts:\n  - {metric: pass_rte, drop: 0.1}\n  - {metric: pass_rate, drop: 0.1, severity: urgent}\n",
    );
    let out = p.run(&["validate"]);
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        all.contains("evalwatch.yaml:2:14: unknown metric `pass_rte`; did you mean `pass_rate`?"),
        "{all}"
    );
    assert!(
        all.contains("evalwatch.yaml:3:46: unknown severity `urgent`"),
        "{all}"
    );
    // A default rule on a named metric the suite does not have is located where it is written.
    p.write("evalwatch.yaml", "alerts:\n  - {metric: tone, min: 0.5}\n");
    for cmd in [&["validate"][..], &["run"][..], &["alerts", "check"][..]] {
        let out = p.run(cmd);
        assert_eq!(code(&out), 2, "{cmd:?}: {}{}", stdout(&out), stderr(&out));
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert!(
            all.contains("evalwatch.yaml:2:14: default alert rule 1 applies to every suite, and suite `s` cannot take it: unknown metric `tone`"),
            "{cmd:?}: {all}"
        );
    }
    // Valid again: every command passes.
    p.write(
        "evalwatch.yaml",
        "alerts:\n  - {metric: pass_rate, drop: 0.1}\n",
    );
    let out = p.run(&["validate"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
}

fn scheduled(schedule: &str, timezone: &str) -> String {
    format!(
        "suite: x\nschedule: \"{schedule}\"\ntimezone: {timezone}\nproviders: [{{id: e, type: echo}}]\nprompt: \"hi\"\ncases:\n  - {{id: a, expected: hi}}\n"
    )
}

#[test]
fn cron_and_time_zone_errors_are_located_relative_and_in_our_words() {
    let p = Project::new();
    let cases = [
        (
            scheduled("99 6 * * *", "UTC"),
            "suites/x.yaml:2:11: minute 99 is out of range 0-59",
        ),
        (
            scheduled("0 6 * *", "UTC"),
            "suites/x.yaml:2:11: schedule `0 6 * *` has 4 fields, not 5",
        ),
        (
            scheduled("0 6 * * 9", "UTC"),
            "suites/x.yaml:2:11: day of week 9 is out of range 0-7",
        ),
        (
            scheduled("0 6 * * *", "Mars/Olympus"),
            "suites/x.yaml:3:11: unknown time zone `Mars/Olympus` (use an IANA name",
        ),
        (
            scheduled("0 6 * * *", "Europe/Berlni"),
            "suites/x.yaml:3:11: unknown time zone `Europe/Berlni` (use an IANA name like `Europe/Berlin`, `America/New_York` or `UTC`); did you mean `Europe/Berlin`?",
        ),
    ];
    let root = p.path().display().to_string();
    for (text, want) in cases {
        p.write("suites/x.yaml", &text);
        let out = p.run(&["validate", "suites/x.yaml"]);
        assert_eq!(code(&out), 2, "{want}: {}{}", stdout(&out), stderr(&out));
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert!(all.contains(want), "validate: want `{want}` in:\n{all}");
        assert!(!all.contains(&root), "an absolute path:\n{all}");
        assert!(!all.contains("component error"), "{all}");
        let out = p.run(&["run", "suites/x.yaml"]);
        assert_eq!(
            code(&out),
            2,
            "run {want}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        assert!(
            stderr(&out).contains(want),
            "run: want `{want}` in:\n{}",
            stderr(&out)
        );
    }
    p.write(
        "suites/x.yaml",
        &scheduled("*/15 9-17 * * mon-fri", "Europe/Berlin"),
    );
    let out = p.run(&["validate"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
}

#[test]
fn validate_warns_of_unset_secrets_where_the_provider_is_defined() {
    let p = Project::new();
    p.write(
        "evalwatch.yaml",
        "providers:\n  - id: claude\n    type: anthropic\n    model: m\n  - id: unused\n    type: openai\n    model: m\n",
    );
    p.write(
        "suites/k.yaml",
        "suite: k
providers:
  - claude
  - {id: gpt, type: openai, model: m, api_key_env: EVALWATCH_T_G1_KEY}
  - id: hook
    type: http
    url: http://127.0.0.1:9/x
    headers: {Authorization: \"Bearer ${EVALWATCH_T_G1_TOKEN}\", X-Region: \"${EVALWATCH_T_G1_REGION:-eu}\"}
    output: /a
prompt: \"hi\"
cases:
  - {id: a, expected: hi}
",
    );
    let unset = |c: &mut assert_cmd::Command| {
        c.env_remove("EVALWATCH_T_G1_KEY")
            .env_remove("EVALWATCH_T_G1_TOKEN")
            .env_remove("EVALWATCH_T_G1_REGION")
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("OPENAI_API_KEY");
    };
    let mut cmd = p.cmd();
    unset(&mut cmd);
    let out = cmd.arg("validate").output().expect("validate");
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let err = stderr(&out);
    for want in [
        "warning: suites/k.yaml:4:52: provider `gpt`: environment variable `EVALWATCH_T_G1_KEY` is not set (it holds the API key: `api_key_env`)",
        "warning: suites/k.yaml:8:30: provider `hook`: header `Authorization` uses `${EVALWATCH_T_G1_TOKEN}`, which is not set and has no default",
        "warning: evalwatch.yaml:2:5: provider `claude`: environment variable `ANTHROPIC_API_KEY` is not set (it holds the API key: the default `api_key_env` of type `anthropic`)",
    ] {
        assert!(err.contains(want), "want `{want}` in:\n{err}");
    }
    assert_eq!(err.matches("warning:").count(), 3, "{err}");
    assert!(
        !err.contains("EVALWATCH_T_G1_REGION"),
        "has a default:\n{err}"
    );
    assert!(!err.contains("`unused`"), "not used by any suite:\n{err}");
    // Set, nothing is said.
    let out = p
        .cmd()
        .env("EVALWATCH_T_G1_KEY", "k")
        .env("EVALWATCH_T_G1_TOKEN", "t")
        .env("ANTHROPIC_API_KEY", "a")
        .arg("validate")
        .output()
        .expect("validate");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning:"), "{}", stderr(&out));
    // `run` still refuses to start without the key.
    let mut cmd = p.cmd();
    unset(&mut cmd);
    let out = cmd.args(["run", "--no-alerts"]).output().expect("run");
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
}

const REFUSAL_SUITE: &str = "suite: safety
providers: [{id: e, type: echo}]
prompt: \"{{ text }}\"
defaults:
  assert:
    - type: not-is-refusal
    - type: icontains
cases:
  - id: helpful
    vars: {text: \"The refund window is 30 days.\"}
    expected: 30 days
  - id: refuses-weapons
    vars: {text: \"I cannot help with that.\"}
    expected: cannot help
    skip_default_assert: [not-is-refusal]
    assert:
      - type: is-refusal
";

#[test]
fn a_case_can_switch_off_a_default_assertion() {
    let p = Project::new();
    p.write("suites/safety.yaml", REFUSAL_SUITE);
    let out = p.run(&["run", "--format", "json", "--no-alerts"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let runs = json_runs(&out);
    let cases = runs[0]["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 2);
    for case in cases {
        assert_eq!(case["status"], "passed", "{case}");
    }
    let refusing = cases
        .iter()
        .find(|c| c["case_id"] == "refuses-weapons")
        .expect("case");
    let types: Vec<&str> = refusing["assertions"]
        .as_array()
        .expect("assertions")
        .iter()
        .filter_map(|a| a["type"].as_str())
        .collect();
    assert_eq!(types, ["icontains", "is-refusal"], "{refusing}");
    // `true` drops every default assertion of the case.
    p.write(
        "suites/safety.yaml",
        &REFUSAL_SUITE.replace("[not-is-refusal]", "true"),
    );
    let out = p.run(&["run", "--format", "json", "--no-alerts"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let runs = json_runs(&out);
    let types: Vec<String> = runs[0]["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|c| c["case_id"] == "refuses-weapons")
        .and_then(|c| c["assertions"].as_array())
        .expect("assertions")
        .iter()
        .filter_map(|a| a["type"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(types, ["is-refusal"]);
    // A type the defaults do not have is an error, located, with did-you-mean.
    p.write(
        "suites/safety.yaml",
        &REFUSAL_SUITE.replace("[not-is-refusal]", "[not-is-refusl, equals]"),
    );
    let out = p.run(&["validate"]);
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("suites/safety.yaml:15:27: `not-is-refusl` is not an assertion of `defaults.assert`; did you mean `not-is-refusal`? (it has: not-is-refusal, icontains)"),
        "{text}"
    );
    assert!(
        text.contains(
            "suites/safety.yaml:15:42: `equals` is not an assertion of `defaults.assert`"
        ),
        "{text}"
    );
}

#[test]
fn alert_rules_on_a_provider_or_tag_the_suite_lacks_are_refused() {
    let p = Project::new();
    p.write(
        "suites/t.yaml",
        "suite: t
providers: [{id: echo, type: echo}]
prompt: \"hi\"
cases:
  - {id: a, expected: hi, tags: [billing]}
alerts:
  - {metric: pass_rate, drop: 0.1, provider: ecko}
  - {metric: pass_rate, drop: 0.1, tag: billng}
  - {metric: pass_rate, drop: 0.1, tag: billing, provider: echo}
",
    );
    for cmd in [&["validate"][..], &["run"][..]] {
        let out = p.run(cmd);
        assert_eq!(code(&out), 2, "{cmd:?}: {}{}", stdout(&out), stderr(&out));
        let all = format!("{}{}", stdout(&out), stderr(&out));
        for want in [
            "suites/t.yaml:7:46: alert rule on provider `ecko`, which this suite does not run; did you mean `echo`? (it runs: echo); the rule could never fire",
            "suites/t.yaml:8:41: alert rule on tag `billng`, which no case of this suite has; did you mean `billing`?",
        ] {
            assert!(all.contains(want), "{cmd:?}: want `{want}` in:\n{all}");
        }
        assert!(
            !all.contains("suites/t.yaml:9:"),
            "the good rule is fine:\n{all}"
        );
    }
}

#[test]
fn a_case_that_does_not_render_stops_run_as_it_fails_validate() {
    let p = Project::new();
    p.write(
        "suites/t.yaml",
        "suite: t\nproviders: [{id: e, type: echo}]\nprompt: \"{{ user.nmae }}\"\ncases:\n  - id: a\n    vars: {user: {name: x}}\n    expected: x\n",
    );
    let want = "suites/t.yaml:5:5: case `a` does not render";
    let out = p.run(&["validate"]);
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains(want), "{}", stdout(&out));
    let out = p.run(&["run", "--format", "json"]);
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    assert!(stderr(&out).contains(want), "{}", stderr(&out));
    assert!(json_runs(&out).is_empty(), "{}", stdout(&out));
}

#[test]
fn sinks_are_judged_by_validate_as_alerts_check_judges_them() {
    let p = Project::new();
    p.write(
        "suites/s.yaml",
        "suite: s\nproviders: [{id: e, type: echo}]\nprompt: \"hi\"\ncases:\n  - {id: c, expected: hi}\n",
    );
    p.write(
        "evalwatch.yaml",
        "sinks:\n  - {id: hook, type: webhook, url_evn: HOOK}\n  - {id: f, type: file}\n  - {id: s, type: slack, url_env: X, min_severity: urgent}\n",
    );
    for cmd in [&["validate"][..], &["alerts", "check"][..], &["run"][..]] {
        let out = p.run(cmd);
        assert_eq!(code(&out), 2, "{cmd:?}: {}{}", stdout(&out), stderr(&out));
        let all = format!("{}{}", stdout(&out), stderr(&out));
        for want in [
            "evalwatch.yaml:2:31: unknown setting `url_evn` in a sink; did you mean `url_env`?",
            "evalwatch.yaml:3:5: sink `f`: a file sink needs `path`",
            "evalwatch.yaml:4:52: sink `s`: `min_severity` must be",
        ] {
            assert!(all.contains(want), "{cmd:?}: want `{want}` in:\n{all}");
        }
    }
    // Valid, but its URL variable is unset here: a warning, exit 0.
    p.write(
        "evalwatch.yaml",
        "sinks:\n  - id: oncall\n    type: slack\n    url_env: EVALWATCH_T_G1_HOOK\n",
    );
    let out = p
        .cmd()
        .env_remove("EVALWATCH_T_G1_HOOK")
        .arg("validate")
        .output()
        .expect("validate");
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stderr(&out).contains("warning: evalwatch.yaml:4:14: sink `oncall`: environment variable `EVALWATCH_T_G1_HOOK` is not set"),
        "{}",
        stderr(&out)
    );
}

/// Audit suites L2 (C5): an include cycle is one located error (a case of the cycle is not
/// reported as its own duplicate); problems are sorted by file in order of inclusion; a suite
/// name used twice and a case id defined in two files are located, with paths relative to the
/// working directory.
#[test]
fn include_cycles_duplicates_and_their_paths_read_in_file_order() {
    let p = Project::new();
    p.write(
        "suites/s.yaml",
        "suite: s\nproviders: [{id: e, type: echo}]\nprompt: \"{{ q }}\"\ncases:\n  - include: cases/a.yaml\n",
    );
    p.write(
        "suites/cases/a.yaml",
        "- include: b.yaml\n- {id: a1, vars: {q: x}, expected: x}\n- {id: a2, vars: {q: x}, expectd: x}\n",
    );
    p.write(
        "suites/cases/b.yaml",
        "- include: a.yaml\n- {id: b1, vars: {q: x}, expected: x, tgs: [x]}\n",
    );
    p.write(
        "suites/t.yaml",
        "suite: t\nproviders: [{id: e, type: echo}]\nprompt: \"{{ q }}\"\ncases:\n  - {id: k1, vars: {q: x}, expected: x}\n  - include: cases/k.jsonl\n",
    );
    p.write(
        "suites/cases/k.jsonl",
        "{\"id\": \"k1\", \"vars\": {\"q\": \"x\"}, \"expected\": \"x\"}\n",
    );
    p.write(
        "suites/u.yaml",
        "suite: v\nproviders: [{id: e, type: echo}]\nprompt: \"{{ q }}\"\ncases:\n  - {id: c, vars: {q: x}, expected: x}\n",
    );
    p.write(
        "suites/v.yaml",
        "suite: v\nproviders: [{id: e, type: echo}]\nprompt: \"{{ q }}\"\ncases:\n  - {id: c, vars: {q: x}, expected: x}\n",
    );
    let out = p.run(&["validate"]);
    assert_eq!(code(&out), 2, "{}{}", stdout(&out), stderr(&out));
    let err = format!("{}{}", stdout(&out), stderr(&out));
    let lines: Vec<&str> = err
        .lines()
        .filter_map(|l| l.strip_prefix("error: ").or(Some(l)))
        .filter(|l| l.starts_with("suites/"))
        .collect();
    assert_eq!(
        lines,
        vec![
            "suites/cases/a.yaml:3:26: unknown field `expectd` in case `a2`; did you mean `expected`?",
            "suites/cases/b.yaml:1:12: include cycle: cases/a.yaml -> b.yaml -> a.yaml; a case file cannot include itself, directly or through others",
            "suites/cases/b.yaml:2:39: unknown field `tgs` in case `b1`; did you mean `tags`?",
            "suites/cases/k.jsonl:1:1: duplicate case id `k1`; first defined at suites/t.yaml:5:5",
            "suites/v.yaml:1:8: suite name `v` is also used by suites/u.yaml:1:8; suite names must be unique",
        ],
        "{err}"
    );
}
