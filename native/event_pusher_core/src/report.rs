//! Outcome reporting: what happened to each job, delivered in batches to an
//! [`OutcomeSink`] from one reporter thread per pool.
//!
//! Tasks push events on an unbounded crossbeam channel (a push never blocks a
//! runtime thread; the number of events is bounded by the pool's queue and
//! retry limits). The reporter thread drains it, groups outcomes into batches
//! of at most [`MAX_BATCH`] (waiting at most [`LINGER`] for a batch to fill) and
//! hands each batch to the sink. Panics and the close notice flush the pending
//! batch first, so the sink sees events in the order they happened. The thread
//! ends when the pool's last task has finished, i.e. with the pool.

use crate::stats::Counters;
use crossbeam_channel::{Receiver, Sender};
use std::borrow::Cow;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

/// Largest batch handed to the sink at once.
pub const MAX_BATCH: usize = 256;
/// How long the reporter waits for more outcomes before flushing a partial batch.
pub const LINGER: Duration = Duration::from_millis(1);
/// The reporter thread only batches and calls the sink: a small stack is plenty.
const REPORTER_STACK: usize = 256 * 1024;

/// What happened to one attempt of a job, or to the job as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// An attempt got an HTTP response.
    Response { status: u16, elapsed_us: u64 },
    /// An attempt failed without a response (connect error, timeout...).
    /// The reason is short and never holds credentials.
    Error {
        reason: Cow<'static, str>,
        elapsed_us: u64,
        /// The message, for a publish MongooseIM reports with its payload
        /// (a rabbit nack, confirm timeout or refusal); `None` for HTTP.
        payload: Option<bytes::Bytes>,
    },
    /// A message was accepted by the server (an AMQP confirm, or written to
    /// the channel with confirms off; an SNS publish that succeeded). The
    /// payload goes back for MongooseIM's `payload`/`size` measurements.
    Published {
        elapsed_us: u64,
        payload: bytes::Bytes,
    },
    /// The job was given up.
    Dropped(DropReason),
    /// An HTTP job's last attempt was sent and got no answer in time: the
    /// endpoint may have processed it (outcome unknown). The job is over.
    TimedOut { elapsed_us: u64 },
}

/// Why a job was given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    RetriesExhausted,
    Closed,
    /// The bounded queue was full (counted when a backend drops queued work
    /// itself, e.g. while a broker is unreachable).
    Overloaded,
    /// Older than its maximum age before it could be delivered.
    Expired,
    /// No queue took the message (RabbitMQ `mandatory`) within its retry time.
    Unroutable,
}

/// What a job's tag must be: it is cloned for every attempt outcome but the
/// last, and shared by reference between a job's task and its attempts.
pub trait Tag: Clone + Send + Sync + 'static {}

impl<T: Clone + Send + Sync + 'static> Tag for T {}

/// Sent once a pool has closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CloseReport {
    /// Accepted jobs given up by this close (each got a `Dropped(Closed)` outcome).
    pub dropped: u64,
}

/// Called once the pool is closed, after the last outcome was delivered.
pub type CloseCallback = Box<dyn FnOnce(CloseReport) + Send + 'static>;

/// Where a pool's outcomes go. Every method runs on the pool's reporter thread
/// (never on a runtime or caller thread), so a sink may block briefly.
pub trait OutcomeSink<T>: Send + 'static {
    /// A non-empty batch, oldest first. Take the items (`batch.drain(..)`);
    /// whatever is left is discarded so the buffer can be reused.
    fn results(&mut self, batch: &mut Vec<(T, Outcome)>);
    /// A task panicked at `location`; it was restarted or its attempt failed.
    fn panicked(&mut self, location: &'static str);
}

