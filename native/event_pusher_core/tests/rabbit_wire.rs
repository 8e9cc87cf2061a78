//! Event IDs and the `mandatory` flag on the wire, read by a lapin consumer
//! of the real RabbitMQ: the AMQP properties of `PublishOptions` (and none
//! without them), returned messages counted as unroutable (not as
//! published), republished with the same ID once a queue is bound, or given
//! up after their retry time. Skips when no broker runs unless
//! EP_REQUIRE_RABBIT is set.

mod rabbit_common;

use bytes::Bytes;
use event_pusher_core::rabbit::{ConnectionEvent, PublishOptions, RabbitStats};
use event_pusher_core::{DropReason, EventId, Outcome};
use lapin::types::FieldTable;
use lapin::{BasicProperties, ExchangeKind};
use rabbit_common::*;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_ms() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
    u64::try_from(since.as_millis()).expect("ms fit")
}

fn id_of(got: &Got) -> EventId {
    let text = got.properties.message_id().as_ref().expect("a message_id");
    EventId::parse(text.as_str().as_bytes()).expect("a UUID")
}

fn with_ids() -> PublishOptions {
    PublishOptions {
        event_properties: true,
        persistent: true,
        mandatory: None,
    }
}

fn mandatory(retry: Duration) -> PublishOptions {
    PublishOptions {
        event_properties: true,
        mandatory: Some(retry),
        ..PublishOptions::default()
    }
}

fn stats_until(
    pool: &event_pusher_core::rabbit::RabbitPool<u64>,
    what: &str,
    cond: impl Fn(&RabbitStats) -> bool,
) -> RabbitStats {
    wait_until(what, || cond(&pool.stats()));
    pool.stats()
}

#[test]
fn event_properties_carry_the_id_timestamp_type_and_persistence() {
    if !broker_available("event_properties_carry_the_id_timestamp_type_and_persistence") {
        return;
    }
    for confirms in [false, true] {
        let broker = TestBroker::connect();
        let exchange = unique("ep_wire_props");
        broker
            .declare_exchange(&exchange, ExchangeKind::Topic, false)
            .unwrap();
        let queue = broker.queue(&exchange, "#", FieldTable::default());
        let (pool, _events) = start(config(1, confirms));
        let before = now_ms();
        pool.publish_with(
            1,
            &exchange,
            "k",
            Bytes::from_static(b"{\"a\":1}"),
            with_ids(),
        )
        .unwrap();
        pool.publish_with(
            2,
            &exchange,
            "k",
            Bytes::from_static(b"{\"a\":2}"),
            with_ids(),
        )
        .unwrap();
        // Without options: exactly as MongooseIM, no properties at all.
        pool.publish(3, &exchange, "k", Bytes::from_static(b"{\"a\":3}"))
            .unwrap();
        let got = queue.take(3);
        let (a, b) = (id_of(&got[0]), id_of(&got[1]));
        assert_ne!(a, b, "each event has its own ID");
        assert!(a.unix_ms() >= before.saturating_sub(1) && a.unix_ms() <= now_ms());
        for g in &got[..2] {
            let p = &g.properties;
            assert_eq!(*p.timestamp(), Some(id_of(g).unix_ms() / 1000), "{p:?}");
            assert_eq!(
                p.content_type().as_ref().map(|s| s.as_str()),
                Some("application/json")
            );
            assert_eq!(*p.delivery_mode(), Some(2));
        }
        assert_eq!(got[2].properties, BasicProperties::default());
        assert_eq!(got[2].body, b"{\"a\":3}");
        broker.delete_exchange(&exchange);
    }
}

#[test]
fn unroutable_message_is_retried_with_its_id_until_a_queue_is_bound() {
    if !broker_available("unroutable_message_is_retried_with_its_id_until_a_queue_is_bound") {
        return;
    }
    let broker = TestBroker::connect();
    let exchange = unique("ep_wire_unroutable");
    broker
        .declare_exchange(&exchange, ExchangeKind::Topic, false)
        .unwrap();
    let (pool, events) = start(config(1, true));
    pool.publish_with(
        7,
        &exchange,
        "u.k",
        Bytes::from_static(b"{\"n\":7}"),
        mandatory(Duration::from_secs(30)),
    )
    .unwrap();
    // Returned at least twice (first publish and a retry), and never
    // counted as published although each return comes with an ack.
    let s = stats_until(&pool, "two returns", |s| s.unroutable >= 2);
    assert_eq!(
        (s.published, s.in_flight, s.dropped_unroutable),
        (0, 1, 0),
        "{s:?}"
    );
    let notices = events.until("an unroutable notice", |e| {
        matches!(e, Event::Connection(ConnectionEvent::Unroutable(_)))
    });
    match notices.last() {
        Some(Event::Connection(ConnectionEvent::Unroutable(n))) => {
            assert_eq!(
                (n.exchange.as_str(), n.routing_key.as_str()),
                (exchange.as_str(), "u.k")
            );
            assert_eq!(n.reply_text, "NO_ROUTE");
        }
        other => panic!("{other:?}"),
    }
    let bound_at = now_ms();
    let queue = broker.queue(&exchange, "#", FieldTable::default());
    let got = queue.take(1);
    assert_eq!(got[0].body, b"{\"n\":7}");
    // The ID was made at the first publish, before the queue existed.
    assert!(id_of(&got[0]).unix_ms() < bound_at);
    let s = stats_until(&pool, "published", |s| s.published == 1);
    assert!(s.republished >= 2, "{s:?}");
    assert_eq!((s.in_flight, s.dropped_unroutable), (0, 0), "{s:?}");
    let (outcomes, _) = events.outcomes(1);
    assert!(
        matches!(outcomes[0], (7, Outcome::Published { .. })),
        "{outcomes:?}"
    );
    queue.assert_quiet(Duration::from_millis(300));
    broker.delete_exchange(&exchange);
}

