//! Test support for the rabbit pool: the real RabbitMQ on 127.0.0.1:5672
//! (guest/guest), a consumer that reads what the broker routed (with lapin,
//! on the pool's runtime), and a sink that collects a pool's outcomes,
//! connection events, declaration answers and close notices in order.
#![allow(dead_code)] // each test binary uses a different part

use crossbeam_channel::{Receiver, Sender};
use event_pusher_core::rabbit::{
    ConnectionEvent, DeclareResult, PoolEvents, RabbitPool, RabbitPoolConfig,
};
use event_pusher_core::secret::Secret;
use event_pusher_core::{runtime, CloseReport, Outcome};
use futures_util::StreamExt;
use lapin::options::{
    BasicConsumeOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "../sink_common/mod.rs"]
mod sink_common;

pub const DEADLINE: Duration = Duration::from_secs(20);
pub const BROKER: &str = "127.0.0.1:5672";
pub const AMQP_URI: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Whether the broker answers. Without it the tests skip (with a message)
/// unless `EP_REQUIRE_RABBIT` is set, as the test script sets it.
pub fn broker_available(test: &str) -> bool {
    let up = std::net::TcpStream::connect_timeout(
        &BROKER.parse().expect("address"),
        Duration::from_secs(1),
    )
    .is_ok();
    if !up {
        assert!(
            std::env::var_os("EP_REQUIRE_RABBIT").is_none(),
            "{test}: no RabbitMQ at {BROKER} and EP_REQUIRE_RABBIT is set \
             (start it with `bash scripts/services.sh start rabbitmq`)"
        );
        eprintln!(
            "SKIPPED {test}: no RabbitMQ at {BROKER} (bash scripts/services.sh start rabbitmq)"
        );
    }
    up
}

pub fn block_on<F: Future>(f: F) -> F::Output {
    runtime::handle().expect("runtime").block_on(f)
}

/// A name unique to this test run, for exchanges and queues.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "ep_test_{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn config(workers: usize, confirms: bool) -> RabbitPoolConfig {
    RabbitPoolConfig {
        host: "127.0.0.1".into(),
        port: 5672,
        username: "guest".into(),
        password: Secret("guest".into()),
        virtual_host: "/".into(),
        confirms_enabled: confirms,
        reconnect_attempts: 0,
        reconnect_delay: Duration::from_millis(200),
        workers,
        queue_capacity: 10_000,
        confirm_timeout: Duration::from_secs(5),
        tls: None,
    }
}

/// Everything a pool told us, in the order it arrived.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Outcome(u64, Outcome),
    Panic(&'static str),
    Connection(ConnectionEvent),
    Declared(DeclareResult),
    Closed(CloseReport),
}

sink_common::pool_event!(Event, DEADLINE, Duration::from_millis(5));

pub type ChanSink = sink_common::ChanSink<Event>;
pub type Collector = sink_common::Collector<Event>;

pub struct ChanEvents(Sender<Event>);

impl PoolEvents for ChanEvents {
    fn connection(&mut self, event: ConnectionEvent) {
        let _ = self.0.send(Event::Connection(event));
    }
}

impl Collector {
    pub fn new() -> (Collector, ChanSink, ChanEvents) {
        let (collector, sink) = Self::pair();
        let events = ChanEvents(collector.tx.clone());
        (collector, sink, events)
    }

