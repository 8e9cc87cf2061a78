//! One worker: one AMQP connection and its channel, owned by one task.
//!
//! The worker connects (and reconnects, see the module doc of `rabbit`),
//! then publishes from its queue with up to [`MAX_IN_FLIGHT`] publishes on
//! the wire. Each publish is a future that settles as acked, nacked, written
//! (confirms off), timed out or failed; its message waits in the [`Window`]
//! meanwhile, so a lost connection can put every unsettled message back in
//! the retry queue (in arrival order) without waiting for lapin.
//!
//! Its whole state lives in [`Worker`], outside the future that runs it, so
//! a panic is caught, counted and the worker resumes where it was.

use super::connect::reason;
use super::window::Window;
use super::{ConnectionEvent, Message, Shared, CONNECT_TIMEOUT, MAX_ATTEMPTS, MAX_IN_FLIGHT};
use crate::rabbit::counters::bump;
use crate::report::{DropReason, Outcome, Tag};
use bytes::Bytes;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, Stream, StreamExt};
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::ShortString;
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// How often a worker checks that its connection and channel are still up
/// (lapin sends no event when the broker closes a connection politely).
const LINK_CHECK: Duration = Duration::from_millis(100);
/// Bound on closing a channel and a connection at the end.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause before resuming after a panic, so a repeating panic cannot spin.
const RESTART_PAUSE: Duration = Duration::from_millis(10);
/// Messages taken from the queue in one go before looking at anything else.
const BATCH: usize = 128;

/// How one publish ended.
enum Settled {
    Acked,
    Nacked,
    /// Written to the socket (confirms off).
    Written,
    TimedOut,
    Failed(lapin::Error),
}

type Pending = Pin<Box<dyn Future<Output = (u64, Settled)> + Send>>;

struct Link {
    connection: Arc<Connection>,
    /// `None` while it has to be (re)opened.
    channel: Option<Arc<Channel>>,
    events: Pin<Box<dyn Stream<Item = lapin::Event> + Send>>,
}

/// What broke while serving.
enum Broken {
    Connection,
    /// The broker closed the channel (the connection is fine); the reason is
    /// its text, blamed on the oldest unsettled publish.
    Channel(String),
}

pub(crate) struct Worker<T> {
    id: usize,
    shared: Arc<Shared<T>>,
    queue: mpsc::UnboundedReceiver<Message<T>>,
    /// False once the queue is closed and empty.
    queue_open: bool,
    /// Messages to publish before the queue, by arrival order.
    retry: VecDeque<Message<T>>,
    window: Window<T>,
    pending: FuturesUnordered<Pending>,
    link: Option<Link>,
    /// When the next connection attempt may start (after a failed one).
    retry_at: Option<Instant>,
    next_order: u64,
    /// The drain deadline, set once the pool closes.
    drain: watch::Receiver<Option<Instant>>,
    broken: Option<Broken>,
}

