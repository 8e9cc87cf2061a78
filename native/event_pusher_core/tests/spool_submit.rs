//! A measurement, not a check (run with `cargo test --release -p
//! event_pusher_core --test spool_submit -- --ignored --nocapture`): the
//! caller's cost of `submit` on a spooled http pool (encode the record, hand
//! it to the writer), in rounds below the writer's channel bound so that no
//! submit waits for the disk. Compare builds in the same run.

mod common;

use bytes::Bytes;
use common::*;
use event_pusher_core::http::HttpPool;
use event_pusher_core::pool::spool::{Fsync, SpoolConfig};
use std::time::Instant;

#[test]
#[ignore]
fn submit_cost_on_a_spooled_pool() {
    let server = TestServer::replying(200);
    let dir = std::env::temp_dir().join(format!("ep-submit-cost-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let spool = SpoolConfig {
        dir: dir.clone(),
        max_bytes: 1 << 30,
        fsync: Fsync::Never,
        segment_bytes: None,
    };
    let mut cfg = config(server.url("/"));
    cfg.queue_capacity = 100_000;
    let (events, sink) = Collector::new();
    let pool = HttpPool::start_spooled(cfg, &spool, sink).expect("pool starts");
    let body = Bytes::from(vec![b'x'; 200]);
    let per_round = 10_000u64;
    let mut rounds = Vec::new();
    for round in 0..15u64 {
        let start = Instant::now();
        for n in 0..per_round {
            let mut j = job(round * per_round + n, "event");
            j.body = body.clone();
            pool.submit(j).expect("accepted");
        }
        rounds.push(start.elapsed().as_nanos() as u64 / per_round);
        wait_until("the round is delivered and acked", || {
            pool.spool_stats().is_some_and(|s| s.spool_events == 0)
        });
        drop(events.take(per_round as usize));
    }
    rounds.sort_unstable();
    eprintln!(
        "submit on a spooled pool: median {} ns, min {} ns (15 rounds of {per_round})",
        rounds[rounds.len() / 2],
        rounds[0]
    );
    drop(pool);
    let _ = std::fs::remove_dir_all(&dir);
}
