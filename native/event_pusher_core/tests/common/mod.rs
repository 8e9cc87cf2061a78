//! Test support: a real HTTP/1.1 server (hyper) that records what it received
//! and counts concurrent requests, and a sink that collects a pool's outcomes.
#![allow(dead_code)] // each test binary uses a different part

use bytes::Bytes;
use event_pusher_core::http::{HttpJob, HttpPoolConfig};
use event_pusher_core::{CloseReport, Outcome};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[path = "../serve_common/mod.rs"]
pub mod serve_common;
#[path = "../sink_common/mod.rs"]
mod sink_common;

pub const DEADLINE: Duration = Duration::from_secs(10);

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// Path and query, as sent on the request line.
    pub target: String,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
    /// When its body had been read.
    pub at: Instant,
}

/// What the server answers: a status, optionally after a delay, optionally
/// only once the gate is opened.
#[derive(Debug, Clone, Copy)]
pub struct Reply {
    pub status: u16,
    pub delay: Duration,
    pub gated: bool,
    /// A `Retry-After` header's value.
    pub retry_after: Option<&'static str>,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            delay: Duration::ZERO,
            gated: false,
            retry_after: None,
        }
    }
    pub fn retry_after(self, value: &'static str) -> Reply {
        Reply {
            retry_after: Some(value),
            ..self
        }
    }
    pub fn after(self, delay: Duration) -> Reply {
        Reply { delay, ..self }
    }
    pub fn gated(self) -> Reply {
        Reply {
            gated: true,
            ..self
        }
    }
}

/// Decides the reply from the request number (0-based, in arrival order).
pub type Behaviour = Arc<dyn Fn(usize, &Received) -> Reply + Send + Sync>;

#[derive(Default)]
struct State {
    received: Mutex<Vec<Received>>,
    arrived: AtomicUsize,
    current: AtomicUsize,
    max_concurrent: AtomicUsize,
    /// Server name sent by each TLS client (None: no SNI).
    sni: Mutex<Vec<Option<String>>>,
}

pub struct TestServer {
    pub addr: SocketAddr,
    state: Arc<State>,
    gate: tokio::sync::watch::Sender<bool>,
    stop: CancellationToken,
}

impl TestServer {
    /// A plain-HTTP server on 127.0.0.1, running on the pools' runtime.
    pub fn start(behaviour: Behaviour) -> TestServer {
        Self::start_with(behaviour, None)
    }

    /// As `start`, with each accepted connection wrapped by `tls` first.
    pub fn start_with(behaviour: Behaviour, tls: Option<tokio_rustls::TlsAcceptor>) -> TestServer {
        let state = Arc::new(State::default());
        let (gate, gate_rx) = tokio::sync::watch::channel(false);
        let server = Server {
            state: state.clone(),
            behaviour,
            gate: gate_rx,
        };
        let (addr, stop) = serve_common::listen(0, server, tls);
        TestServer {
            addr,
            state,
            gate,
            stop,
        }
    }

