//! The rabbit pool against the real RabbitMQ: what arrives (body bytes,
//! exchange, routing key, no properties), confirms on and off, exchange
//! declarations and their errors, nacks, channel errors, overload, drain on
//! close, and panics. Skips when no broker runs unless EP_REQUIRE_RABBIT is set.

mod rabbit_common;

use bytes::Bytes;
use event_pusher_core::json::{encode_object, Field};
use event_pusher_core::rabbit::{
    ConnectionEvent, DeclareFailure, ExchangeSpec, RabbitStats, SubmitError,
};
use event_pusher_core::{DropReason, Outcome};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, ExchangeKind};
use rabbit_common::*;
use std::collections::HashMap;
use std::time::Duration;

fn spec(name: &str, kind: &str, durable: bool) -> ExchangeSpec {
    ExchangeSpec {
        name: name.into(),
        kind: kind.into(),
        durable,
    }
}

fn presence_body(jid: &str, present: bool) -> Bytes {
    Bytes::from(encode_object(
        vec![
            ("user_id".into(), Field::Str(jid.into())),
            ("present".into(), Field::Bool(present)),
        ],
        vec![],
    ))
}

fn numbered(n: u64) -> Bytes {
    Bytes::from(format!("{{\"n\":{n}}}"))
}

fn number(body: &[u8]) -> u64 {
    let text = std::str::from_utf8(body).expect("utf8");
    text.trim_start_matches("{\"n\":")
        .trim_end_matches('}')
        .parse()
        .expect("a numbered body")
}

/// Once idle, every accepted message is accounted for.
fn assert_balanced(s: &RabbitStats) {
    assert_eq!(s.queued, 0, "{s:?}");
    assert_eq!(s.in_flight, 0, "{s:?}");
    assert_eq!(
        s.submitted,
        s.published + s.dropped_retries_exhausted + s.dropped_closed,
        "{s:?}"
    );
}

fn published_payload(outcome: &Outcome) -> &Bytes {
    match outcome {
        Outcome::Published { payload, .. } => payload,
        other => panic!("expected published, got {other:?}"),
    }
}

fn publish_arrives_exactly(confirms: bool) {
    let broker = TestBroker::connect();
    let exchange = unique("exact");
    broker
        .declare_exchange(&exchange, ExchangeKind::Topic, false)
        .expect("exchange");
    let queue = broker.queue(&exchange, "#", FieldTable::default());
    let (pool, events) = start(config(1, confirms));

    let online = presence_body("alice@localhost/res1", true);
    let chat = Bytes::from(encode_object(
        vec![
            (
                "from_user_id".into(),
                Field::Str("alice@localhost/res1".into()),
            ),
            ("to_user_id".into(), Field::Str("bob@localhost/res2".into())),
            ("message".into(), Field::Str("zażółć \"gęślą\"".into())),
        ],
        vec![("flag".into(), Field::Null)],
    ));
    pool.publish(1, &exchange, "alice@localhost", online.clone())
        .expect("accepted");
    pool.publish(2, &exchange, "alice@localhost.chat_msg_sent", chat.clone())
        .expect("accepted");

    let got = queue.take(2);
    assert_eq!(got[0].exchange, exchange);
    assert_eq!(got[0].routing_key, "alice@localhost");
    assert_eq!(got[0].body, online.to_vec());
    assert_eq!(got[1].routing_key, "alice@localhost.chat_msg_sent");
    assert_eq!(got[1].body, chat.to_vec());
    assert_eq!(
        std::str::from_utf8(&got[1].body).unwrap(),
        r#"{"to_user_id":"bob@localhost/res2","message":"zażółć \"gęślą\"","from_user_id":"alice@localhost/res1","flag":null}"#
    );
    for g in &got {
        // No content type, no delivery mode (transient), nothing at all.
        assert_eq!(
            g.properties,
            BasicProperties::default(),
            "{:?}",
            g.properties
        );
    }

    let (outcomes, others) = events.outcomes(2);
    let by_tag: HashMap<u64, Outcome> = outcomes.into_iter().collect();
    assert_eq!(published_payload(&by_tag[&1]), &online);
    assert_eq!(published_payload(&by_tag[&2]), &chat);
    assert!(others.contains(&Event::Connection(ConnectionEvent::Opened)));

    let s = pool.stats();
    assert_eq!((s.submitted, s.published), (2, 2));
    assert_eq!(s.confirmed, if confirms { 2 } else { 0 });
    assert_eq!(s.connections_opened, 1);
    assert_balanced(&s);

    let (report, rest) = close(&pool, &events, Duration::from_secs(5));
    assert_eq!(report.dropped, 0);
    assert_eq!(rest, vec![Event::Connection(ConnectionEvent::Closed)]);
    events.wait_reporter_gone();
    broker.delete_exchange(&exchange);
}

