//! One worker: one AMQP connection and its channel, owned by one task. This
//! module is its life: connecting (and reconnecting, see the module doc of
//! `rabbit`), serving (the loop that takes messages and settles publishes,
//! see [`super::publish`]), draining and closing.
//!
//! Unsettled messages wait in the [`Window`], so a lost connection can put
//! every one of them back in the retry queue (in arrival order) without
//! waiting for lapin. The whole state lives in [`Worker`], outside the future
//! that runs it, so a panic is caught, counted and the worker resumes where
//! it was.

use super::connect::{reason, ConnectFailure};
use super::declare;
use super::publish::Pending;
use super::unroutable::{Notice, Parked};
use super::window::Window;
use super::{ConnectionEvent, Message, Shared, CONNECT_TIMEOUT, MAX_IN_FLIGHT};
use crate::pool::Supervised;
use crate::rabbit::counters::bump;
use crate::report::{DropReason, Outcome, Tag};
use futures_util::stream::FuturesUnordered;
use futures_util::{Stream, StreamExt};
use lapin::options::ConfirmSelectOptions;
use lapin::{Channel, Connection};
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// How often a worker checks that its connection and channel are still up
/// (lapin sends no event when the broker closes a connection politely).
const LINK_CHECK: Duration = Duration::from_millis(100);
/// Bound on closing a channel and a connection at the end.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) struct Link {
    pub connection: Arc<Connection>,
    /// `None` while it has to be (re)opened.
    pub channel: Option<Arc<Channel>>,
    events: Pin<Box<dyn Stream<Item = lapin::Event> + Send>>,
}

/// What broke while serving.
pub(super) enum Broken {
    Connection,
    /// The broker closed the channel (the connection is fine); the reason is
    /// its text, blamed on the oldest unsettled publish.
    Channel(String),
}

pub(crate) struct Worker<T> {
    pub(super) id: usize,
    pub(super) shared: Arc<Shared<T>>,
    pub(super) queue: mpsc::UnboundedReceiver<Message<T>>,
    /// False once the queue is closed and empty.
    pub(super) queue_open: bool,
    /// Messages to publish before the queue, by arrival order.
    pub(super) retry: VecDeque<Message<T>>,
    /// Returned (unroutable) messages waiting for their next attempt.
    pub(super) parked: Parked<T>,
    /// Returns not yet reported (rate-limited).
    pub(super) notice: Notice,
    pub(super) window: Window<T>,
    pub(super) pending: FuturesUnordered<Pending>,
    /// Settled publishes being handled (see `settle_ready`), kept to reuse.
    pub(super) ready: Vec<(u64, super::publish::Settled)>,
    pub(super) link: Option<Link>,
    /// When the next connection attempt may start (after a failed one).
    pub(super) retry_at: Option<Instant>,
    pub(super) next_order: u64,
    /// The drain deadline, set once the pool closes.
    pub(super) drain: watch::Receiver<Option<Instant>>,
    pub(super) broken: Option<Broken>,
}

/// Runs until the pool has closed; resumed after a panic by `pool::supervise`.
impl<T: Tag> Supervised for Worker<T> {
    async fn run(&mut self) {
        self.run_until_closed().await;
    }

    /// Whatever was on the wire may have lost its future, so it goes back
    /// to the retry queue on a fresh channel.
    fn recover(&mut self) {
        bump(&self.shared.counters.common.panics);
        self.shared.reporter.panic("rabbit_worker");
        self.requeue_window();
        self.broken = None;
        if let Some(link) = &mut self.link {
            link.channel = None;
        }
    }
}

impl<T: Tag> Worker<T> {
    pub fn new(
        id: usize,
        shared: Arc<Shared<T>>,
        queue: mpsc::UnboundedReceiver<Message<T>>,
        drain: watch::Receiver<Option<Instant>>,
    ) -> Worker<T> {
        Worker {
            id,
            shared,
            queue,
            queue_open: true,
            retry: VecDeque::new(),
            parked: Parked::new(),
            notice: Notice::new(),
            window: Window::new(),
            pending: FuturesUnordered::new(),
            ready: Vec::new(),
            link: None,
            retry_at: None,
            next_order: 0,
            drain,
            broken: None,
        }
    }

