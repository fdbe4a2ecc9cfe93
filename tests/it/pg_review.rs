//! Human review on both backends (SQLite and PostgreSQL, `crate::pgdb::Backend`): the same
//! sampling, import, show, stats, list and close give the same outputs and exit codes, and
//! `review serve` for a team: several reviewers, each named, on one store through one or
//! two servers at once, no grade lost, every reviewer's grade shown.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::pgdb::Backend;
use fantoccini::Locator;

use crate::review::{browser, chromedriver, graded_in, http, keys, sample, sheet_json, text_of};
use crate::support::{Project, code, signal, stderr, stdout};

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
    // A traffic sheet of a source the project does not have: refused alike on both backends
    // (traffic sheets on PostgreSQL: crate::pg_traffic).
    let out = p.run(&["review", "sample", "--from", "traffic:bot"]);
    assert_eq!(code(&out), 2, "no such source: {}", stderr(&out));
    keep(&mut log, "review sample --from traffic:bot", &out);
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

/// A `review serve` of `p`'s store on a free loopback port, stopped (SIGTERM) on drop.
struct Server {
    child: Child,
    port: u16,
    token: String,
}

impl Server {
    fn start(p: &Project) -> Self {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("evalwatch"));
        cmd.current_dir(p.path())
            .env_remove("EVALWATCH_DB")
            .env_remove("EVALWATCH_CONFIG")
            .env("NO_COLOR", "1")
            .args(["review", "serve", "--addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some((url, password)) = &p.pg {
            cmd.env("EVALWATCH_DB", url).env("PGPASSWORD", password);
        }
        let mut child = cmd.spawn().expect("serve");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = lines.next().expect("a line").expect("read");
        std::thread::spawn(move || for _ in lines {});
        let rest = first
            .split_once("http://127.0.0.1:")
            .unwrap_or_else(|| panic!("no url in {first}"))
            .1;
        let port = rest
            .split('/')
            .next()
            .and_then(|x| x.parse().ok())
            .expect("port");
        let token = rest
            .split("token=")
            .nth(1)
            .expect("token")
            .trim()
            .to_string();
        Self { child, port, token }
    }

    /// POST a grades file; (status, body).
    fn send(&self, file: &Value) -> (u16, String) {
        let bearer = format!("Bearer {}", self.token);
        http(
            self.port,
            "POST",
            "/api/grades",
            &[("Authorization", bearer.as_str())],
            &file.to_string(),
        )
    }

