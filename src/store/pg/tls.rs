//! TLS to a PostgreSQL store, as libpq sets it up: `sslmode` and `sslrootcert` in the URL
//! (else `PGSSLMODE` and `PGSSLROOTCERT`), rustls with ring underneath
//! (`tokio-postgres-rustls`, the maintained bridge between the two).
//!
//! | `sslmode` | encrypted | the server's certificate |
//! | --- | --- | --- |
//! | `disable` | never | not looked at |
//! | `prefer` (the default) | when the server offers TLS (a failed handshake: tried again without) | not verified |
//! | `require` | always | not verified, unless roots are given (then as `verify-ca`) |
//! | `verify-ca` | always | signed by a trusted root |
//! | `verify-full` | always | signed by a trusted root, for the host named in the URL |
//!
//! Trusted roots: `sslrootcert=PATH` (PEM), `sslrootcert=system` (the system's roots), else
//! `~/.postgresql/root.crt` when it exists, as libpq reads it. Client certificates
//! (`sslcert`, `sslkey`) are refused with a message, not ignored.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

use crate::provider::tls::LazyRoots;

/// libpq's `sslmode`, without `allow` (plain first, TLS if refused), which the client
/// cannot do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl Mode {
    fn parse(value: &str) -> Result<Self, String> {
        Ok(match value {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            "allow" => {
                return Err(
                    "sslmode=allow (plain first, TLS only if the server refuses plain) \
                            is not supported: use prefer, or require"
                        .into(),
                );
            }
            other => {
                return Err(format!(
                    "sslmode={other} is not a mode: use disable, prefer, require, verify-ca or \
                     verify-full"
                ));
            }
        })
    }

    /// What the PostgreSQL client is told: whether to ask for TLS, and whether to insist.
    #[must_use]
    pub fn client_mode(self) -> postgres::config::SslMode {
        match self {
            Self::Disable => postgres::config::SslMode::Disable,
            Self::Prefer => postgres::config::SslMode::Prefer,
            Self::Require | Self::VerifyCa | Self::VerifyFull => postgres::config::SslMode::Require,
        }
    }
}

/// Where the roots that sign the server's certificate come from.
#[derive(Clone, Debug)]
enum Roots {
    /// Certificates read from a PEM file.
    File(PathBuf, Arc<Vec<CertificateDer<'static>>>),
    /// The system's trusted roots (`sslrootcert=system`).
    System,
}

/// A store's TLS settings, read from its URL and the environment.
#[derive(Clone, Debug)]
pub struct Tls {
    pub mode: Mode,
    roots: Option<Roots>,
    /// The client's TLS configuration, built by the first connection and shared by the
    /// store's later ones (and clones): the system's roots, when used, are read once.
    config: Arc<OnceLock<Result<rustls::ClientConfig, String>>>,
}

/// The environment libpq reads TLS settings from, when the URL does not say.
#[derive(Clone, Debug, Default)]
pub struct TlsEnv {
    /// `PGSSLMODE`.
    pub sslmode: Option<String>,
    /// `PGSSLROOTCERT`.
    pub sslrootcert: Option<String>,
    /// `~/.postgresql/root.crt`, read when no roots are named and it exists.
    pub default_roots: Option<PathBuf>,
}

impl TlsEnv {
    /// This process's environment.
    #[must_use]
    pub fn from_process() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self {
            sslmode: var("PGSSLMODE"),
            sslrootcert: var("PGSSLROOTCERT"),
            default_roots: std::env::var_os("HOME")
                .map(|h| Path::new(&h).join(".postgresql").join("root.crt")),
        }
    }
}

/// Settings the client does not take from the URL itself: they are read here and taken out.
const TAKEN: [&str; 2] = ["sslmode", "sslrootcert"];
/// Client-certificate settings: refused, with what to do instead.
const REFUSED: [&str; 6] = [
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcrl",
    "sslcrldir",
    "sslcertmode",
];

