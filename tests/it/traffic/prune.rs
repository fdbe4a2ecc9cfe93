//! `prune` applies `retention`: old minutes go, their hours and days stay, so longer windows
//! keep their figures; `--dry-run` removes nothing.

use super::ingest::{SALT, dump, generated_log, source_config};
use crate::support::{Project, code, stderr, stdout};

/// A source keeping records a day, minutes 2 days and hours 30, with 200 records (half a
/// second apart) ingested from the start of the hour `days` days ago; that start.
fn ingested_days_ago(days: i64) -> (Project, i64) {
    let p = Project::new();
    let config = source_config("100%").replace(
        "    monitor:",
        "    retention: {records: 1d, minute: 2d, hour: 30d, day: forever}\n    monitor:",
    );
    p.write("evalwatch.yaml", &config);
    let start = (chrono::Utc::now().timestamp() - days * 86_400) / 3600 * 3600;
    p.write("logs/a.jsonl", &generated_log(start, 200));
    let out = p
        .cmd()
        .env("EVALWATCH_TRAFFIC_SALT", SALT)
        .args(["ingest"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    (p, start)
}

#[test]
fn prune_removes_what_retention_says_and_longer_windows_keep_their_figures() {
    let (p, _) = ingested_days_ago(3);
    let before = dump(&p);
    let dry = p.run(&["prune", "--dry-run", "--format", "json"]);
    assert_eq!(code(&dry), 0, "{}", stderr(&dry));
    let j: serde_json::Value = serde_json::from_str(stdout(&dry).trim()).unwrap();
    let s = &j["sources"][0];
    assert_eq!(
        (s["records"].as_u64(), s["keys"].as_u64()),
        (Some(200), Some(200)),
        "{j}"
    );
    assert!(s["minute_buckets"].as_u64() > Some(0), "{j}");
    assert_eq!(
        (s["hour_buckets"].as_u64(), s["day_buckets"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(dump(&p), before, "--dry-run changed the store");
    let out = p.run(&["prune"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stdout(&out).contains("prune `bot`: removed 200 records, 200 de-duplication keys"),
        "{}",
        stdout(&out)
    );
    let conn = rusqlite::Connection::open(p.db()).unwrap();
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(count("SELECT count(*) FROM traffic_records"), 0);
    assert_eq!(
        count("SELECT count(*) FROM traffic_buckets WHERE resolution = 'minute'"),
        0
    );
    assert!(count("SELECT count(*) FROM traffic_buckets WHERE resolution = 'hour'") > 0);
    // The week still counts every request, from the hours.
    let out = p.run(&["traffic", "--window", "7d", "--format", "json"]);
    let t: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(t["current"]["volume"], 200, "{t}");
    assert_eq!(t["current"]["error_rate"], 0.05, "{t}");
    // A second prune finds nothing left to remove.
    let again = p.run(&["prune", "--format", "json"]);
    let j: serde_json::Value = serde_json::from_str(stdout(&again).trim()).unwrap();
    assert_eq!(j["sources"][0]["records"], 0);
}

#[test]
fn a_source_whose_minutes_were_pruned_reads_as_quiet_since_its_last_hour_not_as_empty() {
    let (p, ten_days_ago) = ingested_days_ago(10);
    let out = p.run(&["prune"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let conn = rusqlite::Connection::open(p.db()).unwrap();
    let minutes: i64 = conn
        .query_row(
            "SELECT count(*) FROM traffic_buckets WHERE resolution = 'minute'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(minutes, 0, "the minutes are pruned");
    // The week's window ends with the source's last hour (its newest record is known to the
    // hour now), holds every request, and says the source is quiet.
    let out = p.run(&["traffic", "--window", "7d", "--format", "json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let t: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(t["current"]["volume"], 200, "{t}");
    let last = chrono::DateTime::from_timestamp(ten_days_ago + 3540, 0).unwrap();
    let quiet = format!("no records since {}", last.format("%Y-%m-%d %H:%M UTC"));
    assert!(
        t["quiet"].as_str().is_some_and(|q| q.starts_with(&quiet)),
        "{t}"
    );
}

/// Audit D4: `traffic`, `prune --dry-run` and `mark list` read: at a `--db` that does not
/// exist they say so (exit 2), as every other read command does, and create nothing; `prune`
/// itself, which has nothing to prune there, does the same.
#[test]
fn reads_at_a_store_that_does_not_exist_refuse_and_create_nothing() {
    let p = Project::new();
    p.write("evalwatch.yaml", &source_config("100%"));
    let missing = p.path().join("nx/s.db");
    let db = missing.display().to_string();
    for (args, verb) in [
        (vec!["traffic"], "read traffic"),
        (vec!["traffic", "--format", "json"], "read traffic"),
        (vec!["prune", "--dry-run"], "prune --dry-run"),
        (vec!["prune"], "prune"),
        (vec!["prune", "--format", "json"], "prune"),
        (vec!["mark", "list"], "mark list"),
    ] {
        let mut all = vec!["--db", db.as_str()];
        all.extend(args.iter().copied());
        let out = p.run(&all);
        assert_eq!(code(&out), 2, "{args:?}: {}", stdout(&out));
        assert!(
            stderr(&out).contains(&format!("{verb}: no store at ")),
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(!missing.exists(), "{args:?} created the store");
    }
    // Once something is stored, they read it.
    let out = p
        .cmd()
        .env("EVALWATCH_TRAFFIC_SALT", SALT)
        .args(["--db", &db, "ingest"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    for args in [["traffic"], ["prune"]] {
        let mut all = vec!["--db", db.as_str()];
        all.extend(args);
        assert_eq!(code(&p.run(&all)), 0, "{args:?}");
    }
}
