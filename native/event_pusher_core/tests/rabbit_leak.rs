//! 100 rabbit pool start/close cycles against the real broker leave no
//! threads (lapin runs one I/O thread per connection), file descriptors or
//! heap behind. Alone in its binary so nothing else runs at the same time.

mod leak_common;
mod rabbit_common;

use bytes::Bytes;
use event_pusher_core::rabbit::{ConnectionEvent, ExchangeSpec};
use event_pusher_core::Outcome;
use leak_common::{count, Baseline, CYCLES};
use rabbit_common::*;
use std::time::Duration;

/// One pool's life: start, declare, publish with confirms, then close it (or
/// drop it, as when its owner dies) and wait until its reporter has gone.
fn cycle(exchange: &str, i: usize) {
    let (pool, events) = start(config(2, true));
    pool.declare_exchanges(
        vec![ExchangeSpec {
            name: exchange.into(),
            kind: "topic".into(),
            durable: false,
        }],
        Duration::from_secs(10),
        events.on_declared(),
    );
    let (declared, _) = events.declared();
    assert_eq!(declared, Ok(()));
    for tag in 0..10u64 {
        let body = Bytes::from(format!("{{\"n\":{tag}}}"));
        pool.publish(tag, exchange, &format!("k{tag}"), body)
            .expect("accepted");
    }
    let (outcomes, _) = events.outcomes(10);
    assert!(outcomes
        .iter()
        .all(|(_, o)| matches!(o, Outcome::Published { .. })));
    if i.is_multiple_of(2) {
        let (report, rest) = close(&pool, &events, Duration::from_secs(5));
        assert_eq!(report.dropped, 0);
        let closed = rest
            .iter()
            .filter(|e| **e == Event::Connection(ConnectionEvent::Closed))
            .count();
        assert_eq!(closed, 2, "{rest:?}");
    } else {
        drop(pool);
    }
    events.wait_reporter_gone();
}

#[test]
fn a_hundred_start_close_cycles_leak_no_threads_fds_or_memory() {
    if !broker_available("rabbit_leak") {
        return;
    }
    let exchange = unique("leak");
    // Warm up: the runtime, lazily created statics, the broker's side.
    for i in 0..4 {
        cycle(&exchange, i);
    }
    wait_until("warm-up connections gone", || {
        count("/proc/self/task") <= count_threads_without_io_loops()
    });
    let mut tasks = 0;
    let baseline = Baseline::take(|| {
        wait_until("warm-up tasks gone", || alive_tasks() == 0);
        tasks = alive_tasks();
    });

    for i in 0..CYCLES {
        cycle(&exchange, i);
    }

    // lapin's I/O threads end on their own once their connection closed.
    // lapin's heartbeat task of a closed connection ends at its next tick
    // (half the 10 s heartbeat): wait for the tasks, then the heap.
    let grown = baseline.assert_back(
        500,
        |w, c| wait_until(w, c),
        || {
            wait_until("runtime tasks back to the baseline", || {
                alive_tasks() <= tasks
            });
        },
    );
    baseline.report(grown, &format!("tasks {tasks} -> {}, ", alive_tasks()));
    TestBroker::connect().delete_exchange(&exchange);
}

fn alive_tasks() -> usize {
    event_pusher_core::runtime::handle()
        .expect("runtime")
        .metrics()
        .num_alive_tasks()
}

/// Threads of this process that are not lapin I/O loops.
fn count_threads_without_io_loops() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("procfs")
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .map(|name| !name.starts_with("lapin-io-loop"))
                .unwrap_or(true)
        })
        .count()
}