/// Split the TLS settings off `url`: the URL without them (for the PostgreSQL client's own
/// parser) and the settings, the environment's where the URL names none.
pub fn split(url: &str, env: &TlsEnv) -> Result<(String, Tls), String> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, q),
        None => (url, ""),
    };
    let mut kept = Vec::new();
    let (mut mode, mut rootcert) = (None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key_text = decode(key)?;
        if REFUSED.contains(&key_text.as_str()) {
            return Err(format!(
                "{key_text}: client certificates are not supported; authenticate with a \
                 password (PGPASSWORD or a password file) over sslmode=verify-full"
            ));
        }
        if !TAKEN.contains(&key_text.as_str()) {
            kept.push(pair);
            continue;
        }
        let value = decode(value)?;
        if key_text == "sslmode" {
            mode = Some(value);
        } else {
            rootcert = Some(value);
        }
    }
    let mode = match mode.or_else(|| env.sslmode.clone()) {
        Some(m) => Mode::parse(&m)?,
        None => Mode::Prefer,
    };
    let roots = match rootcert.or_else(|| env.sslrootcert.clone()) {
        Some(r) if r == "system" => Some(Roots::System),
        Some(path) => Some(read_roots(Path::new(&path))?),
        None => match &env.default_roots {
            Some(p)
                if matches!(mode, Mode::Require | Mode::VerifyCa | Mode::VerifyFull)
                    && p.is_file() =>
            {
                Some(read_roots(p)?)
            }
            _ => None,
        },
    };
    if roots.is_none() && matches!(mode, Mode::VerifyCa | Mode::VerifyFull) {
        let name = if mode == Mode::VerifyCa {
            "verify-ca"
        } else {
            "verify-full"
        };
        return Err(format!(
            "sslmode={name} needs the roots that sign the server's certificate: add \
             sslrootcert=PATH (a PEM file) or sslrootcert=system (the system's trusted roots)"
        ));
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((
        rest,
        Tls {
            mode,
            roots,
            config: Arc::default(),
        },
    ))
}

/// `%XX` escapes of a URL's query decoded (`+` stays a plus, as libpq reads it).
fn decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("`{text}` has a `%` not followed by two hex digits"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("`{text}` decodes to text that is not UTF-8"))
}

fn read_roots(path: &Path) -> Result<Roots, String> {
    let shown = path.display();
    let pem = std::fs::read(path).map_err(|e| format!("read sslrootcert {shown}: {e}"))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("read sslrootcert {shown}: not PEM certificates ({e})"))?;
    if certs.is_empty() {
        return Err(format!(
            "read sslrootcert {shown}: it holds no certificate (PEM `BEGIN CERTIFICATE`)"
        ));
    }
    Ok(Roots::File(path.to_path_buf(), Arc::new(certs)))
}

impl Tls {
    /// The client's TLS connector for these settings.
    pub fn connector(&self) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
        let config = self.config.get_or_init(|| self.client_config()).clone()?;
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
    }

    fn client_config(&self) -> Result<rustls::ClientConfig, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match (&self.roots, self.mode) {
            // The system's verifier checks signatures without loading any root.
            (_, Mode::Disable) | (None, _) | (Some(_), Mode::Prefer) => Arc::new(Relaxed {
                inner: Arc::new(LazyRoots::new(Arc::clone(&provider))),
                lets: Lets::AnyCertificate,
            }),
            (Some(roots), Mode::VerifyFull) => roots_verifier(roots, &provider)?,
            (Some(roots), _) => Arc::new(Relaxed {
                inner: roots_verifier(roots, &provider)?,
                lets: Lets::AnyName,
            }),
        };
        Ok(rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("set up TLS: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth())
    }
}

