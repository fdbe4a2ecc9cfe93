//! `runs` and `show`: history, prefixes, flips against the previous complete run.

use crate::support::{Project, code, json_runs, replay_suite, stderr, stdout};

#[test]
fn runs_lists_newest_first_and_show_reports_flips() {
    let p = Project::new();
    replay_suite(&p, "h", 6, 0);
    let first = p.run(&["run", "--format", "json"]);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    let first_id = json_runs(&first)[0]["run_id"]
        .as_str()
        .expect("id")
        .to_string();
    // The model regresses on c2 and recovers nothing else.
    let rec = p.path().join("suites/h.jsonl");
    let text = std::fs::read_to_string(&rec).expect("read").replace(
        "\"case_id\": \"c2\", \"output\": \"the answer is right\"",
        "\"case_id\": \"c2\", \"output\": \"no idea\"",
    );
    std::fs::write(&rec, text).expect("write");
    let second = p.run(&["run", "--format", "json"]);
    let second_id = json_runs(&second)[0]["run_id"]
        .as_str()
        .expect("id")
        .to_string();

    let out = p.run(&["runs", "--format", "json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let ids: Vec<&str> = rows
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|r| r["run_id"].as_str())
        .collect();
    assert_eq!(ids, [second_id.as_str(), first_id.as_str()]);

    let out = p.run(&["show", &second_id, "--format", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(shown["baseline_run_id"], first_id.as_str());
    let flips = shown["flips"].as_array().expect("flips");
    assert_eq!(flips.len(), 1);
    assert_eq!(flips[0]["case_id"], "c2");
    assert_eq!(
        (flips[0]["from"].as_str(), flips[0]["to"].as_str()),
        (Some("passed"), Some("failed"))
    );
    assert_eq!(shown["cases"].as_array().map(Vec::len), Some(6));

    let out = p.run(&["show", &second_id]);
    let text = stdout(&out);
    assert!(text.contains("c2 [rec]: passed -> failed"), "{text}");
    assert!(text.contains("not passed (1)"), "{text}");

    let text = stdout(&p.run(&["runs"]));
    assert!(
        text.lines().count() >= 3 && text.contains(&first_id),
        "{text}"
    );
}

#[test]
fn show_accepts_a_unique_prefix_and_explains_unknown_ids() {
    let p = Project::new();
    replay_suite(&p, "h", 2, 0);
    let out = p.run(&["run", "--format", "json"]);
    let id = json_runs(&out)[0]["run_id"]
        .as_str()
        .expect("id")
        .to_string();
    let prefix = &id[..id.len() - 2];
    let out = p.run(&["show", prefix, "--format", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(shown["run_id"], id.as_str());
    let out = p.run(&["show", "nope"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("evalwatch runs"), "{}", stderr(&out));
}

#[test]
fn history_without_a_store_says_how_to_get_one() {
    let p = Project::new();
    let out = p.run(&["runs"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("evalwatch run"), "{}", stderr(&out));
}

/// Two complete runs of suite `h` (6 cases; c2 regresses in the second); their ids.
fn two_runs(p: &Project) -> (String, String) {
    replay_suite(p, "h", 6, 0);
    let first = p.run(&["run", "--format", "json"]);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    let rec = p.path().join("suites/h.jsonl");
    let text = std::fs::read_to_string(&rec).expect("read").replace(
        "\"case_id\": \"c2\", \"output\": \"the answer is right\"",
        "\"case_id\": \"c2\", \"output\": \"no idea\"",
    );
    std::fs::write(&rec, text).expect("write");
    let second = p.run(&["run", "--format", "json"]);
    assert_eq!(code(&second), 0, "{}", stderr(&second));
    let id = |o: &std::process::Output| json_runs(o)[0]["run_id"].as_str().expect("id").to_string();
    (id(&first), id(&second))
}

fn common_prefix(a: &str, b: &str) -> String {
    a.chars()
        .zip(b.chars())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x)
        .collect()
}

#[test]
fn an_ambiguous_run_prefix_is_a_usage_error_everywhere() {
    let p = Project::new();
    let (first, second) = two_runs(&p);
    let prefix = common_prefix(&first, &second);
    assert!(!prefix.is_empty());
    for args in [
        vec!["show", prefix.as_str()],
        vec!["compare", prefix.as_str(), second.as_str()],
        vec!["compare", first.as_str(), prefix.as_str()],
        vec!["baseline", "pin", prefix.as_str()],
        vec!["report", "--run", prefix.as_str()],
        vec!["review", "sample", "--run", prefix.as_str()],
        vec!["run", "--resume", prefix.as_str()],
    ] {
        let out = p.run(&args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("ambiguous"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn error_text_says_each_cause_once() {
    let p = Project::new();
    p.write(
        "evalwatch.db",
        &"not a database at all, only text. ".repeat(64),
    );
    let out = p.run(&["runs"]);
    assert_ne!(code(&out), 0);
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line: {err}"));
    let parts: Vec<&str> = line.split(": ").collect();
    for (i, a) in parts.iter().enumerate() {
        for b in &parts[i + 1..] {
            assert!(
                !b.contains(a) && !a.contains(b),
                "a cause repeats itself: {line}"
            );
        }
    }
    assert!(!line.contains("Error code"), "{line}");
}

#[test]
fn init_prints_plain_paths() {
    let p = Project::new();
    let out = p.run(&["init", "."]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(!text.contains("/./"), "{text}");
    assert!(text.contains("wrote evalwatch.yaml"), "{text}");
    assert!(text.contains("wrote suites/example.yaml"), "{text}");
    let out = p.run(&["init", "./sub/../other", "--force"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("wrote other/evalwatch.yaml"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn quiet_prints_one_verdict_line_and_verbose_each_failure_once() {
    let p = Project::new();
    let suite = replay_suite(&p, "q", 6, 3);
    let mut yaml = std::fs::read_to_string(&suite).expect("read");
    yaml.push_str("gates:\n  pass_rate: {min: 0.9}\n");
    std::fs::write(&suite, yaml).expect("write");
    let normal = p.run(&["run"]);
    assert_eq!(code(&normal), 1, "{}", stderr(&normal));
    let normal_text = stdout(&normal);
    assert!(normal_text.contains("provider"), "{normal_text}");
    let quiet = p.run(&["-q", "run"]);
    assert_eq!(code(&quiet), 1, "{}", stderr(&quiet));
    let text = stdout(&quiet);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one verdict line per run: {text}");
    assert!(lines[0].starts_with("q "), "{text}");
    assert!(lines[0].contains("2 not passed"), "{text}");
    assert!(
        lines[0].contains("gate pass_rate") && lines[0].contains("BREACHED"),
        "{text}"
    );
    assert!(stderr(&quiet).trim().is_empty(), "{}", stderr(&quiet));

    let verbose = p.run(&["-v", "run"]);
    assert_eq!(code(&verbose), 1, "{}", stderr(&verbose));
    let all = format!("{}{}", stdout(&verbose), stderr(&verbose));
    assert_eq!(all.matches("failed c0 [rec]").count(), 1, "{all}");
    assert_eq!(all.matches("failed c3 [rec]").count(), 1, "{all}");
}

/// A suite `l` of 20 cases answered right with the latency `lat(i)` of case i.
fn latency_run(p: &Project, lat: impl Fn(usize) -> u64) -> String {
    use std::fmt::Write as _;
    let (mut rec, mut cases) = (String::new(), String::new());
    for i in 0..20 {
        let _ = writeln!(
            rec,
            "{{\"case_id\": \"c{i}\", \"output\": \"right\", \"latency_ms\": {}}}",
            lat(i)
        );
        let _ = writeln!(
            cases,
            "{{\"id\": \"c{i}\", \"vars\": {{\"q\": \"{i}\"}}, \"expected\": \"right\"}}"
        );
    }
    p.write("suites/l.jsonl", &rec);
    p.write("suites/cases/l.jsonl", &cases);
    p.write(
        "suites/l.yaml",
        "suite: l\nproviders:\n  - id: rec\n    type: replay\n    file: l.jsonl\nprompt: \"Q: {{ q }}\"\ncases:\n  - include: cases/l.jsonl\n",
    );
    let out = p.run(&["run", "--format", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    json_runs(&out)[0]["run_id"]
        .as_str()
        .expect("id")
        .to_string()
}

#[test]
fn compare_calls_a_latency_change_significant_only_when_it_matters() {
    let p = Project::new();
    let base = latency_run(&p, |i| 1000 + 37 * i as u64);
    let tiny = latency_run(&p, |i| 1001 + 37 * i as u64);
    let slow = latency_run(&p, |i| 1400 + 37 * i as u64);
    let json = |a: &str, b: &str, extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["compare", a, b, "--format", "json"];
        args.extend_from_slice(extra);
        let out = p.run(&args);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).expect("json")
    };
    assert_eq!(json(&base, &tiny, &[])["latency_significant"], false);
    assert_eq!(json(&base, &slow, &[])["latency_significant"], true);
    // The practical threshold is configurable.
    assert_eq!(
        json(&base, &slow, &["--min-latency-change-ms", "1000"])["latency_significant"],
        false
    );
    let text = stdout(&p.run(&["compare", &base, &tiny]));
    let line = text
        .lines()
        .find(|l| l.starts_with("latency delta"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("+1 ms"), "{line}");
    assert!(line.contains("not significant"), "{line}");
    let line = stdout(&p.run(&["compare", &base, &slow]));
    assert!(line.contains("latency delta: +400 ms"), "{line}");
    // Latencies are whole milliseconds everywhere in the text.
    for l in text.lines().filter(|l| l.contains("latency_p")) {
        assert!(!l.contains('.'), "{l}");
    }
}

#[test]
fn compare_says_why_each_case_flipped() {
    let p = Project::new();
    let (first, second) = two_runs(&p);
    let out = p.run(&["compare", &first, &second, "--format", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let flip = &v["pass_to_fail"][0];
    assert_eq!(flip["case_id"], "c2");
    assert_eq!(flip["output_a"], "the answer is right");
    assert_eq!(flip["output_b"], "no idea");
    assert!(
        flip["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{flip}"
    );
    let text = stdout(&p.run(&["compare", &first, &second]));
    assert!(text.contains("c2 [rec]"), "{text}");
    assert!(
        text.contains(flip["reason"].as_str().unwrap_or("?")),
        "{text}"
    );
    assert!(text.contains("a: the answer is right"), "{text}");
    assert!(text.contains("b: no idea"), "{text}");
}

/// Check a Prometheus text exposition line by line against the format's grammar; returns
/// the samples as (name, labels, value).
/// One sample of an exposition: metric name, labels, value.
type Sample = (String, Vec<(String, String)>, f64);

fn parse_exposition(text: &str) -> Vec<Sample> {
    fn name_ok(n: &str) -> bool {
        let mut cs = n.chars();
        cs.next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && cs.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }
    let mut typed: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut helped = std::collections::HashSet::new();
    let mut seen = std::collections::HashSet::new();
    let mut samples = Vec::new();
    assert!(text.ends_with('\n'), "the exposition ends with a newline");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(name_ok(name) && !help.is_empty(), "{line}");
            assert!(helped.insert(name.to_string()), "HELP twice: {line}");
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(name_ok(name), "{line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            assert!(
                typed.insert(name.to_string(), kind.to_string()).is_none(),
                "TYPE twice: {line}"
            );
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "unexpected line: {line:?}"
        );
        let name_end = line.find(['{', ' ']).expect("sample");
        let name = &line[..name_end];
        assert!(name_ok(name), "{line}");
        let mut labels = Vec::new();
        let mut rest = &line[name_end..];
        if let Some(body) = rest.strip_prefix('{') {
            let mut chars = body.char_indices().peekable();
            let end = loop {
                let Some(&(i, c)) = chars.peek() else {
                    panic!("unterminated labels: {line}")
                };
                if c == '}' {
                    break i;
                }
                let mut lname = String::new();
                while let Some(&(_, c)) = chars.peek() {
                    if c == '=' {
                        break;
                    }
                    lname.push(c);
                    chars.next();
                }
                assert!(
                    name_ok(&lname) && !lname.contains(':') && !lname.starts_with("__"),
                    "label name {lname:?}: {line}"
                );
                assert_eq!(chars.next().map(|x| x.1), Some('='), "{line}");
                assert_eq!(chars.next().map(|x| x.1), Some('"'), "{line}");
                let mut value = String::new();
                loop {
                    match chars.next().map(|x| x.1) {
                        Some('\\') => match chars.next().map(|x| x.1) {
                            Some('\\') => value.push('\\'),
                            Some('"') => value.push('"'),
                            Some('n') => value.push('\n'),
                            other => panic!("bad escape {other:?}: {line}"),
                        },
                        Some('"') => break,
                        Some('\n') | None => panic!("unterminated value: {line}"),
                        Some(c) => value.push(c),
                    }
                }
                labels.push((lname, value));
                match chars.peek().map(|x| x.1) {
                    Some(',') => {
                        chars.next();
                    }
                    Some('}') => {}
                    other => panic!("expected , or }} not {other:?}: {line}"),
                }
            };
            rest = &body[end + 1..];
        }
        let mut fields = rest
            .strip_prefix(' ')
            .expect("space before value")
            .split(' ');
        let value = fields.next().expect("value");
        let v: f64 = match value {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|_| panic!("bad value {v:?}: {line}")),
        };
        if let Some(ts) = fields.next() {
            ts.parse::<i64>()
                .unwrap_or_else(|_| panic!("bad timestamp: {line}"));
        }
        assert!(fields.next().is_none(), "{line}");
        let family = typed
            .keys()
            .find(|f| {
                name == f.as_str()
                    || (typed[*f] != "gauge"
                        && ["_sum", "_count", "_bucket"]
                            .iter()
                            .any(|s| name == format!("{f}{s}")))
            })
            .unwrap_or_else(|| panic!("no TYPE before the sample: {line}"));
        assert!(helped.contains(family), "no HELP: {line}");
        if typed[family] == "counter" {
            assert!(name.ends_with("_total"), "a counter ends in _total: {line}");
        }
        let mut key: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        key.sort();
        assert!(
            seen.insert(format!("{name}{key:?}")),
            "duplicate series: {line}"
        );
        samples.push((name.to_string(), labels, v));
    }
    samples
}

#[test]
fn a_suite_the_history_has_no_run_of_is_refused_by_export_and_review() {
    let p = Project::new();
    replay_suite(&p, "orders", 4, 0);
    assert_eq!(code(&p.run(&["run"])), 0);
    for args in [
        &["export", "--format", "json", "--suite", "ordrs"][..],
        &["export", "--format", "prometheus", "--suite", "ordrs"],
        &["review", "sample", "--suite", "ordrs"],
        &["review", "stats", "--suite", "ordrs"],
    ] {
        let out = p.run(args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stdout(&out));
        assert!(
            stderr(&out).contains("no run of suite `ordrs`; did you mean `orders`?"),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(stdout(&out).is_empty(), "{args:?}: {}", stdout(&out));
    }
    let out = p.run(&["export", "--format", "json", "--suite", "zzzzzz"]);
    assert!(stderr(&out).contains("`evalwatch runs` lists the suites run"));
    let out = p.run(&["export", "--format", "json", "--suite", "orders"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn prometheus_export_follows_the_exposition_conventions() {
    let p = Project::new();
    let (first, second) = two_runs(&p);
    let out = p.run(&["export", "--format", "prometheus"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let samples = parse_exposition(&text);
    let label =
        |l: &[(String, String)], k: &str| l.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    for (name, labels, _) in &samples {
        assert!(name.starts_with("evalwatch_"), "{name}");
        if name != "evalwatch_run_info" {
            assert!(
                label(labels, "run_id").is_none(),
                "a run id makes a new series per run: {name}"
            );
        }
    }
    let info: Vec<_> = samples
        .iter()
        .filter(|s| s.0 == "evalwatch_run_info")
        .collect();
    assert_eq!(info.len(), 1, "{text}");
    assert_eq!(
        label(&info[0].1, "run_id").as_deref(),
        Some(second.as_str())
    );
    assert_eq!(label(&info[0].1, "suite").as_deref(), Some("h"));
    assert_eq!(label(&info[0].1, "provider").as_deref(), Some("rec"));
    assert!((info[0].2 - 1.0).abs() < f64::EPSILON);
    assert!(!text.contains(&first));
    let find = |n: &str| {
        samples
            .iter()
            .find(|s| s.0 == n && label(&s.1, "tag").is_none())
            .unwrap_or_else(|| panic!("no {n} in {text}"))
    };
    assert!((find("evalwatch_pass_ratio").2 - 5.0 / 6.0).abs() < 1e-9);
    assert!(
        (find("evalwatch_latency_p50_seconds").2 - 0.1025).abs() < 0.01,
        "seconds, not ms"
    );
    assert!(find("evalwatch_last_run_timestamp_seconds").2 > 1.7e9);
    assert!((find("evalwatch_runs_total").2 - 2.0).abs() < f64::EPSILON);
    assert!(
        text.contains("# TYPE evalwatch_runs_total counter"),
        "{text}"
    );
    assert!(!text.contains("_ms{"), "{text}");

    // The textfile-collector mode writes the same, atomically, for node_exporter.
    std::fs::create_dir_all(p.path().join("textfile")).expect("mkdir");
    let out = p.run(&["export", "--format", "prometheus", "--textfile", "textfile"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let names: Vec<String> = std::fs::read_dir(p.path().join("textfile"))
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["evalwatch.prom"], "no temporary file left");
    let written = std::fs::read_to_string(p.path().join("textfile/evalwatch.prom")).expect("prom");
    assert_eq!(written, text);
    let out = p.run(&["export", "--format", "csv", "--textfile", "textfile"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let out = p.run(&[
        "export",
        "--format",
        "prometheus",
        "--textfile",
        "no-such-dir",
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("no-such-dir"), "{}", stderr(&out));
}

#[test]
fn csv_export_neutralises_formulas_in_text_cells() {
    use std::fmt::Write as _;
    let p = Project::new();
    let outputs = [
        "=HYPERLINK(\"http://x\")",
        "+1+1",
        "-2",
        "@SUM(A1)",
        "\tx",
        "\rx",
        "fine",
    ];
    let mut rec = String::new();
    let mut cases = String::new();
    for (i, o) in outputs.iter().enumerate() {
        rec.push_str(
            &serde_json::json!({"case_id": format!("c{i}"), "output": o, "latency_ms": 5})
                .to_string(),
        );
        rec.push('\n');
        let _ = writeln!(
            cases,
            "{{\"id\": \"c{i}\", \"vars\": {{\"q\": \"{i}\"}}, \"expected\": \"fine\"}}"
        );
    }
    p.write("suites/x.jsonl", &rec);
    p.write("suites/cases/x.jsonl", &cases);
    p.write(
        "suites/x.yaml",
        "suite: x\nproviders:\n  - id: rec\n    type: replay\n    file: x.jsonl\nprompt: \"Q: {{ q }}\"\ncases:\n  - include: cases/x.jsonl\n",
    );
    assert_eq!(code(&p.run(&["run"])), 0);
    let out = p.run(&["export", "--format", "csv"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mut reader = csv::Reader::from_reader(out.stdout.as_slice());
    let header = reader.headers().expect("header").clone();
    let col = |n: &str| header.iter().position(|h| h == n).expect(n);
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), outputs.len());
    for row in &rows {
        let output = &row[col("output")];
        let i: usize = row[col("case_id")][1..].parse().expect("case");
        let raw = outputs[i];
        if raw == "fine" {
            assert_eq!(output, "fine");
        } else {
            assert_eq!(
                output,
                format!("'{raw}"),
                "neutralised with a leading quote"
            );
        }
        for c in ["latency_ms", "score", "sample", "attempts"] {
            row[col(c)]
                .parse::<f64>()
                .unwrap_or_else(|_| panic!("{c} stays a number: {row:?}"));
        }
    }
}

#[test]
fn quiet_names_the_alerts_a_run_fired() {
    let p = Project::new();
    let suite = replay_suite(&p, "a", 20, 0);
    let mut yaml = std::fs::read_to_string(&suite).expect("read");
    yaml.push_str(
        "alerts:\n  - {name: quality, metric: pass_rate, drop: 0.1, baseline: previous, severity: warning}\n",
    );
    std::fs::write(&suite, yaml).expect("write");
    p.write(
        "evalwatch.yaml",
        "sinks:\n  - {id: log, type: file, path: alerts.jsonl}\n",
    );
    assert_eq!(code(&p.run(&["-q", "run"])), 0);
    // Half the answers go wrong: the rule fires.
    let rec = p.path().join("suites/a.jsonl");
    let text = std::fs::read_to_string(&rec)
        .expect("read")
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i % 2 == 0 {
                l.replace("the answer is right", "no idea")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&rec, text + "\n").expect("write");
    let out = p.run(&["-q", "run"]);
    assert_eq!(
        code(&out),
        0,
        "a warning does not fail the run: {}",
        stderr(&out)
    );
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("10 not passed"), "{text}");
    assert!(text.contains("alert quality (warning, new)"), "{text}");
}

#[test]
fn verbose_lists_every_failure_once_past_the_first_ten() {
    let p = Project::new();
    replay_suite(&p, "v", 30, 2);
    let normal = p.run(&["run"]);
    assert_eq!(code(&normal), 0, "{}", stderr(&normal));
    assert!(
        stdout(&normal).contains("... and 5 more"),
        "{}",
        stdout(&normal)
    );
    let out = p.run(&["-v", "run"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(all.contains("not passed (15):"), "{all}");
    for i in (0..30).step_by(2) {
        assert_eq!(
            all.matches(&format!("failed c{i} [rec]")).count(),
            1,
            "c{i}: {all}"
        );
    }
    assert!(!all.contains("more"), "{all}");
}

#[test]
fn every_reader_of_history_refuses_a_missing_store_and_creates_none() {
    let p = Project::new();
    let db = p.db();
    for (args, verb) in [
        (&["runs"][..], "read history"),
        (&["show", "abc"][..], "read history"),
        (&["review", "list"][..], "read history"),
        (&["alerts", "list"][..], "list alerts"),
        (&["baseline", "pin", "abc"][..], "pin a baseline"),
    ] {
        let out = p.run(args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        // Shown relative to the folder it was looked for from.
        let expected = format!(
            "error: {verb}: no store at evalwatch.db; run `evalwatch run` first or point --db at it"
        );
        assert!(
            stderr(&out).contains(&expected),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(!db.exists(), "{args:?} created the store");
    }
}
