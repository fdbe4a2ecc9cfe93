//! Renderers: read models in, bytes out. Machine JSON, JUnit XML and the terminal summary.

pub mod html;
pub mod junit;
pub mod machine;
pub mod terminal;

use crate::model::{GateResult, ProviderMetrics, RunInfo};

/// What a renderer needs to know about one run besides its results.
#[derive(Debug, Clone, Copy)]
pub struct RunView<'a> {
    pub info: &'a RunInfo,
    pub metrics: &'a [ProviderMetrics],
    pub gates: &'a [GateResult],
    /// Wall time of the run in seconds, when known.
    pub wall_secs: Option<f64>,
}

impl RunView<'_> {
    /// Overall metrics rows (no tag), in provider order.
    pub fn overall(&self) -> impl Iterator<Item = &ProviderMetrics> {
        self.metrics.iter().filter(|m| m.tag.is_none())
    }
}
