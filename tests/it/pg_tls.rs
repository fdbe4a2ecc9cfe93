//! TLS to a PostgreSQL store (issue #22: a team's server, often one that insists on TLS):
//! `sslmode` and `sslrootcert` as libpq reads them, against the test server, which
//! `scripts/with-pg` starts with a certificate for 127.0.0.1 and localhost signed by the test
//! CA (`tests/data/tls`, its path in `EVALWATCH_TEST_PGSSLROOTCERT`).

use evalwatch::store::pg::PgTarget;

use crate::pgdb::{PgDb, fresh_db};
use crate::support::{Project, code, replay_suite, stderr, stdout};

/// A fresh database and the CA that signed the server's certificate, or `None` (saying
/// why) when the server is not up, or is not `scripts/with-pg`'s, outside CI.
fn tls_db(test: &str) -> Option<(PgDb, String)> {
    let Ok(ca) = std::env::var("EVALWATCH_TEST_PGSSLROOTCERT") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "EVALWATCH_TEST_PGSSLROOTCERT is unset under CI: run the tests through scripts/test (scripts/with-pg)"
        );
        eprintln!("skipped {test}: no TLS test server (EVALWATCH_TEST_PGSSLROOTCERT is unset)");
        return None;
    };
    Some((fresh_db(test)?, ca))
}

/// Whether the connection `url` (with its password) opens is encrypted, and its protocol;
/// or the error, as evalwatch shows it.
fn connection_tls(url: &str) -> Result<(bool, String), String> {
    let mut client = PgTarget::parse(url)
        .and_then(|t| t.connect())
        .map_err(|e| e.to_string())?;
    let row = client
        .query_one(
            "SELECT ssl, coalesce(version, '') FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .map_err(|e| e.to_string())?;
    Ok((row.get(0), row.get(1)))
}

#[test]
fn pg_tls_each_sslmode_encrypts_as_libpq_does() {
    let Some((db, ca)) = tls_db("pg_tls_modes") else {
        return;
    };
    let url = db.url_with_password();
    let with = |q: &str| connection_tls(&format!("{url}?{q}"));
    // The default is libpq's `prefer`: this server offers TLS, so it is used.
    let (ssl, version) = connection_tls(&url).expect("connects");
    assert!(ssl, "the default (prefer) uses the TLS the server offers");
    assert!(version.starts_with("TLSv1."), "{version}");
    assert_eq!(with("sslmode=disable"), Ok((false, String::new())));
    assert!(with("sslmode=prefer").expect("connects").0);
    assert!(with("sslmode=require").expect("connects").0);
    assert!(
        with(&format!("sslmode=verify-ca&sslrootcert={ca}"))
            .expect("connects")
            .0
    );
    assert!(
        with(&format!("sslmode=verify-full&sslrootcert={ca}"))
            .expect("connects")
            .0
    );
}

#[test]
fn pg_tls_verify_full_refuses_a_certificate_it_cannot_verify() {
    let Some((db, ca)) = tls_db("pg_tls_refuses") else {
        return;
    };
    let url = db.url_with_password();
    // The system's roots do not include the test CA.
    let err = connection_tls(&format!("{url}?sslmode=verify-full&sslrootcert=system"))
        .expect_err("a certificate no trusted root signed");
    assert!(
        err.contains("UnknownIssuer") || err.contains("No CA certificates"),
        "{err}"
    );
    assert!(!err.contains(&db.password), "{err}");
    // The same server under a name its certificate does not carry (`hostaddr` is where the
    // connection goes; the host is the name the certificate is checked against).
    let renamed = url.replacen("@127.0.0.1:", "@evalwatch.test:", 1);
    let err = connection_tls(&format!(
        "{renamed}?hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert={ca}"
    ))
    .expect_err("a certificate for another name");
    assert!(
        err.contains("not valid for name \"evalwatch.test\""),
        "{err}"
    );
    assert!(
        err.contains("postgres://evalwatch@evalwatch.test:"),
        "{err}"
    );
    // verify-ca checks who signed it, not the name.
    let ok = connection_tls(&format!(
        "{renamed}?hostaddr=127.0.0.1&sslmode=verify-ca&sslrootcert={ca}"
    ));
    assert!(ok.expect("verify-ca does not compare names").0);
}

#[test]
fn pg_tls_a_run_and_its_report_go_over_verify_full_and_bad_settings_are_refused() {
    let Some((db, ca)) = tls_db("pg_tls_run") else {
        return;
    };
    let mut p = Project::new();
    replay_suite(&p, "faq", 6, 3);
    p.pg = Some((
        format!("{}?sslmode=verify-full&sslrootcert={ca}", db.url),
        db.password.clone(),
    ));
    let run = p.run(&["run", "--format", "json"]);
    assert_eq!(code(&run), 0, "{}{}", stdout(&run), stderr(&run));
    let runs = crate::support::json_runs(&run);
    assert_eq!(runs.len(), 1, "{}", stdout(&run));
    assert_eq!(runs[0]["status"], "complete", "{}", runs[0]);
    let report = p.run(&["report", "--out", "reports"]);
    assert_eq!(code(&report), 0, "{}", stderr(&report));
    assert!(p.path().join("reports/index.html").is_file());
    let runs = p.run(&["runs", "--format", "json"]);
    assert_eq!(code(&runs), 0, "{}", stderr(&runs));
    assert!(stdout(&runs).contains("faq"), "{}", stdout(&runs));

    // Roots that did not sign the server's certificate: the store cannot be opened, and
    // nothing says the password.
    p.pg = Some((
        format!("{}?sslmode=verify-full&sslrootcert=system", db.url),
        db.password.clone(),
    ));
    let refused = p.run(&["runs"]);
    assert_ne!(code(&refused), 0);
    let said = stderr(&refused);
    assert!(
        said.contains("UnknownIssuer") || said.contains("No CA certificates"),
        "{said}"
    );
    assert!(!said.contains(&db.password), "{said}");
    // Settings that cannot work are the user's to fix (exit 2), said before connecting.
    for (query, says) in [
        ("sslmode=verify-full", "sslrootcert=PATH"),
        (
            "sslmode=verify-ca&sslrootcert=/nowhere/ca.pem",
            "/nowhere/ca.pem",
        ),
        ("sslmode=sometimes", "verify-full"),
        (
            "sslcert=/c.pem&sslkey=/k.pem",
            "client certificates are not supported",
        ),
    ] {
        p.pg = Some((format!("{}?{query}", db.url), db.password.clone()));
        let out = p.run(&["runs"]);
        assert_eq!(code(&out), 2, "{query}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{query}: {}", stderr(&out));
    }
}