    async fn run_until_closed(&mut self) {
        loop {
            if let Some(deadline) = self.deadline() {
                self.queue.close();
                if self.idle() {
                    break;
                }
                if Instant::now() >= deadline {
                    self.abandon();
                    break;
                }
            }
            let has_channel = self.link.as_ref().map(|link| link.channel.is_some());
            match has_channel {
                None => self.establish().await,
                Some(false) => self.reopen_channel().await,
                Some(true) => self.serve().await,
            }
        }
        self.disconnect().await;
    }

    /// The drain deadline, once the pool is closing. A supervisor that is
    /// gone counts as a deadline already passed.
    fn deadline(&self) -> Option<Instant> {
        match self.drain.has_changed() {
            Err(_) => Some(Instant::now()),
            Ok(_) => *self.drain.borrow(),
        }
    }

    /// Nothing left to publish.
    fn idle(&self) -> bool {
        self.window.is_empty()
            && self.retry.is_empty()
            && self.parked.is_empty()
            && self.queue.is_empty()
    }

    /// Resolves when the drain starts (if not started) or its deadline passes.
    async fn closing(drain: &mut watch::Receiver<Option<Instant>>) {
        let deadline = *drain.borrow_and_update();
        match deadline {
            None => {
                // An error means the supervisor is gone: `deadline()` says so.
                let _ = drain.changed().await;
            }
            Some(deadline) => tokio::time::sleep_until(deadline).await,
        }
    }

