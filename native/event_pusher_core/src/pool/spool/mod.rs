//! The disk spool (ours, opt-in per pool): every accepted event is written
//! to an append-only segment log before a task can deliver it, and marked
//! done (acked) once it is delivered or given up for good, so a node that
//! crashes or restarts delivers again what it had not finished, with the
//! same event IDs.
//!
//! - The caller encodes the record and hands it to the spool's writer
//!   thread ([`writer`]): O(1), never waits on the disk. The writer appends
//!   a group of records, commits them (to the OS; fsync as configured) and
//!   only then puts their jobs in the pool's queue.
//! - The in-memory queue keeps its bound: when it is full, records stay on
//!   disk only, and the writer reads them back in order as places free up
//!   (new events queue behind them, so per-lane order holds). The disk's
//!   bound is `max_bytes`; beyond it `submit` refuses (`spool_full`).
//! - Acks come from one place for every backend: [`SpoolSink`] wraps the
//!   pool's outcome sink and sees each job's last outcome (see
//!   [`finishes`]); a job that becomes a dead letter is acked by the
//!   dead-letter store instead, once its letter is on disk ([`letters`]).
//! - On start the log is read, checksums checked, a torn tail cut (and
//!   counted), and the live events replayed first, oldest first.
//!
//! Storage: our own segment log ([`log`], [`record`]); see
//! doc/durability.md for the crates considered and why none fit.

pub mod letters;
pub mod log;
pub mod record;
mod sink;
mod writer;

pub(crate) use letters::{LetterSink, Restored};
pub use log::{Corruption, OpenError, Position, Recovery, SegmentLog, SegmentReader};
pub(crate) use sink::SpoolSink;
pub(crate) use writer::{open, Control, Handle, Opened, Wake};

use crate::report::{DropReason, Outcome};
use crate::EventId;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// When the spool syncs its writes to the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    /// Never: a crash of the node's process loses nothing (the data is in
    /// the OS); a crash of the machine may lose the last seconds.
    Never,
    /// At most this long after a write.
    Interval(Duration),
    /// Before the events of a group are delivered (group commit).
    Always,
}

/// A pool's spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolConfig {
    /// The pool's own directory (created; locked while the pool runs).
    pub dir: PathBuf,
    /// Bytes of segment files beyond which new events are refused.
    pub max_bytes: u64,
    pub fsync: Fsync,
    /// Size at which a segment file is closed and a new one started;
    /// `None`: [`default_segment_bytes`].
    pub segment_bytes: Option<u64>,
}

/// A sixteenth of the limit, between 64 KiB and 16 MiB: small enough that
/// acked space is given back soon, large enough to keep files few.
pub fn default_segment_bytes(max_bytes: u64) -> u64 {
    (max_bytes / 16).clamp(64 * 1024, 16 * 1024 * 1024)
}

/// How a tag goes to disk and back (a replayed event gets its tag back).
pub trait PersistTag: Sized {
    fn persist(&self, out: &mut Vec<u8>);
    /// `None` if the bytes are not a tag (the event is skipped and counted).
    fn restore(bytes: &[u8]) -> Option<Self>;
}