#[test]
fn unroutable_message_is_given_up_after_its_retry_time() {
    if !broker_available("unroutable_message_is_given_up_after_its_retry_time") {
        return;
    }
    let broker = TestBroker::connect();
    let exchange = unique("ep_wire_give_up");
    broker
        .declare_exchange(&exchange, ExchangeKind::Topic, false)
        .unwrap();
    let (pool, events) = start(config(1, true));
    let routed = broker.queue(&exchange, "routed", FieldTable::default());
    pool.publish_with(
        1,
        &exchange,
        "nowhere",
        Bytes::from_static(b"{}"),
        mandatory(Duration::from_millis(400)),
    )
    .unwrap();
    pool.publish_with(
        2,
        &exchange,
        "routed",
        Bytes::from_static(b"{}"),
        mandatory(Duration::from_millis(400)),
    )
    .unwrap();
    let (mut outcomes, _) = events.outcomes(2);
    outcomes.sort_by_key(|(tag, _)| *tag);
    assert!(
        matches!(outcomes[0], (1, Outcome::Dropped(DropReason::Unroutable))),
        "{outcomes:?}"
    );
    assert!(
        matches!(outcomes[1], (2, Outcome::Published { .. })),
        "{outcomes:?}"
    );
    assert_eq!(routed.take(1)[0].routing_key, "routed");
    let s = pool.stats();
    assert_eq!(
        (s.published, s.dropped_unroutable, s.in_flight),
        (1, 1, 0),
        "{s:?}"
    );
    assert!(s.unroutable >= 2, "{s:?}");
    broker.delete_exchange(&exchange);
}

#[test]
fn without_confirms_returns_are_counted_not_retried() {
    if !broker_available("without_confirms_returns_are_counted_not_retried") {
        return;
    }
    let broker = TestBroker::connect();
    let exchange = unique("ep_wire_no_confirms");
    broker
        .declare_exchange(&exchange, ExchangeKind::Topic, false)
        .unwrap();
    let (pool, _events) = start(config(1, false));
    for tag in 0..3 {
        pool.publish_with(
            tag,
            &exchange,
            "nowhere",
            Bytes::from_static(b"{}"),
            mandatory(Duration::from_secs(5)),
        )
        .unwrap();
    }
    let s = stats_until(&pool, "three returns", |s| s.unroutable == 3);
    // Written is done without confirms: the broker's return comes later.
    assert_eq!(
        (s.published, s.republished, s.in_flight),
        (3, 0, 0),
        "{s:?}"
    );
    broker.delete_exchange(&exchange);
}

#[test]
fn a_republish_after_a_lost_connection_keeps_the_message_id() {
    if !broker_available("a_republish_after_a_lost_connection_keeps_the_message_id") {
        return;
    }
    let broker = TestBroker::connect();
    let exchange = unique("ep_wire_republish");
    broker
        .declare_exchange(&exchange, ExchangeKind::Topic, false)
        .unwrap();
    let queue = broker.queue(&exchange, "#", FieldTable::default());
    let proxy = Proxy::start();
    let mut cfg = config(1, true);
    cfg.port = proxy.port;
    cfg.reconnect_delay = Duration::from_millis(100);
    let (pool, _events) = start(cfg);
    wait_until("connected", || pool.stats().connections_opened == 1);
    // The broker routes the messages, but their confirms are held back:
    // when the connection dies they are unconfirmed and go out again.
    proxy.stall();
    for n in 0..3u8 {
        let body = Bytes::from(format!("{{\"n\":{n}}}"));
        pool.publish_with(u64::from(n), &exchange, "k", body, with_ids())
            .unwrap();
    }
    let first = queue.take(3);
    proxy.outage();
    proxy.resume();
    proxy.enable();
    let again = queue.take(3);
    stats_until(&pool, "published after the reconnect", |s| s.published == 3);
    for (a, b) in first.iter().zip(&again) {
        assert_eq!(a.body, b.body);
        assert_eq!(id_of(a), id_of(b), "{a:?} / {b:?}");
        assert_eq!(a.properties.timestamp(), b.properties.timestamp());
    }
    let ids: std::collections::HashSet<_> = first.iter().map(id_of).collect();
    assert_eq!(ids.len(), 3);
    assert!(pool.stats().republished >= 3);
    broker.delete_exchange(&exchange);
}
