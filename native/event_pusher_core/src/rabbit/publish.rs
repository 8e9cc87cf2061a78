//! Publishing and settling, for one worker: messages go out with up to
//! [`MAX_IN_FLIGHT`] publishes on the wire, each a future that settles as
//! acked, nacked, written (confirms off), timed out or failed; its message
//! waits in the worker's window meanwhile. A failed attempt is reported and
//! republished in arrival order, up to [`MAX_ATTEMPTS`].

use super::connect::reason;
use super::worker::{Broken, Worker};
use super::{Message, MAX_ATTEMPTS, MAX_IN_FLIGHT};
use crate::pool::micros;
use crate::rabbit::counters::bump;
use crate::report::{DropReason, Outcome, Tag};
use bytes::Bytes;
use lapin::options::BasicPublishOptions;
use lapin::types::ShortString;
use lapin::{BasicProperties, Channel, Confirmation};
use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

/// Messages taken from the queue in one go before looking at anything else.
const BATCH: usize = 128;

/// How one publish ended.
pub(super) enum Settled {
    Acked,
    Nacked,
    /// Written to the socket (confirms off).
    Written,
    TimedOut,
    Failed(lapin::Error),
}

pub(super) type Pending = Pin<Box<dyn Future<Output = (u64, Settled)> + Send>>;

impl<T: Tag> Worker<T> {
    /// Publishes the first message and whatever else is already queued.
    pub(super) async fn take_batch(&mut self, first: Message<T>) {
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

    pub(super) async fn counted_take(&mut self, mut message: Message<T>) {
        self.shared.counters.common.taken(1);
        message.order = self.next_order;
        self.next_order += 1;
        self.publish(message).await;
    }

    /// Republishes what waits in the retry queue, while there is room.
    pub(super) async fn publish_retries(&mut self) {
        let has_channel = self.link.as_ref().is_some_and(|l| l.channel.is_some());
        while has_channel && self.window.len() < MAX_IN_FLIGHT && self.broken.is_none() {
            let Some(message) = self.retry.pop_front() else {
                return;
            };
            bump(&self.shared.counters.republished);
            self.publish(message).await;
        }
    }

    pub(super) async fn publish(&mut self, message: Message<T>) {
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

    pub(super) fn settle(&mut self, seq: u64, settled: Settled) {
        let counters = &self.shared.counters;
        let failure: Cow<'static, str> = match settled {
            Settled::Acked | Settled::Written => {
                let Some(sent) = self.window.take(seq) else {
                    return;
                };
                if matches!(settled, Settled::Acked) {
                    bump(&counters.confirmed);
                }
                counters.common.finished(&counters.common.sent);
                let outcome = Outcome::Published {
                    elapsed_us: micros(sent.at.elapsed()),
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
            self.failed_attempt(sent.message, failure, micros(sent.at.elapsed()));
        }
    }

    /// Records what a failed publish says about the link: an I/O error or
    /// a connection no longer up is the connection (even before lapin has
    /// noticed), anything else the channel.
    pub(super) fn blame(&mut self, e: &lapin::Error) {
        if self.broken.is_some() {
            return;
        }
        let Some(link) = &self.link else { return };
        let connection_lost = e.is_io_error()
            || matches!(e.kind(), lapin::ErrorKind::MissingHeartbeatError)
            || !link.connection.status().connected();
        self.broken = Some(if connection_lost {
            Broken::Connection
        } else {
            Broken::Channel(reason(e))
        });
    }

    /// Deals with a broken link; true if `serve` must return.
    pub(super) fn mend(&mut self) -> bool {
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
    pub(super) fn failed_attempt(
        &mut self,
        mut message: Message<T>,
        why: Cow<'static, str>,
        elapsed_us: u64,
    ) {
        message.failures += 1;
        let reporter = &self.shared.reporter;
        let outcome = Outcome::Error {
            reason: why.clone(),
            elapsed_us,
            payload: Some(message.body.clone()),
        };
        if message.failures >= MAX_ATTEMPTS {
            let counters = &self.shared.counters;
            counters
                .common
                .finished(&counters.common.dropped_retries_exhausted);
            reporter.outcome(message.tag.clone(), outcome);
            reporter.outcome(
                message.tag.clone(),
                Outcome::Dropped(DropReason::RetriesExhausted),
            );
            let attempts = message.failures;
            self.shared.dead.put(message, why, attempts);
        } else {
            reporter.outcome(message.tag.clone(), outcome);
            self.insert_retry(message);
        }
    }

    /// Puts a message back in the retry queue at its place in arrival order.
    pub(super) fn insert_retry(&mut self, message: Message<T>) {
        let at = self.retry.partition_point(|m| m.order < message.order);
        self.retry.insert(at, message);
    }

    /// Every unsettled message back to the retry queue (their publishes are
    /// abandoned: a late ack is ignored, a message may arrive twice).
    pub(super) fn requeue_window(&mut self) {
        self.pending.clear();
        let mut back: Vec<Message<T>> = self.window.drain().collect();
        if back.is_empty() {
            return;
        }
        back.extend(self.retry.drain(..));
        back.sort_by_key(|m| m.order);
        self.retry = back.into();
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