/// Runs a worker until the pool has closed, restarting it after a panic.
pub(crate) async fn supervise<T: Tag>(mut worker: Worker<T>) {
    loop {
        match AssertUnwindSafe(worker.run()).catch_unwind().await {
            Ok(()) => break,
            Err(_) => {
                bump(&worker.shared.counters.panics);
                worker.shared.reporter.panic("rabbit_worker");
                worker.recover();
                tokio::time::sleep(RESTART_PAUSE).await;
            }
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
            window: Window::new(),
            pending: FuturesUnordered::new(),
            link: None,
            retry_at: None,
            next_order: 0,
            drain,
            broken: None,
        }
    }

    async fn run(&mut self) {
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
        self.window.is_empty() && self.retry.is_empty() && self.queue.is_empty()
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
            match open_channel(&connection, shared.confirms).await {
                Ok(channel) => Ok((connection, channel)),
                Err(e) => {
                    let _ = connection.close(200, "OK".into()).await;
                    Err(format!("cannot open a channel: {}", reason(&e)))
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
                self.shared.links.failed(&why);
                self.shared.connection_event(ConnectionEvent::Failed(why));
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
    fn lose_link(&mut self) {
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
            if self
                .shared
                .fault
                .swap(false, std::sync::atomic::Ordering::SeqCst)
            {
                panic!("injected worker panic");
            }
            self.publish_retries().await;
            let Some(link) = &mut self.link else { return };
            let room = self.window.len() < MAX_IN_FLIGHT;
            tokio::select! {
                biased;
                // The drain started (checked above, next round) or its deadline passed.
                _ = Self::closing(&mut self.drain) => {}
                Some((seq, settled)) = self.pending.next(), if !self.pending.is_empty() => {
                    self.settle(seq, settled);
                    // Settle what else is ready before waiting again.
                    while let Some(Some((seq, settled))) = self.pending.next().now_or_never() {
                        self.settle(seq, settled);
                    }
                }
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
                _ = check.tick() => self.check_link(),
            }
            if self.mend() {
                return;
            }
        }
    }

    fn past_deadline(&self) -> bool {
        self.deadline().is_some_and(|d| Instant::now() >= d)
    }

    /// Publishes the first message and whatever else is already queued.
    async fn take_batch(&mut self, first: Message<T>) {
        self.counted_take(first).await;
        for _ in 1..BATCH {
            if self.window.len() >= MAX_IN_FLIGHT || self.broken.is_some() {
                return;
            }
            match self.queue.try_recv() {
                Ok(message) => self.counted_take(message).await,
                Err(_) => return,
            }
        }
    }

    async fn counted_take(&mut self, mut message: Message<T>) {
        self.shared.counters.taken();
        message.order = self.next_order;
        self.next_order += 1;
        self.publish(message).await;
    }

    /// Republishes what waits in the retry queue, while there is room.
    async fn publish_retries(&mut self) {
        let has_channel = self.link.as_ref().is_some_and(|l| l.channel.is_some());
        while has_channel && self.window.len() < MAX_IN_FLIGHT && self.broken.is_none() {
            let Some(message) = self.retry.pop_front() else {
                return;
            };
            bump(&self.shared.counters.republished);
            self.publish(message).await;
        }
    }

    async fn publish(&mut self, message: Message<T>) {
        let Some(channel) = self.link.as_ref().and_then(|l| l.channel.clone()) else {
            self.insert_retry(message);
            return;
        };
        let exchange = message.exchange.clone();
        let routing_key = message.routing_key.clone();
        let body = message.body.clone();
        let seq = self.window.push(message);
        let timeout = self.shared.confirms.then_some(self.shared.confirm_timeout);
        let mut publish = publish_future(channel, exchange, routing_key, body, timeout, seq);
        // Poll once now: the frames go out in the order of these calls,
        // whatever order the pending set polls its futures in later.
        let first = std::future::poll_fn(|cx| Poll::Ready(publish.as_mut().poll(cx))).await;
        match first {
            Poll::Ready((seq, settled)) => self.settle(seq, settled),
            Poll::Pending => self.pending.push(publish),
        }
    }

    fn settle(&mut self, seq: u64, settled: Settled) {
        let counters = &self.shared.counters;
        let failure: Cow<'static, str> = match settled {
            Settled::Acked | Settled::Written => {
                let Some(sent) = self.window.take(seq) else {
                    return;
                };
                if matches!(settled, Settled::Acked) {
                    bump(&counters.confirmed);
                }
                counters.finished(&counters.published);
                let outcome = Outcome::Published {
                    elapsed_us: micros(sent.at),
                    payload: sent.message.body,
                };
                self.shared.reporter.outcome(sent.message.tag, outcome);
                return;
            }
            Settled::Nacked => {
                bump(&counters.nacked);
                Cow::Borrowed("nack")
            }
            Settled::TimedOut => {
                bump(&counters.confirm_timeouts);
                Cow::Borrowed("confirm_timeout")
            }
            Settled::Failed(e) => {
                // The message stays in the window: what happens to it
                // depends on what broke, decided in `mend`.
                self.blame(&e);
                return;
            }
        };
        if let Some(sent) = self.window.take(seq) {
            self.failed_attempt(sent.message, failure, micros(sent.at));
        }
    }

    /// Records what a failed publish says about the link.
    fn blame(&mut self, e: &lapin::Error) {
        if self.broken.is_some() {
            return;
        }
        let Some(link) = &self.link else { return };
        self.broken = Some(if !link.connection.status().connected() {
            Broken::Connection
        } else {
            Broken::Channel(reason(e))
        });
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
            self.broken = Some(Broken::Channel("channel closed by the broker".into()));
        }
    }

    /// Deals with a broken link; true if `serve` must return.
    fn mend(&mut self) -> bool {
        match self.broken.take() {
            None => false,
            Some(Broken::Connection) => {
                self.lose_link();
                true
            }
            Some(Broken::Channel(why)) => {
                // Publishes are processed in order: everything before the
                // oldest unsettled one was confirmed, so that one is what the
                // broker refused (e.g. an exchange that no longer exists) and
                // the later ones were discarded with the channel.
                // With confirms off every written message was settled already,
                // so nothing unsettled is to blame.
                self.pending.clear();
                let mut unsettled = self.window.drain().collect::<Vec<_>>().into_iter();
                if self.shared.confirms {
                    if let Some(culprit) = unsettled.next() {
                        self.failed_attempt(culprit, Cow::Owned(why), 0);
                    }
                }
                for message in unsettled {
                    self.insert_retry(message);
                }
                if let Some(link) = &mut self.link {
                    link.channel = None;
                }
                true
            }
        }
    }

    /// A failed attempt: reported, then republished or given up.
    fn failed_attempt(&mut self, mut message: Message<T>, why: Cow<'static, str>, elapsed_us: u64) {
        message.failures += 1;
        let reporter = &self.shared.reporter;
        let outcome = Outcome::Error {
            reason: why,
            elapsed_us,
        };
        if message.failures >= MAX_ATTEMPTS {
            let counters = &self.shared.counters;
            counters.finished(&counters.dropped_retries_exhausted);
            reporter.outcome(message.tag.clone(), outcome);
            reporter.outcome(message.tag, Outcome::Dropped(DropReason::RetriesExhausted));
        } else {
            reporter.outcome(message.tag.clone(), outcome);
            self.insert_retry(message);
        }
    }

    /// Puts a message back in the retry queue at its place in arrival order.
    fn insert_retry(&mut self, message: Message<T>) {
        let at = self.retry.partition_point(|m| m.order < message.order);
        self.retry.insert(at, message);
    }

    /// Every unsettled message back to the retry queue (their publishes are
    /// abandoned: a late ack is ignored, a message may arrive twice).
    fn requeue_window(&mut self) {
        self.pending.clear();
        let mut back: Vec<Message<T>> = self.window.drain().collect();
        if back.is_empty() {
            return;
        }
        back.extend(self.retry.drain(..));
        back.sort_by_key(|m| m.order);
        self.retry = back.into();
    }

    /// The drain deadline passed: everything left is dropped and reported.
    fn abandon(&mut self) {
        self.requeue_window();
        let counters = &self.shared.counters;
        let reporter = &self.shared.reporter;
        for message in self.retry.drain(..) {
            counters.finished(&counters.dropped_closed);
            reporter.outcome(message.tag, Outcome::Dropped(DropReason::Closed));
        }
        while let Ok(message) = self.queue.try_recv() {
            counters.dropped_from_queue();
            reporter.outcome(message.tag, Outcome::Dropped(DropReason::Closed));
        }
    }

    /// After a panic: whatever was on the wire may have lost its future, so
    /// it goes back to the retry queue on a fresh channel.
    fn recover(&mut self) {
        self.requeue_window();
        self.broken = None;
        if let Some(link) = &mut self.link {
            link.channel = None;
        }
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

/// One publish: written, then (with confirms) acked or nacked within `timeout`.
fn publish_future(
    channel: Arc<Channel>,
    exchange: ShortString,
    routing_key: ShortString,
    body: Bytes,
    timeout: Option<Duration>,
    seq: u64,
) -> Pending {
    Box::pin(async move {
        let publish = async {
            let confirm = channel
                .basic_publish(
                    exchange,
                    routing_key,
                    BasicPublishOptions::default(),
                    &body,
                    // No properties: no content type, transient (as MongooseIM).
                    BasicProperties::default(),
                )
                .await?;
            // Awaited even with confirms off (it is ready at once): a
            // confirm dropped unresolved would stay registered in lapin.
            confirm.await
        };
        let settled = match timeout {
            None => match publish.await {
                Ok(_) => Settled::Written,
                Err(e) => Settled::Failed(e),
            },
            Some(timeout) => match tokio::time::timeout(timeout, publish).await {
                Ok(Ok(Confirmation::Ack(_))) => Settled::Acked,
                Ok(Ok(Confirmation::Nack(_))) => Settled::Nacked,
                Ok(Ok(Confirmation::NotRequested)) => Settled::Written,
                Ok(Err(e)) => Settled::Failed(e),
                Err(_) => Settled::TimedOut,
            },
        };
        (seq, settled)
    })
}

fn micros(since: std::time::Instant) -> u64 {
    u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX)
}
