use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::json;

use super::*;
use crate::model::{CaseStatus, RunInfo, RunStatus};
use crate::store::ScoredResult;

/// A project with one suite (`suites/s.yaml`, plus `suites/t.yaml` that is never run) and
/// `runs` complete runs of `s` in which results flip from run to run.
pub(in crate::app) fn history(
    runs: usize,
) -> (tempfile::TempDir, Ctx, ProjectConfig, Vec<RunInfo>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let suites = dir.path().join("suites");
    std::fs::create_dir_all(&suites).expect("mkdir");
    let mut yaml = String::from(
        "suite: s\ndescription: \"Refunds & <returns>\"\nproviders:\n  - id: echo\n    type: echo\nprompt: \"Q: {{ q }}\"\ncases:\n",
    );
    for i in 0..830 {
        let _ = writeln!(
            yaml,
            "  - id: c{i}\n    vars: {{q: \"question {i} <b>'&'</b>\"}}\n    expected: \"right {i}\"\n    assert: [{{type: icontains, value: right}}]"
        );
    }
    std::fs::write(suites.join("s.yaml"), yaml).expect("write");
    std::fs::write(
        suites.join("t.yaml"),
        "suite: t\ndescription: never run\nproviders:\n  - id: echo\n    type: echo\nprompt: \"Q\"\ncases:\n  - id: a\n    assert: [{type: icontains, value: Q}]\n",
    )
    .expect("write");
    let ctx = Ctx {
        machine_stdout: std::cell::Cell::new(false),
        printer: crate::output::Printer::new(crate::output::Verbosity::Quiet, true),
        db: Some(dir.path().join("h.db")),
        config: None,
        cwd: dir.path().to_path_buf(),
    };
    let project = ctx.project().expect("project");
    let files = super::super::suite_files(&ctx, &project, &[]).expect("files");
    let (loaded, diags) = crate::suite::load_suites(&files, &project);
    assert!(diags.is_empty(), "{diags:?}");
    let db = dir.path().join("h.db");
    let mut store = Store::open(&db).expect("store");
    let now = chrono::Utc::now();
    let mut infos = Vec::new();
    // One run of `t` first (the index lists suites with runs), then the runs of `s`.
    let t = loaded.iter().find(|s| s.name == "t").expect("suite t");
    store_run(
        &mut store,
        &db,
        t,
        "t-0",
        now - chrono::Duration::hours(30),
        |_| true,
    );
    let suite = loaded.iter().find(|s| s.name == "s").expect("suite s");
    for r in 0..runs {
        let started = now - chrono::Duration::hours(i64::try_from(runs - r).expect("hours"));
        infos.push(store_run(
            &mut store,
            &db,
            suite,
            &format!("run-{r}"),
            started,
            |i| (i + r) % 3 != 0,
        ));
    }
    (dir, ctx, project, infos)
}

/// A job, built through serde (which leaves out what is not part of a job's identity).
pub(crate) fn job(seq: usize, case_id: &str, provider: &str, sample: u32) -> crate::model::Job {
    serde_json::from_value(json!({
        "seq": seq, "case_index": seq, "case_id": case_id,
        "provider_index": 0, "provider_id": provider, "sample": sample,
    }))
    .expect("a job")
}