    pub fn on_declared(&self) -> impl FnOnce(DeclareResult) + Send + 'static {
        let tx = self.tx.clone();
        move |result| {
            let _ = tx.send(Event::Declared(result));
        }
    }

    /// The next event, failing the test after [`DEADLINE`].
    pub fn next(&self) -> Event {
        self.rx
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|e| panic!("no event arrived: {e}"))
    }

    /// Events until `pred` holds for one (returned last), failing after [`DEADLINE`].
    pub fn until(&self, what: &str, mut pred: impl FnMut(&Event) -> bool) -> Vec<Event> {
        let deadline = Instant::now() + DEADLINE;
        let mut got = Vec::new();
        loop {
            match self.rx.recv_deadline(deadline) {
                Ok(event) => {
                    let done = pred(&event);
                    got.push(event);
                    if done {
                        return got;
                    }
                }
                Err(_) => panic!("timed out waiting for {what}; got {got:?}"),
            }
        }
    }

    /// Waits for the declaration answer (other events before it are returned too).
    pub fn declared(&self) -> (DeclareResult, Vec<Event>) {
        let mut events = self.until("declared", |e| matches!(e, Event::Declared(_)));
        match events.pop() {
            Some(Event::Declared(result)) => (result, events),
            _ => unreachable!(),
        }
    }

    /// Waits for `n` outcomes, setting aside every other event.
    pub fn outcomes(&self, n: usize) -> (Vec<(u64, Outcome)>, Vec<Event>) {
        let mut outcomes = Vec::new();
        let mut others = Vec::new();
        let deadline = Instant::now() + DEADLINE;
        while outcomes.len() < n {
            match self.rx.recv_deadline(deadline) {
                Ok(Event::Outcome(tag, outcome)) => outcomes.push((tag, outcome)),
                Ok(other) => others.push(other),
                Err(_) => panic!(
                    "only {} of {n} outcomes arrived; other events {others:?}",
                    outcomes.len()
                ),
            }
        }
        (outcomes, others)
    }
}

/// Polls `cond` until it holds, failing the test after [`DEADLINE`].
pub fn wait_until(what: &str, cond: impl FnMut() -> bool) {
    <Event as sink_common::PoolEvent>::wait_until(what, cond);
}

/// Starts a pool with a collector.
pub fn start(cfg: RabbitPoolConfig) -> (RabbitPool<u64>, Collector) {
    let (collector, sink, events) = Collector::new();
    let pool = RabbitPool::start(cfg, sink, events).expect("pool starts");
    (pool, collector)
}

/// Closes a pool and returns everything it reported until its close notice.
pub fn close(
    pool: &RabbitPool<u64>,
    events: &Collector,
    drain: Duration,
) -> (CloseReport, Vec<Event>) {
    pool.close(drain, events.on_close());
    let mut got = events.until("closed", |e| matches!(e, Event::Closed(_)));
    match got.pop() {
        Some(Event::Closed(report)) => (report, got),
        _ => unreachable!(),
    }
}

/// One message as the broker delivered it.
#[derive(Debug, Clone)]
pub struct Got {
    pub exchange: String,
    pub routing_key: String,
    pub properties: BasicProperties,
    pub body: Vec<u8>,
}

/// A test connection to the broker, for declaring and consuming.
pub struct TestBroker {
    connection: Connection,
}

impl TestBroker {
    pub fn connect() -> TestBroker {
        let connection = block_on(async {
            let props =
                ConnectionProperties::default().with_connection_name("ep_test_consumer".into());
            Connection::connect(AMQP_URI, props).await
        })
        .expect("test connection to the broker");
        TestBroker { connection }
    }

    /// Declares an exchange as the test wants it (on its own channel).
    pub fn declare_exchange(
        &self,
        name: &str,
        kind: ExchangeKind,
        durable: bool,
    ) -> Result<(), String> {
        let options = ExchangeDeclareOptions {
            durable,
            ..Default::default()
        };
        self.exchange_declare(name, kind, options)
    }

    /// An exchange declare on a channel of its own (a failed one closes it).
    fn exchange_declare(
        &self,
        name: &str,
        kind: ExchangeKind,
        options: ExchangeDeclareOptions,
    ) -> Result<(), String> {
        block_on(async {
            let ch = self
                .connection
                .create_channel()
                .await
                .map_err(|e| e.to_string())?;
            let result = ch
                .exchange_declare(name.into(), kind, options, FieldTable::default())
                .await
                .map_err(|e| e.to_string());
            let _ = ch.close(200, "OK".into()).await;
            result
        })
    }

    /// Whether the broker has the exchange (a passive declare; the kind is
    /// not compared).
    pub fn exchange_exists(&self, name: &str) -> bool {
        let options = ExchangeDeclareOptions {
            passive: true,
            ..Default::default()
        };
        self.exchange_declare(name, ExchangeKind::Topic, options)
            .is_ok()
    }

