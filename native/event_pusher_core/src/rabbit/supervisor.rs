//! The rabbit pool's [`Strategy`]: it starts the workers, runs
//! declarations, and on close hands the drain deadline to the workers (each
//! drains or abandons its own messages) and waits for them. The lifecycle
//! around it (control, close notices, restart after a panic) is the shared
//! pool runtime's.

use super::counters::bump;
use super::declare::{self, DeclareResult, ExchangeSpec};
use super::worker::Worker;
use super::{Message, Shared};
use crate::pool::{self, Strategy};
use crate::report::{Reporter, Tag};
use crate::stats::Counters;
use futures_util::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A declaration asked through the pool handle.
pub(crate) struct Declare {
    pub exchanges: Vec<ExchangeSpec>,
    pub timeout: Duration,
    pub done: declare::DeclareCallback,
}

pub(crate) struct Supervisor<T> {
    shared: Arc<Shared<T>>,
    drain: watch::Sender<Option<Instant>>,
    workers: JoinSet<()>,
    declares: JoinSet<()>,
    /// Cancels running declarations when the pool has closed.
    stop: CancellationToken,
}

/// Starts one worker per queue; returns the strategy that supervises them.
pub(crate) fn spawn<T: Tag>(
    runtime: &tokio::runtime::Handle,
    shared: Arc<Shared<T>>,
    queues: Vec<mpsc::UnboundedReceiver<Message<T>>>,
) -> Supervisor<T> {
    let (drain, drain_rx) = watch::channel(None);
    let mut workers = JoinSet::new();
    for (id, queue) in queues.into_iter().enumerate() {
        let worker = Worker::new(id, shared.clone(), queue, drain_rx.clone());
        workers.spawn_on(pool::supervise(worker), runtime);
    }
    Supervisor {
        shared,
        drain,
        workers,
        declares: JoinSet::new(),
        stop: CancellationToken::new(),
    }
}

impl<T: Tag> Strategy for Supervisor<T> {
    type Tag = T;
    type Request = Declare;
    const LOCATION: &'static str = "rabbit_supervisor";

    fn counters(&self) -> &Counters {
        &self.shared.counters.common
    }

    fn reporter(&self) -> &Reporter<T> {
        &self.shared.reporter
    }

    /// The workers watch the deadline: they stop taking messages, drain,
    /// and drop what is left once it passes.
    fn begin_close(&mut self, deadline: Instant) {
        self.drain.send_replace(Some(deadline));
    }

    /// Reaps the workers (once closing) and finished declarations.
    async fn next_event(&mut self, closing: bool) {
        tokio::select! {
            Some(_) = self.workers.join_next(), if closing => {}
            Some(_) = self.declares.join_next(), if !self.declares.is_empty() => {}
            else => std::future::pending().await,
        }
    }

    fn drained(&self) -> bool {
        self.workers.is_empty()
    }

    fn request(&mut self, request: Declare) {
        let Declare {
            exchanges,
            timeout,
            done,
        } = request;
        let shared = self.shared.clone();
        let stop = self.stop.clone();
        self.declares.spawn(async move {
            let declaring = declare::run(&shared.links, &exchanges, timeout, &stop);
            let result: DeclareResult = match AssertUnwindSafe(declaring).catch_unwind().await {
                Ok(result) => result,
                Err(_) => {
                    bump(&shared.counters.common.panics);
                    shared.reporter.panic("rabbit_declare");
                    declare::all_failed(&exchanges, "panic")
                }
            };
            shared.declared.remember(&exchanges, &result);
            shared.reporter.call(Box::new(move || done(result)));
        });
    }

    /// Waits for the workers (past the deadline they drop what they hold),
    /// then ends the declarations.
    async fn finish(&mut self) {
        while self.workers.join_next().await.is_some() {}
        self.stop.cancel();
        while self.declares.join_next().await.is_some() {}
    }

    fn refuse(&self, request: Declare) {
        let result = declare::all_failed(&request.exchanges, "closed");
        let done = request.done;
        self.shared.reporter.call(Box::new(move || done(result)));
    }
}
