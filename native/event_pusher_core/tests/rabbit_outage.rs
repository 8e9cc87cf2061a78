//! Outages mid-stream: the broker closes the pool's connections (as an
//! operator or a node shutdown would), the network to it fails for a while
//! (a proxy the test cuts), or confirms stop coming (the proxy stalls). The
//! workers reconnect and, with confirms on, every message arrives at least
//! once. Cases run one at a time: closing this process's pool connections
//! must not hit another case's pool.

mod rabbit_common;

use bytes::Bytes;
use event_pusher_core::rabbit::{ConnectionEvent, ExchangeSpec};
use event_pusher_core::Outcome;
use lapin::types::FieldTable;
use lapin::ExchangeKind;
use rabbit_common::*;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn numbered(n: u64) -> Bytes {
    Bytes::from(format!("{{\"n\":{n}}}"))
}

fn number(body: &[u8]) -> u64 {
    std::str::from_utf8(body)
        .expect("utf8")
        .trim_start_matches("{\"n\":")
        .trim_end_matches('}')
        .parse()
        .expect("a numbered body")
}

/// Deliveries until every number in 0..total arrived at least once.
fn distinct_numbers(queue: &TestQueue, total: u64) -> Vec<Got> {
    let mut seen = HashSet::new();
    let mut last = 0;
    queue.take_until(|got| {
        for g in &got[last..] {
            let n = number(&g.body);
            assert!(n < total, "unexpected number {n}");
            seen.insert(n);
        }
        last = got.len();
        seen.len() as u64 == total
    })
}

/// One case at a time: each closes every pool connection on the broker.
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn after_the_broker_closes_the_connections_every_message_arrives_at_least_once() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !broker_available("outage") {
        return;
    }
    let broker = TestBroker::connect();
    let exchange = unique("outage");
    broker
        .declare_exchange(&exchange, ExchangeKind::Topic, false)
        .expect("exchange");
    let queue = broker.queue(&exchange, "#", FieldTable::default());
    let (pool, events) = start(config(2, true));
    let pool = Arc::new(pool);
    wait_until("both connections open", || {
        pool.stats().connections_opened == 2
    });

    // Publish until told to stop, a little slower than the pool can go,
    // so the outage lands in the middle of the stream.
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = {
        let (pool, exchange, stop) = (pool.clone(), exchange.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let key = format!("user{}@localhost", n % 5);
                // A full queue says so at once: back off and try again.
                while let Err(e) = pool.publish(n, &exchange, &key, numbered(n)) {
                    assert_eq!(e, event_pusher_core::rabbit::SubmitError::Overloaded);
                    std::thread::sleep(Duration::from_millis(1));
                }
                n += 1;
                if n.is_multiple_of(20) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            n
        })
    };
    wait_until("a part of the stream published", || {
        pool.stats().published >= 2000
    });
    let closed = close_pool_connections();
    assert_eq!(closed, 2, "our two connections were found and closed");
    wait_until("both reconnected", || pool.stats().connections_opened >= 4);
    let after = pool.stats().submitted;
    wait_until("more published after", || {
        pool.stats().published >= after + 2000
    });
    stop.store(true, Ordering::SeqCst);
    let total = publisher.join().expect("publisher");

    let got = distinct_numbers(&queue, total);
    assert!(got.len() as u64 >= total);
    assert!(got.iter().all(|g| g.routing_key.ends_with("@localhost")));

    // Each message was reported published once, whatever it took.
    let (outcomes, others) = events.outcomes(total as usize);
    let mut tags = HashSet::new();
    for (tag, outcome) in &outcomes {
        assert!(matches!(outcome, Outcome::Published { .. }), "{outcome:?}");
        assert!(tags.insert(*tag), "tag {tag} published twice");
    }
    let s = pool.stats();
    eprintln!(
        "after the outage: {s:?}; {} deliveries for {total} messages",
        got.len()
    );
    assert_eq!(s.published, total);
    assert!(s.connections_opened >= 4, "{s:?}");
    let count = |event: ConnectionEvent| {
        others
            .iter()
            .filter(|e| **e == Event::Connection(event.clone()))
            .count()
    };
    assert!(count(ConnectionEvent::Closed) >= 2, "{others:?}");
    assert!(count(ConnectionEvent::Opened) >= 4, "{others:?}");
    assert_eq!((s.queued, s.in_flight, s.dropped_closed), (0, 0, 0));
    assert_eq!(s.submitted, total);

    let (report, _) = close(&pool, &events, Duration::from_secs(5));
    assert_eq!(report.dropped, 0);
    broker.delete_exchange(&exchange);
}

