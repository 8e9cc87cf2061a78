//! SNS pools against moto's server: what SQS queues subscribed to the topics
//! received, what went over the wire (a counting proxy), and what the pool
//! reported. Skips (with a note) when moto is not running, unless
//! EP_REQUIRE_MOTO is set.

mod common;
mod sns_common;

use common::{wait_until, Collector, Event};
use event_pusher_core::sns::{AttributeValue, SnsPool, SnsPoolConfig, StartError, SubmitError};
use event_pusher_core::{DropReason, Outcome};
use sns_common::*;
use std::collections::BTreeSet;
use std::time::Duration;

/// Outcomes of one tag, in order.
fn of_tag(events: &[Event], tag: u64) -> Vec<Outcome> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Outcome(t, o) if *t == tag => Some(o.clone()),
            _ => None,
        })
        .collect()
}

fn is_published(o: &Outcome) -> bool {
    matches!(o, Outcome::Published { .. })
}

fn reason(o: &Outcome) -> String {
    match o {
        Outcome::Error { reason, .. } => reason.to_string(),
        other => panic!("expected an error, got {other:?}"),
    }
}

/// Waits until every accepted job has ended and the pool is idle.
fn wait_idle(pool: &SnsPool<u64>) {
    wait_until("pool idle", || {
        let s = pool.stats();
        s.queued == 0
            && s.in_flight == 0
            && s.submitted == s.published + s.dropped_retries_exhausted + s.dropped_closed
    });
}

#[test]
fn the_json_body_and_typed_attributes_arrive_unchanged() {
    let Some(moto) = moto() else { return };
    let (topic, queue) = moto.topic_with_queue("exact");
    let (topic2, queue2) = moto.topic_with_envelope_queue("exact-attrs");
    let proxy = Proxy::start(&moto.url);
    let (events, sink) = Collector::new();
    let pool = SnsPool::start(config(&proxy.url()), sink).expect("pool starts");
    let body = r#"{"to_user_id":"bob@localhost","message":"zażółć gęślą jaźń ❤ \"q\" \\ 日本","from_user_id":"alice@localhost"}"#;
    let plain = with_attributes(
        job(1, &topic, body),
        vec![
            ("from", AttributeValue::String("alice@localhost/ćma".into())),
            ("count", AttributeValue::Number("42".into())),
        ],
    );
    pool.publish(plain).expect("accepted");
    let job = with_attributes(
        job(2, &topic2, body),
        vec![
            ("TopicARN", AttributeValue::String(topic2.clone())),
            ("from", AttributeValue::String("alice@localhost/ćma".into())),
            ("raw", AttributeValue::Binary(vec![0, 1, 2, 0xff, b'x'])),
            ("count", AttributeValue::Number("42".into())),
            ("ratio", AttributeValue::Number("-1.5e3".into())),
        ],
    );
    pool.publish(job).expect("accepted");

    for event in events.take(2) {
        let Event::Outcome(_, Outcome::Published { payload, .. }) = &event else {
            panic!("expected published, got {event:?}");
        };
        assert_eq!(payload.as_ref(), body.as_bytes());
    }
    // Raw delivery: the SQS body is the message exactly as published.
    let delivered = moto.receive(&queue, 1);
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert_eq!(delivered[0].body, body);
    let attr = |name: &str| delivered[0].attributes.get(name).cloned();
    assert_eq!(
        attr("from"),
        Some(("String".into(), "alice@localhost/ćma".into()))
    );
    assert_eq!(attr("count"), Some(("Number".into(), "42".into())));
    assert_eq!(delivered[0].attributes.len(), 2);
    // In SNS's envelope: the same message, and the attributes with their types.
    let delivered = moto.receive(&queue2, 1);
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    let delivered = delivered[0].unwrap_envelope();
    assert_eq!(delivered.body, body);
    let attr = |name: &str| delivered.attributes.get(name).cloned();
    assert_eq!(attr("TopicARN"), Some(("String".into(), topic2.clone())));
    assert_eq!(
        attr("from"),
        Some(("String".into(), "alice@localhost/ćma".into()))
    );
    // The envelope carries binary values in base64.
    assert_eq!(attr("raw"), Some(("Binary".into(), "AAEC/3g=".into())));
    assert_eq!(attr("count"), Some(("Number".into(), "42".into())));
    assert_eq!(attr("ratio"), Some(("Number".into(), "-1.5e3".into())));
    // A single notification is a plain Publish, sent as a plain Message.
    assert_eq!(proxy.actions(), vec!["Publish".to_owned(); 2]);
    let stats = pool.stats();
    assert_eq!(
        (stats.submitted, stats.published, stats.requests),
        (2, 2, 2)
    );
}