fn roots_verifier(
    roots: &Roots,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, String> {
    match roots {
        Roots::File(path, certs) => {
            let mut store = rustls::RootCertStore::empty();
            for cert in certs.iter() {
                store.add(cert.clone()).map_err(|e| {
                    format!(
                        "sslrootcert {}: a certificate rustls refuses: {e}",
                        path.display()
                    )
                })?;
            }
            let verifier =
                WebPkiServerVerifier::builder_with_provider(Arc::new(store), Arc::clone(provider))
                    .build()
                    .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
            Ok(verifier)
        }
        Roots::System => Ok(Arc::new(LazyRoots::new(Arc::clone(provider)))),
    }
}

/// What a relaxed verifier lets through that its inner one would refuse.
#[derive(Clone, Copy, Debug)]
enum Lets {
    /// `prefer` and `require` without roots: the connection is encrypted, the certificate
    /// is not checked (as libpq does).
    AnyCertificate,
    /// `verify-ca`: the certificate must be signed by a trusted root; the name it is for is
    /// not compared with the host's.
    AnyName,
}

/// A verifier that lets through what [`Lets`] says and asks `inner` for the rest: the
/// handshake's signatures are always checked.
#[derive(Debug)]
struct Relaxed {
    inner: Arc<dyn ServerCertVerifier>,
    lets: Lets,
}

impl ServerCertVerifier for Relaxed {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Lets::AnyCertificate = self.lets {
            return Ok(ServerCertVerified::assertion());
        }
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/tls/ca.pem");

    fn env() -> TlsEnv {
        TlsEnv::default()
    }

    #[test]
    fn tls_settings_are_taken_out_of_the_url_and_the_rest_kept_in_order() {
        let (rest, tls) = split(
            &format!("postgres://ann@db/evals?application_name=ci&sslmode=verify-full&sslrootcert={CA}&connect_timeout=5"),
            &env(),
        )
        .expect("parses");
        assert_eq!(
            rest,
            "postgres://ann@db/evals?application_name=ci&connect_timeout=5"
        );
        assert_eq!(tls.mode, Mode::VerifyFull);
        assert!(
            matches!(&tls.roots, Some(Roots::File(p, certs)) if p == Path::new(CA) && certs.len() == 1)
        );
        let (rest, tls) = split("postgres://ann@db/evals?sslmode=disable", &env()).expect("parses");
        assert_eq!(
            (rest.as_str(), tls.mode),
            ("postgres://ann@db/evals", Mode::Disable)
        );
        let (_, tls) = split("postgres://ann@db/evals", &env()).expect("parses");
        assert_eq!(tls.mode, Mode::Prefer, "libpq's default");
        assert!(tls.roots.is_none());
    }

    #[test]
    fn the_environment_gives_what_the_url_does_not() {
        let from_env = TlsEnv {
            sslmode: Some("verify-ca".into()),
            sslrootcert: Some(CA.into()),
            default_roots: None,
        };
        let (_, tls) = split("postgres://ann@db/evals", &from_env).expect("parses");
        assert_eq!(tls.mode, Mode::VerifyCa);
        assert!(tls.roots.is_some());
        let (_, tls) = split("postgres://ann@db/evals?sslmode=require", &from_env).expect("parses");
        assert_eq!(tls.mode, Mode::Require, "the URL wins");
        // libpq's default roots file, read for the modes that verify.
        let default_roots = TlsEnv {
            default_roots: Some(PathBuf::from(CA)),
            ..TlsEnv::default()
        };
        let (_, tls) = split(
            "postgres://ann@db/evals?sslmode=verify-full",
            &default_roots,
        )
        .expect("parses");
        assert!(tls.roots.is_some());
        let (_, tls) = split("postgres://ann@db/evals", &default_roots).expect("parses");
        assert!(tls.roots.is_none(), "prefer does not verify");
    }

    #[test]
    fn bad_tls_settings_are_refused_with_what_to_do() {
        let err = |url: &str| split(url, &env()).unwrap_err();
        assert!(err("postgres://a@h/d?sslmode=verify-full").contains("sslrootcert=PATH"));
        assert!(err("postgres://a@h/d?sslmode=verify-ca").contains("sslrootcert=system"));
        assert!(err("postgres://a@h/d?sslmode=strict").contains("verify-full"));
        assert!(err("postgres://a@h/d?sslmode=allow").contains("use prefer"));
        assert!(
            err("postgres://a@h/d?sslcert=/c.pem&sslkey=/k.pem").contains("client certificates")
        );
        let missing = err("postgres://a@h/d?sslmode=verify-full&sslrootcert=/nope/ca.pem");
        assert!(missing.contains("/nope/ca.pem"), "{missing}");
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let none = err(&format!("postgres://a@h/d?sslrootcert={}", empty.display()));
        assert!(none.contains("no certificate"), "{none}");
        assert!(err("postgres://a@h/d?sslrootcert=%zz").contains("two hex digits"));
    }

    #[test]
    fn escaped_paths_are_decoded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let odd = dir.path().join("my roots.pem");
        std::fs::copy(CA, &odd).expect("copy");
        let url = format!(
            "postgres://a@h/d?sslrootcert={}",
            odd.display().to_string().replace(' ', "%20")
        );
        let (_, tls) = split(&url, &env()).expect("parses");
        assert!(matches!(&tls.roots, Some(Roots::File(p, _)) if p == &odd));
    }
}
