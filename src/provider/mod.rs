//! Model providers: one file per API, behind one trait. Providers know nothing about suites,
//! scoring or storage.

use std::sync::Arc;

use async_trait::async_trait;

use crate::model::{CallError, Completion, ProviderKind, ProviderSpec, Request};

pub mod anthropic;
pub mod common;
pub mod echo;
pub mod exec;
pub mod http;
pub mod ollama;
pub mod openai;
pub mod replay;
pub mod tls;

/// Errors building a provider from its spec.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("set up provider `{id}`: {message}")]
    Setup { id: String, message: String },
}

impl ProviderError {
    pub fn setup(id: &str, message: impl Into<String>) -> Self {
        Self::Setup {
            id: id.to_string(),
            message: message.into(),
        }
    }
}

/// A model (or application) that answers requests.
#[async_trait]
pub trait Provider: Send + Sync {
    /// The provider's stable id.
    fn id(&self) -> &str;

    /// One call. Timeouts are applied by the executor; a provider maps its failures to
    /// [`CallError`] kinds and never puts a secret in a message.
    async fn complete(&self, request: &Request) -> Result<Completion, CallError>;
}

/// Build the provider a spec describes. HTTP providers share `client` (one connection pool).
pub fn build(
    spec: &ProviderSpec,
    client: &reqwest::Client,
) -> Result<Arc<dyn Provider>, ProviderError> {
    Ok(match spec.kind {
        ProviderKind::Echo => Arc::new(echo::EchoProvider::new(spec)),
        ProviderKind::Replay => Arc::new(replay::ReplayProvider::new(spec)?),
        ProviderKind::Exec => Arc::new(exec::ExecProvider::new(spec)?),
        ProviderKind::Openai => Arc::new(openai::OpenAiProvider::new(spec, client.clone())?),
        ProviderKind::Anthropic => {
            Arc::new(anthropic::AnthropicProvider::new(spec, client.clone())?)
        }
        ProviderKind::Ollama => Arc::new(ollama::OllamaProvider::new(spec, client.clone())?),
        ProviderKind::Http => Arc::new(http::HttpProvider::new(spec, client.clone())?),
    })
}

/// The shared HTTP client (connection reuse across every provider of a run). Its TLS roots
/// are loaded by its first TLS handshake, not here (see [`tls`]).
pub fn http_client() -> Result<reqwest::Client, ProviderError> {
    let ring = Arc::new(rustls::crypto::ring::default_provider());
    // rustls is built without a default crypto provider; install ring once.
    let _ = rustls::crypto::CryptoProvider::install_default((*ring).clone());
    let roots = Arc::new(tls::LazyRoots::new(Arc::clone(&ring)));
    let config = tls::client_config(ring, roots)
        .map_err(|e| ProviderError::setup("*", format!("set up TLS: {e}")))?;
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .user_agent(concat!("evalwatch/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ProviderError::setup("*", format!("build the HTTP client: {e}")))
}
