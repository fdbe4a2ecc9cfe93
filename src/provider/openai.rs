//! `openai` provider.

use async_trait::async_trait;

use super::{Provider, ProviderError};
use crate::model::{CallError, Completion, ErrorKind, ProviderSpec, Request};

pub struct OpenAiProvider {
    id: String,
}

impl OpenAiProvider {
    pub fn new(spec: &ProviderSpec, client: reqwest::Client) -> Result<Self, ProviderError> {
        let _ = client;
        Ok(Self {
            id: spec.id.clone(),
        })
    }
}

#[async_trait]
impl Provider for OpenAiProvider {
    fn id(&self) -> &str {
        &self.id
    }

    async fn complete(&self, _request: &Request) -> Result<Completion, CallError> {
        Err(CallError::new(
            ErrorKind::Config,
            "the openai provider is not implemented yet",
        ))
    }
}
