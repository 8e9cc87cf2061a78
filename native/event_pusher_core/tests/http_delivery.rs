//! How the HTTP pool rides out a slow, throttling or down endpoint, against
//! a real local server: timeouts (outcome unknown, lower pressure),
//! `Retry-After` (429 and 503), and outages held until the endpoint is back
//! or the job is older than its maximum age.

mod common;

use common::*;
use event_pusher_core::http::{HttpPool, HttpPoolConfig, PROBE_MAX};
use event_pusher_core::{DropReason, Outcome};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

fn start(cfg: HttpPoolConfig) -> (HttpPool<u64>, Collector) {
    let (collector, sink) = Collector::new();
    let pool = HttpPool::start(cfg, sink).expect("pool starts");
    (pool, collector)
}

/// A port nothing listens on (it was free a moment ago).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port()
}

fn paths(server: &TestServer) -> Vec<String> {
    server.received().into_iter().map(|r| r.target).collect()
}

#[test]
fn a_slow_endpoint_gets_each_request_once_and_each_job_ends_as_timed_out() {
    let server = TestServer::start(Arc::new(|_, _| {
        Reply::status(200).after(Duration::from_millis(400))
    }));
    let mut cfg = config(server.url("/"));
    cfg.request_timeout = Duration::from_millis(50);
    let (pool, events) = start(cfg);
    for i in 0..6 {
        let path = format!("e{i}");
        let mut j = job(i, &path);
        j.max_retries = 2;
        pool.submit(j).expect("accepted");
    }
    let got = outcomes(&events.take(6));
    assert!(
        got.iter().all(|o| matches!(o, Outcome::TimedOut { .. })),
        "{got:?}"
    );
    events.assert_quiet(Duration::from_millis(300));
    let mut seen = paths(&server);
    seen.sort();
    assert_eq!(seen, (0..6).map(|i| format!("/e{i}")).collect::<Vec<_>>());
    let stats = pool.stats();
    assert_eq!(
        (
            stats.timeouts,
            stats.retried,
            stats.dropped_retries_exhausted
        ),
        (6, 0, 0)
    );
}

#[test]
fn timeouts_lower_the_pressure_to_one_request_at_a_time() {
    let server = TestServer::start(Arc::new(|_, _| {
        Reply::status(200).after(Duration::from_millis(400))
    }));
    let mut cfg = config(server.url("/"));
    cfg.workers = 4;
    cfg.request_timeout = Duration::from_millis(60);
    let (pool, events) = start(cfg);
    for i in 0..4 {
        pool.submit(job(i, "first")).expect("accepted");
    }
    events.take(4);
    // Four timeouts halved the bound to a quarter of the workers, one: the
    // next jobs go one by one.
    for i in 4..9 {
        pool.submit(job(i, "second")).expect("accepted");
    }
    events.take(5);
    let arrivals: Vec<Instant> = server
        .received()
        .into_iter()
        .filter(|r| r.target == "/second")
        .map(|r| r.at)
        .collect();
    assert_eq!(arrivals.len(), 5);
    for pair in arrivals.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(55),
            "requests overlapped: {gap:?}"
        );
    }
}

#[test]
fn a_429_with_retry_after_seconds_is_retried_once_the_wait_is_over() {
    let server = TestServer::start(Arc::new(|nth, _| match nth {
        0 => Reply::status(429).retry_after("1"),
        _ => Reply::status(200),
    }));
    let (pool, events) = start(config(server.url("/")));
    let mut j = job(1, "x");
    j.max_retries = 2;
    pool.submit(j).expect("accepted");

    assert_eq!(status(&outcomes(&events.take(1))[0]), 200);
    let received = server.received();
    assert_eq!(received.len(), 2);
    let gap = received[1].at - received[0].at;
    assert!(gap >= Duration::from_secs(1), "retried after {gap:?}");
    assert!(gap < Duration::from_secs(3), "retried after {gap:?}");
}

#[test]
fn a_503_with_an_http_date_pauses_every_job_of_the_pool() {
    let date: &'static str = Box::leak(
        httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2)).into_boxed_str(),
    );
    let server = TestServer::start(Arc::new(move |nth, _| match nth {
        0 => Reply::status(503).retry_after(date),
        _ => Reply::status(200),
    }));
    let (pool, events) = start(config(server.url("/")));
    let mut j = job(1, "first");
    j.max_retries = 1;
    pool.submit(j).expect("accepted");
    wait_until("the 503", || server.arrived() == 1);
    let t503 = server.received()[0].at;
    pool.submit(job(2, "other")).expect("accepted");

    let got = events.take(2);
    assert!(got
        .iter()
        .all(|e| matches!(e, Event::Outcome(_, Outcome::Response { status: 200, .. }))));
    // The date has a one-second precision: at least one second later.
    for r in &server.received()[1..] {
        assert!(
            r.at - t503 >= Duration::from_secs(1),
            "{} too early",
            r.target
        );
    }
}