/// 100 notifications to one topic, published as fast as the caller can.
fn burst(batching: bool) -> (usize, usize, u64) {
    let moto = moto().expect("checked by the caller");
    let (topic, queue) = moto.topic_with_queue(if batching { "batch" } else { "single" });
    let proxy = Proxy::start(&moto.url);
    let (events, sink) = Collector::new();
    let mut cfg = config(&proxy.url());
    cfg.pool_size = 100; // MongooseIM's default
    cfg.batching = batching;
    let pool = SnsPool::start(cfg, sink).expect("pool starts");
    let bodies: Vec<String> = (0..100).map(|i| format!(r#"{{"n":{i}}}"#)).collect();
    for (i, body) in bodies.iter().enumerate() {
        pool.publish(job(i as u64, &topic, body)).expect("accepted");
    }
    let got = events.take(100);
    assert!(got
        .iter()
        .all(|e| matches!(e, Event::Outcome(_, Outcome::Published { .. }))));
    let delivered = moto.receive(&queue, 100);
    let received: BTreeSet<String> = delivered.iter().map(|d| d.body.clone()).collect();
    assert_eq!(delivered.len(), 100, "each message exactly once");
    assert_eq!(received, bodies.iter().cloned().collect::<BTreeSet<_>>());
    let stats = pool.stats();
    assert_eq!(stats.published, 100);
    assert_eq!(stats.requests as usize, proxy.actions().len());
    (
        proxy.count("PublishBatch"),
        proxy.count("Publish"),
        stats.requests,
    )
}

#[test]
fn with_batching_a_burst_of_100_goes_out_in_fewer_than_20_requests() {
    if moto().is_none() {
        return;
    }
    let (batches, singles, requests) = burst(true);
    eprintln!("batching: {batches} PublishBatch + {singles} Publish");
    assert!(requests < 20, "{requests} requests");
    assert!(batches >= 9, "{batches} PublishBatch requests");
}

#[test]
fn without_batching_every_notification_is_its_own_publish() {
    if moto().is_none() {
        return;
    }
    let (batches, singles, requests) = burst(false);
    assert_eq!((batches, singles, requests), (0, 100, 100));
}

#[test]
fn notifications_for_several_topics_are_batched_per_topic() {
    let Some(moto) = moto() else { return };
    let topics: Vec<(String, String)> = (0..3).map(|_| moto.topic_with_queue("multi")).collect();
    let proxy = Proxy::start(&moto.url);
    let (events, sink) = Collector::new();
    let pool = SnsPool::start(config(&proxy.url()), sink).expect("pool starts");
    for i in 0..60u64 {
        let (topic, _) = &topics[(i % 3) as usize];
        pool.publish(job(i, topic, &format!(r#"{{"i":{i}}}"#)))
            .expect("accepted");
    }
    events.take(60);
    for (t, (_, queue)) in topics.iter().enumerate() {
        let got: BTreeSet<String> = moto
            .receive(queue, 20)
            .into_iter()
            .map(|d| d.body)
            .collect();
        let expected: BTreeSet<String> = (0..60u64)
            .filter(|i| (i % 3) as usize == t)
            .map(|i| format!(r#"{{"i":{i}}}"#))
            .collect();
        assert_eq!(got, expected, "topic {t}");
    }
    assert!(proxy.actions().len() < 20, "{:?}", proxy.actions());
}

#[test]
fn a_failing_batch_entry_is_retried_alone_and_the_others_arrive_once() {
    let Some(moto) = moto() else { return };
    let (topic, queue) = moto.topic_with_queue("entry");
    let proxy = Proxy::start(&moto.url);
    let (events, sink) = Collector::new();
    let mut cfg = config(&proxy.url());
    cfg.retry_count = 2;
    cfg.retry_time = Duration::from_millis(5);
    let pool = SnsPool::start(cfg, sink).expect("pool starts");
    // Longer than SNS takes (256 KiB): refused per entry.
    let too_long = format!(r#"{{"m":"{}"}}"#, "x".repeat(300 * 1024));
    for i in 0..9u64 {
        pool.publish(job(i, &topic, &format!(r#"{{"i":{i}}}"#)))
            .expect("accepted");
    }
    pool.publish(job(9, &topic, &too_long)).expect("accepted");
    wait_idle(&pool);
    // 9 published + 3 errors and a drop for the long one.
    let got = events.take(13);
    for tag in 0..9 {
        let outcomes = of_tag(&got, tag);
        assert_eq!(outcomes.len(), 1, "{outcomes:?}");
        assert!(is_published(&outcomes[0]));
    }
    let long = of_tag(&got, 9);
    assert_eq!(long.len(), 4, "{long:?}");
    for attempt in &long[..3] {
        assert_eq!(reason(attempt), "InvalidParameter");
    }
    assert_eq!(long[3], Outcome::Dropped(DropReason::RetriesExhausted));
    assert_eq!(moto.receive(&queue, 9).len(), 9);
    let stats = pool.stats();
    assert_eq!(stats.published, 9);
    assert_eq!(stats.failed_attempts, 3);
    assert_eq!(stats.retried, 2);
    assert_eq!(stats.dropped_retries_exhausted, 1);
    assert!(proxy.count("PublishBatch") >= 1, "{:?}", proxy.actions());
    // The small ones in one or two requests (the first may go alone); the
    // long one never joins a batch (over SNS's 256 KiB), so its 3 attempts
    // are requests of their own.
    assert!(proxy.actions().len() <= 6, "{:?}", proxy.actions());
}

#[test]
fn an_endpoint_down_at_first_then_up_gets_the_notification_once() {
    let Some(moto) = moto() else { return };
    let (topic, queue) = moto.topic_with_queue("downup");
    let port = free_port();
    let (events, sink) = Collector::new();
    let mut cfg = config(&format!("http://127.0.0.1:{port}"));
    cfg.retry_count = 6;
    cfg.retry_time = Duration::from_millis(100);
    let pool = SnsPool::start(cfg, sink).expect("pool starts");
    pool.publish(job(1, &topic, r#"{"once":true}"#))
        .expect("accepted");
    let first = events.take(1);
    assert_eq!(reason(&common::outcomes(&first)[0]), "connection_refused");
    let _proxy = Proxy::start_on(port, &moto.url);
    wait_idle(&pool);
    let stats = pool.stats();
    assert_eq!(stats.published, 1);
    // The first error was taken above; the other errors, then the publish.
    let rest = common::outcomes(&events.take(stats.failed_attempts as usize));
    assert!(rest.last().is_some_and(is_published), "{rest:?}");
    let delivered = moto.receive(&queue, 1);
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert_eq!(delivered[0].body, r#"{"once":true}"#);
}

#[test]
fn an_endpoint_down_throughout_drops_after_the_retries_and_counts_it() {
    // No moto needed: nothing listens on the port.
    let port = free_port();
    let (events, sink) = Collector::new();
    let mut cfg = config(&format!("http://127.0.0.1:{port}"));
    cfg.retry_count = 2;
    cfg.retry_time = Duration::from_millis(5);
    let pool = SnsPool::start(cfg, sink).expect("pool starts");
    pool.publish(job(7, "arn:aws:sns:us-east-1:123456789012:t", "{}"))
        .expect("accepted");
    let got = common::outcomes(&events.take(4));
    for attempt in &got[..3] {
        assert_eq!(reason(attempt), "connection_refused");
    }
    assert_eq!(got[3], Outcome::Dropped(DropReason::RetriesExhausted));
    let stats = pool.stats();
    assert_eq!(
        (
            stats.failed_attempts,
            stats.retried,
            stats.requests,
            stats.dropped_retries_exhausted,
            stats.published
        ),
        (3, 2, 3, 1, 0)
    );
}

#[test]
fn a_zero_retry_base_retries_at_once() {
    let port = free_port();
    let (events, sink) = Collector::new();
    let mut cfg = config(&format!("http://127.0.0.1:{port}"));
    cfg.retry_count = 3;
    cfg.retry_time = Duration::ZERO;
    let pool = SnsPool::start(cfg, sink).expect("pool starts");
    pool.publish(job(1, "arn:aws:sns:us-east-1:123456789012:t", "{}"))
        .expect("accepted");
    let got = common::outcomes(&events.take(5));
    assert_eq!(got[4], Outcome::Dropped(DropReason::RetriesExhausted));
    assert_eq!(pool.stats().retried, 3);
}

#[test]
fn service_errors_are_short_codes_and_nothing_holds_the_secret() {
    let Some(moto) = moto() else { return };
    let (events, sink) = Collector::new();
    let mut cfg = config(&moto.url);
    cfg.retry_count = 1;
    let pool = SnsPool::start(cfg.clone(), sink).expect("pool starts");
    let missing = "arn:aws:sns:us-east-1:123456789012:no-such-topic-ever";
    pool.publish(job(1, missing, "{}")).expect("accepted");
    let got = common::outcomes(&events.take(3));
    assert_eq!(reason(&got[0]), "NotFound");
    assert_eq!(got[2], Outcome::Dropped(DropReason::RetriesExhausted));
    let everything = format!("{got:?} {:?} {cfg:?}", pool.stats());
    assert!(!everything.contains(SECRET), "{everything}");

    cfg.endpoint = "ftp://nowhere".into();
    let e = SnsPool::start(cfg, Collector::new().1)
        .err()
        .expect("refused");
    assert!(!e.to_string().contains(SECRET));
}

#[test]
fn invalid_settings_are_refused_with_a_reason() {
    type Change = fn(&mut SnsPoolConfig);
    let cases: Vec<(Change, &str)> = vec![
        (|c| c.pool_size = 0, "pool_size"),
        (|c| c.queue_capacity = 0, "queue_capacity"),
        (|c| c.endpoint = String::new(), "endpoint"),
        (|c| c.endpoint = "ftp://host".into(), "endpoint"),
        (|c| c.region = String::new(), "region"),
        (|c| c.access_key_id = String::new(), "access_key_id"),
        (
            |c| c.secret_access_key.0 = String::new(),
            "secret_access_key",
        ),
    ];
    for (change, word) in cases {
        let mut cfg = config("http://127.0.0.1:1");
        change(&mut cfg);
        match SnsPool::start(cfg, Collector::new().1) {
            Err(StartError::InvalidConfig(msg)) => assert!(msg.contains(word), "{msg}"),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("accepted a bad {word}"),
        }
    }
}

#[test]
fn a_full_queue_is_overloaded_and_a_close_drops_what_is_left() {
    let port = free_port();
    let (events, sink) = Collector::new();
    let mut cfg = config(&format!("http://127.0.0.1:{port}"));
    cfg.pool_size = 1;
    cfg.batching = false;
    cfg.queue_capacity = 2;
    cfg.retry_count = 1;
    cfg.retry_time = Duration::from_secs(60);
    let pool = SnsPool::start(cfg, sink).expect("pool starts");
    let topic = "arn:aws:sns:us-east-1:123456789012:t";
    pool.publish(job(1, topic, "{}")).expect("accepted");
    // Job 1 holds the only slot while it waits to retry.
    let first = events.take(1);
    assert_eq!(reason(&common::outcomes(&first)[0]), "connection_refused");
    pool.publish(job(2, topic, "{}")).expect("accepted");
    pool.publish(job(3, topic, "{}")).expect("accepted");
    assert_eq!(
        pool.publish(job(4, topic, "{}")),
        Err(SubmitError::Overloaded)
    );
    let stats = pool.stats();
    assert_eq!((stats.queued, stats.in_flight), (2, 1));
    assert_eq!(stats.dropped_overloaded, 1);

    pool.close(Duration::from_millis(50), events.on_close());
    assert_eq!(pool.publish(job(5, topic, "{}")), Err(SubmitError::Closed));
    let got = events.take(4);
    let mut dropped: Vec<u64> = got
        .iter()
        .filter_map(|e| match e {
            Event::Outcome(tag, Outcome::Dropped(DropReason::Closed)) => Some(*tag),
            _ => None,
        })
        .collect();
    dropped.sort();
    assert_eq!(dropped, vec![1, 2, 3]);
    assert!(
        matches!(got[3], Event::Closed(r) if r.dropped == 3),
        "{got:?}"
    );
    let stats = pool.stats();
    assert_eq!(
        (stats.dropped_closed, stats.queued, stats.in_flight),
        (3, 0, 0)
    );
    // Closing again only notifies.
    pool.close(Duration::ZERO, events.on_close());
    assert!(matches!(events.take(1)[0], Event::Closed(r) if r.dropped == 0));
}

#[test]
fn close_delivers_what_was_queued_before_it_notifies() {
    let Some(moto) = moto() else { return };
    let (topic, queue) = moto.topic_with_queue("drain");
    let (events, sink) = Collector::new();
    let mut cfg = config(&moto.url);
    cfg.pool_size = 2;
    let pool = SnsPool::start(cfg, sink).expect("pool starts");
    for i in 0..30u64 {
        pool.publish(job(i, &topic, &format!(r#"{{"i":{i}}}"#)))
            .expect("accepted");
    }
    pool.close(Duration::from_secs(10), events.on_close());
    let got = events.take(31);
    assert!(got[..30]
        .iter()
        .all(|e| matches!(e, Event::Outcome(_, Outcome::Published { .. }))));
    assert!(matches!(got[30], Event::Closed(r) if r.dropped == 0));
    assert_eq!(moto.receive(&queue, 30).len(), 30);
    drop(pool);
    events.wait_reporter_gone();
}

#[test]
fn dropping_the_handle_still_delivers_and_ends_the_pool() {
    let Some(moto) = moto() else { return };
    let (topic, queue) = moto.topic_with_queue("dropped");
    let (events, sink) = Collector::new();
    let pool = SnsPool::start(config(&moto.url), sink).expect("pool starts");
    for i in 0..5u64 {
        pool.publish(job(i, &topic, "{}")).expect("accepted");
    }
    drop(pool);
    assert!(events
        .take(5)
        .iter()
        .all(|e| matches!(e, Event::Outcome(_, Outcome::Published { .. }))));
    events.wait_reporter_gone();
    assert_eq!(moto.receive(&queue, 5).len(), 5);
}

#[test]
fn panics_are_contained_counted_and_the_pool_keeps_publishing() {
    let Some(moto) = moto() else { return };
    let (topic, queue) = moto.topic_with_queue("panic");
    let (events, sink) = Collector::new();
    let pool = SnsPool::start(config(&moto.url), sink).expect("pool starts");

    pool.inject_dispatcher_panic();
    pool.publish(job(1, &topic, r#"{"n":1}"#))
        .expect("accepted");
    let got = events.take(2);
    assert_eq!(got[0], Event::Panic("sns_dispatcher"));
    assert!(matches!(
        got[1],
        Event::Outcome(1, Outcome::Published { .. })
    ));

    pool.inject_attempt_panic();
    pool.publish(job(2, &topic, r#"{"n":2}"#))
        .expect("accepted");
    let got = events.take(3);
    assert_eq!(got[0], Event::Panic("sns_attempt"));
    assert!(matches!(&got[1], Event::Outcome(2, o) if reason(o) == "panic"));
    assert!(matches!(
        got[2],
        Event::Outcome(2, Outcome::Published { .. })
    ));

    assert_eq!(pool.stats().panics, 2);
    assert_eq!(moto.receive(&queue, 2).len(), 2);
}
