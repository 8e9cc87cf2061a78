//! Rabbit pools with a disk spool, against the real broker (through the
//! test proxy, which the cases cut to make the broker unreachable): events
//! accepted during an outage survive a restart of the pool and all arrive,
//! with their IDs kept; beyond the memory queue they wait on disk; a full
//! spool refuses and counts; a torn last record is cut and the rest sent.

mod rabbit_common;

use bytes::Bytes;
use event_pusher_core::pool::spool::{Fsync, SpoolConfig};
use event_pusher_core::rabbit::{RabbitPool, SubmitError};
use lapin::types::FieldTable;
use lapin::ExchangeKind;
use rabbit_common::*;
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

fn spool(name: &str, max_bytes: u64) -> SpoolConfig {
    let dir = std::env::temp_dir().join(format!("ep-rabbit-spool-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    SpoolConfig {
        dir,
        max_bytes,
        fsync: Fsync::Never,
        segment_bytes: Some(64 * 1024),
    }
}

fn start_spooled(port: u16, capacity: usize, spool: &SpoolConfig) -> (RabbitPool<u64>, Collector) {
    let mut cfg = config(1, true);
    cfg.port = port;
    cfg.queue_capacity = capacity;
    cfg.reconnect_delay = Duration::from_millis(100);
    let (collector, sink, events) = Collector::new();
    let pool = RabbitPool::start_spooled(cfg, spool, sink, events).expect("pool starts");
    (pool, collector)
}

fn body(n: u64) -> Bytes {
    Bytes::from(format!("{{\"n\":{n}}}"))
}

fn number(got: &Got) -> u64 {
    std::str::from_utf8(&got.body)
        .expect("utf8")
        .trim_start_matches("{\"n\":")
        .trim_end_matches('}')
        .parse()
        .expect("a numbered body")
}

/// Deliveries until every number below `total` arrived; none other may.
fn all_numbers(queue: &TestQueue, total: u64) -> Vec<u64> {
    let mut seen = HashSet::new();
    let got = queue.take_until(|got| {
        if let Some(g) = got.last() {
            seen.insert(number(g));
        }
        seen.len() as u64 == total
    });
    let numbers: Vec<u64> = got.iter().map(number).collect();
    assert!(numbers.iter().all(|n| *n < total));
    numbers
}

fn exchange_and_queue(broker: &TestBroker, name: &str) -> (String, TestQueue) {
    let exchange = unique(name);
    broker
        .declare_exchange(&exchange, ExchangeKind::Topic, false)
        .expect("exchange");
    let queue = broker.queue(&exchange, "#", FieldTable::default());
    (exchange, queue)
}

fn dir_bytes(dir: &PathBuf) -> u64 {
    std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
        .map(|e| e.metadata().expect("meta").len())
        .sum()
}

#[test]
fn events_accepted_during_an_outage_survive_a_restart_and_all_arrive_in_order() {
    if !broker_available("spool restart") {
        return;
    }
    let broker = TestBroker::connect();
    let (exchange, queue) = exchange_and_queue(&broker, "spool_restart");
    let proxy = Proxy::start();
    proxy.outage();
    let spool = spool("restart", 64 << 20);
    let total = 3000;
    {
        let (pool, events) = start_spooled(proxy.port, 10_000, &spool);
        for n in 0..total {
            pool.publish(n, &exchange, "user.1", body(n))
                .expect("accepted");
        }
        wait_until("all written", || {
            pool.spool_stats().is_some_and(|s| s.spool_events == total)
        });
        // Closed during the outage: nothing went out, all stays on disk.
        let (report, _) = close(&pool, &events, Duration::ZERO);
        assert_eq!(report.dropped, total);
    }
    assert!(dir_bytes(&spool.dir) > 0);
    proxy.enable();
    let (pool, events) = start_spooled(proxy.port, 10_000, &spool);
    let numbers = all_numbers(&queue, total);
    // One routing key, one channel: first arrivals keep the order.
    let mut first = Vec::new();
    let mut seen = HashSet::new();
    for n in numbers {
        if seen.insert(n) {
            first.push(n);
        }
    }
    assert_eq!(first, (0..total).collect::<Vec<_>>());
    wait_until("acked", || {
        pool.spool_stats().is_some_and(|s| s.spool_events == 0)
    });
    let stats = pool.spool_stats().expect("spooled");
    assert_eq!(stats.spool_replayed, total);
    assert_eq!(stats.spool_waiting, 0);
    let _ = close(&pool, &events, Duration::from_secs(1));
    // Nothing is left to send again.
    let (pool, events) = start_spooled(proxy.port, 10_000, &spool);
    assert_eq!(pool.spool_stats().expect("spooled").spool_events, 0);
    queue.assert_quiet(Duration::from_millis(300));
    let _ = close(&pool, &events, Duration::from_secs(1));
}

#[test]
fn beyond_the_memory_queue_events_wait_on_disk_and_go_out_after_the_outage() {
    if !broker_available("spool overflow") {
        return;
    }
    let broker = TestBroker::connect();
    let (exchange, queue) = exchange_and_queue(&broker, "spool_overflow");
    let proxy = Proxy::start();
    proxy.outage();
    let spool = spool("overflow", 64 << 20);
    let (pool, events) = start_spooled(proxy.port, 100, &spool);
    let total = 5000;
    for n in 0..total {
        pool.publish(n, &exchange, "k", body(n))
            .expect("accepted: the disk takes it");
    }
    wait_until("all written", || {
        pool.spool_stats().is_some_and(|s| s.spool_events == total)
    });
    let stats = pool.stats();
    assert!(stats.queued + stats.in_flight <= 100 + 1, "{stats:?}");
    assert_eq!(stats.dropped_overloaded, 0);
    assert!(pool.spool_stats().expect("spooled").spool_waiting >= total - 101);
    proxy.enable();
    all_numbers(&queue, total);
    wait_until("acked", || {
        pool.spool_stats()
            .is_some_and(|s| s.spool_events == 0 && s.spool_waiting == 0)
    });
    let _ = close(&pool, &events, Duration::from_secs(1));
}

#[test]
fn a_full_spool_refuses_and_counts_and_loses_nothing_it_took() {
    if !broker_available("spool full") {
        return;
    }
    let broker = TestBroker::connect();
    let (exchange, queue) = exchange_and_queue(&broker, "spool_full");
    let proxy = Proxy::start();
    proxy.outage();
    let spool = spool("full", 256 * 1024);
    let (pool, events) = start_spooled(proxy.port, 10_000, &spool);
    let mut accepted = 0;
    let mut refused = 0;
    for n in 0..20_000 {
        match pool.publish(accepted, &exchange, "k", body(accepted)) {
            Ok(()) => accepted += 1,
            Err(SubmitError::SpoolFull) => refused += 1,
            Err(e) => panic!("event {n}: {e}"),
        }
    }
    assert!(
        refused > 0 && accepted > 1000,
        "accepted {accepted}, refused {refused}"
    );
    let stats = pool.spool_stats().expect("spooled");
    assert_eq!(stats.dropped_spool_full, refused);
    assert!(
        dir_bytes(&spool.dir) <= 256 * 1024 + 64 * 1024,
        "{}",
        dir_bytes(&spool.dir)
    );
    proxy.enable();
    all_numbers(&queue, accepted);
    let _ = close(&pool, &events, Duration::from_secs(1));
}

#[test]
fn a_torn_last_record_is_counted_and_every_other_event_arrives() {
    if !broker_available("spool torn") {
        return;
    }
    let broker = TestBroker::connect();
    let (exchange, queue) = exchange_and_queue(&broker, "spool_torn");
    let proxy = Proxy::start();
    proxy.outage();
    let mut spool = spool("torn", 64 << 20);
    spool.segment_bytes = Some(16 << 20);
    let total = 100;
    {
        let (pool, events) = start_spooled(proxy.port, 10_000, &spool);
        for n in 0..total {
            pool.publish(n, &exchange, "k", body(n)).expect("accepted");
        }
        wait_until("all written", || {
            pool.spool_stats().is_some_and(|s| s.spool_events == total)
        });
        let _ = close(&pool, &events, Duration::ZERO);
    }
    let segment = std::fs::read_dir(&spool.dir)
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "seg"))
        .expect("a segment");
    let len = std::fs::metadata(&segment).expect("meta").len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .expect("open");
    file.set_len(len - 3).expect("cut the last record");
    drop(file);
    proxy.enable();
    let (pool, events) = start_spooled(proxy.port, 10_000, &spool);
    let stats = pool.spool_stats().expect("spooled");
    assert_eq!((stats.spool_corrupt, stats.spool_events), (1, total - 1));
    assert!(stats.spool_corrupt_bytes > 0);
    all_numbers(&queue, total - 1);
    queue.assert_quiet(Duration::from_millis(300));
    let _ = close(&pool, &events, Duration::from_secs(1));
}

