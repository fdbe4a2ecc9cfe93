//! Production traffic: sources in evalwatch.yaml, `ingest`, `traffic` and `prune`, run as the
//! real binary against real log files and a real store.

mod alerts;
mod confidence;
mod config;
mod drift;
mod feedback;
mod figures;
mod formats;
mod gzip;
pub(crate) mod ingest;
pub(crate) mod judge;
mod otlp;
mod page;
mod prune;
mod quiet;
mod redaction;
mod rotation;
mod satisfaction;
