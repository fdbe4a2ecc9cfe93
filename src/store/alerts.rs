//! Alert state and the queue of undelivered notices.

use super::Store;

impl Store {}
