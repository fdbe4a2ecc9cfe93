//! `http` provider.

use async_trait::async_trait;

use super::{Provider, ProviderError};
use crate::model::{CallError, Completion, ErrorKind, ProviderSpec, Request};

pub struct HttpProvider {
    id: String,
}

impl HttpProvider {
    pub fn new(spec: &ProviderSpec, client: reqwest::Client) -> Result<Self, ProviderError> {
        let _ = client;
        Ok(Self {
            id: spec.id.clone(),
        })
    }
}

#[async_trait]
impl Provider for HttpProvider {
    fn id(&self) -> &str {
        &self.id
    }

    async fn complete(&self, _request: &Request) -> Result<Completion, CallError> {
        Err(CallError::new(
            ErrorKind::Config,
            "the http provider is not implemented yet",
        ))
    }
}
