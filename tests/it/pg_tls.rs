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

/// A loopback port in front of the test server that says yes to PostgreSQL's TLS request,
/// then sends bytes that are no TLS handshake and hangs up; a connection that asks for no
/// TLS is passed through to the server. Its port.
fn broken_tls_proxy(server_port: u16) -> u16 {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    // The SSLRequest message: length 8, code 80877103.
    const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut client) = stream else { continue };
            std::thread::spawn(move || {
                let mut head = [0u8; 8];
                if client.read_exact(&mut head).is_err() {
                    return;
                }
                if head == SSL_REQUEST {
                    let _ = client.write_all(b"Snot a TLS server hello\r\n");
                    return;
                }
                let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", server_port)) else {
                    return;
                };
                let _ = upstream.write_all(&head);
                let (mut from, mut to) = (
                    upstream.try_clone().expect("clone"),
                    client.try_clone().expect("clone"),
                );
                let back = std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(Shutdown::Write);
                });
                let _ = std::io::copy(&mut client, &mut upstream);
                let _ = upstream.shutdown(Shutdown::Write);
                let _ = back.join();
            });
        }
    });
    port
}

#[test]
fn pg_tls_prefer_tries_again_without_tls_when_the_handshake_fails_and_require_does_not() {
    let Some((db, _ca)) = tls_db("pg_tls_prefer_again") else {
        return;
    };
    let url = db.url_with_password();
    let server_port: u16 = url
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .expect("the test URL has a port");
    let proxy = broken_tls_proxy(server_port);
    let via = url.replacen(&format!(":{server_port}/"), &format!(":{proxy}/"), 1);
    assert_eq!(
        connection_tls(&via),
        Ok((false, String::new())),
        "prefer connects without TLS after the failed handshake"
    );
    let err = connection_tls(&format!("{via}?sslmode=require")).expect_err("require insists");
    assert!(err.contains("TLS handshake"), "{err}");
    assert!(!err.contains(&db.password), "{err}");
}