/// Store a complete run of `suite` in which case i passes when `pass(i)`.
pub(in crate::app) fn store_run(
    store: &mut Store,
    db: &Path,
    suite: &Suite,
    run_id: &str,
    started: chrono::DateTime<chrono::Utc>,
    pass: impl Fn(usize) -> bool,
) -> RunInfo {
    use crate::metrics::RunAccumulator;
    use crate::model::{AssertionOutcome, ResultRecord};
    let info = RunInfo {
        run_id: run_id.into(),
        suite: suite.name.clone(),
        suite_hash: suite.hash.clone(),
        started_at: started.to_rfc3339(),
        finished_at: None,
        status: RunStatus::Running,
        providers: vec!["echo".into()],
        planned: suite.cases.len() as u64,
        filter: None,
    };
    store.begin_run(&info, suite, 1, "test").expect("begin");
    let writer = crate::store::Writer::spawn(db, &info.run_id, 50).expect("writer");
    let mut acc = RunAccumulator::new();
    for (i, case) in suite.cases.iter().enumerate() {
        let pass = pass(i);
        let mut rec = ResultRecord::new(
            job(i, &case.id, "echo", 0),
            if pass {
                CaseStatus::Passed
            } else {
                CaseStatus::Failed
            },
        );
        rec.case_hash = case.hash.clone();
        rec.prompt = format!("Q: question {i}");
        rec.output = Some(if pass { "right" } else { "<wrong> & 'so'" }.into());
        rec.score = Some(if pass { 1.0 } else { 0.0 });
        rec.latency_ms = Some(10.0 + i as f64);
        rec.assertions = vec![AssertionOutcome {
            type_name: "icontains".into(),
            pass,
            score: if pass { 1.0 } else { 0.0 },
            reason: "checked \"right\"".into(),
            details: serde_json::Value::Null,
            weight: 1.0,
            metric: None,
            unscorable: false,
        }];
        acc.add(&rec);
        writer.send(rec).expect("send");
    }
    writer.finish().expect("writer");
    let finished = (started + chrono::Duration::minutes(1)).to_rfc3339();
    store
        .finish_run(
            &info.run_id,
            RunStatus::Complete,
            &finished,
            &acc.finish(Some(60.0)),
            &[],
        )
        .expect("finish");
    store.run(&info.run_id).expect("read").expect("run")
}

/// Every file under `dir`, with the generation time (minutes) taken out.
fn pages(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let text = std::fs::read_to_string(&p).expect("read page");
                let text = match text.find("Generated ") {
                    Some(at) => format!("{}{}", &text[..at], &text[at + 30..]),
                    None => text,
                };
                let name = p
                    .strip_prefix(dir)
                    .expect("under dir")
                    .display()
                    .to_string();
                out.insert(name, text);
            }
        }
    }
    out
}

