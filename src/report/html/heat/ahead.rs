//! The heat maps' statuses of a refresh, read by whichever of its two threads gets to a suite
//! first. The trend pages (this thread) need a suite's statuses only late in its page; the
//! thread writing run pages, with a connection of its own, reads them meanwhile for the suite
//! being written and the next one. On PostgreSQL, where each read waits on the server, that
//! takes the heat map's read (a fifth of a trend page) off the longest path.
//!
//! At most two suites are read ahead of the trend pages, so that a report of many suites does
//! not hold all their statuses at once. A read that fails on the other thread is done again
//! here, where its error is reported as any read's.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use super::HeatHistory;
use crate::report::html::Source;

/// How far past the suite the trend pages are at the other thread reads.
const AHEAD: usize = 1;

enum State {
    /// Nobody has read it.
    Free,
    /// The other thread is reading it.
    Reading,
    /// Read (None: the read failed; the trend page reads it again).
    Read(Option<HeatHistory>),
    /// Given to the trend page, or left for it to read.
    Taken,
}

struct Slot {
    state: Mutex<State>,
    done: Condvar,
}

/// One slot a suite, in the order the trend pages are written.
pub(in crate::report::html) struct HeatAhead {
    suites: Vec<String>,
    slots: Vec<Slot>,
    /// The suite the trend pages are at.
    at: AtomicUsize,
}

impl HeatAhead {
    /// Slots for `suites` (those whose statuses were not read while their runs went).
    pub fn new(suites: Vec<String>) -> Self {
        let slots = suites
            .iter()
            .map(|_| Slot {
                state: Mutex::new(State::Free),
                done: Condvar::new(),
            })
            .collect();
        Self {
            suites,
            slots,
            at: AtomicUsize::new(0),
        }
    }

    /// Whether there is anything to read.
    pub fn is_empty(&self) -> bool {
        self.suites.is_empty()
    }

    /// The trend pages are at `suite` now: the other thread reads it and the next.
    pub fn at(&self, suite: &str) {
        if let Some(i) = self.suites.iter().position(|s| s == suite) {
            self.at.fetch_max(i, Ordering::AcqRel);
        }
    }

    /// The trend pages' side: the statuses of `suite`, read by the other thread (waiting for
    /// a read under way), or None when this thread is to read them itself.
    pub fn take(&self, suite: &str) -> Option<HeatHistory> {
        let i = self.suites.iter().position(|s| s == suite)?;
        let slot = &self.slots[i];
        let mut state = lock(&slot.state);
        while matches!(*state, State::Reading) {
            state = slot
                .done
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        match std::mem::replace(&mut *state, State::Taken) {
            State::Read(h) => h,
            State::Free | State::Reading | State::Taken => None,
        }
    }

    /// The other thread's side: read the statuses of the suites the trend pages will need
    /// next (up to [`AHEAD`] past the one they are at) that nobody has read yet.
    pub fn read_next(&self, store: &dyn Source) {
        loop {
            let at = self.at.load(Ordering::Acquire);
            let last = (at + AHEAD).min(self.slots.len().saturating_sub(1));
            let Some(i) = (at..=last).find(|&i| self.claim(i)) else {
                return;
            };
            let mut reading = Reading {
                slot: &self.slots[i],
                read: None,
            };
            // An error is left for the trend page, which reads again and says it.
            reading.read = HeatHistory::read(store, &self.suites[i]).ok();
        }
    }

    /// Mark slot `i` as being read here, when nobody has.
    fn claim(&self, i: usize) -> bool {
        let Some(slot) = self.slots.get(i) else {
            return false;
        };
        let mut state = lock(&slot.state);
        if matches!(*state, State::Free) {
            *state = State::Reading;
            true
        } else {
            false
        }
    }
}

/// A read under way: its end (the read, or None should the read panic) is put in the slot,
/// and the trend page waiting for it woken, whatever happens.
struct Reading<'a> {
    slot: &'a Slot,
    read: Option<HeatHistory>,
}

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        *lock(&self.slot.state) = State::Read(self.read.take());
        self.slot.done.notify_all();
    }
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
