//! 100 pool start/close cycles against a real HTTP server leave no threads,
//! file descriptors or heap behind. Alone in its binary so that no other test
//! runs threads or sockets at the same time.

mod common;
mod leak_common;

use common::*;
use event_pusher_core::http::HttpPool;
use event_pusher_core::Outcome;
use leak_common::{Baseline, CYCLES};
use std::time::Duration;

/// One pool's life: start, deliver some jobs, then close it (or drop it, as
/// when its owner dies), and wait until its reporter thread has gone.
fn cycle(server: &TestServer, i: usize) {
    let (events, sink) = Collector::new();
    let mut cfg = config(server.url("/"));
    cfg.workers = 3;
    let pool = HttpPool::start(cfg, sink).expect("pool starts");
    for tag in 0..10 {
        pool.submit(job(tag, "leak")).expect("accepted");
    }
    if i.is_multiple_of(2) {
        pool.close(Duration::from_secs(5), events.on_close());
        let got = events.take(11);
        assert!(got[..10]
            .iter()
            .all(|e| matches!(e, Event::Outcome(_, Outcome::Response { status: 200, .. }))));
        assert!(matches!(got[10], Event::Closed(_)));
    } else {
        let got = events.take(10);
        assert!(got
            .iter()
            .all(|e| matches!(e, Event::Outcome(_, Outcome::Response { status: 200, .. }))));
        drop(pool);
    }
    events.wait_reporter_gone();
}

#[test]
fn a_hundred_start_close_cycles_leak_no_threads_fds_or_memory() {
    let server = TestServer::replying(200);
    // Warm up: the runtime, lazily created statics and the server's buffers.
    for i in 0..4 {
        cycle(&server, i);
    }
    server.clear_received();
    let baseline = Baseline::take(|| {});

    for i in 0..CYCLES {
        cycle(&server, i);
    }

    // The server side of each connection closes when it reads the EOF. The
    // pools' connections are closed with the pools; the server notices EOF
    // asynchronously, so give its tasks time to free their buffers.
    let grown = baseline.assert_back(250, |w, c| wait_until(w, c), || server.clear_received());
    baseline.report(grown, "");
}