#[test]
fn a_retry_after_is_capped_by_the_jobs_maximum() {
    let server = TestServer::start(Arc::new(|nth, _| match nth {
        0 => Reply::status(429).retry_after("3600"),
        _ => Reply::status(200),
    }));
    let (pool, events) = start(config(server.url("/")));
    let mut j = job(1, "x");
    j.max_retries = 1;
    j.delivery.retry_after_max = Duration::from_millis(300);
    pool.submit(j).expect("accepted");

    assert_eq!(status(&outcomes(&events.take(1))[0]), 200);
    let received = server.received();
    let gap = received[1].at - received[0].at;
    assert!(
        gap >= Duration::from_millis(300) && gap < Duration::from_secs(3),
        "{gap:?}"
    );
}

#[test]
fn a_429_without_retry_after_is_retried() {
    let server = TestServer::start(Arc::new(|nth, _| {
        Reply::status(if nth == 0 { 429 } else { 200 })
    }));
    let (pool, events) = start(config(server.url("/")));
    let mut j = job(1, "x");
    j.max_retries = 1;
    pool.submit(j).expect("accepted");
    assert_eq!(status(&outcomes(&events.take(1))[0]), 200);
    assert_eq!(server.arrived(), 2);
}

#[test]
fn an_outage_holds_every_job_and_delivers_all_once_the_endpoint_is_back() {
    let port = free_port();
    let mut cfg = config(format!("http://127.0.0.1:{port}/"));
    cfg.workers = 4;
    let (pool, events) = start(cfg);
    let submit = |i: u64| {
        let path = format!("e{i}");
        let mut j = job(i, &path);
        j.max_retries = 0;
        j.delivery.max_age = Some(Duration::from_secs(60));
        pool.submit(j).expect("accepted");
    };
    // A steady load while nothing listens.
    for i in 0..30 {
        submit(i);
        std::thread::sleep(Duration::from_millis(50));
    }
    events.assert_quiet(Duration::from_millis(10));
    let server = TestServer::start_on(port, Arc::new(|_, _| Reply::status(200)));
    let got = outcomes(&events.take(30));
    assert!(
        got.iter()
            .all(|o| matches!(o, Outcome::Response { status: 200, .. })),
        "{got:?}"
    );
    let seen: BTreeSet<String> = paths(&server).into_iter().collect();
    assert_eq!(seen.len(), 30);
    assert_eq!(server.arrived(), 30, "each delivered once");
    let stats = pool.stats();
    assert_eq!(
        (
            stats.sent,
            stats.dropped_retries_exhausted,
            stats.dropped_expired
        ),
        (30, 0, 0)
    );
    // Probes with backoff, not an attempt per job and retry.
    assert!(
        stats.failed_attempts < 15,
        "{} failed attempts",
        stats.failed_attempts
    );
}

#[test]
fn an_endpoint_answering_5xx_to_everything_holds_jobs_until_it_recovers() {
    let began = Instant::now();
    let server = TestServer::start(Arc::new(move |_, _| {
        Reply::status(if began.elapsed() < Duration::from_millis(1500) {
            500
        } else {
            200
        })
    }));
    let (pool, events) = start(config(server.url("/")));
    for i in 0..10 {
        let path = format!("e{i}");
        let mut j = job(i, &path);
        j.max_retries = 1;
        j.retry_base = Duration::from_millis(10);
        j.delivery.max_age = Some(Duration::from_secs(60));
        pool.submit(j).expect("accepted");
    }
    let got = outcomes(&events.take(10));
    assert!(
        got.iter()
            .all(|o| matches!(o, Outcome::Response { status: 200, .. })),
        "{got:?}"
    );
    let ok: BTreeSet<String> = server
        .received()
        .into_iter()
        .filter(|r| r.at - began >= Duration::from_millis(1500))
        .map(|r| r.target)
        .collect();
    assert_eq!(ok.len(), 10);
}

#[test]
fn a_job_older_than_its_maximum_age_is_given_up_as_expired() {
    let port = free_port();
    let (pool, events) = start(config(format!("http://127.0.0.1:{port}/")));
    let began = Instant::now();
    let mut j = job(4, "x");
    j.max_retries = 100;
    j.delivery.max_age = Some(Duration::from_millis(400));
    pool.submit(j).expect("accepted");

    let got = events.take(1);
    assert_eq!(
        got[0],
        Event::Outcome(4, Outcome::Dropped(DropReason::Expired))
    );
    assert!(began.elapsed() >= Duration::from_millis(390));
    assert!(began.elapsed() < PROBE_MAX, "{:?}", began.elapsed());
    let stats = pool.stats();
    assert_eq!(
        (stats.dropped_expired, stats.dropped_retries_exhausted),
        (1, 0)
    );
}