#[test]
fn published_message_has_exact_body_routing_key_and_no_properties_confirms_off() {
    if !broker_available("confirms_off") {
        return;
    }
    publish_arrives_exactly(false);
}

#[test]
fn published_message_has_exact_body_routing_key_and_no_properties_confirms_on() {
    if !broker_available("confirms_on") {
        return;
    }
    publish_arrives_exactly(true);
}

#[test]
fn many_messages_in_flight_all_confirmed_in_order_per_routing_key() {
    if !broker_available("in_order") {
        return;
    }
    let broker = TestBroker::connect();
    let exchange = unique("order");
    broker
        .declare_exchange(&exchange, ExchangeKind::Topic, false)
        .expect("exchange");
    let queue = broker.queue(&exchange, "#", FieldTable::default());
    let (pool, events) = start(config(3, true));
    let keys = ["a@localhost", "b@localhost", "c@localhost", "d@localhost"];
    let per_key = 1500u64;
    for n in 0..per_key {
        for (k, key) in keys.iter().enumerate() {
            let tag = n * keys.len() as u64 + k as u64;
            pool.publish(tag, &exchange, key, numbered(n))
                .expect("accepted");
        }
    }
    let total = per_key as usize * keys.len();
    let got = queue.take(total);
    let mut next: HashMap<&str, u64> = HashMap::new();
    for g in &got {
        let expected = next
            .entry(keys.iter().find(|k| **k == g.routing_key).unwrap())
            .or_default();
        assert_eq!(number(&g.body), *expected, "order of {}", g.routing_key);
        *expected += 1;
    }
    let (outcomes, _) = events.outcomes(total);
    assert!(outcomes
        .iter()
        .all(|(_, o)| matches!(o, Outcome::Published { .. })));
    let s = pool.stats();
    assert_eq!(
        (s.published, s.confirmed, s.nacked),
        (total as u64, total as u64, 0)
    );
    assert_eq!(s.connections_opened, 3);
    assert_balanced(&s);
    close(&pool, &events, Duration::from_secs(5));
    broker.delete_exchange(&exchange);
}

#[test]
fn declare_creates_exchanges_with_their_type_and_durability() {
    if !broker_available("declare_ok") {
        return;
    }
    let broker = TestBroker::connect();
    let topic = unique("decl_topic");
    let fanout = unique("decl_fanout_durable");
    let (pool, events) = start(config(1, false));
    pool.declare_exchanges(
        vec![spec(&topic, "topic", false), spec(&fanout, "fanout", true)],
        Duration::from_secs(5),
        events.on_declared(),
    );
    let (result, _) = events.declared();
    assert_eq!(result, Ok(()));
    // The same settings again are fine; another type or durability is not.
    broker
        .declare_exchange(&topic, ExchangeKind::Topic, false)
        .expect("same settings");
    broker
        .declare_exchange(&fanout, ExchangeKind::Fanout, true)
        .expect("same settings");
    let other_type = broker
        .declare_exchange(&topic, ExchangeKind::Direct, false)
        .unwrap_err();
    assert!(
        other_type.contains("inequivalent arg 'type'"),
        "{other_type}"
    );
    let other_durability = broker
        .declare_exchange(&fanout, ExchangeKind::Fanout, false)
        .unwrap_err();
    assert!(
        other_durability.contains("inequivalent arg 'durable'"),
        "{other_durability}"
    );
    broker.delete_exchange(&topic);
    broker.delete_exchange(&fanout);
    close(&pool, &events, Duration::from_secs(5));
}

