//! The HTTP pool's [`Strategy`]: it starts the workers, and on close lets
//! them drain the queue until the deadline, then stops them and drops what
//! is left. The lifecycle around it (control, deadline, notices, restart
//! after a panic) is the shared pool runtime's.

use super::worker::{self, Shared};
use crate::pool::Strategy;
use crate::report::{DropReason, Outcome, Reporter, Tag};
use crate::stats::Counters;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio::time::Instant;

pub(crate) struct Dispatch<T> {
    shared: Arc<Shared<T>>,
    /// One permit per worker, held while it runs: all of them free means
    /// every worker has ended.
    running: Arc<Semaphore>,
    workers: u32,
    /// Every worker has ended (the queue was closed and emptied).
    ended: bool,
}

/// Starts the workers; returns the strategy that closes them.
pub(crate) fn spawn<T: Tag>(
    runtime: &tokio::runtime::Handle,
    shared: Shared<T>,
    workers: usize,
) -> Dispatch<T> {
    let workers = u32::try_from(workers).unwrap_or(u32::MAX);
    let shared = Arc::new(shared);
    let running = Arc::new(Semaphore::new(workers as usize));
    for _ in 0..workers {
        // Never fails: there is one permit per worker and none is taken yet.
        if let Ok(permit) = running.clone().try_acquire_owned() {
            runtime.spawn(worker::run(shared.clone(), permit));
        }
    }
    Dispatch {
        shared,
        running,
        workers,
        ended: false,
    }
}

impl<T: Tag> Strategy for Dispatch<T> {
    type Tag = T;
    type Request = Infallible;
    const LOCATION: &'static str = "http_dispatcher";

    fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    fn reporter(&self) -> &Reporter<T> {
        &self.shared.reporter
    }

    /// Closes the queue: later submits fail, idle workers end once it is empty.
    fn begin_close(&mut self, _deadline: Instant) {
        self.shared.close_queue();
    }

    /// Waits for the workers to finish what is queued and in flight (they
    /// end when the queue is empty); nothing to wait for before a close.
    async fn next_event(&mut self, closing: bool) {
        if !closing {
            return std::future::pending().await;
        }
        // The semaphore is never closed, so this only returns with the permits.
        let _all = self.running.acquire_many(self.workers).await;
        self.ended = true;
    }

    fn drained(&self) -> bool {
        self.ended
    }

    fn request(&mut self, request: Infallible) {
        match request {}
    }

    /// Stops what still runs, drops what is still queued, and waits for
    /// every worker to end (each reports its job first).
    async fn finish(&mut self) {
        let shared = &self.shared;
        shared.hard_stop.cancel();
        while let Some(job) = shared.try_next_job() {
            shared.counters.dropped_from_queue();
            let dropped = Outcome::Dropped(DropReason::Closed);
            shared.reporter.outcome(job.tag, dropped);
        }
        let _all = self.running.acquire_many(self.workers).await;
    }

    fn refuse(&self, request: Infallible) {
        match request {}
    }
}
