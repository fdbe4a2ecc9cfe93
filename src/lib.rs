//! evalwatch: keeps watch over AI systems in production.
//!
//! Data flows one way: suite -> plan -> exec -> score -> store -> report | review | alert.
//! `model` holds the plain data the stages exchange; `app` is the only composer.

pub mod alert;
pub mod app;
pub mod cli;
pub mod exec;
pub mod judge;
pub mod metrics;
pub mod model;
pub mod output;
pub mod phase;
pub mod plan;
pub mod provider;
pub mod report;
pub mod review;
pub mod schedule;
pub mod score;
pub mod store;
pub mod suite;
pub mod traffic;