    /// Resolves once the drain deadline has passed (never before a close).
    async fn deadline_passed(drain: &mut watch::Receiver<Option<Instant>>) {
        loop {
            let deadline = *drain.borrow_and_update();
            match deadline {
                Some(deadline) => return tokio::time::sleep_until(deadline).await,
                None => {
                    if drain.changed().await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    // --- connecting -----------------------------------------------------------

    /// One connection attempt (after the reconnect delay if the last one
    /// failed), with the channel opened; reports the result.
    async fn establish(&mut self) {
        if let Some(at) = self.retry_at {
            tokio::select! {
                _ = Self::deadline_passed(&mut self.drain) => return,
                _ = tokio::time::sleep_until(at) => {}
            }
        }
        let shared = self.shared.clone();
        let attempt = async {
            let connection = shared.endpoint.connect().await?;
            let exchanges = shared.declared.snapshot();
            if !exchanges.is_empty() {
                let _ = tokio::time::timeout(
                    CONNECT_TIMEOUT,
                    declare::redeclare(&connection, &exchanges),
                )
                .await;
            }
            match open_channel(&connection, shared.confirms).await {
                Ok(channel) => Ok((connection, channel)),
                Err(e) => {
                    let _ = connection.close(200, "OK".into()).await;
                    Err(ConnectFailure {
                        reason: format!("cannot open a channel: {}", reason(&e)),
                        unreachable: false,
                    })
                }
            }
        };
        let result = tokio::select! {
            _ = Self::deadline_passed(&mut self.drain) => return,
            r = attempt => r,
        };
        let counters = &self.shared.counters;
        match result {
            Ok((connection, channel)) => {
                let connection = Arc::new(connection);
                self.link = Some(Link {
                    events: Box::pin(connection.events_listener()),
                    connection: connection.clone(),
                    channel: Some(Arc::new(channel)),
                });
                self.retry_at = None;
                bump(&counters.connections_opened);
                self.shared.links.up(self.id, connection);
                self.shared.connection_event(ConnectionEvent::Opened);
            }
            Err(why) => {
                bump(&counters.connections_failed);
                self.retry_at = Some(Instant::now() + self.shared.reconnect_delay);
                self.shared.links.failed(&why.reason, why.unreachable);
                self.shared
                    .connection_event(ConnectionEvent::Failed(why.reason));
            }
        }
    }

    /// A new channel on the live connection, after the broker closed the old one.
    async fn reopen_channel(&mut self) {
        let Some(link) = &mut self.link else { return };
        let opened = tokio::select! {
            _ = Self::deadline_passed(&mut self.drain) => return,
            r = open_channel(&link.connection, self.shared.confirms) => r,
        };
        match opened {
            Ok(channel) => link.channel = Some(Arc::new(channel)),
            Err(_) => self.lose_link(),
        }
    }

    /// The connection is gone: everything unsettled goes back to the retry
    /// queue, the next attempt starts at once.
    pub(super) fn lose_link(&mut self) {
        self.requeue_window();
        if self.link.take().is_some() {
            self.shared.links.down(self.id);
            self.shared.connection_event(ConnectionEvent::Closed);
        }
        self.retry_at = None;
    }

    /// Closes the channel and the connection (politely, bounded) at the end.
    async fn disconnect(&mut self) {
        let Some(link) = self.link.take() else { return };
        self.shared.links.down(self.id);
        let close = async {
            if let Some(channel) = &link.channel {
                let _ = channel.close(200, "OK".into()).await;
            }
            let _ = link.connection.close(200, "OK".into()).await;
        };
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, close).await;
        self.shared.connection_event(ConnectionEvent::Closed);
    }

    // --- publishing -----------------------------------------------------------

    /// Publishes and settles until the link breaks, the pool has drained,
    /// or the drain deadline passes.
    async fn serve(&mut self) {
        let mut check = tokio::time::interval(LINK_CHECK);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            if self.deadline().is_some() {
                self.queue.close();
                if self.idle() || self.past_deadline() {
                    return;
                }
            }
            #[cfg(feature = "test-hooks")]
            self.shared.fault.task_point();
            self.unpark();
            self.publish_retries().await;
            let Some(link) = &mut self.link else { return };
            let room = self.window.len() < MAX_IN_FLIGHT;
            let next_due = self.parked.next_due();
            tokio::select! {
                biased;
                // The drain started (checked above, next round) or its deadline passed.
                _ = Self::closing(&mut self.drain) => {}
                // Settle what else is ready before waiting again.
                Some(settled) = self.pending.next(), if !self.pending.is_empty() => {
                    self.settle_ready(Some(settled));
                }
                // A parked message is due (taken at the top of the loop).
                _ = sleep_until_some(next_due), if next_due.is_some() => {}
                message = self.queue.recv(), if room && self.queue_open => match message {
                    Some(message) => self.take_batch(message).await,
                    None => self.queue_open = false,
                },
                event = link.events.next() => match event {
                    // Channel errors come this way too: the state says which.
                    Some(lapin::Event::Error(_)) => self.check_link(),
                    None => self.broken = Some(Broken::Connection),
                    Some(_) => {}
                },
                _ = check.tick() => {
                    self.check_link();
                    self.collect_unconfirmed_returns();
                    self.flush_notice();
                }
            }
            if self.mend() {
                return;
            }
        }
    }

    /// Parked messages whose time has come go to the retry queue.
    fn unpark(&mut self) {
        if self
            .parked
            .next_due()
            .is_some_and(|at| at <= Instant::now())
        {
            for message in self.parked.take_due(Instant::now()) {
                self.insert_retry(message);
            }
        }
    }

    fn past_deadline(&self) -> bool {
        self.deadline().is_some_and(|d| Instant::now() >= d)
    }

    /// Notices a connection or channel closed without a failed publish.
    fn check_link(&mut self) {
        let Some(link) = &self.link else { return };
        if self.broken.is_some() {
            return;
        }
        if !link.connection.status().connected() {
            self.broken = Some(Broken::Connection);
        } else if !link
            .channel
            .as_ref()
            .is_some_and(|c| c.status().connected())
        {
            // lapin marks the channel closed, then fails its publishes with
            // the broker's reason: while some are unsettled, let them say it
            // (the confirm timeout bounds the wait).
            self.settle_ready(None);
            if self.broken.is_none() && self.pending.is_empty() {
                self.broken = Some(Broken::Channel("channel closed by the broker".into()));
            }
        }
    }

    /// The drain deadline passed: everything left is dropped and reported.
    fn abandon(&mut self) {
        self.requeue_window();
        self.flush_notice();
        let counters = &self.shared.counters;
        let reporter = &self.shared.reporter;
        for message in self.retry.drain(..).chain(self.parked.drain()) {
            counters.common.finished(&counters.common.dropped_closed);
            reporter.outcome(message.tag, Outcome::Dropped(DropReason::Closed));
        }
        while let Ok(message) = self.queue.try_recv() {
            counters.common.dropped_from_queue();
            reporter.outcome(message.tag, Outcome::Dropped(DropReason::Closed));
        }
    }
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn open_channel(connection: &Connection, confirms: bool) -> Result<Channel, lapin::Error> {
    let open = async {
        let channel = connection.create_channel().await?;
        if confirms {
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
        }
        Ok(channel)
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, open).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::from(std::io::ErrorKind::TimedOut).into()),
    }
}