    pub fn delete_exchange(&self, name: &str) {
        block_on(async {
            if let Ok(ch) = self.connection.create_channel().await {
                let _ = ch
                    .exchange_delete(name.into(), ExchangeDeleteOptions::default())
                    .await;
                let _ = ch.close(200, "OK".into()).await;
            }
        });
    }

    /// An exclusive queue bound to `exchange` with `binding_key`, consumed
    /// at once (auto-ack); `arguments` are the queue's (e.g. x-max-length).
    pub fn queue(&self, exchange: &str, binding_key: &str, arguments: FieldTable) -> TestQueue {
        let (tx, rx) = crossbeam_channel::unbounded();
        let (ch, name) = block_on(async {
            let ch = self.connection.create_channel().await.expect("channel");
            let name = bound_queue(&ch, exchange, binding_key, arguments).await;
            (ch, name)
        });
        let consumer = block_on(ch.basic_consume(
            name.as_str().into(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        ))
        .expect("consuming");
        runtime::handle().expect("runtime").spawn(async move {
            let _channel = ch; // keeps the channel open while consuming
            let mut consumer = consumer;
            while let Some(Ok(delivery)) = consumer.next().await {
                let got = Got {
                    exchange: delivery.exchange.to_string(),
                    routing_key: delivery.routing_key.to_string(),
                    properties: delivery.properties.clone(),
                    body: delivery.data,
                };
                if tx.send(got).is_err() {
                    break;
                }
            }
        });
        TestQueue { name, rx }
    }
}

impl TestBroker {
    /// A queue bound to `exchange` that nobody consumes (e.g. to fill it up).
    pub fn idle_queue(&self, exchange: &str, binding_key: &str, arguments: FieldTable) -> String {
        block_on(async {
            let ch = self.connection.create_channel().await.expect("channel");
            bound_queue(&ch, exchange, binding_key, arguments).await
        })
    }
}

/// A server-named exclusive queue on `ch`, bound to `exchange`; its name.
async fn bound_queue(
    ch: &Channel,
    exchange: &str,
    binding_key: &str,
    arguments: FieldTable,
) -> String {
    let queue = ch
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            arguments,
        )
        .await
        .expect("queue declared");
    let name = queue.name().to_string();
    ch.queue_bind(
        name.as_str().into(),
        exchange.into(),
        binding_key.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("queue bound");
    name
}

pub struct TestQueue {
    pub name: String,
    rx: Receiver<Got>,
}

impl TestQueue {
    /// The next `n` deliveries, failing after [`DEADLINE`].
    pub fn take(&self, n: usize) -> Vec<Got> {
        let deadline = Instant::now() + DEADLINE;
        (0..n)
            .map(|i| {
                self.rx
                    .recv_deadline(deadline)
                    .unwrap_or_else(|e| panic!("delivery {i} of {n} did not arrive: {e}"))
            })
            .collect()
    }

    /// Deliveries until `done` says the set is complete.
    pub fn take_until(&self, mut done: impl FnMut(&[Got]) -> bool) -> Vec<Got> {
        let deadline = Instant::now() + DEADLINE;
        let mut got = Vec::new();
        while !done(&got) {
            match self.rx.recv_deadline(deadline) {
                Ok(d) => got.push(d),
                Err(_) => panic!("timed out after {} deliveries", got.len()),
            }
        }
        got
    }

