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

/// A suite's event type: what a pool's sink and close notice become.
pub trait PoolEvent: Debug + Send + 'static {
    fn outcome(tag: u64, outcome: Outcome) -> Self;
    fn panic(location: &'static str) -> Self;
    fn closed(report: CloseReport) -> Self;
}

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

    /// Whether the pool's reporter thread has ended (it drops the sink).
    pub fn reporter_gone(&self) -> bool {
        self.sink_alive.strong_count() == 0
    }
}

/// Polls `cond` every `poll` until it holds, failing the test after `deadline`.
pub fn poll_until(what: &str, deadline: Duration, poll: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + deadline;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        std::thread::sleep(poll);
    }
}
