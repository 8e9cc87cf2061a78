//! The dispatcher: one task per pool that takes jobs from the queue, groups
//! them by topic, starts request tasks (at most `pool_size` at once) and
//! carries out the close: drain until the deadline, then drop what is left,
//! then notify.
//!
//! Batching (ours) works like Nagle's algorithm, per topic: a topic with no
//! partial batch in flight sends what it has at once (no added latency when
//! idle); while a partial batch's first attempt is on the wire, later jobs for
//! that topic wait and go out together, ten per `PublishBatch` as soon as ten
//! are there. Without batching every job is its own `Publish`.
//!
//! It runs under a supervising loop: a panic is caught, counted, reported and
//! the dispatcher restarts with its state (queues, running tasks, close
//! progress) intact, because that state lives outside the panicking future.

use super::request::{Batch, Shared, Signal, TaskGuard};
use super::{CloseCommand, Job, DROP_DRAIN, MAX_BATCH, MAX_BATCH_BYTES};
use crate::report::{CloseCallback, CloseReport, DropReason, Outcome, Tag};
use crate::stats::Counters;
use futures_util::FutureExt;
use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Pause before restarting a dispatcher that panicked, so a panic that
/// repeats cannot spin a runtime thread.
const RESTART_PAUSE: Duration = Duration::from_millis(10);
/// Jobs taken from the channel in one go before dispatching, so that a burst
/// already queued is grouped before its first job leaves alone.
const INTAKE: usize = 256;

/// Panics to provoke, for the crate's own tests.
#[cfg(feature = "test-hooks")]
#[derive(Debug, Default)]
pub(crate) struct Faults {
    pub dispatcher: std::sync::atomic::AtomicBool,
    pub attempt: std::sync::atomic::AtomicBool,
}

pub(crate) struct Settings {
    pub pool_size: usize,
    pub batching: bool,
}

/// The jobs waiting for one topic.
struct TopicQueue<T> {
    jobs: VecDeque<Job<T>>,
    /// A partial batch of this topic is in its first attempt.
    partial_in_flight: bool,
    /// The topic is in the dispatcher's ready list.
    in_ready: bool,
}

impl<T> TopicQueue<T> {
    fn new() -> Self {
        TopicQueue {
            jobs: VecDeque::new(),
            partial_in_flight: false,
            in_ready: false,
        }
    }

    fn sendable(&self, batching: bool) -> bool {
        !self.jobs.is_empty()
            && (!batching || !self.partial_in_flight || self.jobs.len() >= MAX_BATCH)
    }

    fn idle(&self) -> bool {
        self.jobs.is_empty() && !self.partial_in_flight && !self.in_ready
    }
}

struct Dispatcher<T> {
    shared: Arc<Shared<T>>,
    settings: Settings,
    queue: mpsc::UnboundedReceiver<Job<T>>,
    /// False once the queue is closed and empty.
    queue_open: bool,
    control: mpsc::UnboundedReceiver<CloseCommand>,
    /// False once every control sender is gone (the pool handle was dropped).
    control_open: bool,
    signals: mpsc::UnboundedReceiver<Signal>,
    topics: HashMap<Arc<str>, TopicQueue<T>>,
    /// Topics that can send now, served in turn.
    ready: VecDeque<Arc<str>>,
    /// Request tasks started and not finished.
    running: usize,
    /// Set once a close began: when to give up, and who to tell.
    closing: Option<(Instant, Vec<CloseCallback>)>,
}

pub(crate) fn spawn<T: Tag>(
    runtime: &tokio::runtime::Handle,
    shared: Shared<T>,
    settings: Settings,
    queue: mpsc::UnboundedReceiver<Job<T>>,
    control: mpsc::UnboundedReceiver<CloseCommand>,
    signals: mpsc::UnboundedReceiver<Signal>,
) {
    let dispatcher = Dispatcher {
        shared: Arc::new(shared),
        settings,
        queue,
        queue_open: true,
        control,
        control_open: true,
        signals,
        topics: HashMap::new(),
        ready: VecDeque::new(),
        running: 0,
        closing: None,
    };
    runtime.spawn(supervise(dispatcher));
}

