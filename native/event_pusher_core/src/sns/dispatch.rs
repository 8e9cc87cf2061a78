//! The dispatcher, the SNS pool's [`Strategy`]: it takes jobs from the
//! queue, groups them by topic, starts request tasks (at most `pool_size` at
//! once), and on close drains until the deadline, then drops what is left.
//!
//! Batching (ours) works like Nagle's algorithm, per topic: a topic with no
//! partial batch in flight sends what it has at once (no added latency when
//! idle); while a partial batch's first attempt is on the wire, later jobs for
//! that topic wait and go out together, ten per `PublishBatch` as soon as ten
//! are there. Without batching every job is its own `Publish`.
//!
//! It runs in the pool's lifecycle task: a panic is caught, counted,
//! reported and the dispatcher resumes with its state (queues, running
//! tasks) intact, because that state lives outside the panicking future.

use super::request::{Batch, Shared, Signal, TaskGuard};
use super::{Job, MAX_BATCH, MAX_BATCH_BYTES};
use crate::pool::Strategy;
use crate::report::{DropReason, Outcome, Reporter, Tag};
use crate::stats::Counters;
use futures_util::FutureExt;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Jobs taken from the channel in one go before dispatching, so that a burst
/// already queued is grouped before its first job leaves alone.
const INTAKE: usize = 256;

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

pub(crate) struct Dispatcher<T> {
    shared: Arc<Shared<T>>,
    settings: Settings,
    queue: mpsc::UnboundedReceiver<Job<T>>,
    /// False once the queue is closed and empty.
    queue_open: bool,
    signals: mpsc::UnboundedReceiver<Signal>,
    topics: HashMap<Arc<str>, TopicQueue<T>>,
    /// Topics that can send now, served in turn.
    ready: VecDeque<Arc<str>>,
    /// Request tasks started and not finished.
    running: usize,
}

impl<T: Tag> Dispatcher<T> {
    pub fn new(
        shared: Shared<T>,
        settings: Settings,
        queue: mpsc::UnboundedReceiver<Job<T>>,
        signals: mpsc::UnboundedReceiver<Signal>,
    ) -> Self {
        Dispatcher {
            shared: Arc::new(shared),
            settings,
            queue,
            queue_open: true,
            signals,
            topics: HashMap::new(),
            ready: VecDeque::new(),
            running: 0,
        }
    }
}

impl<T: Tag> Strategy for Dispatcher<T> {
    type Tag = T;
    type Request = Infallible;
    const LOCATION: &'static str = "sns_dispatcher";

    fn counters(&self) -> &Counters {
        &self.shared.counters.common
    }

    fn reporter(&self) -> &Reporter<T> {
        &self.shared.reporter
    }

    /// Closes the queue: later publishes fail.
    fn begin_close(&mut self, _deadline: Instant) {
        self.queue.close();
    }

    /// Starts what can start, then waits for a task's signal or a job.
    async fn next_event(&mut self, _closing: bool) {
        #[cfg(feature = "test-hooks")]
        self.shared.faults.task_point();
        self.dispatch_ready();
        tokio::select! {
            biased;
            Some(signal) = self.signals.recv() => self.on_signal(signal),
            job = self.queue.recv(), if self.queue_open => match job {
                Some(job) => self.intake(job),
                // The handle is gone: the lifecycle closes with DROP_DRAIN.
                None => self.queue_open = false,
            },
            else => std::future::pending().await,
        }
    }

    fn drained(&self) -> bool {
        !self.queue_open && self.topics.is_empty() && self.running == 0
    }

    fn request(&mut self, request: Infallible) {
        match request {}
    }

    /// Stops what still runs, drops what is still queued, and waits for
    /// every request task to report.
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
    }

    fn refuse(&self, request: Infallible) {
        match request {}
    }
}

impl<T: Tag> Dispatcher<T> {
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

    fn drop_queued(&self, job: Job<T>) {
        self.shared.counters.common.dropped_from_queue();
        let dropped = Outcome::Dropped(DropReason::Closed);
        self.shared.reporter.outcome(job.tag, dropped);
    }

    fn start(&mut self, batch: Batch<T>, partial: bool) {
        let n = batch.jobs.len() as u64;
        self.shared.counters.common.taken(n);
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
            id: crate::EventId::new(),
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