    pub fn assert_quiet(&self, wait: Duration) {
        if let Ok(got) = self.rx.recv_timeout(wait) {
            panic!("unexpected delivery {got:?}");
        }
    }
}

/// Closes the broker connections this test process's pools opened (by their
/// connection name and their port: other processes may run pools on the
/// same broker), leaving the test consumer's alone, as a broker would when
/// an operator closes them or the node shuts down.
pub fn close_pool_connections() -> usize {
    let ours = local_ports_to_broker();
    let out = rabbitmqctl(&[
        "list_connections",
        "-q",
        "--no-table-headers",
        "pid",
        "peer_port",
        "client_properties",
    ]);
    let mut closed = 0;
    for line in out.lines() {
        if !line.contains("\"mongoose_event_pusher\"") {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(pid), Some(port)) = (words.next(), words.next()) else {
            continue;
        };
        if !port.parse().is_ok_and(|p: u16| ours.contains(&p)) {
            continue;
        }
        rabbitmqctl(&["close_connection", pid, "test: closed by the broker"]);
        closed += 1;
    }
    closed
}

/// Local ports of this process's TCP connections to the broker.
fn local_ports_to_broker() -> std::collections::HashSet<u16> {
    let inodes: std::collections::HashSet<String> = std::fs::read_dir("/proc/self/fd")
        .expect("procfs")
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|link| {
            let link = link.to_string_lossy().into_owned();
            link.strip_prefix("socket:[")
                .and_then(|rest| rest.strip_suffix(']'))
                .map(str::to_owned)
        })
        .collect();
    let table = std::fs::read_to_string("/proc/self/net/tcp").expect("procfs");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (local, remote, inode) = (cols.get(1)?, cols.get(2)?, cols.get(9)?);
            // 127.0.0.1:5672 as the kernel writes it.
            if *remote != "0100007F:1628" || !inodes.contains(*inode) {
                return None;
            }
            u16::from_str_radix(local.rsplit(':').next()?, 16).ok()
        })
        .collect()
}

fn rabbitmqctl(args: &[&str]) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = std::process::Command::new("bash")
        .arg(root.join("scripts/services.sh"))
        .arg("ctl")
        .args(args)
        .output()
        .expect("rabbitmqctl runs");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A TCP proxy in front of the broker that the test can cut (every proxied
/// connection dies at once, as when a network or the broker fails), disable
/// (new connections are dropped right after accept) and enable again, or
/// stall (nothing flows from the broker to the client until `resume`).
pub struct Proxy {
    pub port: u16,
    enabled: Arc<std::sync::atomic::AtomicBool>,
    stalled: Arc<std::sync::atomic::AtomicBool>,
    cut: Arc<std::sync::Mutex<tokio_util::sync::CancellationToken>>,
    stop: tokio_util::sync::CancellationToken,
}

impl Proxy {
    pub fn start() -> Proxy {
        let listener = block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let enabled = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let stalled = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let cut = Arc::new(std::sync::Mutex::new(
            tokio_util::sync::CancellationToken::new(),
        ));
        let stop = tokio_util::sync::CancellationToken::new();
        let (en, sl, ct, st) = (enabled.clone(), stalled.clone(), cut.clone(), stop.clone());
        runtime::handle().expect("runtime").spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = st.cancelled() => return,
                    a = listener.accept() => a,
                };
                let Ok((client, _)) = accepted else { continue };
                if !en.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection end
                }
                let token = ct.lock().unwrap().clone();
                let (st, sl) = (st.clone(), sl.clone());
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(BROKER).await else {
                        return;
                    };
                    let (mut client_rx, mut client_tx) = client.into_split();
                    let (mut server_rx, mut server_tx) = server.into_split();
                    let up = tokio::io::copy(&mut client_rx, &mut server_tx);
                    let down = async {
                        use tokio::io::{AsyncReadExt, AsyncWriteExt};
                        let mut buf = vec![0u8; 64 * 1024];
                        loop {
                            let n = server_rx.read(&mut buf).await?;
                            if n == 0 {
                                return Ok::<(), std::io::Error>(());
                            }
                            // Checked after the read: what arrives while
                            // stalled is held back, whenever it was read.
                            while sl.load(Ordering::SeqCst) {
                                tokio::time::sleep(Duration::from_millis(5)).await;
                            }
                            client_tx.write_all(&buf[..n]).await?;
                        }
                    };
                    tokio::select! {
                        _ = token.cancelled() => {}
                        _ = st.cancelled() => {}
                        _ = up => {}
                        _ = down => {}
                    }
                });
            }
        });
        Proxy {
            port,
            enabled,
            stalled,
            cut,
            stop,
        }
    }

    /// Kills every proxied connection and refuses new ones until `enable`.
    pub fn outage(&self) {
        self.enabled.store(false, Ordering::SeqCst);
        let mut cut = self.cut.lock().unwrap();
        cut.cancel();
        *cut = tokio_util::sync::CancellationToken::new();
    }

    pub fn enable(&self) {
        self.enabled.store(true, Ordering::SeqCst);
    }

    /// Holds back everything the broker sends (confirms included).
    pub fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }

    pub fn resume(&self) {
        self.stalled.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
