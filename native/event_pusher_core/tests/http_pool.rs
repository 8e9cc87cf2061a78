//! HTTP pool behaviour against a real local HTTP server: delivery, retries,
//! overload, close, panics and the concurrency bound.

mod common;

use bytes::Bytes;
use common::*;
use event_pusher_core::http::{HttpPool, SubmitError};
use event_pusher_core::{CloseReport, DropReason, Outcome};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::sync::Arc;
use std::time::Duration;

fn start(cfg: event_pusher_core::http::HttpPoolConfig) -> (HttpPool<u64>, Collector) {
    let (collector, sink) = Collector::new();
    let pool = HttpPool::start(cfg, sink).expect("pool starts");
    (pool, collector)
}

#[test]
fn delivers_a_post_with_concatenated_path_headers_and_body_bytes() {
    let server = TestServer::replying(200);
    let (pool, events) = start(config(server.url("/api/pre")));
    let mut headers = HeaderMap::new();
    headers.insert(
        reqwest::header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    headers.insert(
        HeaderName::from_static("x-custom"),
        HeaderValue::from_static("v1"),
    );
    let body = Bytes::from_static(b"author=alice&message=%E2%9D%A4\x00\xff");
    let mut j = job(7, "fix/notify?x=1");
    j.headers = headers;
    j.body = body.clone();
    pool.submit(j).expect("accepted");

    let got = events.take(1);
    assert!(
        matches!(got[0], Event::Outcome(7, Outcome::Response { status: 200, elapsed_us }) if elapsed_us > 0)
    );
    let received = server.received();
    assert_eq!(received.len(), 1);
    let r = &received[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.target, "/api/prefix/notify?x=1");
    assert_eq!(
        r.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(r.headers["x-custom"], "v1");
    assert_eq!(r.body, body);
    let stats = pool.stats();
    assert_eq!((stats.submitted, stats.sent, stats.in_flight), (1, 1, 0));
}

#[test]
fn server_error_then_success_is_delivered_once_and_only_the_last_attempt_reported() {
    let server = TestServer::start(Arc::new(|nth, _| {
        Reply::status(if nth == 0 { 500 } else { 200 })
    }));
    let (pool, events) = start(config(server.url("/")));
    let mut j = job(1, "x");
    j.max_retries = 3;
    j.retry_base = Duration::from_millis(5);
    pool.submit(j).expect("accepted");

    let got = outcomes(&events.take(1));
    assert_eq!(status(&got[0]), 200);
    events.assert_quiet(Duration::from_millis(100));
    assert_eq!(server.received().len(), 2);
    let stats = pool.stats();
    assert_eq!(
        (stats.sent, stats.failed_attempts, stats.retried),
        (1, 1, 1)
    );
}

#[test]
fn client_error_is_final_and_not_retried() {
    let server = TestServer::replying(404);
    let (pool, events) = start(config(server.url("/")));
    let mut j = job(1, "missing");
    j.max_retries = 3;
    pool.submit(j).expect("accepted");

    assert_eq!(status(&outcomes(&events.take(1))[0]), 404);
    events.assert_quiet(Duration::from_millis(100));
    assert_eq!(server.received().len(), 1);
    let stats = pool.stats();
    assert_eq!(
        (stats.sent, stats.retried, stats.failed_attempts),
        (1, 0, 0)
    );
}

#[test]
fn retries_are_exhausted_on_repeated_server_errors() {
    let server = TestServer::replying(503);
    let (pool, events) = start(config(server.url("/")));
    let mut j = job(9, "x");
    j.max_retries = 2;
    pool.submit(j).expect("accepted");

    let got = events.take(2);
    assert_eq!(
        got[1],
        Event::Outcome(9, Outcome::Dropped(DropReason::RetriesExhausted))
    );
    assert_eq!(status(&outcomes(&got[..1])[0]), 503);
    assert_eq!(server.received().len(), 3);
    let stats = pool.stats();
    assert_eq!(
        (
            stats.dropped_retries_exhausted,
            stats.failed_attempts,
            stats.retried,
            stats.sent
        ),
        (1, 3, 2, 0)
    );
}

#[test]
fn a_timeout_is_retried_when_configured() {
    let server = TestServer::start(Arc::new(|nth, _| {
        Reply::status(200).after(if nth == 0 {
            Duration::from_millis(500)
        } else {
            Duration::ZERO
        })
    }));
    let mut cfg = config(server.url("/"));
    cfg.request_timeout = Duration::from_millis(50);
    let (pool, events) = start(cfg);
    let mut j = job(3, "slow");
    j.max_retries = 1;
    j.delivery.retry_on_timeout = true;
    pool.submit(j).expect("accepted");

    let got = outcomes(&events.take(1));
    assert_eq!(status(&got[0]), 200);
    assert_eq!(server.arrived(), 2);
    assert_eq!((pool.stats().failed_attempts, pool.stats().retried), (1, 1));
}

#[test]
fn a_timeout_ends_the_job_as_timed_out_with_its_time() {
    let server = TestServer::start(Arc::new(|_, _| {
        Reply::status(200).after(Duration::from_millis(500))
    }));
    let mut cfg = config(server.url("/"));
    cfg.request_timeout = Duration::from_millis(50);
    let (pool, events) = start(cfg);
    let mut j = job(3, "slow");
    j.max_retries = 2;
    pool.submit(j).expect("accepted");

    let got = outcomes(&events.take(1));
    assert!(
        matches!(got[0], Outcome::TimedOut { elapsed_us } if elapsed_us >= 50_000),
        "{got:?}"
    );
    events.assert_quiet(Duration::from_millis(200));
    assert_eq!(server.arrived(), 1);
    let stats = pool.stats();
    assert_eq!(
        (
            stats.timeouts,
            stats.dropped_retries_exhausted,
            stats.retried
        ),
        (1, 0, 0)
    );
}

#[test]
fn a_zero_request_timeout_times_out_at_once_without_sending() {
    let server = TestServer::replying(200);
    let mut cfg = config(server.url("/"));
    cfg.request_timeout = Duration::ZERO;
    let (pool, events) = start(cfg);
    let mut j = job(3, "x");
    j.max_retries = 1;
    pool.submit(j).expect("accepted");

    let got = outcomes(&events.take(2));
    assert_eq!(error_reason(&got[0]), "timeout");
    assert_eq!(got[1], Outcome::Dropped(DropReason::RetriesExhausted));
    assert_eq!(server.arrived(), 0);
    assert_eq!(pool.stats().failed_attempts, 2);
}

#[test]
fn connection_refused_is_retried_then_reported() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let (pool, events) = start(config(format!("http://127.0.0.1:{port}/")));
    let mut j = job(5, "x");
    j.max_retries = 1;
    pool.submit(j).expect("accepted");

    let got = outcomes(&events.take(2));
    assert_eq!(error_reason(&got[0]), "connection_refused");
    assert_eq!(got[1], Outcome::Dropped(DropReason::RetriesExhausted));
    assert_eq!(pool.stats().failed_attempts, 2);
}

#[test]
fn a_full_queue_refuses_with_overloaded_and_counts_it() {
    let server = TestServer::start(Arc::new(|_, _| Reply::status(200).gated()));
    let mut cfg = config(server.url("/"));
    cfg.workers = 1;
    cfg.queue_capacity = 2;
    let (pool, events) = start(cfg);
    pool.submit(job(1, "a")).expect("accepted");
    wait_until("first request held by the server", || server.arrived() == 1);
    pool.submit(job(2, "b")).expect("queued");
    pool.submit(job(3, "c")).expect("queued");
    assert_eq!(pool.submit(job(4, "d")), Err(SubmitError::Overloaded));
    let stats = pool.stats();
    assert_eq!(
        (
            stats.submitted,
            stats.queued,
            stats.in_flight,
            stats.rejected,
            stats.dropped_overloaded
        ),
        (3, 2, 1, 1, 1)
    );

    server.open_gate();
    let mut tags: Vec<u64> = events
        .take(3)
        .into_iter()
        .map(|e| match e {
            Event::Outcome(tag, Outcome::Response { status: 200, .. }) => tag,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    tags.sort();
    assert_eq!(tags, [1, 2, 3]);
}

#[test]
fn close_drains_queued_and_in_flight_work_then_reports_closed() {
    let server = TestServer::start(Arc::new(|_, _| {
        Reply::status(200).after(Duration::from_millis(100))
    }));
    let mut cfg = config(server.url("/"));
    cfg.workers = 2;
    let (pool, events) = start(cfg);
    for tag in 0..6 {
        pool.submit(job(tag, "x")).expect("accepted");
    }
    pool.close(Duration::from_secs(5), events.on_close());
    assert_eq!(pool.submit(job(99, "late")), Err(SubmitError::Closed));

    let got = events.take(7);
    assert!(got[..6]
        .iter()
        .all(|e| matches!(e, Event::Outcome(_, Outcome::Response { status: 200, .. }))));
    assert_eq!(got[6], Event::Closed(CloseReport { dropped: 0 }));
    assert_eq!(server.received().len(), 6);
    events.wait_reporter_gone();
    let stats = pool.stats();
    assert_eq!(
        (stats.sent, stats.rejected, stats.dropped_closed),
        (6, 1, 0)
    );
}

#[test]
fn close_deadline_drops_and_counts_what_is_left() {
    let server = TestServer::start(Arc::new(|_, _| Reply::status(200).gated()));
    let mut cfg = config(server.url("/"));
    cfg.workers = 1;
    let (pool, events) = start(cfg);
    for tag in 0..3 {
        pool.submit(job(tag, "x")).expect("accepted");
    }
    wait_until("first request held", || server.arrived() == 1);
    pool.close(Duration::from_millis(100), events.on_close());

    let got = events.take(4);
    let mut dropped: Vec<u64> = got[..3]
        .iter()
        .map(|e| match e {
            Event::Outcome(tag, Outcome::Dropped(DropReason::Closed)) => *tag,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    dropped.sort();
    assert_eq!(dropped, [0, 1, 2]);
    assert_eq!(got[3], Event::Closed(CloseReport { dropped: 3 }));
    let stats = pool.stats();
    assert_eq!(
        (stats.dropped_closed, stats.in_flight, stats.queued),
        (3, 0, 0)
    );
    events.wait_reporter_gone();
    server.open_gate();
}

#[test]
fn closing_twice_notifies_both_callers() {
    let server = TestServer::replying(200);
    let (pool, events) = start(config(server.url("/")));
    pool.close(Duration::from_secs(1), events.on_close());
    events.wait_reporter_gone();
    pool.close(Duration::from_secs(1), events.on_close());
    let got = events.take(2);
    assert!(got
        .iter()
        .all(|e| *e == Event::Closed(CloseReport { dropped: 0 })));
}

#[test]
fn dropping_the_handle_shuts_the_pool_down_after_delivering() {
    let server = TestServer::replying(200);
    let (pool, events) = start(config(server.url("/")));
    pool.submit(job(1, "x")).expect("accepted");
    drop(pool);
    assert!(matches!(
        events.take(1)[0],
        Event::Outcome(1, Outcome::Response { status: 200, .. })
    ));
    events.wait_reporter_gone();
}

#[test]
fn a_dispatcher_panic_is_counted_reported_and_the_dispatcher_restarts() {
    let server = TestServer::replying(200);
    let (pool, events) = start(config(server.url("/")));
    pool.inject_dispatcher_panic();
    pool.submit(job(1, "a")).expect("accepted");
    pool.submit(job(2, "b")).expect("accepted");

    let got = events.take(3);
    assert!(got.contains(&Event::Panic("http_dispatcher")));
    let delivered = got
        .iter()
        .filter(|e| matches!(e, Event::Outcome(_, Outcome::Response { status: 200, .. })))
        .count();
    assert_eq!(delivered, 2);
    // The restarted dispatcher keeps working.
    pool.submit(job(3, "c")).expect("accepted");
    assert!(matches!(events.take(1)[0], Event::Outcome(3, _)));
    assert_eq!(pool.stats().panics, 1);
}

#[test]
fn an_attempt_panic_is_a_failed_attempt_that_is_retried() {
    let server = TestServer::replying(200);
    let (pool, events) = start(config(server.url("/")));
    pool.inject_attempt_panic();
    let mut j = job(1, "a");
    j.max_retries = 1;
    pool.submit(j).expect("accepted");

    let got = events.take(2);
    assert_eq!(got[0], Event::Panic("http_attempt"));
    assert_eq!(status(&outcomes(&got[1..])[0]), 200);
    assert_eq!(pool.stats().failed_attempts, 1);
    assert_eq!(pool.stats().panics, 1);
}

#[test]
fn concurrency_never_exceeds_workers() {
    let server = TestServer::start(Arc::new(|_, _| {
        Reply::status(200).after(Duration::from_millis(10))
    }));
    let mut cfg = config(server.url("/"));
    cfg.workers = 4;
    cfg.queue_capacity = 200;
    let (pool, events) = start(cfg);
    for tag in 0..100 {
        pool.submit(job(tag, "x")).expect("accepted");
    }
    let got = events.take(100);
    assert!(got
        .iter()
        .all(|e| matches!(e, Event::Outcome(_, Outcome::Response { status: 200, .. }))));
    // Never above the bound; with 100 jobs of 10 ms it is always reached in
    // practice, but a loaded machine may not line four requests up.
    let max = server.max_concurrent();
    assert!((2..=4).contains(&max), "max concurrent requests {max}");
}

#[test]
fn bad_config_values_are_errors_not_panics() {
    let (_, sink) = Collector::new();
    let mut cfg = config("http://127.0.0.1:1/".into());
    cfg.workers = 0;
    let err = HttpPool::<u64>::start(cfg, sink).err().expect("refused");
    assert_eq!(err.to_string(), "workers must be at least 1");

    for (url, expected) in [
        ("not a url", "base_url is not a valid URL: no scheme://"),
        (
            "http://user:secret@h:port/",
            "base_url is not a valid URL: invalid authority",
        ),
        (
            "ftp://host/",
            "base_url must start with http:// or https://",
        ),
    ] {
        let (_, sink) = Collector::new();
        let err = HttpPool::<u64>::start(config(url.into()), sink)
            .err()
            .expect("refused");
        assert_eq!(err.to_string(), expected);
    }
}

#[test]
fn a_path_no_request_line_can_carry_is_refused() {
    let server = TestServer::replying(200);
    let (pool, _events) = start(config(server.url("")));
    let long = format!("/{}", "a".repeat(70_000));
    assert_eq!(pool.submit(job(1, &long)), Err(SubmitError::InvalidPath));
    // A path that would change the authority of a parsed URL is only a path.
    pool.submit(job(2, ":notaport/x")).expect("accepted");
}

/// Reads one HTTP/1.1 request from a raw socket (head and Content-Length
/// body), answers 200 and returns the bytes exactly as they arrived.
fn raw_server() -> (String, std::thread::JoinHandle<Vec<u8>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let handle = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        conn.set_read_timeout(Some(DEADLINE)).expect("timeout");
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = conn.read(&mut buf).expect("read");
            assert!(n > 0, "connection closed early: {got:?}");
            got.extend_from_slice(&buf[..n]);
            let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse::<usize>().expect("length"));
            if got.len() >= end + 4 + length {
                break;
            }
        }
        conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .expect("write");
        got
    });
    (url, handle)
}

#[test]
fn the_request_on_the_wire_is_byte_exact_with_no_added_headers() {
    let (url, server) = raw_server();
    let (pool, events) = start(config(format!("{url}/api/")));
    let mut j = job(1, "x/../y/%41?q=a b");
    // mod_event_pusher_http_defaults' header, as MongooseIM 6.8 writes it.
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static("content-type"),
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    j.headers = headers;
    j.body = Bytes::from_static(b"author=alice");
    pool.submit(j).expect("accepted");
    assert_eq!(status(&outcomes(&events.take(1))[0]), 200);

    let wire = String::from_utf8(server.join().expect("server")).expect("utf8");
    let host = url.trim_start_matches("http://");
    assert_eq!(
        wire,
        format!(
            "POST /api/x/../y/%41?q=a%20b HTTP/1.1\r\n\
             content-type: application/x-www-form-urlencoded\r\n\
             host: {host}\r\n\
             content-length: 12\r\n\
             \r\n\
             author=alice"
        )
    );
}

/// A server that closes an idle keep-alive connection (as most do after a
/// few seconds): the next request goes on a new connection at once, without
/// a failed attempt. The server answers one request per connection, keeps
/// it open without `Connection: close`, and closes it once it has answered.
#[test]
fn a_keep_alive_connection_the_server_closed_is_replaced_without_a_failed_attempt() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (closed_tx, closed_rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        for _ in 0..2 {
            let (mut conn, _) = listener.accept().expect("accept");
            conn.set_read_timeout(Some(DEADLINE)).expect("timeout");
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            // The whole request: head and the 4-byte body of `job`.
            while !got.windows(4).any(|w| w == b"\r\n\r\n") || !got.ends_with(b"body") {
                let n = conn.read(&mut buf).expect("read");
                assert!(n > 0, "connection closed early");
                got.extend_from_slice(&buf[..n]);
            }
            conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .expect("write");
            drop(conn);
            closed_tx.send(()).expect("test alive");
        }
    });
    let mut cfg = config(url);
    cfg.workers = 1;
    let (pool, events) = start(cfg);
    pool.submit(job(1, "a")).expect("accepted");
    assert_eq!(status(&outcomes(&events.take(1))[0]), 200);
    closed_rx
        .recv_timeout(DEADLINE)
        .expect("server closed the first connection");
    pool.submit(job(2, "b")).expect("accepted");
    let second = outcomes(&events.take(1));
    assert_eq!(status(&second[0]), 200, "{second:?}");
    closed_rx
        .recv_timeout(DEADLINE)
        .expect("second connection served");
    server.join().expect("server");
    let stats = pool.stats();
    assert_eq!((stats.sent, stats.failed_attempts), (2, 0));
}
