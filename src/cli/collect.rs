//! `evalwatch collect`'s arguments.

use clap::Args;

#[derive(Debug, Args)]
pub struct CollectArgs {
    /// The `otlp` traffic source that spans are stored under [default: the only `otlp` source]
    pub source: Option<String>,
    /// Address to listen on; beyond loopback only with --token-env
    #[arg(long, value_name = "ADDR", default_value = crate::traffic::collect::DEFAULT_LISTEN)]
    pub listen: String,
    /// Environment variable holding the bearer token senders must present
    /// (`Authorization: Bearer TOKEN`)
    #[arg(long, value_name = "VAR")]
    pub token_env: Option<String>,
}
