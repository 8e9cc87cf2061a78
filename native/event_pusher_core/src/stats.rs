//! Pool counters: lock-free atomics bumped on the hot path, read as a [`Stats`]
//! snapshot. Every backend counts its jobs' way through the pool here; its
//! own extra counters sit next to these.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A snapshot of a pool's counters (the NIF's `pool_stats/1` map).
///
/// Every accepted job is in exactly one place, so (up to updates in transit)
/// `submitted = sent + timeouts + dropped_retries_exhausted + dropped_expired
/// + dropped_closed + queued + in_flight`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Jobs accepted by `submit`.
    pub submitted: u64,
    /// Jobs finished with a final HTTP response (any status that is not retried).
    pub sent: u64,
    /// `submit` calls refused (queue full or pool closed); the job never entered the pool.
    pub rejected: u64,
    /// Attempts that failed: transport error, timeout or 5xx.
    pub failed_attempts: u64,
    /// Attempts after the first one.
    pub retried: u64,
    /// `submit` calls refused because the queue was full (a subset of `rejected`).
    pub dropped_overloaded: u64,
    /// Accepted jobs given up because the pool closed before they finished.
    pub dropped_closed: u64,
    /// Accepted jobs given up after their last retry failed.
    pub dropped_retries_exhausted: u64,
    /// HTTP jobs whose last request got no answer in time (outcome unknown).
    pub timeouts: u64,
    /// HTTP jobs given up for being older than their maximum age.
    pub dropped_expired: u64,
    /// Jobs waiting in the queue now.
    pub queued: u64,
    /// Jobs taken from the queue and not finished (sending or waiting to retry).
    pub in_flight: u64,
    /// Panics caught (and recovered from) in the pool's tasks or reporter.
    pub panics: u64,
}

/// The live counters shared by a pool's handle, lifecycle, tasks and reporter.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub submitted: AtomicU64,
    /// Places taken in the queue (the queue's bound is checked against it).
    pub queued: AtomicU64,
    pub sent: AtomicU64,
    pub rejected: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub retried: AtomicU64,
    pub dropped_overloaded: AtomicU64,
    pub dropped_closed: AtomicU64,
    pub dropped_retries_exhausted: AtomicU64,
    pub timeouts: AtomicU64,
    pub dropped_expired: AtomicU64,
    pub in_flight: AtomicU64,
    pub panics: AtomicU64,
}

impl Counters {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub fn drop_one(counter: &AtomicU64) {
        counter.fetch_sub(1, Relaxed);
    }

    /// Takes a place in the queue, or counts an overload.
    pub fn reserve(&self, capacity: u64) -> bool {
        if self.queued.fetch_add(1, Relaxed) >= capacity {
            self.queued.fetch_sub(1, Relaxed);
            Self::bump(&self.dropped_overloaded);
            return false;
        }
        true
    }

    /// Takes a place in the queue if there is one (the spool's writer,
    /// whose job then waits on disk; a dead letter's replay, which stays a
    /// dead letter): not an overload.
    pub fn try_place(&self, capacity: u64) -> bool {
        if self.queued.fetch_add(1, Relaxed) >= capacity {
            self.queued.fetch_sub(1, Relaxed);
            return false;
        }
        true
    }

    /// Gives back a place taken by `reserve` (the job was not accepted).
    pub fn unreserve(&self) {
        self.queued.fetch_sub(1, Relaxed);
    }

    /// A task took `n` jobs out of the queue.
    pub fn taken(&self, n: u64) {
        self.queued.fetch_sub(n, Relaxed);
        self.in_flight.fetch_add(n, Relaxed);
    }

    /// A job taken by a task is done: counted in `outcome`, out of `in_flight`.
    pub fn finished(&self, outcome: &AtomicU64) {
        Self::bump(outcome);
        Self::drop_one(&self.in_flight);
    }

    /// A job still in the queue was dropped by a close.
    pub fn dropped_from_queue(&self) {
        Self::bump(&self.dropped_closed);
        self.queued.fetch_sub(1, Relaxed);
    }

    pub fn snapshot(&self) -> Stats {
        Stats {
            submitted: self.submitted.load(Relaxed),
            sent: self.sent.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            failed_attempts: self.failed_attempts.load(Relaxed),
            retried: self.retried.load(Relaxed),
            dropped_overloaded: self.dropped_overloaded.load(Relaxed),
            dropped_closed: self.dropped_closed.load(Relaxed),
            dropped_retries_exhausted: self.dropped_retries_exhausted.load(Relaxed),
            timeouts: self.timeouts.load(Relaxed),
            dropped_expired: self.dropped_expired.load(Relaxed),
            queued: self.queued.load(Relaxed),
            in_flight: self.in_flight.load(Relaxed),
            panics: self.panics.load(Relaxed),
        }
    }
}
