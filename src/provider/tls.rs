//! TLS for the shared HTTP client: the platform's verifier (`rustls-platform-verifier`, as
//! reqwest uses by default), with the system's root certificates loaded by the first TLS
//! handshake rather than when the client is built.
//!
//! Loading the roots reads every file of `/etc/ssl/certs` (about 6 ms of CPU here, more on a
//! busy machine). reqwest does it while it builds the client, so a run's first call waited
//! for it even against an `http://` endpoint, and a machine without CA certificates could not
//! build a client at all. Here a plain-HTTP run never loads them, and a machine without them
//! fails only the calls that need TLS, with rustls' error. An HTTPS endpoint's first handshake
//! takes network round trips anyway; the load is a few milliseconds more, once.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_platform_verifier::Verifier;

/// A [`ServerCertVerifier`] that is the platform's, built on first use (concurrent
/// handshakes wait for that one load). Handshake signatures need no roots.
#[derive(Debug)]
pub struct LazyRoots {
    provider: Arc<CryptoProvider>,
    /// Roots trusted besides the system's (tests).
    extra: Vec<CertificateDer<'static>>,
    verifier: OnceLock<Result<Verifier, rustls::Error>>,
}

impl LazyRoots {
    #[must_use]
    pub fn new(provider: Arc<CryptoProvider>) -> Self {
        Self::with_extra_roots(provider, Vec::new())
    }

    /// Trusting `extra` as well as the system's roots.
    #[must_use]
    pub fn with_extra_roots(
        provider: Arc<CryptoProvider>,
        extra: Vec<CertificateDer<'static>>,
    ) -> Self {
        Self {
            provider,
            extra,
            verifier: OnceLock::new(),
        }
    }

    /// Whether the roots were loaded (or failed to).
    #[must_use]
    pub fn loaded(&self) -> bool {
        self.verifier.get().is_some()
    }

    fn verifier(&self) -> Result<&Verifier, rustls::Error> {
        self.verifier
            .get_or_init(|| {
                if self.extra.is_empty() {
                    Verifier::new(Arc::clone(&self.provider))
                } else {
                    Verifier::new_with_extra_roots(self.extra.clone(), Arc::clone(&self.provider))
                }
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl ServerCertVerifier for LazyRoots {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verifier()?.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The client's TLS configuration: rustls with ring, TLS 1.2 and 1.3, the platform's verifier
/// over `roots`, and ALPN offering HTTP/2 then HTTP/1.1 (what reqwest sets up itself).
pub fn client_config(
    provider: Arc<CryptoProvider>,
    roots: Arc<LazyRoots>,
) -> Result<rustls::ClientConfig, rustls::Error> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::PrivateKeyDer;
    use rustls::pki_types::pem::PemObject;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const CA: &[u8] = include_bytes!("../../tests/data/tls/ca.pem");
    const SERVER: &[u8] = include_bytes!("../../tests/data/tls/server.pem");
    const SERVER_KEY: &[u8] = include_bytes!("../../tests/data/tls/server.key");

    fn ring() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    /// A loopback HTTPS server (certificate for localhost, signed by the test CA) answering
    /// every request with a small JSON body; its port.
    async fn https_server() -> u16 {
        let cert = CertificateDer::from_pem_slice(SERVER).unwrap();
        let key = PrivateKeyDer::from_pem_slice(SERVER_KEY).unwrap();
        let mut config = rustls::ServerConfig::builder_with_provider(ring())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let mut buf = vec![0u8; 4096];
                    let mut got = Vec::new();
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    let body = r#"{"ok":true}"#;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tls.write_all(answer.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        port
    }

    fn client(roots: &Arc<LazyRoots>) -> reqwest::Client {
        reqwest::Client::builder()
            .tls_backend_preconfigured(client_config(ring(), Arc::clone(roots)).unwrap())
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn a_server_signed_by_a_trusted_root_is_reached_and_the_roots_load_on_first_use() {
        let port = https_server().await;
        let ca = CertificateDer::from_pem_slice(CA).unwrap();
        let roots = Arc::new(LazyRoots::with_extra_roots(ring(), vec![ca]));
        let client = client(&roots);
        assert!(
            !roots.loaded(),
            "building the client must not load the roots"
        );
        let answer = client
            .get(format!("https://localhost:{port}/v1/models"))
            .send()
            .await
            .expect("the test CA is trusted");
        assert!(roots.loaded());
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.text().await.unwrap(), r#"{"ok":true}"#);
    }

    #[tokio::test]
    async fn a_server_no_trusted_root_signed_is_refused() {
        let port = https_server().await;
        // The system's roots only: the test CA is not among them.
        let roots = Arc::new(LazyRoots::new(ring()));
        let err = client(&roots)
            .get(format!("https://localhost:{port}/v1/models"))
            .send()
            .await
            .expect_err("an untrusted certificate must be refused");
        let mut chain = String::new();
        let mut source: Option<&dyn std::error::Error> = Some(&err);
        while let Some(e) = source {
            chain.push_str(&e.to_string());
            chain.push('\n');
            source = e.source();
        }
        // UnknownIssuer, or, on a machine without CA certificates, that none were loaded.
        assert!(
            chain.contains("UnknownIssuer") || chain.contains("No CA certificates"),
            "{chain}"
        );
        assert!(roots.loaded());
    }

    #[tokio::test]
    async fn a_server_whose_name_differs_is_refused_even_with_a_trusted_root() {
        let port = https_server().await;
        let ca = CertificateDer::from_pem_slice(CA).unwrap();
        let roots = Arc::new(LazyRoots::with_extra_roots(ring(), vec![ca]));
        // The certificate names localhost and 127.0.0.1, not this name.
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(client_config(ring(), Arc::clone(&roots)).unwrap())
            .resolve(
                "evalwatch.test",
                std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            )
            .build()
            .unwrap();
        let err = client
            .get(format!("https://evalwatch.test:{port}/"))
            .send()
            .await
            .expect_err("a certificate for another name must be refused");
        let chain = format!("{err:?}");
        assert!(chain.contains("NotValidForName"), "{chain}");
    }
}
