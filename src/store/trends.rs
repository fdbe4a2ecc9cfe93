//! Trend and report queries: pre-aggregated metrics over time.

use super::Store;

impl Store {}
