//! The pool's supervisor task: starts the workers, runs declarations, and
//! carries out the close (drain deadline to the workers, wait for them,
//! then the close notices), as mini-redis does its shutdown: one signal the
//! tasks watch, one completion the supervisor waits on.
//!
//! Its state lives in [`Supervisor`], so a panic is caught, counted, and it
//! resumes with the same workers, declarations and close callbacks.

use super::counters::bump;
use super::declare::{self, DeclareResult};
use super::worker::{self, Worker};
use super::{Control, Message, Shared, DROP_DRAIN};
use crate::report::{CloseCallback, CloseReport, Tag};
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const RESTART_PAUSE: Duration = Duration::from_millis(10);

struct Supervisor<T> {
    shared: Arc<Shared<T>>,
    control: mpsc::UnboundedReceiver<Control>,
    /// False once every control sender is gone (the pool handle was dropped).
    control_open: bool,
    drain: watch::Sender<Option<Instant>>,
    workers: JoinSet<()>,
    declares: JoinSet<()>,
    /// Cancels running declarations when the pool has closed.
    stop: CancellationToken,
    /// Set once a close began.
    callbacks: Option<Vec<CloseCallback>>,
}

/// Starts the workers and the supervisor; returns each worker's queue.
pub(crate) fn spawn<T: Tag>(
    runtime: &tokio::runtime::Handle,
    shared: Arc<Shared<T>>,
    control: mpsc::UnboundedReceiver<Control>,
    workers: usize,
) -> Vec<mpsc::UnboundedSender<Message<T>>> {
    let (drain, drain_rx) = watch::channel(None);
    let mut queues = Vec::with_capacity(workers);
    let mut tasks = JoinSet::new();
    for id in 0..workers {
        let (tx, rx) = mpsc::unbounded_channel();
        queues.push(tx);
        let worker = Worker::new(id, shared.clone(), rx, drain_rx.clone());
        tasks.spawn_on(worker::supervise(worker), runtime);
    }
    let supervisor = Supervisor {
        shared,
        control,
        control_open: true,
        drain,
        workers: tasks,
        declares: JoinSet::new(),
        stop: CancellationToken::new(),
        callbacks: None,
    };
    runtime.spawn(supervise(supervisor));
    queues
}

async fn supervise<T: Tag>(mut supervisor: Supervisor<T>) {
    loop {
        match AssertUnwindSafe(supervisor.run()).catch_unwind().await {
            Ok(()) => break,
            Err(_) => {
                bump(&supervisor.shared.counters.panics);
                supervisor.shared.reporter.panic("rabbit_supervisor");
                tokio::time::sleep(RESTART_PAUSE).await;
            }
        }
    }
}

impl<T: Tag> Supervisor<T> {
    async fn run(&mut self) {
        loop {
            if self.callbacks.is_some() && self.workers.is_empty() {
                break;
            }
            let closing = self.callbacks.is_some();
            tokio::select! {
                command = self.control.recv(), if self.control_open => self.handle(command),
                Some(_) = self.workers.join_next(), if closing => {}
                Some(_) = self.declares.join_next(), if !self.declares.is_empty() => {}
            }
        }
        self.finish().await;
    }

    fn handle(&mut self, command: Option<Control>) {
        match command {
            Some(Control::Close { drain, done }) => self.begin_close(drain, Some(done)),
            Some(Control::Declare {
                exchanges,
                timeout,
                done,
            }) => self.declare(exchanges, timeout, done),
            None => {
                self.control_open = false;
                self.begin_close(DROP_DRAIN, None);
            }
        }
    }

    /// Fixes the drain deadline (the first close decides it); later closes
    /// only add their callback.
    fn begin_close(&mut self, drain: Duration, done: Option<CloseCallback>) {
        let callbacks = self.callbacks.get_or_insert_with(|| {
            let deadline = Instant::now()
                .checked_add(drain)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(86400 * 365));
            self.drain.send_replace(Some(deadline));
            Vec::new()
        });
        callbacks.extend(done);
    }

    fn declare(
        &mut self,
        exchanges: Vec<declare::ExchangeSpec>,
        timeout: Duration,
        done: declare::DeclareCallback,
    ) {
        let shared = self.shared.clone();
        let stop = self.stop.clone();
        self.declares.spawn(async move {
            let declaring = declare::run(&shared.links, &exchanges, timeout, &stop);
            let result: DeclareResult = match AssertUnwindSafe(declaring).catch_unwind().await {
                Ok(result) => result,
                Err(_) => {
                    bump(&shared.counters.panics);
                    shared.reporter.panic("rabbit_declare");
                    declare::all_failed(&exchanges, "panic")
                }
            };
            shared.declared.remember(&exchanges, &result);
            shared.reporter.call(Box::new(move || done(result)));
        });
    }

    /// Every worker is done: ends the declarations, then sends the close
    /// notices after every outcome.
    async fn finish(&mut self) {
        self.stop.cancel();
        while self.declares.join_next().await.is_some() {}
        let report = CloseReport {
            dropped: self.shared.counters.dropped_closed.load(Relaxed),
        };
        // Commands racing with the end get their answer too.
        self.control.close();
        let mut callbacks = self.callbacks.take().unwrap_or_default();
        while let Ok(command) = self.control.try_recv() {
            match command {
                Control::Close { done, .. } => callbacks.push(done),
                Control::Declare {
                    exchanges, done, ..
                } => {
                    let result = declare::all_failed(&exchanges, "closed");
                    self.shared.reporter.call(Box::new(move || done(result)));
                }
            }
        }
        for done in callbacks {
            self.shared.reporter.closed(report, done);
        }
    }
}
