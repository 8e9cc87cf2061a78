//! A quick throughput probe of the rabbit pool (ignored by default; the
//! benchmarks under bench/ are the reference). Run with
//! `cargo test --release -p event_pusher_core --test rabbit_throughput -- --ignored --nocapture`
//! (EP_TPUT_MESSAGES: messages per row, default 200000; EP_TPUT_ROW: only
//! that row, 0-based, e.g. for a profiler).
//! Messages go to a topic exchange with a queue bound (an unroutable message
//! measures nothing); the time runs until every message is published (acked
//! with confirms on).

mod rabbit_common;

use bytes::Bytes;
use event_pusher_core::json::{encode_object, Field};
use event_pusher_core::rabbit::PublishOptions;
use event_pusher_core::Outcome;
use lapin::types::{AMQPValue, FieldTable};
use lapin::ExchangeKind;
use rabbit_common::*;
use std::time::{Duration, Instant};

fn run(workers: usize, confirms: bool, options: PublishOptions, total: u64) -> f64 {
    let broker = TestBroker::connect();
    let exchange = unique("tput");
    broker
        .declare_exchange(&exchange, ExchangeKind::Topic, false)
        .expect("exchange");
    // Drop what arrives at once so the broker's memory stays flat.
    let mut args = FieldTable::default();
    args.insert("x-max-length".into(), AMQPValue::LongInt(1000));
    broker.idle_queue(&exchange, "#", args);
    let mut cfg = config(workers, confirms);
    cfg.queue_capacity = 100_000;
    let (pool, events) = start(cfg);
    wait_until("connected", || {
        pool.stats().connections_opened == workers as u64
    });
    let body = Bytes::from(encode_object(
        vec![
            (
                "from_user_id".into(),
                Field::Str("alice@localhost/res1".into()),
            ),
            ("to_user_id".into(), Field::Str("bob@localhost/res2".into())),
            (
                "message".into(),
                Field::Str("Hello, this is a chat message body".into()),
            ),
        ],
        vec![],
    ));
    let keys: Vec<String> = (0..100)
        .map(|i| format!("user{i}@localhost.chat_msg_sent"))
        .collect();
    let started = Instant::now();
    let mut n = 0;
    while n < total {
        let key = &keys[(n % 100) as usize];
        match pool.publish_with(n, &exchange, key, body.clone(), options) {
            Ok(()) => n += 1,
            Err(_) => std::thread::sleep(Duration::from_micros(200)),
        }
    }
    let (outcomes, _) = events.outcomes(total as usize);
    let rate = total as f64 / started.elapsed().as_secs_f64();
    assert!(outcomes
        .iter()
        .all(|(_, o)| matches!(o, Outcome::Published { .. })));
    close(&pool, &events, Duration::from_secs(5));
    broker.delete_exchange(&exchange);
    rate
}

#[test]
#[ignore]
fn throughput() {
    if !broker_available("throughput") {
        return;
    }
    let total = std::env::var("EP_TPUT_MESSAGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200_000);
    // The last rows: every wire option on (event properties, persistent,
    // mandatory), against the same rows without, in the same run.
    let wire = PublishOptions {
        event_properties: true,
        persistent: true,
        mandatory: Some(Duration::from_secs(60)),
    };
    let plain = PublishOptions::default();
    let rows = [
        (1, false, plain),
        (1, true, plain),
        (10, false, plain),
        (10, true, plain),
        (1, true, wire),
        (10, true, wire),
    ];
    // EP_TPUT_ROW=1 runs only the second row, for profiling.
    let only: Option<usize> = std::env::var("EP_TPUT_ROW")
        .ok()
        .and_then(|r| r.parse().ok());
    for (i, (workers, confirms, options)) in rows.into_iter().enumerate() {
        if only.is_some_and(|o| o != i) {
            continue;
        }
        let rate = run(workers, confirms, options, total);
        let wire = if options == plain {
            ""
        } else {
            " wire options"
        };
        eprintln!("workers {workers:>2} confirms {confirms:>5}{wire}: {rate:>8.0} msg/s");
    }
}
