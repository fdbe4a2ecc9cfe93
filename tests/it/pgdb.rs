//! A PostgreSQL database for a test, on the throwaway server `scripts/with-pg` starts (its URL
//! in `EVALWATCH_TEST_PG`, its password in `EVALWATCH_TEST_PGPASSWORD`), and the two
//! backends a scenario runs on. Without the server the PostgreSQL side is skipped, saying so,
//! except under CI (`CI=true`), where that fails.

use std::sync::atomic::{AtomicUsize, Ordering};

use evalwatch::store::pg::PgTarget;

use crate::support::Project;

/// A fresh database on the test server.
pub struct PgDb {
    /// Its URL, without the password.
    pub url: String,
    pub password: String,
}

impl PgDb {
    /// The URL with the password in it.
    pub fn url_with_password(&self) -> String {
        self.url.replacen(
            "postgres://evalwatch@",
            &format!("postgres://evalwatch:{}@", self.password),
            1,
        )
    }

    pub fn target(&self) -> PgTarget {
        PgTarget::parse(&self.url_with_password()).expect("the test URL parses")
    }

    pub fn client(&self) -> postgres::Client {
        self.target().connect().expect("connect to the test server")
    }
}

/// A new database named after the test, or `None` (with the reason printed) when no server
/// was started outside CI.
pub fn fresh_db(test: &str) -> Option<PgDb> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let Ok(url) = std::env::var("EVALWATCH_TEST_PG") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "EVALWATCH_TEST_PG is unset under CI: run the tests through scripts/test, which starts PostgreSQL (scripts/with-pg)"
        );
        eprintln!(
            "skipped {test}: no PostgreSQL server (EVALWATCH_TEST_PG is unset; scripts/test starts one when PostgreSQL is installed)"
        );
        return None;
    };
    let password = std::env::var("EVALWATCH_TEST_PGPASSWORD").unwrap_or_default();
    let admin = PgDb {
        url: url.clone(),
        password: password.clone(),
    };
    let name = format!(
        "t_{test}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    admin
        .client()
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .expect("create the test database");
    let base = url.rsplit_once('/').expect("a URL with a database").0;
    Some(PgDb {
        url: format!("{base}/{name}"),
        password,
    })
}

/// Where a scenario keeps its history.
#[allow(dead_code)] // the scenarios on both backends come next (#22)
pub enum Backend {
    /// The project folder's `evalwatch.db`.
    Sqlite,
    /// A fresh database of its own on the test server.
    Pg(PgDb),
}

#[allow(dead_code)]
impl Backend {
    /// The backends a scenario runs on: SQLite, and PostgreSQL when the server is up.
    pub fn all(test: &str) -> Vec<Self> {
        let mut out = vec![Self::Sqlite];
        out.extend(fresh_db(test).map(Self::Pg));
        out
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Pg(_) => "postgres",
        }
    }

    /// `project`, its commands given this backend's store.
    pub fn project(&self, mut project: Project) -> Project {
        if let Self::Pg(db) = self {
            project.pg = Some((db.url.clone(), db.password.clone()));
        }
        project
    }
}