#[test]
fn declare_conflicting_with_an_existing_exchange_gives_the_brokers_reason() {
    if !broker_available("declare_conflict") {
        return;
    }
    let broker = TestBroker::connect();
    let taken = unique("decl_taken");
    let fine = unique("decl_fine");
    broker
        .declare_exchange(&taken, ExchangeKind::Fanout, false)
        .expect("exchange");
    let (pool, events) = start(config(1, true));
    pool.declare_exchanges(
        vec![spec(&taken, "topic", false), spec(&fine, "topic", false)],
        Duration::from_secs(5),
        events.on_declared(),
    );
    let (result, _) = events.declared();
    let failures = result.expect_err("conflict");
    assert_eq!(failures.len(), 1, "{failures:?}");
    let DeclareFailure {
        exchange, reason, ..
    } = &failures[0];
    assert_eq!(exchange, &taken);
    assert!(
        reason.starts_with("PRECONDITION_FAILED - inequivalent arg 'type'"),
        "{reason}"
    );
    // The failed declare closed only its own channel: the next one worked.
    broker
        .declare_exchange(&fine, ExchangeKind::Topic, false)
        .expect("declared by the pool as a topic exchange");
    broker.delete_exchange(&taken);
    broker.delete_exchange(&fine);
    close(&pool, &events, Duration::from_secs(5));
}

#[test]
fn declare_on_a_wrong_port_says_connection_refused() {
    if !broker_available("declare_wrong_port") {
        return;
    }
    let mut cfg = config(2, false);
    cfg.port = 1;
    let (pool, events) = start(cfg);
    let x = unique("decl_port");
    pool.declare_exchanges(
        vec![spec(&x, "topic", false)],
        Duration::from_secs(5),
        events.on_declared(),
    );
    let (result, before) = events.declared();
    let failures = result.expect_err("no connection");
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].exchange, x);
    assert!(
        failures[0].reason.contains("127.0.0.1:1")
            && failures[0].reason.contains("Connection refused"),
        "{}",
        failures[0].reason
    );
    assert!(
        before
            .iter()
            .any(|e| matches!(e, Event::Connection(ConnectionEvent::Failed(r)) if r.contains("Connection refused"))),
        "{before:?}"
    );
    assert!(pool.stats().connections_failed >= 1);
    assert_eq!(pool.stats().connections_opened, 0);
    close(&pool, &events, Duration::ZERO);
}

#[test]
fn declare_with_bad_credentials_says_access_refused_and_hides_the_password() {
    if !broker_available("declare_bad_credentials") {
        return;
    }
    let mut cfg = config(1, false);
    cfg.password = event_pusher_core::secret::Secret("not-the-password-s3cret".into());
    assert!(!format!("{cfg:?}").contains("s3cret"));
    let (pool, events) = start(cfg);
    let x = unique("decl_creds");
    pool.declare_exchanges(
        vec![spec(&x, "topic", false)],
        Duration::from_secs(5),
        events.on_declared(),
    );
    let (result, before) = events.declared();
    let failures = result.expect_err("refused");
    assert!(
        failures[0].reason.contains("ACCESS_REFUSED"),
        "{}",
        failures[0].reason
    );
    let everything = format!("{failures:?} {before:?}");
    assert!(!everything.contains("s3cret"), "{everything}");
    close(&pool, &events, Duration::ZERO);
}

#[test]
fn declare_without_a_connection_in_time_times_out() {
    if !broker_available("declare_timeout") {
        return;
    }
    // A port that accepts nothing but does not refuse either is hard to get
    // here; a zero timeout asks before any worker had a chance to connect.
    let (pool, events) = start(config(1, false));
    let x = unique("decl_zero");
    pool.declare_exchanges(
        vec![spec(&x, "topic", false)],
        Duration::ZERO,
        events.on_declared(),
    );
    let (result, _) = events.declared();
    let failures = result.expect_err("no time");
    assert!(
        failures[0].reason.contains("timeout"),
        "{}",
        failures[0].reason
    );
    close(&pool, &events, Duration::from_secs(5));
}

