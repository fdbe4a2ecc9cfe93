//! Alerts: baselines, rules, statistics, sinks. Pure where it can be; sinks do I/O.
//!
//! - [`rule`]: rules parsed and validated from the raw `alerts:` JSON.
//! - [`stats`]: exact McNemar, Fisher's exact test, two-sample KS, chi-square.
//! - [`eval`]: one rule against the current run and its baseline runs -> a finding.
//! - [`message`]: the notice (JSON payload and text) of a finding or a recovery.
//! - [`changes`]: the change markers an alert names ("possibly related to ...").
//!
//! Alert episodes and pending deliveries, as stored, are rows of `crate::store`.
//! - [`traffic`]: alert rules over traffic metrics (window, split, calendar baselines).
//! - [`drift`], [`drift_rule`]: drift tests on traffic windows, and the rules that watch them.
//! - [`sink`]: delivery to stdout, a file, a webhook, Slack or a command, with retries.

pub mod changes;
pub mod drift;
pub mod drift_rule;
pub mod eval;
pub mod message;
pub mod rule;
pub mod sink;
pub mod stats;
pub mod traffic;