async fn supervise<T: Tag>(mut dispatcher: Dispatcher<T>) {
    loop {
        match AssertUnwindSafe(dispatcher.run()).catch_unwind().await {
            Ok(()) => break,
            Err(_) => {
                Counters::bump(&dispatcher.shared.counters.common.panics);
                dispatcher.shared.reporter.panic("sns_dispatcher");
                tokio::time::sleep(RESTART_PAUSE).await;
            }
        }
    }
    // Dropping the dispatcher drops its `Shared`; the reporter thread ends
    // once the last request task has dropped its clone too.
}

impl<T: Tag> Dispatcher<T> {
    async fn run(&mut self) {
        loop {
            #[cfg(feature = "test-hooks")]
            if self.shared.faults.dispatcher.swap(false, Relaxed) {
                panic!("injected dispatcher panic");
            }
            self.dispatch_ready();
            let deadline = match &self.closing {
                Some(_) if self.drained() => break,
                Some((deadline, _)) => Some(*deadline),
                None => None,
            };
            tokio::select! {
                biased;
                Some(signal) = self.signals.recv() => self.on_signal(signal),
                command = self.control.recv(), if self.control_open => match command {
                    Some(command) => self.begin_close(command.drain, Some(command.done)),
                    None => {
                        self.control_open = false;
                        self.begin_close(DROP_DRAIN, None);
                    }
                },
                job = self.queue.recv(), if self.queue_open => match job {
                    Some(job) => self.intake(job),
                    None => {
                        self.queue_open = false;
                        self.begin_close(DROP_DRAIN, None);
                    }
                },
                _ = sleep_until(deadline), if deadline.is_some() => break,
            }
        }
        self.finish().await;
    }

    /// Nothing queued, nothing running, nothing more can arrive.
    fn drained(&self) -> bool {
        !self.queue_open && self.topics.is_empty() && self.running == 0
    }

    /// Files `job` and whatever else is already in the channel.
    fn intake(&mut self, job: Job<T>) {
        self.enqueue(job);
        for _ in 1..INTAKE {
            match self.queue.try_recv() {
                Ok(job) => self.enqueue(job),
                Err(_) => return,
            }
        }
    }

    fn enqueue(&mut self, job: Job<T>) {
        let batching = self.settings.batching;
        let topic = job.topic.clone();
        let queue = self
            .topics
            .entry(topic.clone())
            .or_insert_with(TopicQueue::new);
        queue.jobs.push_back(job);
        if !queue.in_ready && queue.sendable(batching) {
            queue.in_ready = true;
            self.ready.push_back(topic);
        }
    }

    /// Starts requests while slots are free and topics can send.
    fn dispatch_ready(&mut self) {
        let batching = self.settings.batching;
        while self.running < self.settings.pool_size {
            let Some(topic) = self.ready.pop_front() else {
                return;
            };
            let Some(queue) = self.topics.get_mut(&topic) else {
                continue;
            };
            queue.in_ready = false;
            if queue.sendable(batching) {
                let n = if batching {
                    batch_len(queue.jobs.iter().take(MAX_BATCH))
                } else {
                    1
                };
                let jobs: Vec<Job<T>> = queue.jobs.drain(..n).collect();
                let partial = batching && n < MAX_BATCH;
                queue.partial_in_flight |= partial;
                if queue.sendable(batching) {
                    queue.in_ready = true;
                    self.ready.push_back(topic.clone());
                }
                self.start(
                    Batch {
                        topic: topic.clone(),
                        jobs,
                    },
                    partial,
                );
            }
            self.forget_if_idle(&topic);
        }
    }

    fn forget_if_idle(&mut self, topic: &Arc<str>) {
        if self.topics.get(topic).is_some_and(TopicQueue::idle) {
            self.topics.remove(topic);
        }
    }

    fn on_signal(&mut self, signal: Signal) {
        match signal {
            Signal::Finished => self.running -= 1,
            Signal::FirstAttemptDone(topic) => {
                let batching = self.settings.batching;
                if let Some(queue) = self.topics.get_mut(&topic) {
                    queue.partial_in_flight = false;
                    if !queue.in_ready && queue.sendable(batching) {
                        queue.in_ready = true;
                        self.ready.push_back(topic.clone());
                    }
                }
                self.forget_if_idle(&topic);
            }
        }
    }

