//! `echo`: returns the rendered prompt. For dry runs and wiring checks.

use async_trait::async_trait;

use super::Provider;
use crate::model::{CallError, Completion, ProviderSpec, Request};

pub struct EchoProvider {
    id: String,
}

impl EchoProvider {
    #[must_use]
    pub fn new(spec: &ProviderSpec) -> Self {
        Self {
            id: spec.id.clone(),
        }
    }
}

#[async_trait]
impl Provider for EchoProvider {
    fn id(&self) -> &str {
        &self.id
    }

    async fn complete(&self, request: &Request) -> Result<Completion, CallError> {
        let output = request.prompt_text();
        Ok(Completion {
            output,
            latency_ms: 0.0,
            tokens_in: None,
            tokens_out: None,
            finish_reason: Some("stop".into()),
            cost_usd: None,
            ..crate::model::Completion::default()
        })
    }
}