#[test]
fn messages_published_during_a_network_outage_wait_and_go_out_after_it() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !broker_available("network_outage") {
        return;
    }
    let broker = TestBroker::connect();
    let exchange = unique("network");
    broker
        .declare_exchange(&exchange, ExchangeKind::Topic, false)
        .expect("exchange");
    let queue = broker.queue(&exchange, "#", FieldTable::default());
    let proxy = Proxy::start();
    let mut cfg = config(2, true);
    cfg.port = proxy.port;
    cfg.reconnect_delay = Duration::from_millis(100);
    let (pool, events) = start(cfg);
    wait_until("both connections open", || {
        pool.stats().connections_opened == 2
    });

    let total: u64 = 6000;
    for n in 0..total / 2 {
        pool.publish(n, &exchange, &format!("u{}", n % 9), numbered(n))
            .expect("accepted");
    }
    proxy.outage();
    // While the broker is unreachable: the queue keeps what comes.
    for n in total / 2..total {
        pool.publish(n, &exchange, &format!("u{}", n % 9), numbered(n))
            .expect("accepted");
    }
    wait_until("a failed reconnection", || {
        pool.stats().connections_failed >= 2
    });
    assert!(
        pool.stats().published < total,
        "the outage held some messages back"
    );
    proxy.enable();

    let got = distinct_numbers(&queue, total);
    let (outcomes, others) = events.outcomes(total as usize);
    let unexpected: Vec<_> = outcomes
        .iter()
        .filter(|(_, o)| !matches!(o, Outcome::Published { .. }))
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:?}");
    let s = pool.stats();
    eprintln!(
        "after the network outage: {s:?}; {} deliveries for {total} messages",
        got.len()
    );
    assert_eq!(s.published, total);
    assert!(others
        .iter()
        .any(|e| matches!(e, Event::Connection(ConnectionEvent::Failed(_)))));
    let (report, _) = close(&pool, &events, Duration::from_secs(5));
    assert_eq!(report.dropped, 0);
    broker.delete_exchange(&exchange);
}

#[test]
fn a_publish_not_confirmed_in_time_is_reported_and_republished() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !broker_available("confirm_timeout") {
        return;
    }
    let broker = TestBroker::connect();
    let exchange = unique("slow");
    broker
        .declare_exchange(&exchange, ExchangeKind::Topic, false)
        .expect("exchange");
    let queue = broker.queue(&exchange, "#", FieldTable::default());
    let proxy = Proxy::start();
    let mut cfg = config(1, true);
    cfg.port = proxy.port;
    // Long enough for a loaded machine to resume before the last attempt.
    cfg.confirm_timeout = Duration::from_millis(800);
    let (pool, events) = start(cfg);
    wait_until("connected", || pool.stats().connections_opened == 1);
    proxy.stall();
    for n in 0..10 {
        pool.publish(n, &exchange, "k", numbered(n))
            .expect("accepted");
    }
    let deadline = std::time::Instant::now() + DEADLINE;
    while pool.stats().confirm_timeouts < 10 {
        assert!(
            std::time::Instant::now() < deadline,
            "not every message timed out: {:?}",
            pool.stats()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    proxy.resume();
    // Each message: one or more timeouts, then published once.
    let mut published = HashSet::new();
    let mut timeouts = 0;
    while published.len() < 10 {
        match events.next() {
            Event::Outcome(tag, Outcome::Published { .. }) => assert!(published.insert(tag)),
            Event::Outcome(tag, Outcome::Error { reason, .. }) => {
                assert_eq!(reason, "confirm_timeout", "message {tag}");
                assert!(
                    !published.contains(&tag),
                    "a timeout after publishing {tag}"
                );
                timeouts += 1;
            }
            Event::Connection(ConnectionEvent::Opened) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(timeouts >= 10);
    let numbers = distinct_numbers(&queue, 10);
    assert!(numbers.len() >= 10);
    let s = pool.stats();
    assert_eq!((s.published, s.dropped_retries_exhausted), (10, 0));
    assert!(s.republished >= 10, "{s:?}");
    assert_eq!(s.connections_opened, 1, "the connection stayed up");
    let (report, _) = close(&pool, &events, Duration::from_secs(5));
    assert_eq!(report.dropped, 0);
    broker.delete_exchange(&exchange);
}

/// A broker restart forgets non-durable exchanges (MongooseIM's default):
/// the exchanges declared through the pool are declared again on every new
/// connection, so publishes after the restart do not fail with NOT_FOUND.
#[test]
fn an_exchange_the_broker_lost_is_declared_again_on_reconnect() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !broker_available("redeclare") {
        return;
    }
    let broker = TestBroker::connect();
    let exchange = unique("redeclare");
    let (pool, events) = start(config(1, true));
    pool.declare_exchanges(
        vec![ExchangeSpec {
            name: exchange.clone(),
            kind: "topic".into(),
            durable: false,
        }],
        Duration::from_secs(5),
        events.on_declared(),
    );
    let (result, _) = events.declared();
    assert_eq!(result, Ok(()));
    // What a restart does to a transient exchange, then to the connection.
    broker.delete_exchange(&exchange);
    assert!(!broker.exchange_exists(&exchange));
    assert_eq!(close_pool_connections(), 1);
    wait_until("the exchange declared again", || {
        broker.exchange_exists(&exchange)
    });
    // The worker declares on the new connection before it opens its channel
    // and counts the connection: the count may lag the declare.
    wait_until("the second connection counted", || {
        pool.stats().connections_opened >= 2
    });
    let queue = broker.queue(&exchange, "#", FieldTable::default());
    pool.publish(7, &exchange, "user@localhost", numbered(7))
        .expect("accepted");
    assert_eq!(number(&queue.take(1)[0].body), 7);
    close(&pool, &events, Duration::from_secs(5));
    broker.delete_exchange(&exchange);
}