pub(crate) enum Event<T> {
    Outcome(T, Outcome),
    Panic(&'static str),
    Closed(CloseReport, CloseCallback),
    /// Runs a callback on the reporter thread, after the outcomes sent before
    /// it (pool-level events such as a connection change, or an answer).
    Call(Box<dyn FnOnce() + Send + 'static>),
}

/// The sending side held by a pool's tasks. Cloning is cheap.
pub(crate) struct Reporter<T> {
    tx: Sender<Event<T>>,
}

impl<T> Clone for Reporter<T> {
    fn clone(&self) -> Self {
        Reporter {
            tx: self.tx.clone(),
        }
    }
}

impl<T: Send + 'static> Reporter<T> {
    /// Starts the reporter thread; panics of the sink itself count in `counters`.
    pub fn spawn<S: OutcomeSink<T>>(
        name: &str,
        sink: S,
        counters: Arc<Counters>,
    ) -> std::io::Result<Reporter<T>> {
        let (tx, rx) = crossbeam_channel::unbounded();
        std::thread::Builder::new()
            .name(name.to_owned())
            .stack_size(REPORTER_STACK)
            .spawn(move || {
                crate::background::mark_current_thread();
                run(rx, sink, &counters)
            })?;
        Ok(Reporter { tx })
    }

    // A send fails only once the reporter is gone, i.e. nobody is listening:
    // the event has nowhere to go, so it is dropped.
    pub fn outcome(&self, tag: T, outcome: Outcome) {
        let _ = self.tx.send(Event::Outcome(tag, outcome));
    }

    pub fn panic(&self, location: &'static str) {
        let _ = self.tx.send(Event::Panic(location));
    }

    pub fn closed(&self, report: CloseReport, done: CloseCallback) {
        let _ = self.tx.send(Event::Closed(report, done));
    }

    /// Runs `f` on the reporter thread once the outcomes before it are out.
    pub fn call(&self, f: Box<dyn FnOnce() + Send + 'static>) {
        let _ = self.tx.send(Event::Call(f));
    }
}

fn run<T, S: OutcomeSink<T>>(rx: Receiver<Event<T>>, mut sink: S, counters: &Counters) {
    let mut batch: Vec<(T, Outcome)> = Vec::with_capacity(MAX_BATCH);
    // Ends when every sender is gone: the pool's dispatcher and tasks are done.
    while let Ok(first) = rx.recv() {
        handle(first, &mut batch, &mut sink, counters);
        take_ready(&rx, &mut batch, &mut sink, counters);
        // A plain sleep, not a timed receive: waiting for a batch to fill
        // must not spin a core that the runtime needs.
        if !batch.is_empty() && batch.len() < MAX_BATCH {
            std::thread::sleep(LINGER);
            take_ready(&rx, &mut batch, &mut sink, counters);
        }
        flush(&mut batch, &mut sink, counters);
    }
    flush(&mut batch, &mut sink, counters);
}

/// Takes what is already in the channel, up to a full batch.
fn take_ready<T, S: OutcomeSink<T>>(
    rx: &Receiver<Event<T>>,
    batch: &mut Vec<(T, Outcome)>,
    sink: &mut S,
    counters: &Counters,
) {
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(event) => handle(event, batch, sink, counters),
            Err(_) => return,
        }
    }
}

fn handle<T, S: OutcomeSink<T>>(
    event: Event<T>,
    batch: &mut Vec<(T, Outcome)>,
    sink: &mut S,
    counters: &Counters,
) {
    match event {
        Event::Outcome(tag, outcome) => {
            batch.push((tag, outcome));
            if batch.len() >= MAX_BATCH {
                flush(batch, sink, counters);
            }
        }
        Event::Panic(location) => {
            flush(batch, sink, counters);
            guarded(counters, || sink.panicked(location));
        }
        Event::Closed(report, done) => {
            flush(batch, sink, counters);
            guarded(counters, || done(report));
        }
        Event::Call(f) => {
            flush(batch, sink, counters);
            guarded(counters, f);
        }
    }
}

fn flush<T, S: OutcomeSink<T>>(batch: &mut Vec<(T, Outcome)>, sink: &mut S, counters: &Counters) {
    if !batch.is_empty() {
        guarded(counters, || sink.results(batch));
        batch.clear();
    }
}

/// A panicking sink loses that batch, not the reporter.
fn guarded(counters: &Counters, f: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(f)).is_err() {
        Counters::bump(&counters.panics);
    }
}
