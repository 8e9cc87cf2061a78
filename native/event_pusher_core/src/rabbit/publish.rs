//! Publishing and settling, for one worker: messages go out with up to
//! [`MAX_IN_FLIGHT`] publishes on the wire, each a future that settles as
//! acked, nacked, written (confirms off), timed out or failed; its message
//! waits in the worker's window meanwhile. A failed attempt is reported and
//! republished in arrival order, up to [`MAX_ATTEMPTS`].

use super::connect::reason;
use super::unroutable::{Returned, Verdict};
use super::wire;
use super::worker::{Broken, Worker};
use super::{ConnectionEvent, Message, MAX_ATTEMPTS, MAX_IN_FLIGHT};
use crate::pool::micros;
use crate::rabbit::counters::bump;
use crate::report::{DropReason, Outcome, Tag};
use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::StreamExt;
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
    /// With the message the broker returned before this confirm, if any
    /// (not necessarily this publish's: see `Returned::is`).
    Acked(Option<Returned>),
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
        let frame = Frame {
            exchange: message.exchange.clone(),
            routing_key: message.routing_key.clone(),
            body: message.body.clone(),
            options: wire::publish_options(&message.options),
            properties: wire::properties(message.id, &message.options),
        };
        let seq = self.window.push(message);
        let timeout = self.shared.confirms.then_some(self.shared.confirm_timeout);
        let mut publish = publish_future(channel, frame, timeout, seq);
        // Poll once now: the frames go out in the order of these calls,
        // whatever order the pending set polls its futures in later.
        let first = std::future::poll_fn(|cx| Poll::Ready(publish.as_mut().poll(cx))).await;
        match first {
            Poll::Ready(settled) => self.settle_ready(Some(settled)),
            Poll::Pending => self.pending.push(publish),
        }
    }

    /// Settles `first` and every other publish already settled. Returns are
    /// matched first: lapin may hand a message's return to an earlier
    /// message's confirm of the same multiple ack, so the returned message
    /// must leave the window before its own (plain) ack is settled.
    pub(super) fn settle_ready(&mut self, first: Option<(u64, Settled)>) {
        // A buffer kept by the worker: no allocation per batch.
        let mut ready = std::mem::take(&mut self.ready);
        ready.extend(first);
        while let Some(Some(settled)) = self.pending.next().now_or_never() {
            ready.push(settled);
        }
        for (_, settled) in ready.iter_mut() {
            if let Settled::Acked(returned) = settled {
                if let Some(returned) = returned.take() {
                    self.returned(returned);
                }
            }
        }
        for (seq, settled) in ready.drain(..) {
            self.settle(seq, settled);
        }
        self.ready = ready;
    }

    /// A message the broker returned: counted, then parked for a retry or
    /// given up.
    fn returned(&mut self, returned: Returned) {
        let counters = &self.shared.counters;
        bump(&counters.unroutable);
        self.notice.add(
            returned.exchange.as_str(),
            returned.routing_key.as_str(),
            returned.reply_text.as_str(),
        );
        // Not in the window: its link was lost meanwhile and it waits for a
        // republish already.
        let Some(sent) = self
            .window
            .find(|m| returned.is(m))
            .and_then(|seq| self.window.take(seq))
        else {
            return;
        };
        let message = sent.message;
        match self.parked.returned(message, tokio::time::Instant::now()) {
            Verdict::Parked => {}
            Verdict::GiveUp(message) => {
                counters.common.finished(&counters.dropped_unroutable);
                self.shared.reporter.outcome(
                    message.tag.clone(),
                    Outcome::Dropped(DropReason::Unroutable),
                );
                let attempts = message.failures.saturating_add(1);
                self.shared.dead.put(message, "unroutable", attempts);
            }
        }
    }

    /// Sends the rate-limited unroutable notice, if one is due.
    pub(super) fn flush_notice(&mut self) {
        if let Some(notice) = self.notice.take(tokio::time::Instant::now()) {
            self.shared
                .connection_event(ConnectionEvent::Unroutable(notice));
        }
    }

    /// With confirms off lapin keeps returned messages until asked: they
    /// were counted as published already (written), so they are only
    /// counted and noticed here, not retried (see doc/rabbit.md).
    pub(super) fn collect_unconfirmed_returns(&mut self) {
        if self.shared.confirms {
            return;
        }
        let Some(channel) = self.link.as_ref().and_then(|l| l.channel.clone()) else {
            return;
        };
        // Nothing to wait for without confirms: ready at once.
        if let Some(Ok(returned)) = channel.wait_for_confirms().now_or_never() {
            for message in returned {
                bump(&self.shared.counters.unroutable);
                self.notice.add(
                    message.delivery.exchange.as_str(),
                    message.delivery.routing_key.as_str(),
                    message.reply_text.as_str(),
                );
            }
        }
    }

    pub(super) fn settle(&mut self, seq: u64, settled: Settled) {
        let counters = &self.shared.counters;
        let failure: Cow<'static, str> = match settled {
            Settled::Acked(_) | Settled::Written => {
                let Some(sent) = self.window.take(seq) else {
                    return;
                };
                if matches!(settled, Settled::Acked(_)) {
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

/// What one publish writes.
struct Frame {
    exchange: ShortString,
    routing_key: ShortString,
    body: Bytes,
    /// Default (as MongooseIM) unless configured: see `wire`.
    options: BasicPublishOptions,
    properties: BasicProperties,
}

/// One publish: written, then (with confirms) acked or nacked within `timeout`.
fn publish_future(
    channel: Arc<Channel>,
    frame: Frame,
    timeout: Option<Duration>,
    seq: u64,
) -> Pending {
    Box::pin(async move {
        let publish = async {
            let confirm = channel
                .basic_publish(
                    frame.exchange,
                    frame.routing_key,
                    frame.options,
                    &frame.body,
                    frame.properties,
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
                Ok(Ok(Confirmation::Ack(returned))) => {
                    Settled::Acked(returned.map(Returned::from_lapin))
                }
                Ok(Ok(Confirmation::Nack(_))) => Settled::Nacked,
                Ok(Ok(Confirmation::NotRequested)) => Settled::Written,
                Ok(Err(e)) => Settled::Failed(e),
                Err(_) => Settled::TimedOut,
            },
        };
        (seq, settled)
    })
}
