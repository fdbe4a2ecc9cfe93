//! The PostgreSQL store against a real server (docs/store.md): `store migrate` both ways,
//! migrations applied once by processes starting together, leases across hosts, and the
//! password kept out of every output.
//!
//! The server is the throwaway cluster `scripts/with-pg` starts (scripts/test and .ci/run go
//! through it): its URL is in `EVALWATCH_TEST_PG`, its password in
//! `EVALWATCH_TEST_PGPASSWORD`. Each test makes its own database. Without the variable the
//! tests skip, saying so, except under CI (`CI=true`), where they fail.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use evalwatch::store::pg::{LeaseOutcome, PgLeases};

use crate::pgdb::{PgDb, fresh_db};
use crate::support::{Project, code, stderr, stdout};

/// A project with history: the shipped examples run twice, a marker, a review sheet.
fn project_with_history() -> Project {
    let p = Project::examples();
    for _ in 0..2 {
        let out = p.run(&["run"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
    let out = p.run(&["mark", "deploy", "v1.2.3"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = p.run(&["review", "sample", "--n", "2"]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    p
}

/// Every row of every table of an SQLite store, as text, sorted: two stores with the same
/// dump hold the same history.
fn dump(db: &Path) -> BTreeMap<String, Vec<String>> {
    let conn = rusqlite::Connection::open(db).expect("open");
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("tables");
    let mut out = BTreeMap::new();
    for t in tables {
        let mut st = conn
            .prepare(&format!("SELECT * FROM \"{t}\""))
            .expect("prepare");
        let n = st.column_count();
        let mut rows: Vec<String> = st
            .query_map([], |r| {
                (0..n)
                    .map(|i| r.get_ref(i).map(|v| format!("{v:?}")))
                    .collect::<Result<Vec<_>, _>>()
                    .map(|cells| cells.join("|"))
            })
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        rows.sort();
        out.insert(t, rows);
    }
    out
}

fn all_output(o: &Output) -> String {
    format!("{}{}", stdout(o), stderr(o))
}

#[test]
fn pg_store_migrate_copies_a_history_there_and_back_unchanged() {
    let Some(db) = fresh_db("round_trip") else {
        return;
    };
    let p = project_with_history();
    let before = dump(&p.db());
    assert!(before["results"].len() >= 6, "the history has results");
    assert!(
        !before["review_items"].is_empty(),
        "the history has a review sheet"
    );
    let migrate = |from: &str, to: &str| {
        p.cmd()
            .env("PGPASSWORD", &db.password)
            .args(["store", "migrate", "--from", from, "--to", to])
            .output()
            .expect("run")
    };

    let out = migrate("evalwatch.db", &db.url);
    assert_eq!(code(&out), 0, "{}", all_output(&out));
    let first = stdout(&out);
    assert!(
        first.contains("verified: row counts match, results sha256:"),
        "{first}"
    );
    let rows: usize = before.values().map(Vec::len).sum();
    assert!(
        first.contains(&format!("{rows} rows, {rows} added")),
        "{first}"
    );

    // Again: nothing added, the same checksum.
    let out = migrate("evalwatch.db", &db.url);
    assert_eq!(code(&out), 0, "{}", all_output(&out));
    assert!(
        stdout(&out).contains(&format!("{rows} rows, 0 added")),
        "{}",
        stdout(&out)
    );
    let sum = |s: &str| {
        s.split("results ")
            .nth(1)
            .map(|r| r.split(';').next().unwrap_or("").to_owned())
    };
    assert_eq!(sum(&first), sum(&stdout(&out)));

    // Back into a new SQLite file: the same rows in every table, and a store that works.
    let out = migrate(&db.url, "back.db");
    assert_eq!(code(&out), 0, "{}", all_output(&out));
    assert_eq!(dump(&p.path().join("back.db")), before);
    let runs = |file: &str| stdout(&p.run(&["--db", file, "runs", "--format", "json"]));
    assert_eq!(runs("back.db"), runs("evalwatch.db"));

    // The copy on PostgreSQL answers the same SQL (the views included).
    let mut client = db.client();
    let n: i64 = client
        .query_one("SELECT count(*) FROM result_rows", &[])
        .expect("query")
        .get(0);
    assert_eq!(n as usize, before["results"].len());
    let assertions: i64 = client
        .query_one("SELECT count(*) FROM assertion_rows", &[])
        .expect("query")
        .get(0);
    let conn = rusqlite::Connection::open(p.db()).expect("open");
    let lite: i64 = conn
        .query_row("SELECT count(*) FROM assertion_rows", [], |r| r.get(0))
        .expect("query");
    assert_eq!(assertions, lite);
    // Keys continue after the copied ones: a new row gets the next id, not a copied one's.
    let max: i64 = client
        .query_one("SELECT max(id) FROM prompts", &[])
        .expect("query")
        .get(0);
    let next: i64 = client
        .query_one(
            "INSERT INTO prompts (hash, text) VALUES ('\\x00', 'new') RETURNING id",
            &[],
        )
        .expect("insert after the copy")
        .get(0);
    assert_eq!(next, max + 1);
}

#[test]
fn pg_store_migrate_finishes_a_copy_cut_short_and_refuses_another_level() {
    let Some(db) = fresh_db("partial") else {
        return;
    };
    let p = project_with_history();
    let pw = [("PGPASSWORD", db.password.as_str())];
    let migrate = |args: &[&str]| {
        p.cmd()
            .envs(pw)
            .args(["store", "migrate"])
            .args(args)
            .output()
            .expect("run")
    };
    let out = migrate(&["--from", "evalwatch.db", "--to", &db.url, "--batch", "2"]);
    assert_eq!(code(&out), 0, "{}", all_output(&out));
    // Cut short: half the results and a whole table gone; the next run puts them back.
    let mut client = db.client();
    client
        .batch_execute(
            "DELETE FROM review_grades; DELETE FROM review_items;
             DELETE FROM results WHERE seq % 2 = 0 AND id NOT IN (SELECT result_id FROM review_items)",
        )
        .expect("delete");
    let out = migrate(&["--from", "evalwatch.db", "--to", &db.url, "--batch", "2"]);
    assert_eq!(code(&out), 0, "{}", all_output(&out));
    let there = |client: &mut postgres::Client, t: &str| -> i64 {
        client
            .query_one(&format!("SELECT count(*) FROM {t}"), &[])
            .expect("count")
            .get(0)
    };
    let conn = rusqlite::Connection::open(p.db()).expect("open");
    let here = |t: &str| -> i64 {
        conn.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
            .expect("count")
    };
    for t in ["results", "review_items", "runs"] {
        assert_eq!(there(&mut client, t), here(t), "{t}");
    }
    assert!(
        stdout(&out).contains("added by this run"),
        "{}",
        stdout(&out)
    );

    // A target at another migration level is refused (exit 2), nothing copied.
    let Some(other) = fresh_db("level") else {
        return;
    };
    let target = other.target();
    evalwatch::store::pg::schema::migrate(&mut other.client(), target.shown(), 5)
        .expect("migrate to 5");
    let out = migrate(&["--from", "evalwatch.db", "--to", &other.url]);
    assert_eq!(code(&out), 2, "{}", all_output(&out));
    assert!(
        stderr(&out).contains("its migration level is 5"),
        "{}",
        stderr(&out)
    );
    assert_eq!(there(&mut other.client(), "runs"), 0);

    // Two SQLite files, or two PostgreSQL stores, are not this command's job.
    let out = migrate(&["--from", "evalwatch.db", "--to", "copy.db"]);
    assert_eq!(code(&out), 2, "{}", all_output(&out));
    assert!(stderr(&out).contains(".backup"), "{}", stderr(&out));
}

#[test]
fn pg_three_processes_migrate_one_empty_database_at_once() {
    let Some(db) = fresh_db("together") else {
        return;
    };
    let p = project_with_history();
    let bin = assert_cmd::cargo::cargo_bin("evalwatch");
    let children: Vec<_> = (0..3)
        .map(|_| {
            std::process::Command::new(&bin)
                .current_dir(p.path())
                .env("PGPASSWORD", &db.password)
                .env("NO_COLOR", "1")
                .args([
                    "store",
                    "migrate",
                    "--from",
                    "evalwatch.db",
                    "--to",
                    &db.url,
                ])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert_eq!(code(&out), 0, "{}", all_output(&out));
    }
    let mut client = db.client();
    let versions: Vec<i64> = client
        .query(
            "SELECT version FROM evalwatch_migrations ORDER BY version",
            &[],
        )
        .expect("query")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let known = i64::from(evalwatch::store::SCHEMA_VERSION);
    assert_eq!(
        versions,
        (1..=known).collect::<Vec<_>>(),
        "each migration applied once"
    );
    let conn = rusqlite::Connection::open(p.db()).expect("open");
    let here: i64 = conn
        .query_row("SELECT count(*) FROM results", [], |r| r.get(0))
        .expect("count");
    let there: i64 = client
        .query_one("SELECT count(*) FROM results", &[])
        .expect("count")
        .get(0);
    assert_eq!(here, there, "each result copied once");
}

/// A store opened at its level with this evalwatch's functions is left alone (no lock, no
/// write); functions missing or of another version are installed again on the next open.
#[test]
fn pg_functions_are_installed_again_only_when_missing_or_of_another_version() {
    let Some(db) = fresh_db("functions") else {
        return;
    };
    let p = project_with_history();
    let runs = |p: &Project| {
        let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("evalwatch"))
            .current_dir(p.path())
            .env("PGPASSWORD", &db.password)
            .env("NO_COLOR", "1")
            .args(["--db", &db.url, "runs"])
            .output()
            .expect("run evalwatch");
        assert_eq!(code(&out), 0, "{}", all_output(&out));
    };
    runs(&p);
    let mut client = db.client();
    let mark = |client: &mut postgres::Client| -> Option<String> {
        client
            .query_one(
                "SELECT obj_description(to_regprocedure('julianday(text)'), 'pg_proc')",
                &[],
            )
            .expect("mark")
            .get(0)
    };
    let installed = mark(&mut client).expect("the functions are marked");
    assert!(installed.starts_with("evalwatch functions "), "{installed}");
    // Opened again: nothing redefined (a function's row keeps its transaction id).
    let xmin = |client: &mut postgres::Client| -> String {
        client
            .query_one(
                "SELECT xmin::text FROM pg_proc WHERE oid = to_regprocedure('json_extract(text, text)')",
                &[],
            )
            .expect("xmin")
            .get(0)
    };
    let before = xmin(&mut client);
    runs(&p);
    assert_eq!(xmin(&mut client), before, "left alone when current");
    // Another version's functions, one of them gone: installed again.
    client
        .batch_execute(
            "COMMENT ON FUNCTION julianday(text) IS 'evalwatch functions 0000';
             DROP FUNCTION json_extract(text, text)",
        )
        .expect("age the functions");
    runs(&p);
    assert_eq!(mark(&mut client).as_deref(), Some(installed.as_str()));
    let back: bool = client
        .query_one(
            "SELECT to_regprocedure('json_extract(text, text)') IS NOT NULL",
            &[],
        )
        .expect("query")
        .get(0);
    assert!(back, "json_extract defined again");
}

#[test]
fn pg_password_never_appears_in_any_output() {
    let Some(db) = fresh_db("secret") else { return };
    let p = project_with_history();
    let secret = db.password.clone();
    let with_pw = db.url_with_password();
    let wrong = with_pw.replace(&secret, "Wr0ng-Pa55word");
    let clean = |out: &Output, word: &str| {
        let all = all_output(out);
        assert!(
            !all.contains(word),
            "the password reached the output:\n{all}"
        );
    };

    // In the URL: it connects, and neither progress nor summary shows it.
    let out = p.run(&[
        "-v",
        "store",
        "migrate",
        "--from",
        "evalwatch.db",
        "--to",
        &with_pw,
    ]);
    assert_eq!(code(&out), 0, "{}", all_output(&out));
    clean(&out, &secret);
    assert!(
        stdout(&out).contains(&db.url),
        "shown without the password: {}",
        stdout(&out)
    );

    // A wrong one: the server refuses (exit 3), the message names the store, not the password.
    let out = p.run(&["store", "migrate", "--from", "evalwatch.db", "--to", &wrong]);
    assert_eq!(code(&out), 3, "{}", all_output(&out));
    clean(&out, "Wr0ng-Pa55word");
    assert!(
        stderr(&out).contains("password authentication failed"),
        "{}",
        stderr(&out)
    );

    // From the environment, and from a password file; none at all is refused by the server.
    let home = tempfile::tempdir().expect("tempdir");
    let pgpass = home.path().join(".pgpass");
    let addr = db.url.trim_start_matches("postgres://evalwatch@");
    let (hostport, dbname) = addr.split_once('/').expect("host/db");
    let (host, port) = hostport.split_once(':').expect("host:port");
    std::fs::write(
        &pgpass,
        format!("{host}:{port}:{dbname}:evalwatch:{secret}\n"),
    )
    .expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let back = |env: &[(&str, &str)], file: &str| {
        p.cmd()
            .env_remove("PGPASSWORD")
            .env_remove("PGPASSFILE")
            .env("HOME", home.path())
            .envs(env.iter().copied())
            .args(["store", "migrate", "--from", &db.url, "--to", file])
            .output()
            .expect("run")
    };
    let out = back(&[("PGPASSWORD", &secret)], "env.db");
    assert_eq!(code(&out), 0, "{}", all_output(&out));
    clean(&out, &secret);
    let out = back(&[], "file.db");
    assert_eq!(code(&out), 0, "{}", all_output(&out));
    clean(&out, &secret);
    std::fs::remove_file(&pgpass).expect("rm");
    let out = back(&[], "none.db");
    assert_eq!(code(&out), 3, "{}", all_output(&out));

    // The traffic commands, given the store by --db or EVALWATCH_DB, work on PostgreSQL
    // (crate::pg_traffic compares them with SQLite), without showing the password.
    let out = p.run(&["--db", &with_pw, "ingest"]);
    assert_eq!(code(&out), 0, "{}", all_output(&out));
    clean(&out, &secret);
    let out = p
        .cmd()
        .env("EVALWATCH_DB", &with_pw)
        .args(["traffic", "--format", "json"])
        .output()
        .expect("run");
    assert_eq!(code(&out), 0, "{}", all_output(&out));
    clean(&out, &secret);
    assert!(
        stdout(&out).contains("support-bot-prod"),
        "{}",
        all_output(&out)
    );
    let config = std::fs::read_to_string(p.path().join("evalwatch.yaml")).expect("read");
    let config = config
        .lines()
        .map(|l| {
            if l.starts_with("store:") {
                format!("store: {with_pw}")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    p.write("evalwatch.yaml", &format!("{config}\n"));
    let runs_before = dump(&p.db())["runs"].len();
    let pg_runs = |db: &PgDb| -> i64 {
        db.client()
            .query_one("SELECT count(*) FROM runs", &[])
            .expect("count")
            .get(0)
    };
    let pg_before = pg_runs(&db);
    let out = p.run(&["run"]);
    assert_eq!(code(&out), 0, "{}", all_output(&out));
    clean(&out, &secret);
    assert_eq!(
        dump(&p.db())["runs"].len(),
        runs_before,
        "the run went to PostgreSQL, not to the SQLite file"
    );
    assert!(pg_runs(&db) > pg_before, "the runs are in PostgreSQL");

    // The history read back from PostgreSQL, and its pages, without the password.
    for args in [&["runs"][..], &["report", "--since", "all"]] {
        let out = p.run(args);
        assert_eq!(code(&out), 0, "{args:?}: {}", all_output(&out));
        clean(&out, &secret);
    }
    let out = p.run(&["runs", "--limit", "0", "--format", "json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let listed = rows.as_array().map_or(0, Vec::len);
    let listed = i64::try_from(listed).expect("a count");
    assert_eq!(listed, pg_runs(&db), "every run of PostgreSQL listed");
    let mut dirs = vec![p.path().join("reports")];
    let mut pages = 0;
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).expect("pages") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let text = std::fs::read_to_string(&path).expect("read page");
                assert!(!text.contains(&secret), "{}: the password", path.display());
                pages += 1;
            }
        }
    }
    assert!(pages > 3, "the pages were written");
}

#[test]
fn pg_leases_hold_across_three_hosts_and_a_dead_holder_is_recovered_by_time() {
    let Some(db) = fresh_db("leases") else { return };
    let target = db.target();
    evalwatch::store::pg::schema::migrate(
        &mut db.client(),
        target.shown(),
        evalwatch::store::SCHEMA_VERSION,
    )
    .expect("migrate");
    db.client()
        .batch_execute("CREATE TABLE lease_check (id INT PRIMARY KEY, n BIGINT NOT NULL); INSERT INTO lease_check VALUES (1, 0)")
        .expect("check table");

    // A dead holder: host-a takes the lease and never renews or releases it.
    let long = Duration::from_secs(3600);
    let mut a = PgLeases::connect(&target, "host-a").expect("connect");
    let mut b = PgLeases::connect(&target, "host-b").expect("connect");
    let LeaseOutcome::Acquired(held) = a.acquire("nightly", "tok-a", 11, long).expect("acquire")
    else {
        panic!("a free lease was not taken");
    };
    match b.acquire("nightly", "tok-b", 22, long).expect("acquire") {
        LeaseOutcome::Held { host, pid, .. } => assert_eq!((host.as_str(), pid), ("host-a", 11)),
        LeaseOutcome::Acquired(_) => panic!("host-b took a lease host-a holds"),
    }
    // Its lease ran out (a lease time of zero: already expired): host-b recovers it.
    assert!(a.renew(&held, Duration::ZERO).expect("renew"));
    drop(a);
    let LeaseOutcome::Acquired(taken) = b.acquire("nightly", "tok-b", 22, long).expect("acquire")
    else {
        panic!("an expired lease was not recovered");
    };
    // The old holder, back, has lost it: it can neither renew nor release host-b's lease.
    let mut a = PgLeases::connect(&target, "host-a").expect("connect");
    assert!(
        !a.renew(&held, long).expect("renew"),
        "a lost lease renewed"
    );
    assert!(!a.release(&held).expect("release"), "a lost lease released");
    assert!(b.release(&taken).expect("release"));
    drop(a);

    // Three hosts contend for one suite: whoever holds the lease does a read-modify-write
    // that loses updates unless it is alone; every taking is counted.
    let taken = std::sync::Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = ["host-a", "host-b", "host-c"]
        .into_iter()
        .enumerate()
        .map(|(i, host)| {
            let target = target.clone();
            let taken = taken.clone();
            std::thread::spawn(move || {
                let mut leases = PgLeases::connect(&target, host).expect("connect");
                let mut mine = 0;
                for round in 0..150 {
                    let token = format!("{host}-{round}");
                    let LeaseOutcome::Acquired(lease) = leases
                        .acquire("contended", &token, i as u32, long)
                        .expect("acquire")
                    else {
                        std::thread::yield_now();
                        continue;
                    };
                    let c = leases.client();
                    let n: i64 = c
                        .query_one("SELECT n FROM lease_check WHERE id = 1", &[])
                        .expect("read")
                        .get(0);
                    std::thread::yield_now();
                    c.execute("UPDATE lease_check SET n = $1 WHERE id = 1", &[&(n + 1)])
                        .expect("write");
                    assert!(
                        leases.release(&lease).expect("release"),
                        "{host} lost a lease it held"
                    );
                    mine += 1;
                }
                taken.fetch_add(mine, Ordering::SeqCst);
                mine
            })
        })
        .collect();
    let per_host: Vec<usize> = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .collect();
    let total = taken.load(Ordering::SeqCst);
    let n: i64 = db
        .client()
        .query_one("SELECT n FROM lease_check WHERE id = 1", &[])
        .expect("read")
        .get(0);
    assert!(total > 0, "no host ever took the lease: {per_host:?}");
    assert_eq!(
        n as usize, total,
        "two hosts held the lease at once: {per_host:?}"
    );
}

#[test]
fn pg_values_of_every_kind_read_back_through_the_store_interface() {
    use evalwatch::store::db::{Db, PgConn, Value};
    let Some(db) = fresh_db("values") else {
        return;
    };
    let (conn, ()) = PgConn::connect(&db.target(), |_| Ok::<_, evalwatch::store::pg::PgError>(()))
        .expect("connect");
    let conn = Db::Pg(Box::new(conn));
    conn.execute_batch("CREATE TABLE t (i BIGINT, r DOUBLE PRECISION, s TEXT, b BYTEA)")
        .expect("create");
    for i in 1..=3i64 {
        conn.execute(
            "INSERT INTO t (i, r, s, b) VALUES (?1, ?2, ?3, ?4)",
            &[&i as &dyn Value, &0.5, &format!("s{i}"), &vec![7u8]] as &[&dyn Value],
        )
        .expect("insert");
    }
    // sum and avg of BIGINT are NUMERIC on PostgreSQL; counts BIGINT; comparisons BOOLEAN.
    let got: (i64, f64, i64, bool, String, Vec<u8>) = conn
        .query_row(
            "SELECT sum(i), avg(i), count(*), max(i) > ?1, min(s), (SELECT b FROM t LIMIT 1) FROM t",
            [2i64],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )
        .expect("read");
    assert_eq!(got, (6, 2.0, 3, true, "s1".to_owned(), vec![7]));
    let fraction: f64 = conn
        .query_row("SELECT CAST(1.25 AS NUMERIC(10, 2))", (), |r| r.get(0))
        .expect("numeric");
    assert!((fraction - 1.25).abs() < 1e-12, "{fraction}");
}

/// A suite `faq` of the given `(id, hash)` cases, for writing runs through the library.
fn faq_suite(cases: &[(&str, &str)]) -> evalwatch::model::Suite {
    use evalwatch::model::{Case, Location, PromptTemplate, Suite};
    Suite {
        name: "faq".to_owned(),
        description: None,
        tags: Vec::new(),
        schedule: None,
        timezone: None,
        catch_up: None,
        jitter: None,
        source: "suites/faq.yaml".into(),
        providers: Vec::new(),
        system: None,
        prompt: PromptTemplate::Text("Q: {{ q }}".to_owned()),
        repeat: 1,
        repeat_policy: evalwatch::model::RepeatPolicy::All,
        cases: cases
            .iter()
            .map(|(id, hash)| Case {
                id: (*id).to_owned(),
                tags: vec!["billing".to_owned()],
                vars: evalwatch::model::Vars::new(),
                expected: None,
                context: Vec::new(),
                asserts: Vec::new(),
                threshold: None,
                repeat_policy: None,
                hash: (*hash).to_owned(),
                location: Location::default(),
            })
            .collect(),
        gates: Vec::new(),
        alerts: Vec::new(),
        review: None,
        hash: "faq-hash".to_owned(),
        named_metrics: std::collections::BTreeSet::new(),
        settings: std::collections::BTreeMap::new(),
    }
}

/// Run `r1` of suite `faq` on provider `p-a`, begun, of `planned` results.
fn faq_run(planned: u64) -> evalwatch::model::RunInfo {
    evalwatch::model::RunInfo {
        run_id: "r1".to_owned(),
        suite: "faq".to_owned(),
        suite_hash: "faq-hash".to_owned(),
        started_at: "2024-05-01T06:00:00Z".to_owned(),
        finished_at: None,
        status: evalwatch::model::RunStatus::Running,
        providers: vec!["p-a".to_owned()],
        planned,
        filter: None,
    }
}

/// A passing result of case `id` at version `hash`, number `seq` of the run.
fn faq_result(seq: usize, id: &str, hash: &str, tags: &[&str]) -> evalwatch::model::ResultRecord {
    use evalwatch::model::{CaseStatus, Job, ResultRecord};
    ResultRecord {
        job: Job {
            seq,
            case_index: seq,
            case_id: id.to_owned(),
            provider_index: 0,
            provider_id: "p-a".to_owned(),
            sample: 0,
            case: evalwatch::model::CaseRef::default(),
        },
        case_hash: hash.to_owned(),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        prompt: format!("Q: {id}"),
        status: CaseStatus::Passed,
        score: Some(1.0),
        output: Some(format!("output {seq}")),
        error: None,
        error_kind: None,
        latency_ms: Some(10.0),
        tokens_in: Some(5),
        tokens_out: Some(7),
        cost_usd: None,
        finish_reason: Some("stop".to_owned()),
        output_bytes: None,
        truncated: false,
        attempts: 1,
        assertions: Vec::new(),
        label: None,
        // Every answer reports its model, as OpenAI's do: the writer counts them.
        reported: Some(evalwatch::model::ReportedModel {
            model: "m-1".to_owned(),
            fingerprint: None,
        }),
    }
}

#[test]
fn pg_writer_stores_results_of_case_versions_the_run_did_not_register() {
    use evalwatch::store::db::{Db, PgConn, PgPending};
    use evalwatch::store::pg::results::{CaseKey, case_rows};
    use evalwatch::store::{Store, Writer};
    let Some(db) = fresh_db("writer_cases") else {
        return;
    };
    let url = db.url_with_password();
    let at = Path::new(&url);
    let mut store = Store::open(at).expect("open the store");
    let run = faq_run(7);
    store
        .begin_run(&run, &faq_suite(&[("c0", "h0"), ("c1", "h1")]), 1, "host-a")
        .expect("begin the run");
    // Registered versions, a version of c1 edited since, a case the run did not know, and
    // both again in a later batch (then found, not added twice); in that batch, a result
    // whose tags are not its case version's (its row is not the usual one).
    let sent = vec![
        faq_result(0, "c0", "h0", &["billing"]),
        faq_result(1, "c1", "h1-edited", &["billing"]),
        faq_result(2, "c-new", "h-new", &["fresh"]),
        faq_result(3, "c1", "h1", &["billing"]),
        faq_result(4, "c0", "h0", &["billing", "urgent"]),
        faq_result(5, "c-new", "h-new", &["fresh"]),
        faq_result(6, "c1", "h1-edited", &["billing"]),
    ];
    let writer = Writer::spawn(at, "r1", 3).expect("start the writer");
    for r in &sent {
        writer.send(r.clone()).expect("send");
    }
    let stats = writer.finish().expect("finish");
    assert_eq!(stats.written, 7);

    let mut got = Vec::new();
    store
        .for_each_result("r1", |r| {
            got.push(r);
            Ok(())
        })
        .expect("read back");
    // The reported version is counted per run (`Store::run_versions`), not kept with the result.
    let sent: Vec<_> = sent
        .into_iter()
        .map(|r| evalwatch::model::ResultRecord {
            reported: None,
            ..r
        })
        .collect();
    assert_eq!(
        got, sent,
        "every result read back with its case version and tags"
    );
    let mut client = db.client();
    let versions: Vec<(String, String, String)> = client
        .query(
            "SELECT case_id, hash, tags FROM cases ORDER BY case_id, hash",
            &[],
        )
        .expect("cases")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let want = |c: &str, h: &str, t: &str| (c.to_owned(), h.to_owned(), t.to_owned());
    assert_eq!(
        versions,
        vec![
            want("c-new", "h-new", r#"["fresh"]"#),
            want("c0", "h0", r#"["billing"]"#),
            want("c1", "h1", r#"["billing"]"#),
            want("c1", "h1-edited", r#"["billing"]"#),
        ]
    );

    // The batch lookup itself: known versions found, missing ones added, each once.
    let (conn, ()) = PgConn::connect(&db.target(), |_| Ok::<_, evalwatch::store::pg::PgError>(()))
        .expect("connect");
    let conn = Db::Pg(Box::new(conn));
    let suite_ref: i64 = client
        .query_one("SELECT id FROM suites WHERE name = 'faq'", &[])
        .expect("suite")
        .get(0);
    let key = |c: &str, h: &str| CaseKey {
        case_id: c.to_owned(),
        hash: h.to_owned(),
        tags: r#"["t"]"#.to_owned(),
    };
    let now = "2024-05-02T06:00:00Z".to_owned();
    let mut rows = case_rows(
        &conn,
        suite_ref,
        vec![key("c0", "h0"), key("c2", "h2"), key("c3", "h3")],
        now.clone(),
    )
    .and_then(PgPending::wait)
    .expect("case rows");
    rows.sort_by(|a, b| a.1.cmp(&b.1));
    let named: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|(_, c, h, t)| (c.as_str(), h.as_str(), t.as_str()))
        .collect();
    assert_eq!(
        named,
        vec![
            ("c0", "h0", r#"["billing"]"#),
            ("c2", "h2", r#"["t"]"#),
            ("c3", "h3", r#"["t"]"#)
        ]
    );
    let again = case_rows(&conn, suite_ref, vec![key("c2", "h2")], now)
        .and_then(PgPending::wait)
        .expect("again");
    assert_eq!(again.len(), 1);
    assert_eq!(
        again[0].0, rows[1].0,
        "the version added is found, not added twice"
    );
    let stored: i64 = client
        .query_one("SELECT count(*) FROM cases", &[])
        .expect("count")
        .get(0);
    assert_eq!(stored, 6);
}

/// Begin run `r1` of `results` results in the store at `at`, its suite of `n` cases
/// (`c{i}`, version `h{i}`); the cases.
fn begin_faq_run(at: &Path, n: usize, results: i64) -> Vec<(String, String)> {
    use evalwatch::store::Store;
    let cases: Vec<(String, String)> = (0..n).map(|i| (format!("c{i}"), format!("h{i}"))).collect();
    let named: Vec<(&str, &str)> = cases
        .iter()
        .map(|(c, h)| (c.as_str(), h.as_str()))
        .collect();
    Store::open(at)
        .expect("open the store")
        .begin_run(
            &faq_run(results.unsigned_abs()),
            &faq_suite(&named),
            1,
            "host-a",
        )
        .expect("begin the run");
    cases
}

/// Send `n` results to `writer`, the cases in turn (tagged `billing`).
fn send_faq_results(writer: &evalwatch::store::Writer, cases: &[(String, String)], n: i64) {
    for seq in 0..usize::try_from(n).expect("a count") {
        let (c, h) = &cases[seq % cases.len()];
        writer
            .send(faq_result(seq, c, h, &["billing"]))
            .expect("send");
    }
}

#[test]
fn pg_writer_whose_second_connection_is_killed_mid_run_stores_every_result_once() {
    use evalwatch::store::Writer;
    const N: i64 = 20_000;
    let Some(db) = fresh_db("writer_side_killed") else {
        return;
    };
    let url = db.url_with_password();
    let at = Path::new(&url);
    // Many cases, so that each batch has case versions and prompts to ask for.
    let cases = begin_faq_run(at, 5_000, N);

    let writer = Writer::spawn(at, "r1", 50).expect("start the writer");
    let killer = side_killer(&db, N, |_| {});
    send_faq_results(&writer, &cases, N);
    let stats = writer
        .finish()
        .expect("the writer finishes after connecting again");
    let (stored_then, others) = killer.join().expect("killer");
    assert!(
        stored_then < N,
        "terminated mid-run ({stored_then} of {N} stored then)"
    );
    assert!(
        matches!(&others[..], [q] if is_batch_statement(q)),
        "the batches were copied on the writer's other connection: {others:?}"
    );
    assert_eq!(stats.written, N.unsigned_abs());
    let mut client = db.client();
    let row = client
        .query_one(
            "SELECT count(*), count(DISTINCT id), min(seq), max(seq),
                    count(DISTINCT prompt_ref), count(DISTINCT case_ref)
             FROM results",
            &[],
        )
        .expect("count");
    let got: (i64, i64, i64, i64) = (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(got, (N, N, 0, N - 1), "every result once");
    let prompts: i64 = client
        .query_one("SELECT count(*) FROM prompts", &[])
        .expect("prompts")
        .get(0);
    assert_eq!(prompts, 5_000, "each prompt stored once");
    assert_eq!(
        row.get::<_, i64>(4),
        5_000,
        "each result refers to its prompt"
    );
    assert_eq!(row.get::<_, i64>(5), 5_000, "and to its case version");
}

/// The writer's connections to the test's database and the statement each ran last.
fn writer_backends(client: &mut postgres::Client) -> Vec<(i32, String)> {
    client
        .query(
            "SELECT pid, query FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()
               AND backend_type = 'client backend'",
            &[],
        )
        .expect("the writer's connections")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// A thread that terminates the writer's second connection once 2,000 results are stored
/// (`first` run just before) and answers how many were stored then and the statement each
/// of the writer's other connections ran last; it stops, killing nothing, at `n` stored.
fn side_killer(
    db: &PgDb,
    n: i64,
    first: impl FnOnce(&mut postgres::Client) + Send + 'static,
) -> std::thread::JoinHandle<(i64, Vec<String>)> {
    let mut client = db.client();
    std::thread::spawn(move || {
        loop {
            let writers = writer_backends(&mut client);
            let stored: i64 = client
                .query_one("SELECT count(*) FROM results", &[])
                .expect("count")
                .get(0);
            let side = writers.iter().find(|(_, q)| is_side_statement(q));
            if let Some(&(pid, _)) = side.filter(|_| stored >= 2_000) {
                first(&mut client);
                client
                    .execute("SELECT pg_terminate_backend($1)", &[&pid])
                    .expect("terminate");
                let others: Vec<String> = writers
                    .into_iter()
                    .filter(|&(p, _)| p != pid)
                    .map(|(_, q)| q)
                    .collect();
                return (stored, others);
            }
            if stored >= n {
                return (stored, Vec::new());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    })
}

/// Whether a statement is one of a batch on the writer's first connection: its `BEGIN`,
/// the model versions its results reported, its `COPY` and its `COMMIT`.
fn is_batch_statement(query: &str) -> bool {
    let first = query.split_whitespace().next().unwrap_or("");
    ["COPY", "BEGIN", "COMMIT"].contains(&first)
        || query.contains("INSERT INTO run_version_batches")
}

/// Whether a statement is one of the writer's second connection: it stores prompts and looks
/// up case versions, the first copies.
fn is_side_statement(query: &str) -> bool {
    query.contains("INSERT INTO prompts") || query.contains("CROSS JOIN LATERAL")
}

/// A role named `prefix` and this process's id (roles belong to the cluster) that logs in
/// with a password, allowed everything on the test database's tables, holding at most
/// `limit` connections when given: an admin client of the database, the role's name and the
/// store's URL as that role (password `role-secret`).
fn password_role(
    db: &PgDb,
    prefix: &str,
    limit: Option<u32>,
) -> (postgres::Client, String, String) {
    let mut client = db.client();
    let role = format!("{prefix}_{}", std::process::id());
    let limit = limit.map_or(String::new(), |n| format!(" CONNECTION LIMIT {n}"));
    client
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {role};
             CREATE ROLE {role} LOGIN PASSWORD 'role-secret'{limit};
             GRANT ALL ON ALL TABLES IN SCHEMA public TO {role};
             GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role};"
        ))
        .expect("make the role");
    let url = db.url.replacen(
        "postgres://evalwatch@",
        &format!("postgres://{role}:role-secret@"),
        1,
    );
    (client, role, url)
}

/// Assert that the writer said one thing: opening with `opening`, with the server's refusal
/// ("too many connections") and without the role's password.
fn said_once_refused(said: &std::sync::Mutex<Vec<String>>, opening: &str) {
    let said = said.lock().expect("lock").clone();
    assert!(
        matches!(&said[..], [one] if one.starts_with(opening)
            && one.contains("too many connections")
            && !one.contains("role-secret")),
        "{said:?}"
    );
}

/// Drop a role [`password_role`] made, and what it owns.
fn drop_role(client: &mut postgres::Client, role: &str) {
    client
        .batch_execute(&format!("DROP OWNED BY {role}; DROP ROLE {role};"))
        .expect("drop the role");
}

/// A writer's outage policy that waits `wait` and keeps what it says.
fn heard_outage(
    wait: Duration,
) -> (
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    evalwatch::store::Outage,
) {
    let said = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let heard = std::sync::Arc::clone(&said);
    let outage = evalwatch::store::Outage {
        wait,
        notice: Box::new(move |text| heard.lock().expect("lock").push(text.to_owned())),
    };
    (said, outage)
}

#[test]
fn pg_writer_whose_second_connection_is_lost_for_good_says_so_once_and_stores_every_result() {
    use evalwatch::store::Writer;
    const N: i64 = 20_000;
    let Some(db) = fresh_db("writer_side_refused") else {
        return;
    };
    let cases = begin_faq_run(Path::new(&db.url_with_password()), 5_000, N);
    let (mut client, role, url) = password_role(&db, "side_lost", None);
    let (said, outage) = heard_outage(Duration::from_secs(5));
    let writer = Writer::spawn_with(Path::new(&url), "r1", 50, outage).expect("start the writer");
    let limit = format!("ALTER ROLE {role} CONNECTION LIMIT 1");
    // Just before: the server now lets the role hold only the connection it has left.
    let killer = side_killer(&db, N, move |c| {
        c.batch_execute(&limit).expect("limit the role");
    });
    send_faq_results(&writer, &cases, N);
    let stats = writer
        .finish()
        .expect("the writer finishes on its first connection");
    let (stored_then, _) = killer.join().expect("killer");
    assert!(
        stored_then < N,
        "lost mid-run ({stored_then} of {N} stored then)"
    );
    assert_eq!(stats.written, N.unsigned_abs());
    let row = client
        .query_one(
            "SELECT count(*), count(DISTINCT id), count(DISTINCT prompt_ref) FROM results",
            &[],
        )
        .expect("count");
    let got: (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(
        got,
        (N, N, 5_000),
        "every result once, each with its prompt"
    );
    let prompts: i64 = client
        .query_one("SELECT count(*) FROM prompts", &[])
        .expect("prompts")
        .get(0);
    assert_eq!(prompts, 5_000, "each prompt stored once");
    // Said once, not for every batch after; and the first connection, which still worked,
    // was not replaced (the server would have refused it: "store unreachable").
    said_once_refused(
        &said,
        "lost the second connection to the store and could not open it again (the run's results go by one, more slowly): ",
    );
    drop_role(&mut client, &role);
}

#[test]
fn pg_writer_whose_connection_is_killed_mid_run_stores_every_result_once() {
    use evalwatch::store::Writer;
    const N: i64 = 30_000;
    let Some(db) = fresh_db("writer_killed") else {
        return;
    };
    let url = db.url_with_password();
    let at = Path::new(&url);
    let cases = begin_faq_run(at, 100, N);

    // Small batches, so that one is always on its way to the server when the writer's
    // backend is terminated (the writer works one batch ahead).
    let writer = Writer::spawn(at, "r1", 50).expect("start the writer");
    let killer = {
        let mut client = db.client();
        std::thread::spawn(move || {
            loop {
                let stored: i64 = client
                    .query_one("SELECT count(*) FROM results", &[])
                    .expect("count")
                    .get(0);
                if stored >= 3_000 {
                    let killed: i64 = client
                        .query_one(
                            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                             WHERE datname = current_database() AND pid <> pg_backend_pid()
                               AND backend_type = 'client backend') AS k",
                            &[],
                        )
                        .expect("terminate")
                        .get(0);
                    return (stored, killed);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    send_faq_results(&writer, &cases, N);
    let stats = writer
        .finish()
        .expect("the writer finishes after connecting again");
    let (stored_then, killed) = killer.join().expect("killer");
    assert!(killed >= 1, "the writer's backend was terminated");
    assert!(
        stored_then < N,
        "terminated mid-run ({stored_then} of {N} stored then)"
    );
    assert_eq!(stats.written, N.unsigned_abs());
    let mut client = db.client();
    let row = client
        .query_one(
            "SELECT count(*), count(DISTINCT id), min(seq), max(seq) FROM results",
            &[],
        )
        .expect("count");
    let got: (i64, i64, i64, i64) = (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(got, (N, N, 0, N - 1), "every result once");
    // The model version each result reported is counted once too: the batch on its way
    // when the backend was terminated, written again, adds no second count.
    let versions = evalwatch::store::Store::open(at)
        .expect("open the store")
        .run_versions("r1")
        .expect("versions");
    assert_eq!(versions.len(), 1, "{versions:?}");
    assert_eq!(
        (versions[0].version.model.as_str(), versions[0].answers),
        ("m-1", N.unsigned_abs()),
        "{versions:?}"
    );
}

#[test]
fn pg_writer_that_cannot_open_its_second_connection_says_so_and_stores_every_result() {
    use evalwatch::store::Writer;
    const N: i64 = 100;
    let Some(db) = fresh_db("writer_one_connection") else {
        return;
    };
    let cases = begin_faq_run(Path::new(&db.url_with_password()), 100, N);
    // A role the server lets hold one connection at a time.
    let (mut client, role, url) = password_role(&db, "one_conn", Some(1));
    let (said, outage) = heard_outage(Duration::from_secs(60));
    // Batches of 50 come full at once: the writer tries its second connection. The run is
    // short: it ends before the server's refusal comes back, which must be said all the same.
    let writer = Writer::spawn_with(Path::new(&url), "r1", 50, outage).expect("start the writer");
    send_faq_results(&writer, &cases, N);
    let stats = writer
        .finish()
        .expect("the writer finishes on one connection");
    assert_eq!(stats.written, N.unsigned_abs());
    let stored: i64 = client
        .query_one("SELECT count(DISTINCT id) FROM results", &[])
        .expect("count")
        .get(0);
    assert_eq!(stored, N, "every result stored once");
    said_once_refused(
        &said,
        "could not open a second connection to the store (the run's results go by one, more slowly): ",
    );
    drop_role(&mut client, &role);
}

/// Runs `a`, `b` (no results) and `c` of suite `faq` in the store at `at`, with statuses
/// of every kind; the run ids.
fn three_runs_of_every_status(at: &Path) -> [&'static str; 3] {
    use evalwatch::model::CaseStatus;
    use evalwatch::store::{Store, Writer};
    let cases = [("c0", "h0"), ("c1", "h1"), ("c2", "h2")];
    let mut store = Store::open(at).expect("open the store");
    let statuses = [
        CaseStatus::Passed,
        CaseStatus::Failed,
        CaseStatus::Error,
        CaseStatus::Unscorable,
    ];
    for (k, run_id) in ["a", "b", "c"].into_iter().enumerate() {
        let n = if run_id == "b" { 0 } else { 7 + k };
        let mut info = faq_run(n as u64);
        run_id.clone_into(&mut info.run_id);
        info.started_at = format!("2024-05-0{}T06:00:00Z", k + 1);
        store
            .begin_run(&info, &faq_suite(&cases), 1, "host-a")
            .expect("begin the run");
        let writer = Writer::spawn(at, run_id, 3).expect("start the writer");
        for seq in 0..n {
            let (c, h) = cases[(seq + k) % cases.len()];
            let mut result = faq_result(seq, c, h, &["billing"]);
            result.status = statuses[(seq * (k + 1)) % statuses.len()];
            result.job.sample = u32::try_from(seq % 2).expect("a sample");
            writer.send(result).expect("send");
        }
        writer.finish().expect("finish the writer");
    }
    ["a", "b", "c"]
}

/// A new SQLite file and a new PostgreSQL database for test `name` (None without a server,
/// as [`fresh_db`]): the directory and the database, to keep while the stores are used, and
/// the two stores' paths (the URL with its password).
fn both_stores(name: &str) -> Option<(tempfile::TempDir, PgDb, [std::path::PathBuf; 2])> {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = fresh_db(name)?;
    let stores = [
        dir.path().join("h.db"),
        std::path::PathBuf::from(db.url_with_password()),
    ];
    Some((dir, db, stores))
}

/// Which of [`both_stores`] a failed assertion is about, without the PostgreSQL password.
fn engine(at: &std::path::Path) -> &'static str {
    if at.to_string_lossy().starts_with("postgres://") {
        "PostgreSQL"
    } else {
        "SQLite"
    }
}

/// The statuses of several runs read at once (one statement on PostgreSQL) are those of
/// each run read alone, run by run in the order asked, on both backends; a run id not
/// stored is an error that names it.
#[test]
fn pg_statuses_of_several_runs_read_at_once_are_those_read_one_run_at_a_time() {
    use evalwatch::store::{Store, StoreError};
    let Some((_dir, _db, stores)) = both_stores("statuses_of_runs") else {
        return;
    };
    let mut seen = Vec::new();
    for at in stores {
        let [a, b, c] = three_runs_of_every_status(&at);
        let store = Store::open(&at).expect("open the store");
        let asked = [c, b, a, c];
        let mut one_by_one = Vec::new();
        for (i, run_id) in asked.iter().enumerate() {
            store
                .for_each_status(run_id, |case, provider, sample, status| {
                    one_by_one.push((i, case.to_owned(), provider.to_owned(), sample, status));
                })
                .expect("read one run");
        }
        let mut at_once = Vec::new();
        store
            .for_each_status_of(&asked, |i, case, provider, sample, status| {
                at_once.push((i, case.to_owned(), provider.to_owned(), sample, status));
            })
            .expect("read the runs at once");
        assert_eq!(at_once, one_by_one, "{}", engine(&at));
        assert_eq!(at_once.len(), 2 * 9 + 7, "run b has no results");
        let kinds: std::collections::BTreeSet<String> =
            at_once.iter().map(|r| format!("{:?}", r.4)).collect();
        assert_eq!(kinds.len(), 4, "every status: {kinds:?}");

        let err = store
            .for_each_status_of(&[a, "nope", c], |_, _, _, _, _| {})
            .expect_err("an unknown run");
        assert!(
            matches!(&err, StoreError::UnknownRun { run_id } if run_id == "nope"),
            "{err}"
        );
        seen.push(at_once);
    }
    assert_eq!(seen[0], seen[1], "the same on both backends");
}

/// Runs are in the order of their start in time, not of its text (starts written with
/// offsets), on both backends: oldest first from `run_infos` (and from a bound `since`),
/// newest first from `runs`; a start that is not a time is the oldest on both.
#[test]
fn pg_runs_are_in_the_order_of_their_start_in_time_not_of_its_text() {
    use evalwatch::store::Store;
    let Some((_dir, _db, stores)) = both_stores("run_order") else {
        return;
    };
    // By text: z, y, x. In time: z (04:30Z), x (05:00Z), y (06:00Z).
    let starts = [
        ("x", "2024-05-01T10:00:00+05:00"),
        ("y", "2024-05-01T06:00:00Z"),
        ("z", "2024-05-01T01:30:00-03:00"),
    ];
    for at in stores {
        let mut store = Store::open(&at).expect("open the store");
        for (run_id, started_at) in starts {
            let mut info = faq_run(0);
            run_id.clone_into(&mut info.run_id);
            started_at.clone_into(&mut info.started_at);
            store
                .begin_run(&info, &faq_suite(&[("c0", "h0")]), 1, "host-a")
                .expect("begin the run");
        }
        let ids = |runs: Vec<evalwatch::model::RunInfo>| -> Vec<String> {
            runs.into_iter().map(|r| r.run_id).collect()
        };
        let since_04_45 = |store: &Store| {
            ids(store
                .run_infos(Some("faq"), Some("2024-05-01T04:45:00Z"), 0)
                .expect("runs"))
        };
        let newest = |store: &Store| -> Vec<String> {
            store
                .runs(Some("faq"), 0)
                .expect("runs")
                .into_iter()
                .map(|r| r.info.run_id)
                .collect()
        };
        let shown = engine(&at);
        assert_eq!(
            ids(store.run_infos(Some("faq"), None, 0).expect("runs")),
            ["z", "x", "y"],
            "{shown}"
        );
        assert_eq!(
            ids(store.run_infos(Some("faq"), None, 2).expect("runs")),
            ["x", "y"],
            "the newest two, oldest first: {shown}"
        );
        assert_eq!(since_04_45(&store), ["x", "y"], "{shown}");
        assert_eq!(newest(&store), ["y", "x", "z"], "{shown}");
        let err = store
            .run_infos(Some("faq"), Some("yesterday"), 0)
            .expect_err("a since that is not a time");
        assert!(err.to_string().contains("since yesterday"), "{err}");

        // A start that is not a time (stored NULL) is the oldest on both engines (SQLite's
        // own place for NULL; PostgreSQL puts NULL the other way unless told): first oldest
        // first, last newest first, never "the latest", and left out by a bound.
        let mut info = faq_run(0);
        "w".clone_into(&mut info.run_id);
        "last week".clone_into(&mut info.started_at);
        store
            .begin_run(&info, &faq_suite(&[("c0", "h0")]), 1, "host-a")
            .expect("begin the run");
        assert_eq!(
            ids(store.run_infos(Some("faq"), None, 0).expect("runs")),
            ["w", "z", "x", "y"],
            "{shown}"
        );
        assert_eq!(
            ids(store.run_infos(Some("faq"), None, 3).expect("runs")),
            ["z", "x", "y"],
            "the newest three: {shown}"
        );
        assert_eq!(since_04_45(&store), ["x", "y"], "{shown}");
        assert_eq!(newest(&store), ["y", "x", "z", "w"], "{shown}");

        // The trend rows (finished runs' metrics, overall then a tag's) in the same order,
        // and the latest complete run is the newest by time.
        let metrics = |tag: Option<&str>| evalwatch::model::ProviderMetrics {
            provider: "p".into(),
            tag: tag.map(Into::into),
            metrics: evalwatch::model::Metrics::default(),
        };
        for run_id in ["y", "w", "x", "z"] {
            store
                .finish_run(
                    run_id,
                    evalwatch::model::RunStatus::Complete,
                    "2024-05-02T00:00:00Z",
                    &[metrics(None), metrics(Some("billing"))],
                    &[],
                )
                .expect("finish the run");
        }
        let trend = |since: Option<&str>, tags: bool| -> Vec<String> {
            store
                .trend(&evalwatch::model::TrendQuery {
                    suite: "faq",
                    since,
                    tags,
                    full: true,
                })
                .expect("trend")
                .into_iter()
                .map(|r| match r.tag {
                    Some(tag) => format!("{}/{tag}", r.run_id),
                    None => r.run_id,
                })
                .collect()
        };
        assert_eq!(
            trend(None, true),
            [
                "w",
                "w/billing",
                "z",
                "z/billing",
                "x",
                "x/billing",
                "y",
                "y/billing"
            ],
            "{shown}"
        );
        assert_eq!(
            trend(Some("2024-05-01T04:45:00Z"), false),
            ["x", "y"],
            "{shown}"
        );
        let latest = store.latest_complete_run("faq").expect("the latest run");
        assert_eq!(latest.map(|r| r.run_id).as_deref(), Some("y"), "{shown}");
        // Each row carries its run's start as the store bounds runs by it (the index takes
        // the trend pages' rows and bounds them itself): none for a start that is no time.
        let starts: Vec<(String, Option<i64>)> = store
            .trend(&evalwatch::model::TrendQuery {
                suite: "faq",
                since: None,
                tags: false,
                full: false,
            })
            .expect("trend")
            .into_iter()
            .map(|r| (r.run_id, r.started_ms))
            .collect();
        let ms = |t: &str| {
            Some(
                chrono::DateTime::parse_from_rfc3339(t)
                    .unwrap()
                    .timestamp_millis(),
            )
        };
        assert_eq!(
            starts,
            [
                ("w".to_owned(), None),
                ("z".to_owned(), ms("2024-05-01T04:30:00Z")),
                ("x".to_owned(), ms("2024-05-01T05:00:00Z")),
                ("y".to_owned(), ms("2024-05-01T06:00:00Z")),
            ],
            "{shown}"
        );
    }
}

/// A run discarded is unknown to the store that discarded it, though that store read its
/// header just before (PostgreSQL keeps the keys of the runs it read: a run's reads after
/// its header ask no more for it).
#[test]
fn a_discarded_run_is_unknown_after_its_header_was_read() {
    use evalwatch::store::{Store, StoreError};
    let Some((_dir, _db, stores)) = both_stores("discarded_ref") else {
        return;
    };
    for at in stores {
        let shown = engine(&at);
        let mut store = Store::open(&at).expect("open the store");
        let info = faq_run(0);
        store
            .begin_run(&info, &faq_suite(&[("c0", "h0")]), 1, "host-a")
            .expect("begin the run");
        let header = store.run(&info.run_id).expect("read").expect("the run");
        assert_eq!(header.run_id, info.run_id, "{shown}");
        assert!(
            store.run_metrics(&info.run_id).expect("metrics").is_empty(),
            "{shown}"
        );
        store.discard_run(&info.run_id).expect("discard the run");
        let err = store
            .run_metrics(&info.run_id)
            .expect_err("the run is gone");
        assert!(
            matches!(err, StoreError::UnknownRun { .. }),
            "{shown}: {err}"
        );
        let err = store.run_gates(&info.run_id).expect_err("the run is gone");
        assert!(
            matches!(err, StoreError::UnknownRun { .. }),
            "{shown}: {err}"
        );
    }
}

/// `julianday` on PostgreSQL reads a time as SQLite's does whatever the session's TimeZone:
/// a time without an offset (or a date alone) is UTC, an offset is kept, text that is not a
/// time is NULL.
#[test]
fn pg_julianday_reads_a_time_without_offset_as_utc_whatever_the_time_zone() {
    let Some(db) = fresh_db("julianday_zone") else {
        return;
    };
    evalwatch::store::Store::open(Path::new(&db.url_with_password())).expect("open the store");
    let mut client = db.client();
    // A server in New York: 2024-05-01 00:00 there is 04:00 UTC.
    client
        .batch_execute("SET TimeZone = 'America/New_York'")
        .expect("set the time zone");
    let day = |client: &mut postgres::Client, t: &str| -> Option<f64> {
        client
            .query_one("SELECT julianday($1)", &[&t])
            .expect("julianday")
            .get(0)
    };
    // SQLite's answers (sqlite3: SELECT julianday('2024-05-01'), ...).
    for (t, sqlite) in [
        ("2024-05-01", Some(2_460_431.5)),
        ("2024-05-01T00:00:00", Some(2_460_431.5)),
        ("2024-05-01 06:30:00", Some(2_460_431.5 + 6.5 / 24.0)),
        ("2024-05-01T00:00:00-04:00", Some(2_460_431.5 + 4.0 / 24.0)),
        ("not a time", None),
    ] {
        let got = day(&mut client, t);
        assert_eq!(got.is_some(), sqlite.is_some(), "{t}: {got:?}");
        if let (Some(got), Some(sqlite)) = (got, sqlite) {
            assert!((got - sqlite).abs() < 1e-9, "{t}: {got} against {sqlite}");
        }
    }
    let zone: String = client.query_one("SHOW TimeZone", &[]).expect("zone").get(0);
    assert_eq!(
        zone, "America/New_York",
        "the session's zone is left as it was"
    );
}

/// Migration 0023 on PostgreSQL gives the runs already stored their start in milliseconds,
/// as SQLite's `julianday` reads the text (offsets, a fraction of a millisecond cut off),
/// and NULL for text that is not a time, without failing on it; 0024 keeps their model
/// version counts.
#[test]
fn pg_migration_0023_gives_stored_runs_their_start_in_milliseconds() {
    let Some(db) = fresh_db("run_order_migration") else {
        return;
    };
    let target = db.target();
    evalwatch::store::pg::schema::migrate(&mut db.client(), target.shown(), 22).expect("migrate");
    db.client()
        .batch_execute(
            "INSERT INTO suites (id, name, first_seen, last_seen) VALUES (1, 's', 't', 't');
             INSERT INTO runs (id, run_id, suite_ref, suite_hash, started_at, status, planned,
                               evalwatch_version)
             VALUES (1, 'x', 1, 'h', '2024-05-01T10:00:00+05:00', 'complete', 0, 'v'),
                    (2, 'y', 1, 'h', '2024-05-01T06:00:00.2506Z', 'complete', 0, 'v'),
                    (3, 'z', 1, 'h', 'not a time', 'complete', 0, 'v');
             INSERT INTO run_versions (run_ref, provider, model, fingerprint, answers)
             VALUES (1, 'gpt', 'gpt-4o-2024-08-06', 'fp_abc', 2)",
        )
        .expect("runs of version 22");
    evalwatch::store::pg::schema::migrate(
        &mut db.client(),
        target.shown(),
        evalwatch::store::SCHEMA_VERSION,
    )
    .expect("migrate to the newest version");
    let rows: Vec<(String, Option<i64>)> = db
        .client()
        .query("SELECT run_id, started_ms FROM runs ORDER BY id", &[])
        .expect("read")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        rows,
        [
            ("x".to_owned(), Some(1_714_539_600_000)),
            ("y".to_owned(), Some(1_714_543_200_250)),
            ("z".to_owned(), None),
        ]
    );
    // Migration 0024 moved the version counts of stored runs over.
    let versions = evalwatch::store::Store::open(Path::new(&db.url_with_password()))
        .expect("open the store")
        .run_versions("x")
        .expect("versions");
    assert_eq!(
        versions
            .iter()
            .map(|c| (c.version.model.as_str(), c.answers))
            .collect::<Vec<_>>(),
        [("gpt-4o-2024-08-06", 2)]
    );
}

/// `report` opens its store with a spare connection (the run pages' thread's, made while
/// the first is opened): on PostgreSQL it is being made before any thread asks for it, and
/// the store's first reopener hands it over instead of connecting again; later ones connect.
/// On SQLite there is nothing to make ahead.
#[test]
fn pg_a_store_opened_with_a_spare_hands_it_to_its_first_reopener() {
    use evalwatch::store::Store;
    let Some((dir, db, [file, url])) = both_stores("spare") else {
        return;
    };
    let sqlite = Store::open_with_spare(&file).expect("open the file");
    let again = sqlite.reopener()().expect("reopen the file");
    assert!(again.suite_names().expect("read").is_empty());
    drop(dir);

    // Migrated first, so that the count below sees the spare and the store alone.
    drop(Store::open(&url).expect("migrate"));
    let mut client = db.client();
    let mut others = || -> i64 {
        client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                   AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
                &[],
            )
            .expect("count the connections")
            .get(0)
    };
    let mut wait_for = |n: i64, what: &str| {
        for _ in 0..500 {
            if others() == n {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("{what}: {} connections, not {n}", others());
    };
    wait_for(0, "the migrating store closed");
    let store = Store::open_with_spare(&url).expect("open the store");
    wait_for(2, "the store and its spare");
    let spare = store.reopener()().expect("the spare");
    assert!(spare.suite_names().expect("read on the spare").is_empty());
    assert_eq!(others(), 2, "the spare handed over, no third connection");
    let third = store.reopener()().expect("a connection made anew");
    assert!(third.suite_names().expect("read").is_empty());
    assert_eq!(others(), 3);
}