#[test]
fn every_way_of_refreshing_writes_the_same_pages() {
    let (dir, ctx, project, infos) = history(4);
    let reports = dir.path().join("reports");
    let mut store = Store::open(&dir.path().join("h.db")).expect("store");
    let files = super::super::suite_files(&ctx, &project, &[]).expect("files");
    let (loaded, _) = crate::suite::load_suites(&files, &project);
    let s = loaded.iter().find(|x| x.name == "s").expect("s");
    // `run` hands over the suite as checked, without its cases.
    let head = Suite {
        cases: Vec::new(),
        ..s.clone()
    };
    let ran = vec![&head];

    after_run(&ctx, &store, &project, &ran, html::Prepared::default()).expect("from disk");
    let from_disk = pages(&reports);
    assert!(
        from_disk.contains_key("runs/run-3-p9.html"),
        "{:?}",
        from_disk.keys()
    );
    let index = &from_disk["index.html"];
    assert!(
        index.contains("never run"),
        "the suite not run keeps its description"
    );
    assert!(index.contains("Refunds &amp; &lt;returns&gt;"));
    let run = &from_disk["runs/run-3.html"];
    assert!(run.contains("<pre>right 1</pre>"), "expected answers");
    assert!(run.contains("flip: passed -&gt; failed"), "flips");

    // A run too large to hold rendered is read twice, one page in memory at a time.
    std::fs::remove_dir_all(&reports).expect("clean");
    let budget = &html::TEST_ROWS_IN_MEMORY;
    let before = budget.swap(1, std::sync::atomic::Ordering::Relaxed);
    let streamed = after_run(&ctx, &store, &project, &ran, html::Prepared::default());
    budget.store(before, std::sync::atomic::Ordering::Relaxed);
    streamed.expect("streamed");
    assert_eq!(pages(&reports), from_disk, "two reads");

    // The newest run's results rendered as they were scored (in another order than the
    // plan's), expected answers from the cases: the same pages, without the store's
    // results read back. The rendered rows are what is shown (a changed output shows);
    // rows that miss a result are not used. No file of rows is left behind.
    let newest = infos.last().expect("newest");
    let mut records = Vec::new();
    store
        .for_each_result(&newest.run_id, |r| {
            records.push(r);
            Ok(())
        })
        .expect("results");
    records.reverse();
    let expected_of = |id: &str| {
        s.cases
            .iter()
            .find(|c| c.id == id)
            .and_then(|c| c.expected.clone())
    };
    // Every other result first: a page's rows lie apart in the file.
    let interleaved: Vec<_> = records
        .iter()
        .step_by(2)
        .chain(records.iter().skip(1).step_by(2))
        .cloned()
        .collect();
    // `total`: the run's number of results, known as it goes (pages after the first are
    // then written as their rows come), or wrong (more than it has: they are written
    // again at the end).
    // `known_after`: results fed before the total is known.
    let n = records.len();
    for (how, tamper, skip, order, total, known_after) in [
        ("rendered as scored", None, false, &records, 0, 0),
        (
            "rendered as scored, pages written as it went",
            None,
            false,
            &records,
            n,
            0,
        ),
        ("rendered interleaved", None, false, &interleaved, 0, 0),
        (
            "rendered interleaved, pages written as it went",
            None,
            false,
            &interleaved,
            n,
            0,
        ),
        (
            "rendered interleaved, total known late",
            None,
            false,
            &interleaved,
            n,
            n * 3 / 4,
        ),
        ("rendered, total wrong", None, false, &records, n + 150, 0),
        (
            "rendered, changed",
            Some("a changed &lt;output&gt;"),
            false,
            &records,
            n,
            0,
        ),
        (
            "rendered, one missing",
            Some("not shown"),
            true,
            &records,
            n,
            0,
        ),
    ] {
        std::fs::remove_dir_all(&reports).expect("clean");
        // A page past the run's last, as a killed run whose last results were not
        // stored would leave: removed.
        std::fs::create_dir_all(reports.join("runs")).expect("mkdir");
        std::fs::write(reports.join("runs/run-3-p10.html"), "left").expect("write");
        store
            .set_run_status(&newest.run_id, RunStatus::Running)
            .expect("status");
        let running = store.run(&newest.run_id).expect("read").expect("run");
        let known = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(if known_after == 0 {
            total
        } else {
            0
        }));
        let mut live = html::live::LivePages::new(
            &running,
            live_baseline_reader(&dir.path().join("h.db"), &running),
            &reports,
        )
        .with_total(std::sync::Arc::clone(&known));
        for (i, rec) in order.iter().enumerate() {
            if i == known_after {
                known.store(total, std::sync::atomic::Ordering::Relaxed);
            }
            if skip && i == 5 {
                continue;
            }
            let mut rec = rec.clone();
            if let (Some(t), 0) = (tamper, rec.job.seq) {
                rec.output = Some(t.replace("&lt;", "<").replace("&gt;", ">"));
            }
            live.add(&rec, expected_of(&rec.job.case_id).as_deref(), &[]);
        }
        let made = reports
            .join("runs")
            .join(format!("{}.html.tmp", html::file_stem(&newest.run_id)));
        assert!(made.exists(), "{how}: page 1's file made as its rows came");
        let runs = reports.join("runs");
        assert!(
            !runs.join("run-3.html").exists(),
            "{how}: page 1 waits for the end"
        );
        assert_eq!(
            runs.join("run-3-p2.html").exists(),
            total > 0,
            "{how}: page 2 written as its rows came when the total is known"
        );
        if total == n && !skip {
            // Every page after the first, those complete before the total was known too.
            let pages = n.div_ceil(html::RESULTS_PER_PAGE);
            let missing: Vec<usize> = (2..=pages)
                .filter(|p| !runs.join(format!("run-3-p{p}.html")).exists())
                .collect();
            assert!(missing.is_empty(), "{how}: pages not written: {missing:?}");
        }
        store
            .set_run_status(&newest.run_id, RunStatus::Complete)
            .expect("status");
        let mut prepared = html::Prepared::default();
        prepared
            .live
            .insert(newest.run_id.clone(), live.finish(records.len()));
        after_run(&ctx, &store, &project, &ran, prepared).expect(how);
        let got = pages(&reports);
        match tamper {
            Some(t) if !skip => {
                let page = &got["runs/run-3.html"];
                assert!(page.contains(t), "{how}: the rendered rows are shown");
                assert_ne!(got, from_disk, "{how}");
            }
            _ => assert_eq!(got, from_disk, "{how}"),
        }
        assert!(
            !got.keys()
                .any(|k| k.starts_with("runs/.") || k.contains(".html.tmp")),
            "{how}: no rows, no page's file made ahead left: {:?}",
            got.keys()
        );
    }
}

