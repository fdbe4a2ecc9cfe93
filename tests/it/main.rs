//! Integration tests: the real binary against real files, a real SQLite store and, for
//! providers, loopback servers. One test binary, one module per area.

mod alerts;
mod budget;
mod changes;
mod cli;
mod collect;
mod docs;
mod emit;
mod examples;
mod faults;
mod fuzz;
mod history;
mod judges;
mod limits;
mod marks;
mod pages;
mod pg_history;
mod pg_outage;
mod pg_review;
mod pg_schedule;
mod pg_tls;
mod pg_traffic;
mod pgdb;
mod providers;
mod reports;
mod review;
mod review_traffic;
mod runs;
mod schedule;
mod settings;
mod signals;
mod store_pg;
mod support;
mod traffic;
mod truncation;
mod validate;
