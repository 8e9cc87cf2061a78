//! The outcome sink the pool tests share (`common` for HTTP and SNS,
//! `rabbit_common`): a sink that forwards what a pool reports into a
//! channel as the suite's own event type, the receiving end, and polling
//! with a deadline. Included with `#[path]` by each of those modules, which
//! add their own ways of reading the events.

use crossbeam_channel::{Receiver, Sender};
use event_pusher_core::{CloseReport, Outcome, OutcomeSink};
use std::fmt::Debug;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// A suite's event type: what a pool's sink and close notice become, and
/// how long the suite waits. Implemented with [`pool_event!`].
pub trait PoolEvent: Debug + Send + 'static {
    /// How long a wait may take before the test fails.
    const DEADLINE: Duration;
    /// How often a wait polls.
    const POLL: Duration;
    fn outcome(tag: u64, outcome: Outcome) -> Self;
    fn panic(location: &'static str) -> Self;
    fn closed(report: CloseReport) -> Self;

    /// Polls `cond` until it holds, failing the test after `DEADLINE`.
    fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Self::DEADLINE;
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting: {what}");
            std::thread::sleep(Self::POLL);
        }
    }
}

/// Implements [`PoolEvent`] for a suite's `Event` enum, which has the
/// variants `Outcome(u64, Outcome)`, `Panic(&'static str)` and
/// `Closed(CloseReport)`, with its deadline and polling interval.
macro_rules! pool_event {
    ($event:ident, $deadline:expr, $poll:expr) => {
        impl sink_common::PoolEvent for $event {
            const DEADLINE: std::time::Duration = $deadline;
            const POLL: std::time::Duration = $poll;
            fn outcome(tag: u64, outcome: event_pusher_core::Outcome) -> Self {
                $event::Outcome(tag, outcome)
            }
            fn panic(location: &'static str) -> Self {
                $event::Panic(location)
            }
            fn closed(report: event_pusher_core::CloseReport) -> Self {
                $event::Closed(report)
            }
        }
    };
}
pub(crate) use pool_event;

pub struct ChanSink<E> {
    tx: Sender<E>,
    /// Dropped with the sink, i.e. when the reporter thread ends.
    _alive: Arc<()>,
}

impl<E: PoolEvent> OutcomeSink<u64> for ChanSink<E> {
    fn results(&mut self, batch: &mut Vec<(u64, Outcome)>) {
        for (tag, outcome) in batch.drain(..) {
            let _ = self.tx.send(E::outcome(tag, outcome));
        }
    }
    fn panicked(&mut self, location: &'static str) {
        let _ = self.tx.send(E::panic(location));
    }
}

/// The receiving end of a [`ChanSink`].
pub struct Collector<E> {
    pub rx: Receiver<E>,
    pub tx: Sender<E>,
    sink_alive: Weak<()>,
}

impl<E: PoolEvent> Collector<E> {
    /// A collector and the sink that feeds it.
    pub fn pair() -> (Collector<E>, ChanSink<E>) {
        let (tx, rx) = crossbeam_channel::unbounded();
        let alive = Arc::new(());
        let collector = Collector {
            rx,
            tx: tx.clone(),
            sink_alive: Arc::downgrade(&alive),
        };
        (collector, ChanSink { tx, _alive: alive })
    }

    /// A close callback that reports into this collector.
    pub fn on_close(&self) -> impl FnOnce(CloseReport) + Send + 'static {
        let tx = self.tx.clone();
        move |report| {
            let _ = tx.send(E::closed(report));
        }
    }

    /// Asserts that nothing more arrives within `wait`.
    pub fn assert_quiet(&self, wait: Duration) {
        if let Ok(event) = self.rx.recv_timeout(wait) {
            panic!("unexpected event {event:?}");
        }
    }

    /// Waits until the pool's reporter thread has ended (it drops the sink).
    pub fn wait_reporter_gone(&self) {
        E::wait_until("reporter thread ends", || {
            self.sink_alive.strong_count() == 0
        });
    }
}