#[test]
fn rows_left_by_runs_no_longer_running_are_removed() {
    let (dir, _ctx, _project, infos) = history(2);
    let mut store = Store::open(&dir.path().join("h.db")).expect("store");
    let reports = dir.path().join("reports");
    let runs = reports.join("runs");
    std::fs::create_dir_all(&runs).expect("mkdir");
    // run-0 was killed while it went (the store has it incomplete); run-1 is running.
    store
        .set_run_status(&infos[1].run_id, RunStatus::Running)
        .expect("status");
    let left = runs.join(format!(".{}.rows", html::file_stem(&infos[0].run_id)));
    let going = runs.join(format!(".{}.rows", html::file_stem(&infos[1].run_id)));
    let page = runs.join(".notes.html");
    for f in [&left, &going, &page] {
        std::fs::write(f, "<details>").expect("write");
    }
    // Pages' files made ahead (empty): of the killed run, a minute old (removed) and
    // just made; of the running run; and one being written.
    let made = |run: usize, page: usize, text: &str, age: u64| {
        let name = format!("{}-p{page}.html.tmp", html::file_stem(&infos[run].run_id));
        let path = runs.join(name);
        std::fs::write(&path, text).expect("write");
        let then = std::time::SystemTime::now() - std::time::Duration::from_secs(age);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(then))
            .expect("age");
        path
    };
    let old_made = made(0, 2, "", 120);
    let new_made = made(0, 3, "", 0);
    let going_made = made(1, 2, "", 120);
    let writing = made(0, 4, "<html>", 120);
    assert_eq!(remove_leftovers(&store, &reports).expect("clean"), 2);
    assert!(!left.exists(), "left by a run no longer running");
    assert!(!old_made.exists(), "made for a run no longer running");
    assert!(going.exists(), "a running run's rows are kept");
    assert!(going_made.exists(), "a running run's pages' files are kept");
    assert!(new_made.exists(), "a file made under a minute ago is kept");
    assert!(writing.exists(), "a page being written is kept");
    assert!(page.exists(), "other files are not touched");
    assert_eq!(
        remove_leftovers(&store, &dir.path().join("nowhere")).expect("none"),
        0
    );
}

#[test]
fn a_run_finished_again_gets_its_pages_again_once() {
    let (dir, ctx, project, infos) = history(2);
    let reports = dir.path().join("reports");
    let mut store = Store::open(&dir.path().join("h.db")).expect("store");
    let files = super::super::suite_files(&ctx, &project, &[]).expect("files");
    let (loaded, _) = crate::suite::load_suites(&files, &project);
    let s = loaded.iter().find(|x| x.name == "s").expect("s");
    after_run(&ctx, &store, &project, &[s], html::Prepared::default()).expect("first");
    // The newest run finishes (again) now, and its pages are written at once, as `run`
    // does: within a tick of the file clock, which lags the one the finish is read from.
    let newest = infos.last().expect("newest");
    let metrics = store.run_metrics(&newest.run_id).expect("metrics");
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    store
        .finish_run(&newest.run_id, RunStatus::Complete, &now, &metrics, &[])
        .expect("finish");
    let opts = Options {
        window: Window::parse("30d").expect("window"),
        now: chrono::Utc::now(),
        run_pages: html::RUN_PAGES,
        traffic: Vec::new(),
    };
    let write = || {
        html::write_reports(
            &store,
            &reports,
            None,
            &HashMap::new(),
            &Expected::default(),
            &opts,
        )
        .expect("write")
    };
    let run_pages = |w: &html::Written| {
        w.files
            .iter()
            .filter(|f| f.to_string_lossy().contains(&newest.run_id))
            .count()
    };
    assert!(run_pages(&write()) > 0, "finished again: written again");
    assert_eq!(run_pages(&write()), 0, "current: not written again");
}

fn r(case: &str, status: CaseStatus, score: f64, lat: f64) -> ScoredResult {
    ScoredResult {
        case_id: case.into(),
        provider: "p".into(),
        sample: 0,
        status,
        score: Some(score),
        latency_ms: Some(lat),
    }
}

