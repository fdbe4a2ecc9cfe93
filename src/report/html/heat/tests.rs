//! The heat map against the implementation it replaced (kept here as the reference), read
//! ahead or not; and what it costs (an ignored test).

use std::path::{Path, PathBuf};

use super::*;
use crate::app::report::tests::job;
use crate::model::{PromptTemplate, ResultRecord, Suite};
use crate::report::html::run_page::{StatusIndex, StatusRow};
use crate::report::html::suite_page::build_suite;
use crate::report::html::{Options, TREND_TEMPLATES, Window, engine_of};
use crate::store::Store;

const SUITE: &str = "heat";

fn suite() -> Suite {
    Suite {
        name: SUITE.to_owned(),
        source: PathBuf::from("suites/heat.yaml"),
        prompt: PromptTemplate::Text("Q".to_owned()),
        hash: "heat-hash".to_owned(),
        ..crate::score::testutil::suite(Vec::new())
    }
}

/// One result of a run: (case, provider, sample, status).
type Res = (String, &'static str, u32, CaseStatus);

fn started(i: usize) -> String {
    let t = chrono::DateTime::parse_from_rfc3339("2024-05-01T06:00:00Z").expect("time")
        + chrono::Duration::hours(i64::try_from(i).expect("hours"));
    t.with_timezone(&chrono::Utc).to_rfc3339()
}

/// Begin run `run_id` (started `i` hours after the first) and store `results` in plan order.
fn begin(store: &mut Store, db: &Path, run_id: &str, i: usize, results: &[Res]) {
    let info = RunInfo {
        run_id: run_id.to_owned(),
        suite: SUITE.to_owned(),
        suite_hash: "heat-hash".to_owned(),
        started_at: started(i),
        finished_at: None,
        status: RunStatus::Running,
        providers: vec!["p-a".to_owned(), "p-b".to_owned()],
        planned: results.len() as u64,
        filter: None,
    };
    store.begin_run(&info, &suite(), 1, "test").expect("begin");
    store_results(db, run_id, 0, results);
}

/// Store `results` of run `run_id` in plan order, the first at position `from`.
fn store_results(db: &Path, run_id: &str, from: usize, results: &[Res]) {
    let writer = crate::store::Writer::spawn(db, run_id, 5000).expect("writer");
    for (i, (case, provider, sample, status)) in results.iter().enumerate() {
        let mut rec = ResultRecord::new(job(from + i, case, provider, *sample), *status);
        rec.case_hash = format!("h-{case}");
        writer.send(rec).expect("send");
    }
    writer.finish().expect("finish writer");
}

fn finish(store: &mut Store, run_id: &str, i: usize, minutes: i64) {
    let t = chrono::DateTime::parse_from_rfc3339(&started(i)).expect("time")
        + chrono::Duration::minutes(minutes);
    store
        .finish_run(
            run_id,
            RunStatus::Complete,
            &t.with_timezone(&chrono::Utc).to_rfc3339(),
            &[],
            &[],
        )
        .expect("finish");
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The results of run `r`: 70 cases on two providers, cases 0..10 with three samples; some
/// keys missing in some runs (and cases 65.. only in later runs); statuses that flip often.
fn results(r: usize) -> Vec<Res> {
    let mut out = Vec::new();
    let cases = if r < 5 { 65 } else { 70 };
    for c in 0..cases {
        for provider in ["p-a", "p-b"] {
            for sample in 0..if c < 10 { 3 } else { 1 } {
                let x = splitmix(
                    (r as u64) << 32
                        | (c as u64) << 8
                        | u64::from(sample) << 1
                        | u64::from(provider == "p-b"),
                );
                if x.is_multiple_of(13) {
                    continue;
                }
                // Cases 0..20 flip a lot, the others rarely.
                let status = match (c < 20, (x >> 8) % 10) {
                    (true, 0..=4) | (false, 0..=8) => CaseStatus::Passed,
                    (_, 5 | 6) => CaseStatus::Failed,
                    (_, 7) => CaseStatus::Error,
                    _ => CaseStatus::Unscorable,
                };
                out.push((format!("case-{c:02}"), provider, sample, status));
            }
        }
    }
    out
}

struct Hist {
    _dir: tempfile::TempDir,
    db: PathBuf,
    store: Store,
}

/// A history of `finished` complete runs, `run-00`.., each of [`results`].
fn history(finished: usize) -> Hist {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("h.db");
    let mut store = Store::open(&db).expect("store");
    for r in 0..finished {
        let id = format!("run-{r:02}");
        begin(&mut store, &db, &id, r, &results(r));
        finish(&mut store, &id, r, 5);
    }
    Hist {
        _dir: dir,
        db,
        store,
    }
}

fn runs(store: &Store, since: Option<&str>) -> Vec<RunInfo> {
    store
        .run_infos(Some(SUITE), since, HEAT_RUNS.max(RECENT_RUNS))
        .expect("runs")
}

fn pages(runs: &[RunInfo]) -> HashMap<String, bool> {
    runs.iter()
        .rev()
        .take(3)
        .map(|r| (r.run_id.clone(), true))
        .collect()
}

/// The suite page's options: every run, a fixed now.
fn page_options() -> Options {
    Options {
        window: Window::parse("all").expect("all"),
        now: chrono::DateTime::parse_from_rfc3339("2024-06-01T00:00:00Z")
            .expect("now")
            .with_timezone(&chrono::Utc),
        run_pages: 5,
        traffic: Vec::new(),
    }
}

fn json(h: &Heat) -> String {
    serde_json::to_string_pretty(h).expect("json")
}

/// Flip every status of a run in the store (passed <-> failed), behind the heat map's back.
/// Change the statuses of `run_id` in the store: the heat map with `ahead` still shows
/// `fresh` (the run is held there, not read), one read anew does not.
fn held_not_read(
    h: &Hist,
    run_id: &str,
    all: &[RunInfo],
    with_pages: &HashMap<String, bool>,
    ahead: &HeatHistory,
    fresh: &str,
) {
    tamper(&h.db, run_id);
    assert_eq!(
        json(&heat_map(&h.store, all, with_pages, Some(ahead)).expect("heat")),
        fresh
    );
    assert_ne!(
        json(&heat_map(&h.store, all, with_pages, None).expect("heat")),
        fresh
    );
}

fn tamper(db: &Path, run_id: &str) {
    let conn = rusqlite::Connection::open(db).expect("open");
    let n = conn
        .execute(
            "UPDATE results SET status = CASE status WHEN 'passed' THEN 'failed' ELSE 'passed' END
             WHERE run_ref = (SELECT id FROM runs WHERE run_id = ?1)",
            [run_id],
        )
        .expect("update");
    assert!(n > 0);
}

// ---------------------------------------------------------------------------------------
// The reference: the heat map as it was, on whole status lists.

fn reference(store: &Store, runs: &[RunInfo], with_pages: &HashMap<String, bool>) -> Heat {
    let runs: Vec<&RunInfo> = runs
        .iter()
        .filter(|r| r.status != RunStatus::Running)
        .rev()
        .take(HEAT_RUNS)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let lists: Vec<Vec<StatusRow>> = runs
        .iter()
        .map(|r| store.result_statuses(&r.run_id).expect("statuses"))
        .collect();
    let statuses: Vec<StatusIndex<'_>> = lists.iter().map(|l| StatusIndex::new(l)).collect();
    let mut flips: HashMap<HeatKey<'_>, (usize, usize)> = HashMap::new();
    for i in 1..lists.len() {
        for (at, (case, provider, sample, now)) in lists[i].iter().enumerate() {
            if let Some(before) = statuses[i - 1].get(at, case, provider, *sample)
                && is_flip(before, *now)
            {
                flips
                    .entry((case.as_str(), provider.as_str(), *sample))
                    .or_insert((0, at))
                    .0 += 1;
            }
        }
    }
    let mut keys: Vec<(HeatKey<'_>, (usize, usize))> = flips.into_iter().collect();
    keys.sort_by(|a, b| b.1.0.cmp(&a.1.0).then_with(|| a.0.cmp(&b.0)));
    let more = keys.len().saturating_sub(HEAT_ROWS);
    let mut rows = Vec::new();
    for (k, (n, at)) in keys.into_iter().take(HEAT_ROWS) {
        let mut cells = Vec::with_capacity(runs.len());
        let mut prev: Option<CaseStatus> = None;
        for (i, st) in statuses.iter().enumerate() {
            let s = st.get(at, k.0, k.1, k.2);
            let flip = matches!((prev, s), (Some(a), Some(b)) if is_flip(a, b));
            let title = format!(
                "{} · {} · run {} ({}): {}{}",
                k.0,
                k.1,
                runs[i].run_id,
                show_time(&runs[i].started_at),
                s.map_or("not run", CaseStatus::as_str),
                if flip { ", flipped" } else { "" }
            );
            cells.push(status_cell(s, flip, title));
            if s.is_some() {
                prev = s;
            }
        }
        rows.push(HeatRow {
            case: if k.2 > 0 {
                format!("{} #{}", k.0, k.2)
            } else {
                k.0.to_owned()
            },
            provider: k.1.to_owned(),
            flips: n,
            cells,
        });
    }
    Heat {
        runs: heat_runs(&runs, with_pages),
        rows,
        more,
    }
}

// ---------------------------------------------------------------------------------------

#[test]
fn statuses_stream_as_the_full_rows_give_them() {
    let h = history(2);
    let mut streamed = Vec::new();
    h.store
        .for_each_status("run-01", |c, p, s, st| {
            streamed.push((c.to_owned(), p.to_owned(), s, st));
        })
        .expect("stream");
    assert_eq!(streamed, h.store.result_statuses("run-01").expect("rows"));
    assert_eq!(streamed.len(), results(1).len());
    assert!(h.store.for_each_status("nope", |_, _, _, _| {}).is_err());
}

#[test]
fn the_heat_map_is_the_one_it_replaced() {
    let mut h = history(22);
    // A run still running is no column.
    begin(&mut h.store, &h.db, "run-22", 22, &results(22));
    let all = runs(&h.store, None);
    let with_pages = pages(&all);
    let old = reference(&h.store, &all, &with_pages);
    let new = heat_map(&h.store, &all, &with_pages, None).expect("heat");
    assert_eq!(json(&new), json(&old));
    // What the history was made to hold.
    // The newest 20 runs, run-03 to run-22, less the one running.
    assert_eq!(new.runs.len(), HEAT_RUNS - 1);
    assert_eq!(new.runs[0].run_id, "run-03");
    assert_eq!(new.rows.len(), HEAT_ROWS);
    assert!(new.more > 0, "more: {}", new.more);
    assert!(new.rows.iter().any(|r| r.case.contains(" #2")));
    let cells = || new.rows.iter().flat_map(|r| &r.cells);
    assert!(cells().any(|c| c.class == "absent"));
    assert!(cells().any(|c| c.mark.starts_with('↻')));
    assert!(new.runs.iter().any(|r| r.href.starts_with("runs/")));
    assert!(new.runs.iter().any(|r| r.href.starts_with("#run-")));
    // Ordered by flips, most first.
    assert!(new.rows.windows(2).all(|w| w[0].flips >= w[1].flips));

    // A window that holds fewer runs, and one with a single run (no flips).
    for (since, columns) in [(started(15), 7), (started(21), 1)] {
        let few = runs(&h.store, Some(&since));
        let new = heat_map(&h.store, &few, &with_pages, None).expect("heat");
        assert_eq!(new.runs.len(), columns);
        assert_eq!(json(&new), json(&reference(&h.store, &few, &with_pages)));
    }
    // No run at all.
    let none = heat_map(&h.store, &[], &with_pages, None).expect("heat");
    assert_eq!(json(&none), json(&Heat::default()));
}

#[test]
fn a_history_read_ahead_is_reused_and_only_the_new_run_is_read() {
    let mut h = history(21);
    begin(&mut h.store, &h.db, "run-21", 21, &results(21)[..40]);
    let ahead = HeatHistory::read(&h.store, SUITE).expect("read ahead");
    // The run in progress is not read ahead.
    assert_eq!(ahead.runs(), HEAT_RUNS - 1);
    assert!(ahead.heap_bytes() > 0);
    // The run ends: the rest of its results, then it finishes.
    store_results(&h.db, "run-21", 40, &results(21)[40..]);
    finish(&mut h.store, "run-21", 21, 5);
    let all = runs(&h.store, None);
    let with_pages = pages(&all);
    let fresh = json(&heat_map(&h.store, &all, &with_pages, None).expect("heat"));
    assert_eq!(fresh, json(&reference(&h.store, &all, &with_pages)));
    let reused = json(&heat_map(&h.store, &all, &with_pages, Some(&ahead)).expect("heat"));
    assert_eq!(reused, fresh);
    // The same whole suite page.
    let t = engine_of(&TREND_TEMPLATES).expect("templates");
    let opts = page_options();
    let page = |ahead: Option<&HeatHistory>| {
        build_suite(
            &h.store,
            &t,
            SUITE,
            None,
            &opts,
            &with_pages,
            super::Ahead::Held(ahead),
        )
        .expect("page")
        .0
    };
    let page_fresh = page(None);
    assert!(page_fresh.contains("run-21"));
    assert_eq!(page(Some(&ahead)), page_fresh);

    // The runs read ahead are not read again: their statuses changed in the store behind
    // its back show only in a map read anew.
    held_not_read(&h, "run-10", &all, &with_pages, &ahead, &fresh);
}

#[test]
fn a_run_changed_since_it_was_read_ahead_is_read_again() {
    let mut h = history(8);
    let ahead = HeatHistory::read(&h.store, SUITE).expect("read ahead");
    assert_eq!(ahead.runs(), 8);
    let all = runs(&h.store, None);
    let with_pages = HashMap::new();
    let before = json(&heat_map(&h.store, &all, &with_pages, Some(&ahead)).expect("heat"));
    assert_eq!(
        before,
        json(&heat_map(&h.store, &all, &with_pages, None).expect("heat"))
    );
    // run-05 is resumed: its results change and it finishes again, later.
    tamper(&h.db, "run-05");
    finish(&mut h.store, "run-05", 5, 30);
    let all = runs(&h.store, None);
    let after = json(&heat_map(&h.store, &all, &with_pages, Some(&ahead)).expect("heat"));
    assert_ne!(after, before);
    assert_eq!(
        after,
        json(&heat_map(&h.store, &all, &with_pages, None).expect("heat"))
    );
    assert_eq!(after, json(&reference(&h.store, &all, &with_pages)));
}

#[test]
fn keys_are_interned_once_and_found_again() {
    let mut keys = Keys::default();
    let mut made = Vec::new();
    for i in 0..5000u32 {
        let case = format!("c{}", i % 1700);
        let provider = ["a", "b", "c"][(i % 3) as usize];
        made.push((keys.intern(&case, provider, i / 1700), case, provider));
    }
    // 1700 cases x 3 samples, each (case, provider) once per sample.
    assert_eq!(keys.len(), 5000);
    assert_eq!(keys.case_ends.len(), 1700);
    assert_eq!(keys.providers.len(), 3);
    for (k, case, provider) in &made {
        let sample = keys.get(*k).2;
        assert_eq!(keys.get(*k), (case.as_str(), *provider, sample));
        assert_eq!(keys.find(case, provider, sample), Some(*k));
        assert_eq!(keys.intern(case, provider, sample), *k);
    }
    assert_eq!(keys.len(), 5000);
    assert_eq!(keys.find("c1", "z", 0), None);
    assert_eq!(keys.find("c1700", "a", 0), None);
    // Above a base, keys met since come after it.
    let mut space = KeySpace::new(Some(&keys));
    let k = space.index("c3", "a", 0, 0);
    assert_eq!(space.get(k), ("c3", "a", 0));
    let new = space.index("fresh", "a", 0, 0);
    assert_eq!(new, 5000);
    assert_eq!(space.index("fresh", "a", 0, 0), 5000);
    assert_eq!(space.get(new), ("fresh", "a", 0));
    assert_eq!(space.len(), 5001);
}

// ---------------------------------------------------------------------------------------
// Cost

fn status_kb(field: &str) -> usize {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Reset the peak resident size to the current one (Linux 4.0 and later) and return it,
/// in KiB.
fn settle() -> usize {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    status_kb("VmRSS:")
}

fn measure<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let rss = settle();
    let t = std::time::Instant::now();
    let out = f();
    let took = t.elapsed();
    let peak = status_kb("VmHWM:");
    println!(
        "COST {what:<50} {:>8.1} ms  peak RSS +{:>6.1} MB",
        took.as_secs_f64() * 1000.0,
        peak.saturating_sub(rss) as f64 / 1024.0
    );
    out
}

/// 2 providers x n/2 cases; 1 result in 50 changes verdict from run to run.
fn cost_run(r: usize, n: usize) -> Vec<Res> {
    (0..n)
        .map(|i| {
            let x = splitmix((r as u64) << 32 | i as u64);
            let status = if x.is_multiple_of(50) {
                CaseStatus::Failed
            } else {
                CaseStatus::Passed
            };
            let provider = if i % 2 == 0 {
                "prod-gpt"
            } else {
                "prod-claude"
            };
            (format!("case-{:06}", i / 2), provider, 0, status)
        })
        .collect()
}

/// `HEAT_RESULTS=100000 cargo test --release --lib heat::tests::cost -- --ignored
/// --nocapture`: time and peak memory of the heat map over 20 runs of HEAT_RESULTS results
/// (default 100,000), the way it was and now. Each step runs in a process of its own
/// ([`cost_step`]), so that its peak is its own.
#[test]
#[ignore = "a measurement: writes 21 runs of 100,000 results"]
fn cost() {
    let n: usize = std::env::var("HEAT_RESULTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("h.db");
    let mut store = Store::open(&db).expect("store");
    let t = std::time::Instant::now();
    for r in 0..HEAT_RUNS {
        let id = format!("run-{r:02}");
        begin(&mut store, &db, &id, r, &cost_run(r, n));
        finish(&mut store, &id, r, 5);
    }
    // The run in progress: its results are in, it is not finished.
    begin(
        &mut store,
        &db,
        "run-20",
        HEAT_RUNS,
        &cost_run(HEAT_RUNS, n),
    );
    drop(store);
    println!(
        "{} runs x {n} results written in {:.1} s",
        HEAT_RUNS + 1,
        t.elapsed().as_secs_f64()
    );
    let exe = std::env::current_exe().expect("test binary");
    for step in ["warm", "before", "after", "ahead", "reuse"] {
        let out = std::process::Command::new(&exe)
            .args([
                "--exact",
                "report::html::heat::tests::cost_step",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("HEAT_DB", &db)
            .env("HEAT_STEP", step)
            .output()
            .expect("run a step");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{step}: {text}");
        // (libtest prints the test's name on the line its output starts.)
        for l in text.lines().filter_map(|l| l.split_once("COST ")) {
            println!("{}", l.1);
        }
    }
}

/// One step of [`cost`], in a process of its own.
#[test]
#[ignore = "a step of the measurement `cost`"]
fn cost_step() {
    let (Ok(db), Ok(step)) = (std::env::var("HEAT_DB"), std::env::var("HEAT_STEP")) else {
        return;
    };
    let mut store = Store::open(Path::new(&db)).expect("store");
    let with_pages = HashMap::new();
    let all = runs(&store, None);
    match step.as_str() {
        // Bring the file into the page cache.
        "warm" => {
            let _ = HeatHistory::read(&store, SUITE).expect("read");
        }
        "before" => {
            measure("before: status lists, read at the end (20 runs)", || {
                json(&reference(&store, &all, &with_pages))
            });
        }
        "after" => {
            measure("after: read at the end (20 runs)", || {
                json(&heat_map(&store, &all, &with_pages, None).expect("heat"))
            });
        }
        "ahead" => {
            let ahead = measure(
                "after: HeatHistory::read while run-20 runs (19 runs)",
                || HeatHistory::read(&store, SUITE).expect("read"),
            );
            println!(
                "COST   it holds {} runs in {:.2} MB (heap_bytes)",
                ahead.runs(),
                ahead.heap_bytes() as f64 / 1_048_576.0
            );
        }
        "reuse" => {
            let ahead = HeatHistory::read(&store, SUITE).expect("read");
            finish(&mut store, "run-20", HEAT_RUNS, 5);
            let now = runs(&store, None);
            let reused = measure("after: at the end with it (reads run-20 only)", || {
                json(&heat_map(&store, &now, &with_pages, Some(&ahead)).expect("heat"))
            });
            let fresh = json(&heat_map(&store, &now, &with_pages, None).expect("heat"));
            assert_eq!(reused, fresh);
        }
        other => panic!("unknown step {other}"),
    }
}

#[test]
fn a_run_fed_as_it_is_scored_is_not_read_back() {
    let mut h = history(21);
    begin(&mut h.store, &h.db, "run-21", 21, &[]);
    // The history is read on a thread that waits to be told: the results scored before it
    // is done wait for it, the others are interned at once.
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let db = h.db.clone();
    let reading = std::thread::spawn(move || {
        wait.recv().ok()?;
        let store = Store::open(&db).ok()?;
        HeatHistory::read(&store, SUITE).ok()
    });
    let mut feed = HeatFeed::new(reading, true);
    // Fed in an order other than the plan's, as results finish.
    let mut fed = results(21);
    fed.reverse();
    fed.swap(0, 7);
    for (i, (case, provider, sample, status)) in fed.iter().enumerate() {
        if i == 30 {
            go.send(()).expect("tell the reader");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        feed.add(case, provider, *sample, *status);
    }
    // Stored (in plan order) and finished as `run` does.
    store_results(&h.db, "run-21", 0, &results(21));
    finish(&mut h.store, "run-21", 21, 5);
    let all = runs(&h.store, None);
    let with_pages = pages(&all);
    let new = all.iter().find(|r| r.run_id == "run-21").expect("run-21");
    let ahead = feed.finish(new).expect("history");
    assert_eq!(ahead.runs(), HEAT_RUNS);
    let fresh = json(&heat_map(&h.store, &all, &with_pages, None).expect("heat"));
    assert_eq!(fresh, json(&reference(&h.store, &all, &with_pages)));
    assert_eq!(
        json(&heat_map(&h.store, &all, &with_pages, Some(&ahead)).expect("heat")),
        fresh
    );
    // Its column came from the feed: its statuses changed behind the store's back show only
    // in a map read anew.
    held_not_read(&h, "run-21", &all, &with_pages, &ahead, &fresh);

    // Not fed (a resumed run): the history as read, the run read from the store.
    let db = h.db.clone();
    let reading = std::thread::spawn(move || {
        let store = Store::open(&db).ok()?;
        HeatHistory::read(&store, SUITE).ok()
    });
    let mut feed = HeatFeed::new(reading, false);
    feed.add("case-0", "p-a", 0, CaseStatus::Error);
    let read = feed.finish(new).expect("history");
    assert_eq!(read.runs(), HEAT_RUNS);
    assert_eq!(
        json(&heat_map(&h.store, &all, &with_pages, Some(&read)).expect("heat")),
        json(&heat_map(&h.store, &all, &with_pages, None).expect("heat"))
    );
    // A history that could not be read gives none.
    let feed = HeatFeed::new(std::thread::spawn(|| None), true);
    assert!(feed.finish(new).is_none());
}

// ---------------------------------------------------------------------------------------
// Statuses read by the refresh's other thread (`HeatAhead`).

#[test]
fn statuses_read_on_the_other_thread_make_the_same_map_and_page() {
    let h = history(22);
    let all = runs(&h.store, None);
    let with_pages = pages(&all);
    let fresh = json(&heat_map(&h.store, &all, &with_pages, None).expect("heat"));
    let ahead = HeatAhead::new(vec![SUITE.to_owned()]);
    std::thread::scope(|s| {
        s.spawn(|| ahead.read_next(&Store::open(&h.db).expect("own connection")));
    });
    let read = ahead.take(SUITE).expect("read on the other thread");
    assert_eq!(read.runs(), HEAT_RUNS);
    assert_eq!(
        json(&heat_map(&h.store, &all, &with_pages, Some(&read)).expect("heat")),
        fresh
    );
    // Taken once: asked again, it is the trend page's to read.
    assert!(ahead.take(SUITE).is_none());

    // The whole page, its statuses to come while it is built, as it is without them.
    let t = engine_of(&TREND_TEMPLATES).expect("templates");
    let opts = page_options();
    let page = |ahead| {
        build_suite(&h.store, &t, SUITE, None, &opts, &with_pages, ahead).map(|(html, _)| html)
    };
    let alone = page(Ahead::Held(None)).expect("page");
    let coming = HeatAhead::new(vec![SUITE.to_owned()]);
    let built = std::thread::scope(|s| {
        s.spawn(|| coming.read_next(&Store::open(&h.db).expect("own connection")));
        page(Ahead::Coming(&coming)).expect("page")
    });
    assert_eq!(built, alone);
}

#[test]
fn only_the_suite_at_hand_and_the_next_are_read_ahead_and_the_rest_left() {
    let h = history(2);
    let names: Vec<String> = ["s0", "s1", "s2", "s3"].map(str::to_owned).to_vec();
    let ahead = HeatAhead::new(names);
    // The trend pages have not begun: the first two suites are read.
    ahead.read_next(&h.store);
    // The trend pages go on to s2 without s1: s1 is left as read, s2 and s3 are read next.
    ahead.at("s2");
    assert!(ahead.take("s0").is_some(), "s0 was read");
    // A suite the trend page reaches before the other thread is its own to read.
    assert!(ahead.take("s2").is_none(), "s2 was not read yet");
    ahead.read_next(&h.store);
    assert!(
        ahead.take("s3").is_some(),
        "s3 was read once s2 was at hand"
    );
    assert!(ahead.take("s1").is_some(), "s1 was read at the start");
    // Suites not asked for, and nothing left to read.
    assert!(ahead.take("elsewhere").is_none());
    ahead.read_next(&h.store);
    assert!(ahead.take("s2").is_none());
    assert!(HeatAhead::new(Vec::new()).is_empty());
}

#[test]
fn a_read_that_fails_on_the_other_thread_is_left_to_the_trend_page() {
    let h = history(2);
    let broken_at = h.db.with_file_name("broken.db");
    let broken = Store::open(&broken_at).expect("a second store");
    rusqlite::Connection::open(&broken_at)
        .expect("open")
        .execute_batch("PRAGMA foreign_keys = OFF; DROP TABLE runs;")
        .expect("break the store");
    assert!(
        HeatHistory::read(&broken, SUITE).is_err(),
        "reads fail there"
    );
    let ahead = HeatAhead::new(vec![SUITE.to_owned()]);
    ahead.read_next(&broken);
    assert!(
        ahead.take(SUITE).is_none(),
        "the trend page reads it itself"
    );
    assert_eq!(
        HeatHistory::read(&h.store, SUITE)
            .expect("read here")
            .runs(),
        2
    );
}

/// The index bounds the rows the trend pages read (every run's) by the window as the store
/// bounds them: the same page as from its own read, for the whole history and for a window
/// that leaves the older runs out.
#[test]
fn the_index_takes_the_trend_pages_rows_bounded_as_the_store_bounds_them() {
    use crate::model::{Metrics, ProviderMetrics, TrendQuery};
    use crate::report::html::index::build_index;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("h.db");
    let mut store = Store::open(&db).expect("store");
    for r in 0..6 {
        let id = format!("run-{r:02}");
        begin(&mut store, &db, &id, r, &results(r));
        let metrics = |provider: &str| ProviderMetrics {
            provider: provider.to_owned(),
            tag: None,
            metrics: Metrics {
                pass_rate: Some(0.5 + 0.08 * r as f64),
                ..Metrics::default()
            },
        };
        store
            .finish_run(
                &id,
                RunStatus::Complete,
                &started(r + 1),
                &[metrics("p-a"), metrics("p-b")],
                &[],
            )
            .expect("finish");
    }
    let read: HashMap<String, Vec<crate::model::TrendRow>> = HashMap::from([(
        SUITE.to_owned(),
        store
            .trend(&TrendQuery {
                suite: SUITE,
                since: None,
                tags: true,
                full: true,
            })
            .expect("trend")
            .into_iter()
            .filter(|r| r.tag.is_none())
            .collect(),
    )]);
    let t = engine_of(&TREND_TEMPLATES).expect("templates");
    let suites = [SUITE.to_owned()];
    let mut pages = Vec::new();
    for window in ["all", "3h"] {
        let opts = Options {
            window: Window::parse(window).expect("window"),
            // Two runs (10:00 and 11:00) started in the last 3 hours.
            now: chrono::DateTime::parse_from_rfc3339("2024-05-01T12:30:00Z")
                .expect("now")
                .with_timezone(&chrono::Utc),
            ..page_options()
        };
        let index = |read| {
            build_index(
                &store,
                &t,
                &suites,
                &HashMap::new(),
                &opts,
                &HashMap::new(),
                read,
            )
            .expect("index")
        };
        let taken = index(&read);
        assert_eq!(taken, index(&HashMap::new()), "window {window}");
        pages.push(taken);
    }
    assert_ne!(pages[0], pages[1], "the window leaves runs out");
}
