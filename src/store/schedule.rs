//! Scheduler leases (a suite never overlaps itself) and fire records.

use super::Store;

impl Store {}