    fn get(&self, path: &str) -> (u16, String) {
        let bearer = format!("Bearer {}", self.token);
        http(
            self.port,
            "GET",
            path,
            &[("Authorization", bearer.as_str())],
            "",
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        signal(self.child.id(), "-TERM");
        let _ = self.child.wait();
    }
}

const ROUNDS: usize = 12;

/// Round `k` of `reviewer`'s grades of every item: each round changes every grade.
fn round(sheet: &Value, reviewer: &str, k: usize) -> Value {
    let items: Vec<&Value> = sheet["items"].as_array().expect("items").iter().collect();
    json!({
        "sheet_id": sheet["sheet_id"], "reviewer": reviewer,
        "exported_at": format!("2026-01-01T10:{:02}:00Z", k), "sheet_mac": sheet["mac"],
        "grades": items.iter().enumerate().map(|(i, item)| json!({
            "result_id": item["result_id"],
            "verdict": if (i + k).is_multiple_of(2) { "pass" } else { "fail" },
            "quality": (i + k) % 5 + 1, "hallucination": null,
            "note": format!("{reviewer} round {k}"),
        })).collect::<Vec<_>>(),
    })
}

/// Three reviewers grade one sheet at once, round after round: Ann and Cy through one
/// server, Bo through another on the same store. Returns `review show`'s JSON, normalised.
fn team_transcript(backend: &Backend) -> String {
    let (p, run_id) = project_on(backend);
    let (sheet_id, page) = sample(&p, &["--run", &run_id]);
    let sheet = sheet_json(&std::fs::read_to_string(&page).expect("page"));
    let n = sheet["items"].as_array().map_or(0, Vec::len);
    let (a, b) = (Server::start(&p), Server::start(&p));
    // No name, no grade: refused with the reason, nothing stored.
    for name in ["", "   "] {
        let (st, msg) = a.send(&round(&sheet, name, 0));
        assert_eq!(st, 400, "{}: {msg}", backend.name());
        assert!(msg.contains("Reviewer field"), "{msg}");
    }
    std::thread::scope(|s| {
        for (server, reviewer) in [(&a, "Ann"), (&b, "Bo"), (&a, "Cy")] {
            let sheet = &sheet;
            s.spawn(move || {
                for k in 0..ROUNDS {
                    let (st, msg) = server.send(&round(sheet, reviewer, k));
                    assert_eq!(st, 200, "{reviewer} round {k}: {msg}");
                }
            });
        }
    });
    // Every item has grades: the sheet closed, left the index, and its page still opens
    // (on either server) with every reviewer's current grade.
    let (st, index) = b.get("/");
    assert_eq!(st, 200);
    assert!(!index.contains(&sheet_id), "{index}");
    let (st, page) = b.get(&format!("/sheets/{sheet_id}"));
    assert_eq!(st, 200, "{page}");
    let served = sheet_json(&page);
    assert_eq!(served["closed"], true);
    let grades = served["grades"].as_array().expect("grades");
    assert_eq!(grades.len(), 3 * n, "{served}");
    let last = format!("round {}", ROUNDS - 1);
    assert!(
        grades
            .iter()
            .all(|g| g["note"].as_str().is_some_and(|t| t.ends_with(&last)))
    );
    drop((a, b));

    let out = p.run(&["review", "show", &sheet_id, "--format", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let shown: Value = serde_json::from_slice(&out.stdout).expect("json");
    let grades = shown["grades"].as_array().expect("grades");
    assert_eq!(
        grades.len(),
        3 * n,
        "one current grade per item and reviewer"
    );
    for g in grades {
        let reviewer = g["reviewer"].as_str().expect("reviewer");
        assert_eq!(
            g["note"],
            format!("{reviewer} {last}"),
            "the last write is kept"
        );
        assert_eq!(g["superseded"], ROUNDS - 1, "no earlier grade lost: {g}");
    }
    let text = stdout(&p.run(&["review", "show", &sheet_id]));
    for reviewer in ["Ann", "Bo", "Cy"] {
        assert_eq!(
            text.matches(&format!(" by {reviewer} ")).count(),
            n,
            "{text}"
        );
    }
    normalise(
        &stdout(&out),
        &[(sheet_id.as_str(), "SHEET"), (run_id.as_str(), "RUN")],
    )
}

#[test]
fn a_team_grades_one_sheet_at_once_and_no_grade_is_lost() {
    let backends = Backend::all("review_team");
    let shown: Vec<String> = backends.iter().map(team_transcript).collect();
    for (b, s) in backends.iter().zip(&shown).skip(1) {
        assert_eq!(&shown[0], s, "sqlite and {} differ", b.name());
    }
}

/// `#status` once it starts with one of `prefixes` (the page's answer to a send).
async fn status_after(c: &fantoccini::Client, prefixes: &[&str]) -> String {
    for _ in 0..600 {
        let text = text_of(c, "#status").await;
        if prefixes.iter().any(|p| text.starts_with(p)) {
            return text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the page never answered: {}", text_of(c, "#status").await);
}

/// In headless Chromium, a served sheet shows two reviewers' grades of an item, refuses to
/// send without a name, and a third reviewer's sent grade joins them, on both backends.
async fn grade_in_chromium(backend: &Backend) {
    let (p, run_id) = project_on(backend);
    let (sheet_id, page) = sample(&p, &["--run", &run_id]);
    let sheet = sheet_json(&std::fs::read_to_string(&page).expect("page"));
    let first = &sheet["items"][0];
    let server = Server::start(&p);
    for (reviewer, verdict, q) in [("Ann", "pass", 4), ("Bo", "fail", 2)] {
        let (st, msg) = server.send(&file_of(
            &sheet,
            reviewer,
            "2026-01-01T10:00:00Z",
            &[(first, verdict, q)],
        ));
        assert_eq!(st, 200, "{msg}");
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let driver = chromedriver();
    let c = browser(&driver, &tmp.path().join("profile"), tmp.path()).await;
    let url = format!(
        "http://127.0.0.1:{}/sheets/{sheet_id}?token={}",
        server.port, server.token
    );
    c.goto(&url).await.expect("open the served sheet");
    let others = text_of(&c, "#others").await;
    assert!(
        others.contains("2 stored grade(s), hidden"),
        "blind mode hides the team's grades: {others}"
    );
    keys(&c, "b").await;
    let others = text_of(&c, "#others").await;
    assert!(
        others.contains("Ann: pass, quality 4: Ann 4")
            && others.contains("Bo: fail, quality 2: Bo 2"),
        "{}: both reviewers' grades: {others}",
        backend.name()
    );
    // No name: nothing is sent.
    keys(&c, "p").await;
    keys(&c, "s").await;
    let said = text_of(&c, "#status").await;
    assert!(said.contains("Reviewer field"), "{said}");
    let reviewer = c.find(Locator::Css("#reviewer")).await.expect("reviewer");
    reviewer.send_keys("Cy").await.expect("type name");
    keys(&c, "\u{e00c}").await;
    keys(&c, "5").await;
    keys(&c, "s").await;
    let said = status_after(&c, &["sent: ", "not accepted: ", "could not send: "]).await;
    assert!(
        said.starts_with("sent: ") && said.contains("1 new"),
        "{said}"
    );
    let others = text_of(&c, "#others").await;
    assert!(
        others.contains("Cy (you): pass, quality 5") && others.contains("Ann: pass"),
        "{others}"
    );
    // A reload reads them from the store.
    c.refresh().await.expect("reload");
    let others = text_of(&c, "#others").await;
    assert_eq!(others.matches("quality").count(), 3, "{others}");
    c.close().await.expect("close browser");
    drop(driver);
    let shown: Value = serde_json::from_slice(
        &p.run(&["review", "show", &sheet_id, "--format", "json"])
            .stdout,
    )
    .expect("json");
    let mut by: Vec<String> = shown["grades"]
        .as_array()
        .expect("grades")
        .iter()
        .map(|g| format!("{} {} {}", g["reviewer"], g["verdict"], g["quality"]))
        .collect();
    by.sort();
    assert_eq!(
        by,
        [
            "\"Ann\" \"pass\" 4",
            "\"Bo\" \"fail\" 2",
            "\"Cy\" \"pass\" 5"
        ]
    );
}

#[test]
fn a_served_sheet_shows_every_reviewers_grade_in_chromium() {
    // The test server's databases are made by the blocking client: outside the runtime.
    let backends = Backend::all("review_page");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    for backend in &backends {
        rt.block_on(grade_in_chromium(backend));
    }
}

/// Two processes at once on one store: two `review sample`s never put a result in two open
/// sheets, and two reviewers each grading half of a sheet close it (each import sees the
/// other's grades when it counts what is left).
fn race(backend: &Backend) {
    let (p, run_id) = project_on(backend);
    let (a, b) = (Server::start(&p), Server::start(&p));
    for trial in 0..4 {
        let outs: Vec<std::process::Output> = std::thread::scope(|s| {
            let runs: Vec<_> = (0..2)
                .map(|_| s.spawn(|| p.run(&["review", "sample", "--run", &run_id])))
                .collect();
            runs.into_iter()
                .map(|h| h.join().expect("sample"))
                .collect()
        });
        let mut sheets = Vec::new();
        let mut taken = std::collections::HashSet::new();
        for out in &outs {
            if code(out) != 0 {
                assert!(
                    stderr(out).contains("already in open sheet"),
                    "{}: {}",
                    backend.name(),
                    stderr(out)
                );
                continue;
            }
            let id = stdout(out)
                .lines()
                .find_map(|l| l.strip_prefix("review sheet "))
                .and_then(|l| l.split(':').next())
                .expect("sheet id")
                .to_string();
            let page = std::fs::read_to_string(p.path().join(format!("reports/review/{id}.html")))
                .expect("page");
            let sheet = sheet_json(&page);
            for item in sheet["items"].as_array().expect("items") {
                let rid = item["result_id"].as_str().expect("id").to_string();
                assert!(
                    taken.insert(rid),
                    "{}: a result in two open sheets",
                    backend.name()
                );
            }
            sheets.push((id, sheet));
        }
        assert!(!sheets.is_empty(), "trial {trial}: no sheet made");
        for (id, sheet) in &sheets {
            let items: Vec<&Value> = sheet["items"].as_array().expect("items").iter().collect();
            let half = items.len() / 2;
            let ann: Vec<(&Value, &str, u8)> =
                items[..half].iter().map(|i| (*i, "pass", 3)).collect();
            let bo: Vec<(&Value, &str, u8)> =
                items[half..].iter().map(|i| (*i, "fail", 2)).collect();
            std::thread::scope(|s| {
                s.spawn(|| {
                    let (st, msg) = a.send(&file_of(sheet, "Ann", "2026-01-01T10:00:00Z", &ann));
                    assert_eq!(st, 200, "{msg}");
                });
                s.spawn(|| {
                    let (st, msg) = b.send(&file_of(sheet, "Bo", "2026-01-01T10:00:00Z", &bo));
                    assert_eq!(st, 200, "{msg}");
                });
            });
            let shown: Value =
                serde_json::from_slice(&p.run(&["review", "show", id, "--format", "json"]).stdout)
                    .expect("json");
            assert_eq!(
                shown["status"],
                "closed",
                "{} trial {trial}: every item graded by one of two: {shown}",
                backend.name()
            );
        }
    }
}

#[test]
fn concurrent_samples_and_imports_keep_the_sheets_right() {
    for backend in Backend::all("review_race") {
        race(&backend);
    }
}

/// Until a session of the test database waits for a lock (a row lock or an advisory lock).
fn until_a_session_waits(db: &crate::pgdb::PgDb) {
    let mut watcher = db.client();
    for _ in 0..6000 {
        let row = watcher
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .expect("pg_stat_activity");
        if row.get::<_, i64>(0) > 0 {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("no evalwatch process ever waited for the lock held by the test");
}

/// On PostgreSQL, made deterministic: a transaction of the test holds what a concurrent
/// `review sample` or import would hold, uncommitted, and the command must wait for it and
/// then see its rows (READ COMMITTED alone would let it go on without them).
#[test]
fn on_postgres_a_sample_and_an_import_wait_for_a_concurrent_one() {
    let Some(db) = crate::pgdb::fresh_db("review_locks") else {
        return;
    };
    let backend = Backend::Pg(db);
    let (p, run_id) = project_on(&backend);
    let Backend::Pg(db) = &backend else {
        unreachable!("made above")
    };
    let mut client = db.client();

    // Another `review sample` is creating a sheet of every result of the run.
    let mut tx = client.transaction().expect("begin");
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&0x4576_5761_0052_i64])
        .expect("advisory lock");
    let held: i64 = tx
        .query_one(
            "INSERT INTO review_sheets (sheet_id, created_at, status, secret, mac)
             VALUES ('held', '2026-01-01T00:00:00Z', 'open', 'k', 'm') RETURNING id",
            &[],
        )
        .expect("sheet")
        .get(0);
    tx.execute(
        "INSERT INTO review_items (sheet_ref, idx, result_id, stratum, item)
         SELECT $1, row_number() OVER (ORDER BY id), id, 'pass', '{}' FROM results",
        &[&held],
    )
    .expect("items");
    let out = std::thread::scope(|s| {
        let sampling = s.spawn(|| p.run(&["review", "sample", "--run", &run_id]));
        until_a_session_waits(db);
        tx.commit().expect("commit");
        sampling.join().expect("sample")
    });
    assert_ne!(code(&out), 0, "{}", stdout(&out));
    assert!(
        stderr(&out).contains("is already in open sheet held"),
        "{}",
        stderr(&out)
    );
    assert_eq!(code(&p.run(&["review", "close", "held"])), 0);

    // Ann's grades of half a sheet are being stored while Bo imports the other half.
    let (sheet_id, page) = sample(&p, &["--run", &run_id]);
    let sheet = sheet_json(&std::fs::read_to_string(&page).expect("page"));
    let items: Vec<&Value> = sheet["items"].as_array().expect("items").iter().collect();
    let half = items.len() / 2;
    let bo: Vec<(&Value, &str, u8)> = items[half..].iter().map(|i| (*i, "fail", 2)).collect();
    let bo_file = p
        .write(
            "bo.json",
            &file_of(&sheet, "Bo", "2026-01-01T10:00:00Z", &bo).to_string(),
        )
        .display()
        .to_string();
    let mut tx = client.transaction().expect("begin");
    let sheet_ref: i64 = tx
        .query_one(
            "SELECT id FROM review_sheets WHERE sheet_id = $1 FOR UPDATE",
            &[&sheet_id],
        )
        .expect("sheet")
        .get(0);
    for item in &items[..half] {
        let rid: i64 = item["result_id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("id");
        tx.execute(
            "INSERT INTO review_grades (sheet_ref, result_id, reviewer, verdict, quality, note,
                 graded_at, imported_at)
             VALUES ($1, $2, 'Ann', 'pass', 3, '', '2026-01-01T10:00:00.000Z', 'now')",
            &[&sheet_ref, &rid],
        )
        .expect("grade");
    }
    let out = std::thread::scope(|s| {
        let import = s.spawn(|| p.run(&["review", "import", &bo_file]));
        until_a_session_waits(db);
        tx.commit().expect("commit");
        import.join().expect("import")
    });
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("every item is graded, the sheet is closed"),
        "the import counted Ann's grades: {}",
        stdout(&out)
    );
}