    /// A plain-HTTP server on 127.0.0.1:`port`, once the port is free
    /// (another server's listener may take a moment to close).
    pub fn start_on(port: u16, behaviour: Behaviour) -> TestServer {
        let deadline = Instant::now() + DEADLINE;
        while std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "port {port} stays taken");
            std::thread::sleep(Duration::from_millis(10));
        }
        let state = Arc::new(State::default());
        let (gate, gate_rx) = tokio::sync::watch::channel(false);
        let server = Server {
            state: state.clone(),
            behaviour,
            gate: gate_rx,
        };
        let (addr, stop) = serve_common::listen(port, server, None);
        TestServer {
            addr,
            state,
            gate,
            stop,
        }
    }

    /// A server that answers every request with `status`.
    pub fn replying(status: u16) -> TestServer {
        Self::start(Arc::new(move |_, _| Reply::status(status)))
    }

    pub fn url(&self, prefix: &str) -> String {
        format!("http://{}{}", self.addr, prefix)
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("lock").clone()
    }

    /// The server name each TLS handshake carried.
    pub fn sni(&self) -> Vec<Option<String>> {
        self.state.sni.lock().expect("lock").clone()
    }

    /// Forgets what was received (the leak test would count it as growth).
    pub fn clear_received(&self) {
        let mut received = self.state.received.lock().expect("lock");
        *received = Vec::new();
    }

    /// Requests whose handler has started (body read), including those still held.
    pub fn arrived(&self) -> usize {
        self.state.arrived.load(SeqCst)
    }

    pub fn max_concurrent(&self) -> usize {
        self.state.max_concurrent.load(SeqCst)
    }

    /// Lets gated requests (held and future) be answered.
    pub fn open_gate(&self) {
        let _ = self.gate.send(true);
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[derive(Clone)]
struct Server {
    state: Arc<State>,
    behaviour: Behaviour,
    gate: tokio::sync::watch::Receiver<bool>,
}

impl serve_common::Handler for Server {
    async fn handle(self, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
        let (parts, body) = req.into_parts();
        let body = body.collect().await?.to_bytes();
        let received = Received {
            method: parts.method.to_string(),
            target: parts
                .uri
                .path_and_query()
                .map_or_else(String::new, |p| p.to_string()),
            headers: parts.headers,
            body,
            at: Instant::now(),
        };
        let nth = self.state.arrived.fetch_add(1, SeqCst);
        let reply = (self.behaviour)(nth, &received);
        self.state.received.lock().expect("lock").push(received);
        let now = self.state.current.fetch_add(1, SeqCst) + 1;
        self.state.max_concurrent.fetch_max(now, SeqCst);
        if !reply.delay.is_zero() {
            tokio::time::sleep(reply.delay).await;
        }
        if reply.gated {
            let mut gate = self.gate.clone();
            let _ = gate.wait_for(|open| *open).await;
        }
        self.state.current.fetch_sub(1, SeqCst);
        let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
        *response.status_mut() = hyper::StatusCode::from_u16(reply.status).expect("status");
        if let Some(value) = reply.retry_after {
            response.headers_mut().insert(
                hyper::header::RETRY_AFTER,
                hyper::header::HeaderValue::from_static(value),
            );
        }
        Ok(response)
    }

    fn tls_accepted(&self, sni: Option<String>) {
        self.state.sni.lock().expect("lock").push(sni);
    }
}

/// What a pool told its sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Outcome(u64, Outcome),
    Panic(&'static str),
    Closed(CloseReport),
}

sink_common::pool_event!(Event, DEADLINE, Duration::from_millis(2));

pub type ChanSink = sink_common::ChanSink<Event>;
/// The receiving end of a [`ChanSink`].
pub type Collector = sink_common::Collector<Event>;

impl Collector {
    pub fn new() -> (Collector, ChanSink) {
        Self::pair()
    }

    /// The next `n` events, failing the test after [`DEADLINE`].
    pub fn take(&self, n: usize) -> Vec<Event> {
        let deadline = Instant::now() + DEADLINE;
        (0..n)
            .map(|i| {
                self.rx
                    .recv_deadline(deadline)
                    .unwrap_or_else(|e| panic!("event {i} of {n} did not arrive: {e}"))
            })
            .collect()
    }
}

/// Polls `cond` until it holds, failing the test after [`DEADLINE`].
pub fn wait_until(what: &str, cond: impl FnMut() -> bool) {
    <Event as sink_common::PoolEvent>::wait_until(what, cond);
}

/// Just outcome values, for comparing without tags.
pub fn outcomes(events: &[Event]) -> Vec<Outcome> {
    events
        .iter()
        .map(|e| match e {
            Event::Outcome(_, o) => o.clone(),
            other => panic!("expected an outcome, got {other:?}"),
        })
        .collect()
}

pub fn config(base_url: String) -> HttpPoolConfig {
    HttpPoolConfig {
        base_url,
        workers: 4,
        request_timeout: Duration::from_secs(5),
        queue_capacity: 100,
        tls: None,
    }
}

pub fn job(tag: u64, path: &str) -> HttpJob<'_, u64> {
    HttpJob {
        tag,
        id: event_pusher_core::EventId::new(),
        path,
        headers: Default::default(),
        body: Bytes::from_static(b"body"),
        max_retries: 0,
        retry_base: Duration::ZERO,
        delivery: Default::default(),
    }
}

/// Status of a response outcome, panicking otherwise.
pub fn status(outcome: &Outcome) -> u16 {
    match outcome {
        Outcome::Response { status, .. } => *status,
        other => panic!("expected a response, got {other:?}"),
    }
}

/// Reason of an error outcome, panicking otherwise.
pub fn error_reason(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Error { reason, .. } => reason.to_string(),
        other => panic!("expected an error, got {other:?}"),
    }
}
