//! Unroutable messages (ours): a message published with `mandatory` that no
//! queue takes comes back from the broker (basic.return, then its confirm).
//! It is counted as `unroutable`, parked, and republished with backoff until
//! its retry time (`PublishOptions::mandatory`) has passed since its first
//! return; then it is given up (counted `dropped_unroutable`, outcome
//! `Dropped(Unroutable)`).
//!
//! The returns are logged through a rate-limited notice (one pool event per
//! worker per [`NOTICE_INTERVAL`] with the count and the first message's
//! exchange and routing key), never one line per message.

use super::Message;
use lapin::message::BasicReturnMessage;
use lapin::types::ShortString;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

/// Wait before the first republish of a returned message; doubles per
/// return up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// At most one unroutable notice per worker per interval.
pub(super) const NOTICE_INTERVAL: Duration = Duration::from_secs(1);

/// What the broker gave back, enough to find the message it was.
pub(super) struct Returned {
    message_id: Option<ShortString>,
    pub exchange: ShortString,
    pub routing_key: ShortString,
    body: Vec<u8>,
    pub reply_text: ShortString,
}

impl Returned {
    pub fn from_lapin(returned: BasicReturnMessage) -> Returned {
        Returned {
            message_id: returned.properties.message_id().clone(),
            exchange: returned.delivery.exchange,
            routing_key: returned.delivery.routing_key,
            body: returned.delivery.data,
            reply_text: returned.reply_text,
        }
    }

    /// Whether `message` is the one returned. lapin hands a return to the
    /// first confirm it resolves after it, which under a multiple ack may be
    /// an earlier message's: the message is found by its ID when it carries
    /// one, else by exchange, routing key and body (identical messages are
    /// interchangeable).
    pub fn is<T>(&self, message: &Message<T>) -> bool {
        if let Some(id) = &self.message_id {
            if message.options.event_properties {
                return id.as_str().as_bytes() == message.id.text();
            }
        }
        message.exchange == self.exchange
            && message.routing_key == self.routing_key
            && message.body[..] == self.body[..]
    }
}

/// When a message was first returned and how often since.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Returns {
    first: Instant,
    count: u32,
}

/// What to do with a message just returned.
pub(super) enum Verdict<T> {
    /// Parked until its next attempt.
    Parked,
    /// Its retry time is over.
    GiveUp(Message<T>),
}

/// Returned messages waiting for their next attempt, by due time.
pub(super) struct Parked<T> {
    due: BTreeMap<(Instant, u64), Message<T>>,
}

impl<T> Parked<T> {
    pub fn new() -> Parked<T> {
        Parked {
            due: BTreeMap::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.due.is_empty()
    }

    /// Parks a returned message, or says it is to be given up.
    pub fn returned(&mut self, mut message: Message<T>, now: Instant) -> Verdict<T> {
        let limit = message.options.mandatory.unwrap_or_default();
        let returns = message.returns.get_or_insert(Returns {
            first: now,
            count: 0,
        });
        returns.count += 1;
        let end = returns.first + limit;
        if now >= end {
            return Verdict::GiveUp(message);
        }
        let shift = returns.count.saturating_sub(1).min(16);
        let wait = FIRST_BACKOFF.saturating_mul(1 << shift).min(MAX_BACKOFF);
        // The last attempt is at the end of the retry time, so a queue bound
        // just before it still gets the message.
        let at = (now + wait).min(end);
        self.due.insert((at, message.order), message);
        Verdict::Parked
    }

    /// When the next parked message is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.due.keys().next().map(|(at, _)| *at)
    }

    /// Takes the messages due by `now`.
    pub fn take_due(&mut self, now: Instant) -> Vec<Message<T>> {
        let mut out = Vec::new();
        while let Some(entry) = self.due.first_entry() {
            if entry.key().0 > now {
                break;
            }
            out.push(entry.remove());
        }
        out
    }

