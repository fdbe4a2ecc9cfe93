//! Where a PostgreSQL store is: the `postgres://` URL parsed, its password found, and the
//! URL as shown to people, which never carries the password.
//!
//! The password comes, as libpq takes it, from the URL, else `PGPASSWORD`, else the password
//! file (`PGPASSFILE`, else `~/.pgpass`: `host:port:database:user:password` lines, `*` matches
//! anything, `\` escapes `:` and `\`). A password file others can read is refused, as libpq
//! ignores one. Whatever its origin, the password is never in an error, a log or a report:
//! [`PgTarget::shown`] is built from the parsed parts, and error texts are scrubbed of it.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use postgres::config::Host;
use postgres::{Client, Config};

use super::PgError;
use super::tls::{Mode, Tls, TlsEnv};

/// How long connecting waits for the server unless the URL says (`connect_timeout=`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether a store given as `--db`, `EVALWATCH_DB` or `store:` is a PostgreSQL URL.
#[must_use]
pub fn is_postgres_url(store: &str) -> bool {
    store.starts_with("postgres://") || store.starts_with("postgresql://")
}

/// A URL as it may be shown: a password in it (`user:secret@`, `password=`) replaced by
/// `***`. For URLs that did not parse; a parsed one is shown by [`PgTarget::shown`].
#[must_use]
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?'])
            .map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest_start + colon + 1..rest_start + at, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => kv.to_owned(),
            })
            .collect();
        out = format!("{head}{}", query.join("&"));
    }
    out
}

/// A PostgreSQL store: its connection settings, password included, and how it is shown.
#[derive(Clone)]
pub struct PgTarget {
    config: Config,
    shown: String,
    secret: Option<String>,
    tls: Tls,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl PgTarget {
    /// Parse a `postgres://USER@HOST:PORT/DATABASE` URL and find its password.
    pub fn parse(url: &str) -> Result<Self, PgError> {
        Self::parse_in(
            url,
            std::env::var("PGPASSWORD").ok(),
            pgpass_path().as_deref(),
            &TlsEnv::from_process(),
        )
    }

    #[cfg(test)]
    fn parse_with(
        url: &str,
        env_password: Option<String>,
        pgpass: Option<&Path>,
    ) -> Result<Self, PgError> {
        Self::parse_in(url, env_password, pgpass, &TlsEnv::default())
    }

    /// [`Self::parse`] with the environment given: the password (`PGPASSWORD`), the password
    /// file, and the TLS settings (`PGSSLMODE`, `PGSSLROOTCERT`, libpq's roots file).
    fn parse_in(
        url: &str,
        env_password: Option<String>,
        pgpass: Option<&Path>,
        tls_env: &TlsEnv,
    ) -> Result<Self, PgError> {
        let redacted = redact_url(url);
        let bad = |reason: String| PgError::Url {
            shown: redacted.clone(),
            reason,
        };
        if !is_postgres_url(url) {
            return Err(bad("a PostgreSQL store is a postgres:// URL".into()));
        }
        // The client's parser knows `sslmode` only up to `require`, and no `sslrootcert`.
        let (url, tls) = super::tls::split(url, tls_env).map_err(&bad)?;
        let mut config = Config::from_str(&url).map_err(|e| bad(e.to_string()))?;
        config.ssl_mode(tls.mode.client_mode());
        let user = config
            .get_user()
            .map(str::to_owned)
            .ok_or_else(|| bad("it names no user: write postgres://USER@HOST/DATABASE".into()))?;
        let host = match config.get_hosts() {
            [Host::Tcp(h)] => h.clone(),
            [Host::Unix(p)] => p.display().to_string(),
            [] => {
                return Err(bad(
                    "it names no host: write postgres://USER@HOST/DATABASE".into()
                ));
            }
            _ => return Err(bad("it names several hosts; give one".into())),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let database = config.get_dbname().unwrap_or(&user).to_owned();
        let shown = format!("postgres://{user}@{host}:{port}/{database}");
        let mut secret = config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned());
        if secret.is_none() {
            secret = env_password.filter(|p| !p.is_empty());
        }
        if secret.is_none()
            && let Some(path) = pgpass
        {
            // libpq matches a Unix socket against `localhost`.
            let host_key = if host.starts_with('/') {
                "localhost"
            } else {
                &host
            };
            secret = read_pgpass(path, [host_key, &port.to_string(), &database, &user])?;
        }
        if let Some(p) = &secret {
            config.password(p.as_str());
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        Ok(Self {
            config,
            shown,
            secret,
            tls,
        })
    }

    /// The store as shown to people: `postgres://USER@HOST:PORT/DATABASE`, no password.
    #[must_use]
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Open a connection: TCP, with TLS as `sslmode` says ([`super::tls`]), or a Unix
    /// socket.
    pub fn connect(&self) -> Result<Client, PgError> {
        let failed = |reason: String| PgError::Connect {
            shown: self.shown.clone(),
            reason,
        };
        let tls = self.tls.connector().map_err(failed)?;
        match self.config.connect(tls) {
            Ok(client) => Ok(client),
            // `prefer`, as libpq does it: a server that offered TLS and then failed the
            // handshake is tried again without.
            Err(e) if self.tls.mode == Mode::Prefer && is_handshake_failure(&e) => {
                let mut plain = self.config.clone();
                plain.ssl_mode(postgres::config::SslMode::Disable);
                plain.connect(postgres::NoTls).map_err(|again| {
                    failed(self.scrub(&format!(
                        "{} (and without TLS, after {})",
                        super::reason(&again),
                        super::reason(&e)
                    )))
                })
            }
            Err(e) => Err(failed(self.scrub(&super::reason(&e)))),
        }
    }

    /// Text with the password, should it be there, replaced by `***`.
    #[must_use]
    pub fn scrub(&self, text: &str) -> String {
        match &self.secret {
            Some(p) if !p.is_empty() => text.replace(p.as_str(), "***"),
            _ => text.to_owned(),
        }
    }
}

/// Whether connecting failed in the TLS handshake (the client's words for it).
fn is_handshake_failure(e: &postgres::Error) -> bool {
    e.to_string().starts_with("error performing TLS handshake")
}

fn pgpass_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PGPASSFILE").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").map(|h| Path::new(&h).join(".pgpass"))
}

