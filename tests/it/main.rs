//! Integration tests: the real binary against real files, a real SQLite store and, for
//! providers, loopback servers. One test binary, one module per area.

mod alerts;
mod cli;
mod examples;
mod faults;
mod history;
mod judges;
mod providers;
mod reports;
mod review;
mod runs;
mod schedule;
mod support;