#[test]
fn pairs_results_and_counts_flips_both_ways() {
    use CaseStatus::{Error, Failed, Passed};
    let a = vec![
        r("a", Passed, 1.0, 100.0),
        r("b", Passed, 1.0, 100.0),
        r("c", Failed, 0.0, 100.0),
        r("d", Error, 0.0, 100.0),
        r("gone", Passed, 1.0, 100.0),
    ];
    let b = vec![
        r("a", Failed, 0.0, 150.0),
        r("b", Passed, 1.0, 150.0),
        r("c", Passed, 1.0, 150.0),
        r("d", Passed, 1.0, 150.0),
        r("new", Failed, 0.0, 150.0),
    ];
    let c = pair_results("A", "B", &a, &b);
    assert_eq!(
        c.paired, 3,
        "error results and unpaired ones are not paired"
    );
    assert_eq!(c.pass_to_fail.len(), 1);
    assert_eq!(c.pass_to_fail[0].case_id, "a");
    assert_eq!(c.fail_to_pass.len(), 1);
    assert!((c.mcnemar_p - 1.0).abs() < 1e-12);
    let lat = c.latency_delta_ms.expect("latency");
    assert!((lat.mean - 50.0).abs() < 1e-9 && lat.significant());
}

#[test]
fn a_clear_regression_is_significant() {
    let a: Vec<ScoredResult> = (0..20)
        .map(|i| r(&format!("c{i}"), CaseStatus::Passed, 1.0, 100.0))
        .collect();
    let b: Vec<ScoredResult> = (0..20)
        .map(|i| {
            let st = if i < 10 {
                CaseStatus::Failed
            } else {
                CaseStatus::Passed
            };
            r(&format!("c{i}"), st, if i < 10 { 0.0 } else { 1.0 }, 100.0)
        })
        .collect();
    let c = pair_results("A", "B", &a, &b);
    assert!(c.mcnemar_p < 0.01, "{}", c.mcnemar_p);
    let s = c.score_delta.expect("score");
    assert!(s.high < 0.0, "{s:?}");
    assert!(!c.latency_delta_ms.expect("lat").significant());
}

#[test]
fn prometheus_labels_are_escaped() {
    assert_eq!(prom_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    assert_eq!(prom_label("plain"), "plain");
}

#[test]
fn windows_parse_and_reject() {
    assert!(parse_window("7d").is_ok());
    assert!(parse_window("all").is_ok());
    assert!(parse_window("7x").is_err());
    assert!(parse_window("").is_err());
    assert!(parse_window("-3d").is_err());
}

#[test]
fn arguments_become_settings() {
    let (dir, ctx, project, _) = history(1);
    let report = ReportSettings::resolve(
        &ctx,
        &project,
        &ReportArgs {
            since: "7d".into(),
            runs: vec!["run-0".into()],
            out: Some("out".into()),
        },
    )
    .expect("report settings");
    assert_eq!(report.dir, dir.path().join("out"));
    assert_eq!(report.window.label, "7d");
    let export = |format: &str, textfile: Option<&str>| {
        ExportSettings::resolve(
            &ctx,
            &crate::cli::report::ExportArgs {
                format: format.into(),
                out: Some("e.json".into()),
                textfile: textfile.map(PathBuf::from),
                suite: None,
                since: Some("24h".into()),
            },
        )
    };
    let json = export("json", None).expect("export settings");
    assert_eq!(json.format, ExportFormat::Json);
    assert_eq!(json.out, Some(dir.path().join("e.json")));
    assert!(json.since.is_some());
    let err = export("csv", Some(".")).expect_err("textfile is for prometheus");
    assert!(err.to_string().contains("not csv"), "{err}");
    assert!(export("yaml", None).is_err());
    let prom = export("prometheus", Some(".")).expect("a folder");
    assert_eq!(
        prom.textfile,
        Some(dir.path().join(".").join(TEXTFILE_NAME))
    );
    let compare = |format: &str| {
        CompareSettings::resolve(&crate::cli::report::CompareArgs {
            run_a: "a".into(),
            run_b: "b".into(),
            format: format.into(),
            min_latency_change_ms: 1.0,
            min_latency_change_pct: 2.0,
        })
    };
    assert!(compare("json").expect("json").json);
    assert!(!compare("text").expect("text").json);
    assert!(compare("html").is_err());
}