/// VmRSS or VmHWM of this process, in KiB.
fn status_kb(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    status
        .lines()
        .find_map(|l| {
            l.strip_prefix(key)?
                .trim_start_matches(':')
                .trim()
                .strip_suffix(" kB")?
                .parse()
                .ok()
        })
        .expect("a kB line")
}

/// A measurement, not a check (run with `--ignored --nocapture`): the
/// memory of a pool that takes 1,000,000 events while its broker is
/// unreachable, with a memory queue of 65,536.
#[test]
#[ignore]
fn memory_while_a_million_events_wait_on_disk() {
    let spool = spool("million", 4 << 30);
    let mut cfg = config(10, true);
    cfg.port = 1; // nothing listens: every connection attempt is refused
    cfg.queue_capacity = 65_536;
    let (collector, sink, events) = Collector::new();
    let pool = RabbitPool::start_spooled(cfg, &spool, sink, events).expect("pool starts");
    let before = status_kb("VmRSS");
    let total = 1_000_000u64;
    let body = Bytes::from(format!("{{\"from_user_id\":\"alice@localhost/phone\",\"to_user_id\":\"bob@localhost\",\"message\":\"{}\"}}", "x".repeat(40)));
    for n in 0..total {
        while pool
            .publish(n, "chat_msg", "alice@localhost.chat_msg_sent", body.clone())
            .is_err()
        {
            std::thread::yield_now(); // the writer's channel is full: the disk is behind
        }
    }
    wait_until("all written", || {
        pool.spool_stats().is_some_and(|s| s.spool_events == total)
    });
    let after = status_kb("VmRSS");
    let stats = pool.stats();
    let spool_stats = pool.spool_stats().expect("spooled");
    eprintln!(
        "RSS {} -> {} MiB (peak {} MiB); in memory {} jobs; spool {} MiB, waiting {}",
        before / 1024,
        after / 1024,
        status_kb("VmHWM") / 1024,
        stats.queued + stats.in_flight,
        spool_stats.spool_bytes >> 20,
        spool_stats.spool_waiting
    );
    let _ = close(&pool, &collector, Duration::ZERO);
    let _ = std::fs::remove_dir_all(&spool.dir);
}