    /// Everything parked (the pool is closing and its deadline passed).
    pub fn drain(&mut self) -> impl Iterator<Item = Message<T>> {
        std::mem::take(&mut self.due).into_values()
    }
}

/// Rate-limited report of returns: what to tell since the last notice.
pub(super) struct Notice {
    count: u64,
    example: Option<(String, String, String)>,
    last: Option<Instant>,
}

/// One notice: returns since the last one, and the first of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnroutableNotice {
    pub count: u64,
    pub exchange: String,
    pub routing_key: String,
    /// The broker's reply text, e.g. `NO_ROUTE`.
    pub reply_text: String,
}

impl Notice {
    pub fn new() -> Notice {
        Notice {
            count: 0,
            example: None,
            last: None,
        }
    }

    pub fn add(&mut self, exchange: &str, routing_key: &str, reply_text: &str) {
        self.count += 1;
        if self.example.is_none() {
            self.example = Some((exchange.into(), routing_key.into(), reply_text.into()));
        }
    }

    /// The notice to send now, if any is due.
    pub fn take(&mut self, now: Instant) -> Option<UnroutableNotice> {
        if self.count == 0 || self.last.is_some_and(|last| now < last + NOTICE_INTERVAL) {
            return None;
        }
        self.last = Some(now);
        let (exchange, routing_key, reply_text) = self.example.take().unwrap_or_default();
        let count = std::mem::take(&mut self.count);
        Some(UnroutableNotice {
            count,
            exchange,
            routing_key,
            reply_text,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rabbit::PublishOptions;
    use bytes::Bytes;

    fn message(order: u64, retry: Duration) -> Message<u64> {
        Message {
            tag: order,
            id: crate::EventId::new(),
            exchange: "x".into(),
            routing_key: "k".into(),
            body: Bytes::from_static(b"{}"),
            order,
            failures: 0,
            options: PublishOptions {
                mandatory: Some(retry),
                ..PublishOptions::default()
            },
            returns: None,
        }
    }

    #[test]
    fn backs_off_until_the_retry_time_then_gives_up() {
        let mut parked = Parked::new();
        let t0 = Instant::now();
        assert!(matches!(
            parked.returned(message(1, Duration::from_millis(250)), t0),
            Verdict::Parked
        ));
        assert_eq!(parked.next_due(), Some(t0 + FIRST_BACKOFF));
        assert!(parked.take_due(t0).is_empty());
        let m = parked.take_due(t0 + FIRST_BACKOFF).pop().unwrap();
        let t1 = t0 + FIRST_BACKOFF;
        assert!(matches!(parked.returned(m, t1), Verdict::Parked));
        // Second wait 200 ms, capped at the end of the retry time.
        assert_eq!(parked.next_due(), Some(t0 + Duration::from_millis(250)));
        let m = parked.take_due(t0 + Duration::from_secs(1)).pop().unwrap();
        assert!(matches!(
            parked.returned(m, t0 + Duration::from_millis(250)),
            Verdict::GiveUp(_)
        ));
        assert!(parked.is_empty());
    }

    #[test]
    fn notices_are_rate_limited_and_count_everything() {
        let mut notice = Notice::new();
        let t0 = Instant::now();
        assert_eq!(notice.take(t0), None);
        notice.add("ex", "a", "NO_ROUTE");
        notice.add("ex", "b", "NO_ROUTE");
        let first = notice.take(t0).unwrap();
        assert_eq!((first.count, first.routing_key.as_str()), (2, "a"));
        notice.add("ex", "c", "NO_ROUTE");
        assert_eq!(notice.take(t0 + NOTICE_INTERVAL / 2), None);
        notice.add("ex", "d", "NO_ROUTE");
        let second = notice.take(t0 + NOTICE_INTERVAL).unwrap();
        assert_eq!((second.count, second.routing_key.as_str()), (2, "c"));
    }
}
