//! Human review on both backends (SQLite and PostgreSQL, `crate::pgdb::Backend`): the same
//! sampling, import, show, stats, list and close give the same outputs and exit codes, and
//! `review serve` for a team: several reviewers, each named, on one store through one or
//! two servers at once, no grade lost, every reviewer's grade shown.

use serde_json::{Value, json};

use crate::pgdb::Backend;
use crate::review::{graded_in, sample, sheet_json};
use crate::support::{Project, code, stderr, stdout};

/// `graded_project` on `backend`: (project, run id).
fn project_on(backend: &Backend) -> (Project, String) {
    graded_in(backend.project(Project::new()))
}

/// `text` with the volatile ids of `ids` and the times replaced.
fn normalise(text: &str, ids: &[(&str, &str)]) -> String {
    let mut out = text.to_owned();
    for (id, name) in ids {
        out = out.replace(id, name);
    }
    let time = regex::Regex::new(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")
        .expect("regex");
    time.replace_all(&out, "TIME").into_owned()
}

/// A grades file of `reviewer` for `items` of a sheet.
fn file_of(sheet: &Value, reviewer: &str, at: &str, grades: &[(&Value, &str, u8)]) -> Value {
    json!({
        "sheet_id": sheet["sheet_id"], "reviewer": reviewer, "exported_at": at,
        "sheet_mac": sheet["mac"],
        "grades": grades.iter().map(|(i, verdict, q)| json!({"result_id": i["result_id"],
            "verdict": verdict, "quality": q, "hallucination": null, "note": format!("{reviewer} {q}")}))
            .collect::<Vec<_>>(),
    })
}

/// Sample, import (two reviewers, a repeat, a change of mind), show, stats, list, close and a
/// prefix: one transcript of normalised outputs and exit codes.
fn review_transcript(backend: &Backend) -> Vec<String> {
    let (p, run_id) = project_on(backend);
    let mut log = Vec::new();
    let (sheet_id, page) = sample(&p, &["--run", &run_id]);
    let sheet = sheet_json(&std::fs::read_to_string(&page).expect("page"));
    let items: Vec<&Value> = sheet["items"].as_array().expect("items").iter().collect();
    assert_eq!(
        items.len(),
        6,
        "{}: the suite's review: block",
        backend.name()
    );
    let prefix = &sheet_id[..sheet_id.len() - 2];
    let ids = [
        (sheet_id.as_str(), "SHEET"),
        (prefix, "SHEET_PREFIX"),
        (run_id.as_str(), "RUN"),
    ];
    let keep = |log: &mut Vec<String>, what: &str, out: &std::process::Output| {
        log.push(format!(
            "{}: exit {}\n{}{}",
            normalise(what, &ids),
            code(out),
            normalise(&stdout(out), &ids),
            normalise(&stderr(out), &ids)
        ));
    };
    log.push(format!(
        "items: {:?}",
        items
            .iter()
            .map(|i| format!("{} {} {}", i["result_id"], i["case_id"], i["stratum"]))
            .collect::<Vec<_>>()
    ));
    let write = |name: &str, v: &Value| p.write(name, &v.to_string()).display().to_string();
    let ann = file_of(
        &sheet,
        "Ann",
        "2026-01-01T10:00:00Z",
        &[
            (items[0], "pass", 4),
            (items[1], "fail", 2),
            (items[2], "pass", 5),
        ],
    );
    let bo = file_of(
        &sheet,
        "Bo",
        "2026-01-01T11:00:00Z",
        &[(items[0], "fail", 1), (items[3], "pass", 3)],
    );
    let ann_later = file_of(
        &sheet,
        "Ann",
        "2026-01-02T10:00:00Z",
        &[(items[0], "fail", 2)],
    );
    for (name, file) in [
        ("ann", &ann),
        ("bo", &bo),
        ("ann", &ann),
        ("later", &ann_later),
    ] {
        let out = p.run(&["review", "import", &write(&format!("{name}.json"), file)]);
        keep(&mut log, &format!("import {name}"), &out);
    }
    let mut forged = ann.clone();
    forged["grades"][0]["result_id"] = json!("12345");
    keep(
        &mut log,
        "import forged",
        &p.run(&["review", "import", &write("forged.json", &forged)]),
    );
    for args in [
        vec!["review", "show", &sheet_id, "--format", "json"],
        vec!["review", "show", prefix],
        vec!["review", "stats", "--format", "json"],
        vec!["review", "stats"],
        vec!["review", "list", "--format", "json"],
        vec!["review", "show", "nope"],
        vec!["review", "close", &sheet_id],
        vec!["review", "list", "--all"],
    ] {
        keep(&mut log, &args.join(" "), &p.run(&args));
    }
    // The closed sheet's results may be sampled again: the same seed, the same items.
    let (again, page) = sample(&p, &["--run", &run_id]);
    let second = sheet_json(&std::fs::read_to_string(&page).expect("page"));
    assert_ne!(again, sheet_id);
    assert_eq!(second["items"], sheet["items"], "{}", backend.name());
    log
}

#[test]
fn review_gives_the_same_outputs_on_both_backends() {
    let backends = Backend::all("review_same");
    let transcripts: Vec<(&str, Vec<String>)> = backends
        .iter()
        .map(|b| (b.name(), review_transcript(b)))
        .collect();
    let (_, sqlite) = &transcripts[0];
    let text = sqlite.join("\n");
    // What the scenario did, on SQLite (and so on PostgreSQL, equal below).
    for want in [
        "import ann: exit 0\nimported sheet SHEET: 3 grade(s) by Ann: 3 new, 0 unchanged",
        "import bo: exit 0\nimported sheet SHEET: 2 grade(s) by Bo: 2 new",
        "import ann: exit 0\nimported sheet SHEET: 3 grade(s) by Ann: 0 new, 3 unchanged",
        "1 grade(s) by Ann: 1 new, 0 unchanged, 1 superseding an earlier grade",
        "import forged: exit 2",
        "review show nope: exit 2",
        "by Ann (1 earlier grade(s) kept): Ann 2",
        "by Bo: Bo 1",
        "\"human_score\":",
        "review close SHEET: exit 0",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    for (name, t) in &transcripts[1..] {
        for (a, b) in sqlite.iter().zip(t) {
            assert_eq!(a, b, "sqlite and {name} differ");
        }
        assert_eq!(sqlite.len(), t.len());
    }
}