#[test]
fn a_nacked_message_is_republished_then_dropped_after_the_last_attempt() {
    if !broker_available("nack") {
        return;
    }
    let broker = TestBroker::connect();
    let exchange = unique("nack");
    broker
        .declare_exchange(&exchange, ExchangeKind::Topic, false)
        .expect("exchange");
    // A queue that holds one message and nacks publishes beyond it.
    let mut args = FieldTable::default();
    args.insert("x-max-length".into(), AMQPValue::LongInt(1));
    args.insert(
        "x-overflow".into(),
        AMQPValue::LongString("reject-publish".into()),
    );
    broker.idle_queue(&exchange, "#", args);
    let (pool, events) = start(config(1, true));
    pool.publish(1, &exchange, "k", numbered(1))
        .expect("accepted");
    let (first, _) = events.outcomes(1);
    assert!(
        matches!(first[0], (1, Outcome::Published { .. })),
        "{first:?}"
    );

    pool.publish(2, &exchange, "k", numbered(2))
        .expect("accepted");
    let attempts = event_pusher_core::rabbit::MAX_ATTEMPTS as usize;
    let (outcomes, _) = events.outcomes(attempts + 1);
    for (tag, outcome) in &outcomes[..attempts] {
        assert_eq!(*tag, 2);
        assert!(
            matches!(outcome, Outcome::Error { reason, .. } if reason == "nack"),
            "{outcome:?}"
        );
    }
    assert_eq!(
        outcomes[attempts],
        (2, Outcome::Dropped(DropReason::RetriesExhausted))
    );
    let s = pool.stats();
    assert_eq!(s.nacked, attempts as u64);
    assert_eq!(s.republished, attempts as u64 - 1);
    assert_eq!((s.published, s.dropped_retries_exhausted), (1, 1));
    assert_balanced(&s);
    close(&pool, &events, Duration::from_secs(5));
    broker.delete_exchange(&exchange);
}

#[test]
fn a_publish_the_broker_refuses_is_given_up_and_the_channel_is_replaced() {
    if !broker_available("channel_error") {
        return;
    }
    let broker = TestBroker::connect();
    let exchange = unique("chan_ok");
    broker
        .declare_exchange(&exchange, ExchangeKind::Topic, false)
        .expect("exchange");
    let queue = broker.queue(&exchange, "#", FieldTable::default());
    let (pool, events) = start(config(1, true));
    let missing = unique("missing");
    pool.publish(1, &missing, "k", numbered(1))
        .expect("accepted");
    let attempts = event_pusher_core::rabbit::MAX_ATTEMPTS as usize;
    let (outcomes, _) = events.outcomes(attempts + 1);
    for (_, outcome) in &outcomes[..attempts] {
        assert!(
            matches!(outcome, Outcome::Error { reason, .. } if reason.starts_with("NOT_FOUND - no exchange")),
            "{outcome:?}"
        );
    }
    assert_eq!(
        outcomes[attempts],
        (1, Outcome::Dropped(DropReason::RetriesExhausted))
    );
    // The connection stayed; a fresh channel carries the next message.
    pool.publish(2, &exchange, "k", numbered(2))
        .expect("accepted");
    assert_eq!(number(&queue.take(1)[0].body), 2);
    // The consumer can see the message before its confirm is settled.
    let (outcomes, _) = events.outcomes(1);
    assert_eq!(published_payload(&outcomes[0].1), &numbered(2));
    let s = pool.stats();
    assert_eq!(s.connections_opened, 1);
    assert_balanced(&s);
    close(&pool, &events, Duration::from_secs(5));
    broker.delete_exchange(&exchange);
}

#[test]
fn beyond_the_queue_bound_publish_is_overloaded_and_counted() {
    if !broker_available("overload") {
        return;
    }
    let mut cfg = config(1, true);
    cfg.port = 1; // nothing is published: everything waits in the queue
    cfg.queue_capacity = 3;
    let (pool, events) = start(cfg);
    for tag in 0..3 {
        pool.publish(tag, "x", "k", numbered(tag))
            .expect("accepted");
    }
    assert_eq!(
        pool.publish(3, "x", "k", numbered(3)),
        Err(SubmitError::Overloaded)
    );
    let s = pool.stats();
    assert_eq!((s.submitted, s.queued, s.dropped_overloaded), (3, 3, 1));

    let (report, got) = close(&pool, &events, Duration::ZERO);
    assert_eq!(report.dropped, 3);
    let dropped: Vec<_> = got
        .iter()
        .filter_map(|e| match e {
            Event::Outcome(tag, Outcome::Dropped(DropReason::Closed)) => Some(*tag),
            _ => None,
        })
        .collect();
    assert_eq!(dropped, vec![0, 1, 2]);
    assert_eq!(
        pool.publish(9, "x", "k", numbered(9)),
        Err(SubmitError::Closed)
    );
    let s = pool.stats();
    assert_eq!(s.dropped_closed, 3);
    assert_balanced(&s);
}

#[test]
fn too_long_names_are_refused_at_publish() {
    let (pool, events) = start(config(1, false));
    let long = "x".repeat(256);
    assert_eq!(
        pool.publish(1, &long, "k", numbered(1)),
        Err(SubmitError::TooLong)
    );
    assert_eq!(
        pool.publish(1, "x", &long, numbered(1)),
        Err(SubmitError::TooLong)
    );
    assert_eq!(pool.stats().submitted, 0);
    close(&pool, &events, Duration::ZERO);
}

