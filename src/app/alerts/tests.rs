use chrono::Utc;
use serde_json::{Value, json};

use super::after_run;
use crate::app::report::tests::{history, store_run};
use crate::store::Store;

/// The alert step of a run that regressed, after three that did not.
fn regressed() -> Vec<Value> {
    let (dir, ctx, project, _) = history(3);
    let db = dir.path().join("h.db");
    let mut store = Store::open(&db).expect("store");
    let files = crate::app::suite_files(&ctx, &project, &[]).expect("files");
    let (loaded, _) = crate::suite::load_suites(&files, &project);
    let mut suite = loaded.into_iter().find(|s| s.name == "s").expect("s");
    suite.alerts = vec![
        json!({"metric": "pass_rate", "drop": 0.05, "baseline": "trailing:3", "severity": "critical"}),
        json!({"metric": "latency_p95_ms", "ratio": 3.0, "severity": "warning"}),
        json!({"metric": "missed_run", "after": "26h", "severity": "critical"}),
    ];
    let info = store_run(&mut store, &db, &suite, "bad", Utc::now(), |i| i % 2 == 0);
    let metrics = store.run_metrics(&info.run_id).expect("metrics");
    let outcome = after_run(
        &ctx,
        &mut store,
        &project,
        &suite,
        &info,
        &metrics,
        crate::cli::Severity::Critical,
    )
    .expect("alerts");
    assert!(outcome.fail, "the drop fires at critical");
    outcome.alerts
}

#[test]
fn a_regressed_run_fires_the_pass_rate_drop_with_its_flips() {
    let alerts = regressed();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["metric"], "pass_rate");
    assert!(alerts[0]["flipped"].as_u64().is_some_and(|n| n > 0));
}
