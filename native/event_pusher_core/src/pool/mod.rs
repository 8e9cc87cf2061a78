//! The pool runtime every backend shares: a bounded queue in front of the
//! backend's tasks, `submit` answering ok, overloaded or closed in O(1), a
//! close bounded by a drain time (also when the handle is dropped), shared
//! counters, and supervised tasks that resume after a panic.
//!
//! A backend supplies only how it delivers: a [`Strategy`] (the HTTP
//! workers with their keep-alive connections, the rabbit workers with
//! pipelined confirms, the SNS batcher), driven by the pool's lifecycle
//! task, and its own long-lived tasks made [`Supervised`]. Everything is
//! generic (static dispatch): no boxed call per event.

mod dead_letters;
mod error;
#[cfg(feature = "test-hooks")]
mod faults;
mod handle;
mod intake;
mod lifecycle;
pub mod spool;
mod supervise;

pub use dead_letters::{DeadLetterInfo, DeadLetterStats, Select, DEFAULT_CAPACITY};
pub(crate) use dead_letters::{DeadLetters, Letter};
pub(crate) use error::submit_error;
pub use error::{Refused, StartError};
#[cfg(feature = "test-hooks")]
pub(crate) use faults::Faults;
pub(crate) use handle::handle_methods;
pub(crate) use intake::{start, Intake};
pub(crate) use lifecycle::Strategy;
pub(crate) use supervise::{supervise, Supervised};

use std::time::Duration;
use tokio::time::Instant;

/// How long a pool whose handle was dropped without `close` (its owner died)
/// keeps delivering what it had accepted.
pub const DROP_DRAIN: Duration = Duration::from_secs(5);

/// `start + wait`, or a deadline that never comes when that is too far to add.
pub(crate) fn deadline_after(start: Instant, wait: Duration) -> Instant {
    start
        .checked_add(wait)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(86400 * 365 * 30))
}

/// Sleeps until `deadline`, or forever without one.
pub(crate) async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// A duration in whole microseconds, as outcomes carry it.
pub(crate) fn micros(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX)
}
