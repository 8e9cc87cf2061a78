//! The dispatcher: starts a pool's workers and carries out its close (stop
//! taking work, let the workers drain the queue until the deadline, then
//! stop them, drop what is left, and notify).
//!
//! It runs under a supervising loop: a panic is caught, counted, reported and
//! the dispatcher resumes with its state (close progress, callbacks)
//! intact, because that state lives outside the panicking future.

use super::worker::{self, Shared};
use super::{CloseCommand, DROP_DRAIN};
use crate::report::{CloseCallback, CloseReport, DropReason, Outcome, Tag};
use crate::stats::Counters;
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;

/// Pause before restarting a task that panicked, so a panic that repeats
/// cannot spin a runtime thread.
pub(crate) const RESTART_PAUSE: Duration = Duration::from_millis(10);

struct Dispatcher<T> {
    shared: Arc<Shared<T>>,
    control: mpsc::UnboundedReceiver<CloseCommand>,
    /// False once every control sender is gone (the pool handle was dropped).
    control_open: bool,
    /// One permit per worker, held while it runs: all of them free means
    /// every worker has ended.
    running: Arc<Semaphore>,
    workers: u32,
    /// Set once a close began: when to give up, and who to tell.
    closing: Option<(Instant, Vec<CloseCallback>)>,
    /// The close is past the drain: the workers were told to stop.
    stopped: bool,
}

pub(crate) fn spawn<T: Tag>(
    runtime: &tokio::runtime::Handle,
    shared: Shared<T>,
    control: mpsc::UnboundedReceiver<CloseCommand>,
    workers: usize,
) {
    let workers = u32::try_from(workers).unwrap_or(u32::MAX);
    let shared = Arc::new(shared);
    let running = Arc::new(Semaphore::new(workers as usize));
    for _ in 0..workers {
        // Never fails: there is one permit per worker and none is taken yet.
        if let Ok(permit) = running.clone().try_acquire_owned() {
            runtime.spawn(worker::run(shared.clone(), permit));
        }
    }
    let dispatcher = Dispatcher {
        shared,
        control,
        control_open: true,
        running,
        workers,
        closing: None,
        stopped: false,
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
    // once the workers have dropped theirs too (they have all ended).
}

impl<T: Tag> Dispatcher<T> {
    async fn run(&mut self) {
        while self.closing.is_none() {
            let command = self.control.recv().await;
            self.begin_close(command);
        }
        if !self.stopped {
            self.drain().await;
            self.stopped = true;
        }
        self.finish().await;
    }

    /// Closes the queue (later submits fail, idle workers end once it is
    /// empty) and fixes the deadline. A later command only adds its callback.
    fn begin_close(&mut self, command: Option<CloseCommand>) {
        let (drain, done) = match command {
            Some(CloseCommand { drain, done }) => (drain, Some(done)),
            None => {
                self.control_open = false;
                (DROP_DRAIN, None)
            }
        };
        if self.closing.is_none() {
            self.shared.close_queue();
        }
        let (_, callbacks) = self.closing.get_or_insert_with(|| {
            let deadline = Instant::now().checked_add(drain).unwrap_or_else(far_future);
            (deadline, Vec::new())
        });
        callbacks.extend(done);
    }

    fn deadline(&self) -> Instant {
        self.closing.as_ref().map_or_else(Instant::now, |c| c.0)
    }

    /// Waits (until the deadline) for the workers to finish what is queued
    /// and in flight; they end when the queue is empty.
    async fn drain(&mut self) {
        let deadline = self.deadline();
        let all_done = self.running.clone();
        let all_done = all_done.acquire_many(self.workers);
        tokio::pin!(all_done);
        loop {
            tokio::select! {
                biased;
                _ = &mut all_done => return,
                _ = tokio::time::sleep_until(deadline) => return,
                command = self.control.recv(), if self.control_open => self.begin_close(command),
            }
        }
    }

    /// Stops what still runs, drops what is still queued, waits for every
    /// worker to end (each reports its job first), then sends the close
    /// notices.
    async fn finish(&mut self) {
        let shared = &self.shared;
        shared.hard_stop.cancel();
        while let Some(job) = shared.try_next_job() {
            Counters::bump(&shared.counters.dropped_closed);
            let dropped = Outcome::Dropped(DropReason::Closed);
            shared.reporter.outcome(job.tag, dropped);
        }
        let _all = self.running.acquire_many(self.workers).await;
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
}

/// A deadline that never comes (for a drain time too large to add).
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86400 * 365 * 30)
}
