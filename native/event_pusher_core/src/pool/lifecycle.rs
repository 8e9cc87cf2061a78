//! A pool's lifecycle task: it takes the control requests, runs the
//! backend's [`Strategy`] until a close has drained it or the drain deadline
//! has passed, then has the strategy stop and drop what is left, and sends
//! the close notices after the last outcome (mini-redis's shutdown: one
//! signal the tasks watch, one completion the owner waits on).

use super::intake::Control;
use super::supervise::Supervised;
use super::{deadline_after, sleep_until_some, DROP_DRAIN};
use crate::report::{CloseCallback, CloseReport, Reporter, Tag};
use crate::stats::Counters;
use std::future::Future;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How a backend delivers: what the lifecycle task drives between the
/// start and the close of a pool.
pub(crate) trait Strategy: Send + 'static {
    type Tag: Tag;
    /// Requests besides `close` (rabbit: declare exchanges).
    type Request: Send + 'static;
    /// Where a panic of the lifecycle task is reported.
    const LOCATION: &'static str;

    fn counters(&self) -> &Counters;
    fn reporter(&self) -> &Reporter<Self::Tag>;
    /// The first close: stop taking work (close the queue); what was
    /// accepted may be delivered until `deadline`.
    fn begin_close(&mut self, deadline: Instant);
    /// Waits for the backend's next event and handles it. Dropped unfinished
    /// when a control request comes first, so it must be cancel-safe.
    fn next_event(&mut self, closing: bool) -> impl Future<Output = ()> + Send;
    /// Once a close began: everything accepted is delivered or dropped.
    fn drained(&self) -> bool;
    fn request(&mut self, request: Self::Request);
    /// Stops what still runs, drops (reports and counts) what is left, and
    /// waits for the backend's tasks to end. Runs again if it panicked.
    fn finish(&mut self) -> impl Future<Output = ()> + Send;
    /// Answers a request that came after the pool had finished.
    fn refuse(&self, request: Self::Request);
}

pub(crate) struct Lifecycle<S: Strategy> {
    strategy: S,
    control: mpsc::UnboundedReceiver<Control<S::Request>>,
    /// False once every control sender is gone (the pool handle was dropped).
    control_open: bool,
    /// Set once a close began: when to give up, and who to tell.
    closing: Option<(Instant, Vec<CloseCallback>)>,
    /// The close is past the drain: the strategy was told to finish.
    finishing: bool,
}

impl<S: Strategy> Lifecycle<S> {
    pub fn new(strategy: S, control: mpsc::UnboundedReceiver<Control<S::Request>>) -> Self {
        Lifecycle {
            strategy,
            control,
            control_open: true,
            closing: None,
            finishing: false,
        }
    }

    /// Runs the strategy until a close has drained it or its deadline passed.
    async fn deliver(&mut self) {
        loop {
            let deadline = match &self.closing {
                Some(_) if self.strategy.drained() => return,
                Some((deadline, _)) => Some(*deadline),
                None => None,
            };
            tokio::select! {
                biased;
                command = self.control.recv(), if self.control_open => self.on_control(command),
                _ = self.strategy.next_event(deadline.is_some()) => {}
                _ = sleep_until_some(deadline) => return,
            }
        }
    }

    fn on_control(&mut self, command: Option<Control<S::Request>>) {
        match command {
            Some(Control::Close { drain, done }) => self.begin_close(drain, Some(done)),
            Some(Control::Backend(request)) => self.strategy.request(request),
            None => {
                self.control_open = false;
                self.begin_close(DROP_DRAIN, None);
            }
        }
    }

    /// The first close fixes the deadline; a later one only adds its callback.
    fn begin_close(&mut self, drain: Duration, done: Option<CloseCallback>) {
        if self.closing.is_none() {
            let deadline = deadline_after(Instant::now(), drain);
            self.strategy.begin_close(deadline);
            self.closing = Some((deadline, Vec::new()));
        }
        if let Some((_, callbacks)) = &mut self.closing {
            callbacks.extend(done);
        }
    }

    /// Sends the close notices, after every outcome; requests racing with
    /// the end get their answer too.
    fn notify(&mut self) {
        let report = CloseReport {
            dropped: self.strategy.counters().dropped_closed.load(Relaxed),
        };
        self.control.close();
        let mut callbacks = self.closing.take().map(|c| c.1).unwrap_or_default();
        while let Ok(command) = self.control.try_recv() {
            match command {
                Control::Close { done, .. } => callbacks.push(done),
                Control::Backend(request) => self.strategy.refuse(request),
            }
        }
        for done in callbacks {
            self.strategy.reporter().closed(report, done);
        }
    }
}

impl<S: Strategy> Supervised for Lifecycle<S> {
    async fn run(&mut self) {
        if !self.finishing {
            self.deliver().await;
            self.finishing = true;
        }
        self.strategy.finish().await;
        self.notify();
    }

    fn recover(&mut self) {
        Counters::bump(&self.strategy.counters().panics);
        self.strategy.reporter().panic(S::LOCATION);
    }
}