#[test]
fn close_publishes_what_is_queued_before_closing() {
    if !broker_available("close_drains") {
        return;
    }
    let broker = TestBroker::connect();
    let exchange = unique("drain");
    broker
        .declare_exchange(&exchange, ExchangeKind::Topic, false)
        .expect("exchange");
    let queue = broker.queue(&exchange, "#", FieldTable::default());
    let (pool, events) = start(config(2, true));
    let total = 3000u64;
    for n in 0..total {
        pool.publish(n, &exchange, &format!("user{}", n % 7), numbered(n))
            .expect("accepted");
    }
    let (report, got) = close(&pool, &events, Duration::from_secs(15));
    assert_eq!(report.dropped, 0);
    let published = got
        .iter()
        .filter(|e| matches!(e, Event::Outcome(_, Outcome::Published { .. })))
        .count();
    assert_eq!(published as u64, total);
    // Both connections were closed before the close notice.
    let closed = got
        .iter()
        .filter(|e| **e == Event::Connection(ConnectionEvent::Closed))
        .count();
    assert_eq!(closed, 2);
    assert_eq!(queue.take(total as usize).len() as u64, total);
    assert_balanced(&pool.stats());
    // A second close only sends its notice.
    let (again, rest) = close(&pool, &events, Duration::from_secs(1));
    assert_eq!((again.dropped, rest.len()), (0, 0));
    broker.delete_exchange(&exchange);
}

#[test]
fn dropping_the_handle_closes_the_pool_after_delivering() {
    if !broker_available("drop_closes") {
        return;
    }
    let broker = TestBroker::connect();
    let exchange = unique("dropped");
    broker
        .declare_exchange(&exchange, ExchangeKind::Topic, false)
        .expect("exchange");
    let queue = broker.queue(&exchange, "#", FieldTable::default());
    let (pool, events) = start(config(1, true));
    for n in 0..100 {
        pool.publish(n, &exchange, "k", numbered(n))
            .expect("accepted");
    }
    drop(pool);
    assert_eq!(queue.take(100).len(), 100);
    events.wait_reporter_gone();
    broker.delete_exchange(&exchange);
}

#[test]
fn a_worker_panic_is_reported_and_the_worker_carries_on() {
    if !broker_available("panic") {
        return;
    }
    let broker = TestBroker::connect();
    let exchange = unique("panic");
    broker
        .declare_exchange(&exchange, ExchangeKind::Topic, false)
        .expect("exchange");
    let queue = broker.queue(&exchange, "#", FieldTable::default());
    let (pool, events) = start(config(1, true));
    pool.publish(1, &exchange, "k", numbered(1))
        .expect("accepted");
    assert_eq!(number(&queue.take(1)[0].body), 1);
    pool.inject_worker_panic();
    pool.publish(2, &exchange, "k", numbered(2))
        .expect("accepted");
    let got = events.until("the panic", |e| matches!(e, Event::Panic(_)));
    assert_eq!(got.last(), Some(&Event::Panic("rabbit_worker")));
    pool.publish(3, &exchange, "k", numbered(3))
        .expect("accepted");
    let rest: Vec<u64> = queue
        .take_until(|g| g.iter().any(|g| number(&g.body) == 3))
        .iter()
        .map(|g| number(&g.body))
        .collect();
    assert!(rest.contains(&2) && rest.contains(&3), "{rest:?}");
    assert_eq!(pool.stats().panics, 1);
    close(&pool, &events, Duration::from_secs(5));
    broker.delete_exchange(&exchange);
}

#[test]
fn invalid_settings_are_refused_at_start() {
    let (_, sink, ev) = Collector::new();
    let mut cfg = config(0, false);
    let err = event_pusher_core::rabbit::RabbitPool::<u64>::start(cfg.clone(), sink, ev)
        .err()
        .expect("refused");
    assert_eq!(err.to_string(), "workers must be at least 1");
    cfg.workers = 1;
    cfg.tls = Some(event_pusher_core::tls::TlsOptions {
        cacertfile: Some("/nonexistent/ca.pem".into()),
        ..Default::default()
    });
    let (_, sink, ev) = Collector::new();
    let err = event_pusher_core::rabbit::RabbitPool::<u64>::start(cfg, sink, ev)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
}
