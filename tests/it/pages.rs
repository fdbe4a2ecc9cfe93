//! What the pages show and leave behind: run pages (context, flagged spans, alerts, control
//! bytes), the files a resumed run leaves, the alert history, and the layout at phone and
//! desktop widths in headless Chromium.

use std::path::Path;
use std::time::Duration;

use evalwatch::store::Store;

use crate::support::{Project, code, json_runs, signal, stderr};

/// A suite of `n` cases whose exec provider sleeps `secs` per call, one call at a time.
fn slow_suite(p: &Project, n: usize, secs: &str) {
    use std::fmt::Write as _;
    let mut cases = String::new();
    for i in 0..n {
        let _ = writeln!(cases, "  - {{id: c{i}, vars: {{q: q{i}}}, expected: Q{i}}}");
    }
    p.write(
        "suites/slow.yaml",
        &format!(
            "suite: slow\nproviders:\n  - id: x\n    type: exec\n    concurrency: 1\n    command: [sh, -c, 'sleep {secs}; tr a-z A-Z']\nprompt: \"{{{{ q }}}}\"\ncases:\n{cases}"
        ),
    );
}

/// The id of the only run of `slow` once the store holds at least `n` of its results.
fn wait_for_results(p: &Project, n: u64) -> String {
    // A guard against a run that never progresses, not a bound on how fast it goes.
    for _ in 0..3000 {
        std::thread::sleep(Duration::from_millis(100));
        let Ok(store) = Store::open(&p.db()) else {
            continue;
        };
        let Ok(rows) = store.runs(Some("slow"), 1) else {
            continue;
        };
        let Some(row) = rows.first() else { continue };
        let mut count = 0;
        if store
            .for_each_result(&row.info.run_id, |_| {
                count += 1;
                Ok(())
            })
            .is_ok()
            && count >= n
        {
            return row.info.run_id.clone();
        }
    }
    panic!("the run stored fewer than {n} results");
}

fn names_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A killed run leaves its file of rows; resuming it to its end removes it then, not at the
/// next `report`.
#[test]
fn a_resumed_run_leaves_no_file_of_rows_behind() {
    let p = Project::new();
    slow_suite(&p, 12, "0.1");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("evalwatch"))
        .current_dir(p.path())
        .args(["run"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let run_id = wait_for_results(&p, 3);
    signal(child.id(), "-KILL");
    let _ = child.wait();
    let runs = p.path().join("reports/runs");
    assert!(
        names_in(&runs).iter().any(|n| n.contains(".rows")),
        "the killed run left its rows: {:?}",
        names_in(&runs)
    );
    let out = p.run(&["run", "--resume", &run_id, "--format", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json_runs(&out)[0]["status"], "complete");
    let left: Vec<String> = names_in(&runs)
        .into_iter()
        .filter(|n| n.starts_with('.') || n.contains(".tmp"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(
        runs.join(format!("{run_id}.html")).exists(),
        "the resumed run's page"
    );
}