    /// Closes the queue (later publishes fail) and fixes the deadline. A
    /// later command only adds its callback.
    fn begin_close(&mut self, drain: Duration, done: Option<CloseCallback>) {
        self.queue.close();
        let (_, callbacks) = self.closing.get_or_insert_with(|| {
            let deadline = Instant::now().checked_add(drain).unwrap_or_else(far_future);
            (deadline, Vec::new())
        });
        callbacks.extend(done);
    }

    /// Stops what still runs, drops what is still queued, waits for every
    /// request task to report, then sends the close notices.
    async fn finish(&mut self) {
        self.shared.hard_stop.cancel();
        self.queue.close();
        while let Ok(job) = self.queue.try_recv() {
            self.drop_queued(job);
        }
        self.queue_open = false;
        self.ready.clear();
        let topics = std::mem::take(&mut self.topics);
        for (_, queue) in topics {
            queue.jobs.into_iter().for_each(|job| self.drop_queued(job));
        }
        // Cancelled tasks report at their next poll, then signal `Finished`.
        while self.running > 0 {
            match self.signals.recv().await {
                Some(signal) => self.on_signal(signal),
                None => break,
            }
        }
        let report = CloseReport {
            dropped: self.shared.counters.common.dropped_closed.load(Relaxed),
        };
        // Close commands racing with the end get their notice too.
        self.control.close();
        let mut callbacks = self.closing.take().map(|c| c.1).unwrap_or_default();
        while let Ok(command) = self.control.try_recv() {
            callbacks.push(command.done);
        }
        for done in callbacks {
            self.shared.reporter.closed(report, done);
        }
    }

    fn drop_queued(&self, job: Job<T>) {
        let counters = &self.shared.counters;
        counters.queued.fetch_sub(1, Relaxed);
        Counters::bump(&counters.common.dropped_closed);
        let dropped = Outcome::Dropped(DropReason::Closed);
        self.shared.reporter.outcome(job.tag, dropped);
    }

    fn start(&mut self, batch: Batch<T>, partial: bool) {
        let n = batch.jobs.len() as u64;
        let counters = &self.shared.counters;
        counters.queued.fetch_sub(n, Relaxed);
        counters.common.in_flight.fetch_add(n, Relaxed);
        self.running += 1;
        // The guard signals the end of the first attempt and of the task,
        // also if the task panics.
        let partial_topic = partial.then(|| batch.topic.clone());
        let guard = TaskGuard::new(self.shared.signals.clone(), partial_topic);
        let shared = self.shared.clone();
        tokio::spawn(async move {
            // `run_batch` catches attempt panics itself; this is the last line
            // of defence for the bookkeeping around them.
            if AssertUnwindSafe(shared.run_batch(batch, guard))
                .catch_unwind()
                .await
                .is_err()
            {
                Counters::bump(&shared.counters.common.panics);
                shared.reporter.panic("sns_job");
            }
        });
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// A deadline that never comes (for a drain time too large to add).
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86400 * 365 * 30)
}

/// How many of the first queued jobs fit one PublishBatch: at most
/// MAX_BATCH_BYTES of payload, and always at least one (a single job too
/// large for SNS fails on its own).
fn batch_len<'a, T: 'a>(jobs: impl Iterator<Item = &'a Job<T>>) -> usize {
    let mut bytes = 0;
    let mut n = 0;
    for job in jobs {
        bytes += job.payload_bytes();
        if n > 0 && bytes > MAX_BATCH_BYTES {
            break;
        }
        n += 1;
    }
    n.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(bytes: usize) -> Job<u32> {
        Job {
            tag: 0,
            topic: Arc::from("t"),
            message: "x".repeat(bytes),
            attributes: None,
        }
    }

    #[test]
    fn a_batch_stops_before_snss_size_limit() {
        let small: Vec<_> = (0..12).map(|_| job(100)).collect();
        assert_eq!(batch_len(small.iter().take(MAX_BATCH)), 10);
        let big: Vec<_> = (0..10).map(|_| job(30 * 1024)).collect();
        assert_eq!(batch_len(big.iter().take(MAX_BATCH)), 8);
        let huge = [job(300 * 1024), job(10)];
        assert_eq!(batch_len(huge.iter()), 1);
    }
}