impl PersistTag for u64 {
    fn persist(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    fn restore(bytes: &[u8]) -> Option<Self> {
        Some(u64::from_le_bytes(bytes.try_into().ok()?))
    }
}

impl PersistTag for () {
    fn persist(&self, _out: &mut Vec<u8>) {}
    fn restore(bytes: &[u8]) -> Option<Self> {
        bytes.is_empty().then_some(())
    }
}

impl PersistTag for Vec<u8> {
    fn persist(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
    fn restore(bytes: &[u8]) -> Option<Self> {
        Some(bytes.to_vec())
    }
}

/// A job's tag inside a pool: the caller's tag and, when the pool spools,
/// the seq of its record (what the ack names).
#[derive(Debug, Clone)]
pub struct Spooled<T> {
    pub tag: T,
    pub(crate) seq: Option<u64>,
}

impl<T> Spooled<T> {
    pub fn new(tag: T) -> Self {
        Spooled { tag, seq: None }
    }
}

/// Whether `outcome` is a job's last: delivered or given up for good. A
/// job dropped by a close stays in the spool for the next start; an
/// attempt's error or a 5xx is followed by another attempt or by
/// `Dropped(RetriesExhausted)`.
pub fn finishes(outcome: &Outcome) -> bool {
    match outcome {
        Outcome::Published { .. } => true,
        Outcome::Response { status, .. } => !(500..=599).contains(status),
        Outcome::Error { .. } => false,
        Outcome::Dropped(DropReason::Closed) => false,
        // A timed-out request may have been processed: it is not sent again.
        Outcome::TimedOut { .. } => true,
        Outcome::Dropped(
            DropReason::RetriesExhausted
            | DropReason::Overloaded
            | DropReason::Expired
            | DropReason::Unroutable,
        ) => true,
    }
}

/// Whether a job whose last outcome is `outcome` becomes a dead letter (as
/// every backend decides it: a final 4xx, retries exhausted, too old,
/// unroutable; a 429 is retried, then followed by retries exhausted). Its
/// spool record is then acked by the dead-letter store once the letter is on
/// disk, not by [`SpoolSink`]: a crash in between must not lose both.
pub fn becomes_dead_letter(outcome: &Outcome) -> bool {
    match outcome {
        Outcome::Response { status, .. } => (400..=499).contains(status),
        Outcome::Dropped(
            DropReason::RetriesExhausted | DropReason::Expired | DropReason::Unroutable,
        ) => true,
        _ => false,
    }
}

/// What a backend's job type tells the spool.
pub trait SpoolJob: Sized + Send + 'static {
    type Tag: Send + 'static;
    fn id(&self) -> EventId;
    fn tag(&self) -> &Spooled<Self::Tag>;
    fn tag_mut(&mut self) -> &mut Spooled<Self::Tag>;
    /// The backend's fields (everything but the ID and the tag).
    fn encode_fields(&self, out: &mut Vec<u8>);
    fn decode_fields(fields: &[u8], id: EventId, tag: Spooled<Self::Tag>) -> Option<Self>;
}

/// The spool's counters (in every backend's stats when it spools).
#[derive(Debug, Default)]
pub(crate) struct SpoolCounters {
    /// Bytes of segment files plus records on their way to them.
    pub used: AtomicU64,
    pub bytes: AtomicU64,
    /// Written and not acked.
    pub events: AtomicU64,
    /// On disk only, not yet in the memory queue.
    pub waiting: AtomicU64,
    /// Events of an earlier run put in the queue again.
    pub replayed: AtomicU64,
    /// Corrupted places found at start (files with a bad tail or header).
    pub corrupt: AtomicU64,
    pub corrupt_bytes: AtomicU64,
    /// Records skipped at replay (tag or fields unreadable).
    pub skipped: AtomicU64,
    pub dropped_spool_full: AtomicU64,
}

/// A snapshot of [`SpoolCounters`]; all zero for a pool without a spool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpoolStats {
    pub spool_bytes: u64,
    pub spool_events: u64,
    pub spool_waiting: u64,
    pub spool_replayed: u64,
    pub spool_corrupt: u64,
    pub spool_corrupt_bytes: u64,
    pub spool_skipped: u64,
    pub dropped_spool_full: u64,
}

impl SpoolCounters {
    pub fn snapshot(&self) -> SpoolStats {
        SpoolStats {
            spool_bytes: self.bytes.load(Relaxed),
            spool_events: self.events.load(Relaxed),
            spool_waiting: self.waiting.load(Relaxed),
            spool_replayed: self.replayed.load(Relaxed),
            spool_corrupt: self.corrupt.load(Relaxed),
            spool_corrupt_bytes: self.corrupt_bytes.load(Relaxed),
            spool_skipped: self.skipped.load(Relaxed),
            dropped_spool_full: self.dropped_spool_full.load(Relaxed),
        }
    }
}
