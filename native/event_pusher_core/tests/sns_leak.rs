//! 100 SNS pool start/close cycles against moto leave no threads, file
//! descriptors or heap behind. Alone in its binary so that no other test
//! runs threads or sockets at the same time.

mod common;
mod leak_common;
mod sns_common;

use common::{wait_until, Collector, Event};
use event_pusher_core::sns::SnsPool;
use event_pusher_core::Outcome;
use leak_common::{Baseline, CYCLES};
use sns_common::*;
use std::time::Duration;

fn all_published(events: &[Event]) -> bool {
    events
        .iter()
        .all(|e| matches!(e, Event::Outcome(_, Outcome::Published { .. })))
}

/// One pool's life: start, publish some notifications (batched and not),
/// then close it (or drop it, as when its owner dies), and wait until its
/// reporter thread has gone.
fn cycle(endpoint: &str, topic: &str, i: usize) {
    let (events, sink) = Collector::new();
    let mut cfg = config(endpoint);
    cfg.pool_size = 3;
    cfg.batching = i % 4 < 2;
    let pool = SnsPool::start(cfg, sink).expect("pool starts");
    for tag in 0..10 {
        pool.publish(job(tag, topic, r#"{"leak":true}"#))
            .expect("accepted");
    }
    if i.is_multiple_of(2) {
        pool.close(Duration::from_secs(5), events.on_close());
        let got = events.take(11);
        assert!(all_published(&got[..10]), "{got:?}");
        assert!(matches!(got[10], Event::Closed(_)));
    } else {
        assert!(all_published(&events.take(10)));
        drop(pool);
    }
    events.wait_reporter_gone();
}

#[test]
fn a_hundred_start_close_cycles_leak_no_threads_fds_or_memory() {
    let Some(moto) = moto() else { return };
    let (topic, _queue) = moto.topic_with_queue("leak");
    // Warm up: the runtime and lazily created statics of the SDK.
    for i in 0..4 {
        cycle(&moto.url, &topic, i);
    }
    let baseline = Baseline::take(|| {});

    for i in 0..CYCLES {
        cycle(&moto.url, &topic, i);
    }

    // Connection tasks end shortly after their pool: give them time to free.
    let grown = baseline.assert_back(250, |w, c| wait_until(w, c), || {});
    baseline.report(grown, "");
}
