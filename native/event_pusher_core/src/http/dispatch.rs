//! The dispatcher: one task per pool that moves jobs from the queue to job
//! tasks (at most `workers` at once, a semaphore permit each) and carries out
//! the close: drain until the deadline, then drop what is left, then notify.
//!
//! It runs under a supervising loop: a panic is caught, counted, reported and
//! the dispatcher restarts with its state (queue, permits, close progress)
//! intact, because that state lives outside the panicking future.

use super::attempt::Shared;
use super::{CloseCommand, Job, DROP_DRAIN};
use crate::report::{CloseCallback, CloseReport, DropReason, Outcome, Tag};
use crate::stats::Counters;
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Pause before restarting a dispatcher that panicked, so a panic that
/// repeats cannot spin a runtime thread.
const RESTART_PAUSE: Duration = Duration::from_millis(10);

/// Panics to provoke, for the crate's own tests.
#[cfg(feature = "test-hooks")]
#[derive(Debug, Default)]
pub(crate) struct Faults {
    pub dispatcher: std::sync::atomic::AtomicBool,
    pub attempt: std::sync::atomic::AtomicBool,
}

struct Dispatcher<T> {
    shared: Arc<Shared<T>>,
    queue: mpsc::Receiver<Job<T>>,
    control: mpsc::UnboundedReceiver<CloseCommand>,
    /// False once every control sender is gone (the pool handle was dropped).
    control_open: bool,
    permits: Arc<Semaphore>,
    workers: u32,
    /// Set once a close began: when to give up, and who to tell.
    closing: Option<(Instant, Vec<CloseCallback>)>,
}

pub(crate) fn spawn<T: Tag>(
    runtime: &tokio::runtime::Handle,
    shared: Shared<T>,
    queue: mpsc::Receiver<Job<T>>,
    control: mpsc::UnboundedReceiver<CloseCommand>,
    workers: usize,
) {
    let workers = u32::try_from(workers).unwrap_or(u32::MAX);
    let dispatcher = Dispatcher {
        shared: Arc::new(shared),
        queue,
        control,
        control_open: true,
        permits: Arc::new(Semaphore::new(workers as usize)),
        workers,
        closing: None,
    };
    runtime.spawn(supervise(dispatcher));
}

async fn supervise<T: Tag>(mut dispatcher: Dispatcher<T>) {
    loop {
        match AssertUnwindSafe(dispatcher.run()).catch_unwind().await {
            Ok(()) => break,
            Err(_) => {
                Counters::bump(&dispatcher.shared.counters.panics);
                dispatcher.shared.reporter.panic("http_dispatcher");
                tokio::time::sleep(RESTART_PAUSE).await;
            }
        }
    }
    // Dropping the dispatcher drops its `Shared`; the reporter thread ends
    // once the last job task has dropped its clone too (they are all done).
}

impl<T: Tag> Dispatcher<T> {
    async fn run(&mut self) {
        while self.closing.is_none() {
            self.dispatch_one().await;
        }
        self.drain().await;
        self.finish().await;
    }

    /// Waits for a permit and a job (or a close) and starts the job.
    async fn dispatch_one(&mut self) {
        #[cfg(feature = "test-hooks")]
        if self.shared.faults.dispatcher.swap(false, Relaxed) {
            panic!("injected dispatcher panic");
        }
        let permit = tokio::select! {
            biased;
            command = self.control.recv(), if self.control_open => {
                return self.begin_close(command);
            }
            permit = self.permits.clone().acquire_owned() => permit,
        };
        let Ok(permit) = permit else { return }; // never closed
        tokio::select! {
            biased;
            command = self.control.recv(), if self.control_open => self.begin_close(command),
            job = self.queue.recv() => match job {
                Some(job) => self.start(job, permit),
                // Every sender is gone: the handle was dropped.
                None => self.begin_close(None),
            },
        }
    }

    /// Closes the queue (later submits fail) and fixes the deadline. A later
    /// command only adds its callback.
    fn begin_close(&mut self, command: Option<CloseCommand>) {
        let (drain, done) = match command {
            Some(CloseCommand { drain, done }) => (drain, Some(done)),
            None => {
                self.control_open = false;
                (DROP_DRAIN, None)
            }
        };
        self.queue.close();
        let (_, callbacks) = self.closing.get_or_insert_with(|| {
            let deadline = Instant::now().checked_add(drain).unwrap_or_else(far_future);
            (deadline, Vec::new())
        });
        callbacks.extend(done);
    }

    fn deadline(&self) -> Instant {
        self.closing.as_ref().map_or_else(Instant::now, |c| c.0)
    }

    /// Keeps starting queued jobs until the queue is empty or the deadline
    /// passes, then waits (until the deadline) for running jobs to finish.
    async fn drain(&mut self) {
        let deadline = self.deadline();
        loop {
            let permit = tokio::select! {
                biased;
                _ = tokio::time::sleep_until(deadline) => return,
                command = self.control.recv(), if self.control_open => {
                    self.begin_close(command);
                    continue;
                }
                permit = self.permits.clone().acquire_owned() => permit,
            };
            let Ok(permit) = permit else { return };
            let job = tokio::select! {
                biased;
                _ = tokio::time::sleep_until(deadline) => return,
                job = self.queue.recv() => job,
            };
            match job {
                Some(job) => self.start(job, permit),
                None => break,
            }
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {}
            _ = self.permits.acquire_many(self.workers) => {}
        }
    }

    /// Stops what still runs, drops what is still queued, waits for every
    /// job task to report, then sends the close notices.
    async fn finish(&mut self) {
        let shared = &self.shared;
        shared.hard_stop.cancel();
        while let Ok(job) = self.queue.try_recv() {
            Counters::bump(&shared.counters.dropped_closed);
            let dropped = Outcome::Dropped(DropReason::Closed);
            shared.reporter.outcome(job.tag, dropped);
        }
        // Cancelled jobs report at their next poll; waiting for every permit
        // means all of them have.
        let _all = self.permits.acquire_many(self.workers).await;
        let report = CloseReport {
            dropped: shared.counters.dropped_closed.load(Relaxed),
        };
        // Close commands racing with the end get their notice too.
        self.control.close();
        let mut callbacks = self.closing.take().map(|c| c.1).unwrap_or_default();
        while let Ok(command) = self.control.try_recv() {
            callbacks.push(command.done);
        }
        for done in callbacks {
            shared.reporter.closed(report, done);
        }
    }

    fn start(&self, job: Job<T>, permit: OwnedSemaphorePermit) {
        Counters::bump(&self.shared.counters.in_flight);
        let shared = self.shared.clone();
        tokio::spawn(async move {
            // `run_job` reports and catches attempt panics itself; this is the
            // last line of defence for the bookkeeping around them.
            if AssertUnwindSafe(shared.run_job(job))
                .catch_unwind()
                .await
                .is_err()
            {
                Counters::bump(&shared.counters.panics);
                Counters::drop_one(&shared.counters.in_flight);
                shared.reporter.panic("http_job");
            }
            drop(permit);
        });
    }
}

/// A deadline that never comes (for a drain time too large to add).
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86400 * 365 * 30)
}