/// The password of the first line of a password file that matches `key` (host, port,
/// database, user), or none; a missing file has none.
fn read_pgpass(path: &Path, key: [&str; 4]) -> Result<Option<String>, PgError> {
    let bad = |reason: String| PgError::Pgpass {
        path: path.display().to_string(),
        reason,
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(bad(e.to_string())),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(bad(
                "others can read it; make it private with `chmod 0600` (libpq ignores such a file)"
                    .into(),
            ));
        }
    }
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    for line in text.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields = split_pgpass(line);
        if fields.len() < 5 {
            continue;
        }
        if fields[..4]
            .iter()
            .zip(key)
            .all(|(field, want)| field == "*" || field == want)
        {
            return Ok(Some(fields[4..].join(":")));
        }
    }
    Ok(None)
}

/// The fields of a password file line: `:` separates, `\` escapes the next character.
fn split_pgpass(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next()
                    && let Some(last) = fields.last_mut()
                {
                    last.push(next);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => {
                if let Some(last) = fields.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_the_url_is_never_shown() {
        let t = PgTarget::parse_with("postgres://ann:s3cr%21t@db.internal:6543/evals", None, None)
            .expect("parses");
        assert_eq!(t.shown(), "postgres://ann@db.internal:6543/evals");
        assert_eq!(t.scrub("auth failed for s3cr!t"), "auth failed for ***");
        assert_eq!(format!("{t:?}"), "postgres://ann@db.internal:6543/evals");
        assert_eq!(
            redact_url("postgres://ann:hunter2@h/db?password=x&sslmode=disable"),
            "postgres://ann:***@h/db?password=***&sslmode=disable"
        );
        assert_eq!(redact_url("postgres://ann@h/db"), "postgres://ann@h/db");
    }

    #[test]
    fn the_url_needs_a_user_and_a_host() {
        let err = PgTarget::parse_with("postgres://h/db", None, None).unwrap_err();
        assert!(err.to_string().contains("names no user"), "{err}");
        let err = PgTarget::parse_with("postgres://ann:pw@/db", None, None).unwrap_err();
        assert!(err.to_string().contains("names no host"), "{err}");
        assert!(!err.to_string().contains("pw@"), "{err}");
    }

    #[test]
    fn the_password_comes_from_the_environment_then_the_password_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("pgpass");
        std::fs::write(
            &file,
            "# comment\nother:5432:*:ann:nope\ndb:5432:evals:ann:from\\:file\n*:*:*:*:fallback\n",
        )
        .expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
        let url = "postgres://ann@db/evals";
        let from_env = PgTarget::parse_with(url, Some("env-pw".into()), Some(&file));
        assert_eq!(from_env.expect("parses").secret.as_deref(), Some("env-pw"));
        let from_file = PgTarget::parse_with(url, None, Some(&file)).expect("parses");
        assert_eq!(from_file.secret.as_deref(), Some("from:file"));
        let other = PgTarget::parse_with("postgres://bob@x/y", None, Some(&file));
        assert_eq!(other.expect("parses").secret.as_deref(), Some("fallback"));
        let none = PgTarget::parse_with(url, None, Some(&dir.path().join("missing")));
        assert_eq!(none.expect("parses").secret, None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
            let err = PgTarget::parse_with(url, None, Some(&file)).unwrap_err();
            assert!(err.to_string().contains("chmod 0600"), "{err}");
        }
    }
}
