//! A rabbit pool's counters: atomics bumped on the hot path, read as a
//! [`RabbitStats`] snapshot.

use crate::stats::Counters;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// A snapshot of a rabbit pool's counters (the NIF's `pool_stats/1` map).
///
/// Every accepted message is in exactly one place, so (up to updates in
/// transit) `submitted = published + dropped_retries_exhausted +
/// dropped_unroutable + dropped_closed + queued + in_flight`.
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
    /// Returns from the broker of mandatory messages no queue took (each
    /// return of a message counts).
    pub unroutable: u64,
    /// Mandatory messages given up because they were still unroutable at
    /// the end of their retry time.
    pub dropped_unroutable: u64,
    /// Connections opened (each with its channel ready).
    pub connections_opened: u64,
    /// Connection attempts that failed.
    pub connections_failed: u64,
    /// Panics caught (and recovered from) in the pool's tasks or reporter.
    pub panics: u64,
}

/// The live counters: the pool's own (`sent` counts published messages)
/// plus what only rabbit pools have.
#[derive(Debug, Default)]
pub(crate) struct RabbitCounters {
    pub common: Arc<Counters>,
    pub confirmed: AtomicU64,
    pub nacked: AtomicU64,
    pub republished: AtomicU64,
    pub confirm_timeouts: AtomicU64,
    pub connections_opened: AtomicU64,
    pub connections_failed: AtomicU64,
    pub unroutable: AtomicU64,
    pub dropped_unroutable: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    Counters::bump(counter);
}

impl RabbitCounters {
    pub fn snapshot(&self) -> RabbitStats {
        let c = &self.common;
        RabbitStats {
            submitted: c.submitted.load(Relaxed),
            published: c.sent.load(Relaxed),
            confirmed: self.confirmed.load(Relaxed),
            nacked: self.nacked.load(Relaxed),
            republished: self.republished.load(Relaxed),
            confirm_timeouts: self.confirm_timeouts.load(Relaxed),
            queued: c.queued.load(Relaxed),
            in_flight: c.in_flight.load(Relaxed),
            dropped_overloaded: c.dropped_overloaded.load(Relaxed),
            dropped_closed: c.dropped_closed.load(Relaxed),
            dropped_retries_exhausted: c.dropped_retries_exhausted.load(Relaxed),
            unroutable: self.unroutable.load(Relaxed),
            dropped_unroutable: self.dropped_unroutable.load(Relaxed),
            connections_opened: self.connections_opened.load(Relaxed),
            connections_failed: self.connections_failed.load(Relaxed),
            panics: c.panics.load(Relaxed),
        }
    }
}
