//! A rabbit pool's counters: atomics bumped on the hot path, read as a
//! [`RabbitStats`] snapshot.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// A snapshot of a rabbit pool's counters (the NIF's `pool_stats/1` map).
///
/// Every accepted message is in exactly one place, so (up to updates in
/// transit) `submitted = published + dropped_retries_exhausted +
/// dropped_closed + queued + in_flight`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RabbitStats {
    /// Messages accepted by `publish`.
    pub submitted: u64,
    /// Messages done: acked by the broker (confirms on) or written to the
    /// channel (confirms off).
    pub published: u64,
    /// Acks received (confirms on).
    pub confirmed: u64,
    /// Nacks received; each nacked message is republished or dropped.
    pub nacked: u64,
    /// Publishes after the first one of a message (after a nack, a confirm
    /// timeout, a channel error or a lost connection).
    pub republished: u64,
    /// Publishes not confirmed within `confirm_timeout`.
    pub confirm_timeouts: u64,
    /// Messages waiting in the queue now.
    pub queued: u64,
    /// Messages taken from the queue and not done (on the wire, unconfirmed,
    /// or waiting to be republished).
    pub in_flight: u64,
    /// `publish` calls refused because the queue was full.
    pub dropped_overloaded: u64,
    /// Accepted messages given up because the pool closed before they were published.
    pub dropped_closed: u64,
    /// Accepted messages given up after [`super::MAX_ATTEMPTS`] failed attempts.
    pub dropped_retries_exhausted: u64,
    /// Connections opened (each with its channel ready).
    pub connections_opened: u64,
    /// Connection attempts that failed.
    pub connections_failed: u64,
    /// Panics caught (and recovered from) in the pool's tasks or reporter.
    pub panics: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// The reporter thread counts a panicking sink here.
    pub reporter: Arc<crate::stats::Counters>,
    pub submitted: AtomicU64,
    pub published: AtomicU64,
    pub confirmed: AtomicU64,
    pub nacked: AtomicU64,
    pub republished: AtomicU64,
    pub confirm_timeouts: AtomicU64,
    pub queued: AtomicU64,
    pub in_flight: AtomicU64,
    pub dropped_overloaded: AtomicU64,
    pub dropped_closed: AtomicU64,
    pub dropped_retries_exhausted: AtomicU64,
    pub connections_opened: AtomicU64,
    pub connections_failed: AtomicU64,
    pub panics: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Relaxed);
}

impl Counters {
    /// Takes a place in the queue, or counts an overload.
    pub fn reserve(&self, capacity: u64) -> bool {
        if self.queued.fetch_add(1, Relaxed) >= capacity {
            self.queued.fetch_sub(1, Relaxed);
            bump(&self.dropped_overloaded);
            return false;
        }
        true
    }

    /// Gives back a place taken by `reserve` (the message was not accepted).
    pub fn unreserve(&self) {
        self.queued.fetch_sub(1, Relaxed);
    }

    pub fn accepted(&self) {
        bump(&self.submitted);
    }

    /// A worker took a message out of the queue.
    pub fn taken(&self) {
        self.queued.fetch_sub(1, Relaxed);
        bump(&self.in_flight);
    }

    /// A message taken by a worker is done (published or dropped).
    pub fn finished(&self, outcome: &AtomicU64) {
        bump(outcome);
        self.in_flight.fetch_sub(1, Relaxed);
    }

    /// A message still in the queue was dropped by a close.
    pub fn dropped_from_queue(&self) {
        bump(&self.dropped_closed);
        self.queued.fetch_sub(1, Relaxed);
    }

    pub fn snapshot(&self) -> RabbitStats {
        RabbitStats {
            submitted: self.submitted.load(Relaxed),
            published: self.published.load(Relaxed),
            confirmed: self.confirmed.load(Relaxed),
            nacked: self.nacked.load(Relaxed),
            republished: self.republished.load(Relaxed),
            confirm_timeouts: self.confirm_timeouts.load(Relaxed),
            queued: self.queued.load(Relaxed),
            in_flight: self.in_flight.load(Relaxed),
            dropped_overloaded: self.dropped_overloaded.load(Relaxed),
            dropped_closed: self.dropped_closed.load(Relaxed),
            dropped_retries_exhausted: self.dropped_retries_exhausted.load(Relaxed),
            connections_opened: self.connections_opened.load(Relaxed),
            connections_failed: self.connections_failed.load(Relaxed),
            panics: self.panics.load(Relaxed) + self.reporter.panics.load(Relaxed),
        }
    }
}
