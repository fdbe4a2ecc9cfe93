//! The released binary the emitted files install: which version, for which targets, named
//! how, and from where. `.github/workflows/release.yml` builds exactly these artefacts on a
//! `v*` tag; a test runs its packaging step and this install script against each other.

use crate::app::Failure;

/// The version of this binary: the emitted files install the same one.
pub(super) const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Cargo.toml's `repository`, empty when it names none.
const REPOSITORY: &str = env!("CARGO_PKG_REPOSITORY");

/// The targets `release.yml` builds, with the `uname -m` names of their machines.
pub(super) const TARGETS: [(&str, &str); 2] = [
    ("x86_64", "x86_64-unknown-linux-gnu"),
    ("aarch64|arm64", "aarch64-unknown-linux-gnu"),
];

/// `evalwatch-<version>-<target>`: the archive is this plus `.tar.gz`, its checksum plus
/// `.tar.gz.sha256`, and the folder inside the archive has this name.
pub(super) fn artefact(version: &str, target: &str) -> String {
    format!("evalwatch-{version}-{target}")
}

/// The repository whose releases hold the binary: `--release-url`, else Cargo.toml's
/// `repository`. `None` when neither names one.
pub(super) fn repository(given: Option<&str>) -> anyhow::Result<Option<String>> {
    pick(given, REPOSITORY)
}

fn pick(given: Option<&str>, built_in: &str) -> anyhow::Result<Option<String>> {
    match given {
        Some(url) => check(url, "--release-url").map(Some),
        None if built_in.is_empty() => Ok(None),
        None => check(built_in, "Cargo.toml's `repository`").map(Some),
    }
}

/// An `https://` address (or `http://` on loopback, for a local mirror), without a trailing
/// slash, with nothing a shell or YAML would read specially.
fn check(url: &str, from: &str) -> anyhow::Result<String> {
    let url = url.trim_end_matches('/');
    let url = url.strip_suffix(".git").unwrap_or(url);
    let rest = url
        .strip_prefix("https://")
        .or_else(|| {
            url.strip_prefix("http://").filter(|r| {
                ["127.0.0.1", "localhost", "[::1]"].iter().any(|h| {
                    r.strip_prefix(h)
                        .is_some_and(|t| t.is_empty() || t.starts_with([':', '/']))
                })
            })
        })
        .ok_or_else(|| {
            Failure::invalid(format!(
                "read {from} `{url}`: give the https:// address of the repository whose releases hold evalwatch, e.g. https://github.com/OWNER/evalwatch (http:// only on loopback)"
            ))
        })?;
    let host_end = rest.find('/').unwrap_or(rest.len());
    let bad = rest.chars().find(|c| {
        !(c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '-' | '_' | '~' | ':' | '[' | ']'))
    });
    if host_end == 0 || bad.is_some() {
        return Err(Failure::invalid(format!(
            "read {from} `{url}`: {}; give the repository's address, e.g. https://github.com/OWNER/evalwatch",
            bad.map_or_else(
                || "it names no host".to_owned(),
                |c| format!("`{c}` has no place in it")
            )
        )));
    }
    Ok(url.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_given_url_wins_then_cargo_toml_then_none() {
        assert_eq!(
            pick(Some("https://github.com/o/e/"), "https://x.org/y").unwrap(),
            Some("https://github.com/o/e".to_owned())
        );
        assert_eq!(
            pick(None, "https://github.com/o/e.git").unwrap(),
            Some("https://github.com/o/e".to_owned())
        );
        assert_eq!(pick(None, "").unwrap(), None);
    }

    #[test]
    fn only_https_or_loopback_http_and_nothing_a_shell_reads() {
        assert!(check("http://127.0.0.1:8080/o/e", "x").is_ok());
        assert!(check("http://localhost/o/e", "x").is_ok());
        for bad in [
            "http://github.com/o/e",
            "http://localhost.evil.org/o/e",
            "ftp://x/y",
            "github.com/o/e",
            "https://",
            "https://github.com/o/e$(id)",
            "https://github.com/o/e x",
            "https://github.com/o/'e",
        ] {
            let e = check(bad, "--release-url").unwrap_err().to_string();
            assert!(e.contains("--release-url"), "{bad}: {e}");
        }
    }

    #[test]
    fn artefacts_are_named_by_version_and_target() {
        assert_eq!(
            artefact("1.2.3", TARGETS[0].1),
            "evalwatch-1.2.3-x86_64-unknown-linux-gnu"
        );
    }
}
