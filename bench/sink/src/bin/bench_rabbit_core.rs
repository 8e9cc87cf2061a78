//! The raw lapin row of the RabbitMQ benchmark (scripts/bench_rabbit.sh): one
//! lapin connection and channel publishing as fast as lapin allows, no BEAM,
//! no pool: the limit of the Rust client alone.
//!
//! `bench_rabbit_core EVENTS off|on` publishes EVENTS chat-message events to
//! the topic exchange `chat_msg` (routing keys `user<N>@localhost.chat_msg_sent`,
//! N cycling over 1..100), with the finish line of the other rows: the queue
//! `ep_bench_queue` bound with `#` holds every message. With `off` each publish
//! is awaited until written; with `on` the channel is in confirm mode and up
//! to [`WINDOW`] publishes await their confirm. Prints one `RESULT
//! row=lapin_<off|on>_1 ...` line: events/s and this process's CPU per event.
//! The broker is `amqp://guest:guest@127.0.0.1:5672/%2f`, or `$AMQP_URL`.

use std::collections::VecDeque;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bench_sink::{CpuError, ProcessCpu};

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions, QueuePurgeOptions,
};
use lapin::types::{FieldTable, ShortString};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
    PublisherConfirm,
};

const DEFAULT_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const EXCHANGE: &str = "chat_msg";
const QUEUE: &str = "ep_bench_queue";
/// What the event pusher publishes for the other rows' chat message.
const BODY: &[u8] = br#"{"from_user_id":"user1@localhost","message":"Hello from the benchmark","to_user_id":"bob@localhost"}"#;
/// Distinct senders, as the other rows' callers.
const USERS: usize = 100;
const WARMUP_EVENTS: u64 = 2000;
/// Publishes awaiting their confirm at most (as our pool's channels).
const WINDOW: usize = 1000;
const POLL_EVERY: Duration = Duration::from_millis(2);
const DELIVERY_DEADLINE: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
enum BenchError {
    #[error("usage: bench_rabbit_core EVENTS off|on ({0})")]
    Usage(String),
    #[error("cannot build the tokio runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("{what}: {source}")]
    Amqp {
        what: &'static str,
        #[source]
        source: lapin::Error,
    },
    #[error("no confirm requested for a publish on a channel in confirm mode")]
    NotConfirmed,
    #[error("only {in_queue} of {expected} messages reached {QUEUE} within {DELIVERY_DEADLINE:?}")]
    Undelivered { in_queue: u32, expected: u64 },
    #[error("cannot read this process's CPU time: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Cpu(#[from] CpuError),
}

/// Attaches what was being done to a lapin error.
trait Context<T> {
    fn doing(self, what: &'static str) -> Result<T, BenchError>;
}

impl<T> Context<T> for Result<T, lapin::Error> {
    fn doing(self, what: &'static str) -> Result<T, BenchError> {
        self.map_err(|source| BenchError::Amqp { what, source })
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Confirms {
    Off,
    On,
}

impl Confirms {
    fn name(self) -> &'static str {
        match self {
            Confirms::Off => "off",
            Confirms::On => "on",
        }
    }
}

fn main() -> ExitCode {
    bench_sink::main_of("bench_rabbit_core", run)
}

fn run() -> Result<(), BenchError> {
    let mut args = std::env::args().skip(1);
    let events: u64 = args
        .next()
        .ok_or_else(|| BenchError::Usage("missing EVENTS".into()))?
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| BenchError::Usage("EVENTS must be a positive integer".into()))?;
    let confirms = match args.next().as_deref() {
        Some("off") => Confirms::Off,
        Some("on") => Confirms::On,
        other => return Err(BenchError::Usage(format!("bad confirms: {other:?}"))),
    };
    let url = std::env::var("AMQP_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_URL.into());
    let cpu = ProcessCpu::new()?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(BenchError::Runtime)?
        .block_on(bench(&url, events, confirms, &cpu))
}

async fn bench(
    url: &str,
    events: u64,
    confirms: Confirms,
    cpu: &ProcessCpu,
) -> Result<(), BenchError> {
    let conn = Connection::connect(url, ConnectionProperties::default())
        .await
        .doing("connect")?;
    let channel = conn.create_channel().await.doing("open a channel")?;
    declare(&channel).await?;
    if confirms == Confirms::On {
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .doing("confirm.select")?;
    }
    let keys: Vec<ShortString> = (1..=USERS)
        .map(|n| format!("user{n}@localhost.chat_msg_sent").into())
        .collect();

    // Warm-up: the connection's buffers and the broker's queue process.
    let warm_nacked = publish_all(&channel, &keys, WARMUP_EVENTS, confirms).await?;
    wait_queue(&channel, WARMUP_EVENTS - warm_nacked).await?;
    purge(&channel).await?;

    let cpu0 = cpu.micros()?;
    let start = Instant::now();
    let nacked = publish_all(&channel, &keys, events, confirms).await?;
    // A nacked message never reaches the queue: wait for the others.
    let delivered = events - nacked;
    wait_queue(&channel, delivered).await?;
    let elapsed = start.elapsed().as_secs_f64();
    let cpu1 = cpu.micros()?;

    println!(
        "RESULT row=lapin_{c}_1 kind=lapin confirms={c} workers=1 events={events} \
         seconds={elapsed:.3} events_per_s={:.1} cpu_us_per_event={:.2} nacked={nacked} \
         dropped={nacked}",
        delivered as f64 / elapsed,
        cpu1.saturating_sub(cpu0) as f64 / events as f64,
        c = confirms.name(),
    );
    if nacked > 0 {
        eprintln!("bench_rabbit_core: the broker nacked {nacked} of {events} messages");
    }
    // The next row starts from an empty queue.
    purge(&channel).await?;
    conn.close(200, "bye".into()).await.doing("close")?;
    Ok(())
}

/// What the Erlang rows declare (bench_rabbit.erl through ep_amqp): the
/// exchange as mod_event_pusher_rabbit declares it by default (topic, not
/// durable) and a durable queue bound with `#`, then empties the queue.
async fn declare(channel: &Channel) -> Result<(), BenchError> {
    channel
        .exchange_declare(
            EXCHANGE.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .doing("declare the exchange")?;
    channel
        .queue_declare(
            QUEUE.into(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        )
        .await
        .doing("declare the queue")?;
    channel
        .queue_bind(
            QUEUE.into(),
            EXCHANGE.into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .doing("bind the queue")?;
    purge(channel).await
}

/// Publishes `n` messages, each awaited until lapin has written it; with
/// confirms, keeps up to [`WINDOW`] confirms pending and awaits every one.
/// Returns how many the broker nacked.
async fn publish_all(
    channel: &Channel,
    keys: &[ShortString],
    n: u64,
    confirms: Confirms,
) -> Result<u64, BenchError> {
    let exchange: ShortString = EXCHANGE.into();
    // The broker confirms a channel's publishes in order, so awaiting the
    // oldest first costs no time a set of futures would save.
    let mut window: VecDeque<PublisherConfirm> = VecDeque::with_capacity(WINDOW);
    let mut nacked = 0;
    for (_, key) in (0..n).zip(keys.iter().cycle()) {
        let confirm = channel
            .basic_publish(
                exchange.clone(),
                key.clone(),
                BasicPublishOptions::default(),
                BODY,
                BasicProperties::default(),
            )
            .await
            .doing("basic.publish")?;
        if confirms == Confirms::On {
            if window.len() >= WINDOW {
                if let Some(oldest) = window.pop_front() {
                    nacked += settle(oldest).await?;
                }
            }
            window.push_back(confirm);
        }
    }
    for confirm in window {
        nacked += settle(confirm).await?;
    }
    Ok(nacked)
}

/// 1 if the broker nacked the publish, 0 if it acked it.
async fn settle(confirm: PublisherConfirm) -> Result<u64, BenchError> {
    match confirm.await.doing("publisher confirm")? {
        Confirmation::Ack(_) => Ok(0),
        Confirmation::Nack(_) => Ok(1),
        Confirmation::NotRequested => Err(BenchError::NotConfirmed),
    }
}

/// Polls the queue's length (a passive declare) until it holds `expected`.
async fn wait_queue(channel: &Channel, expected: u64) -> Result<(), BenchError> {
    let deadline = Instant::now() + DELIVERY_DEADLINE;
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    loop {
        let in_queue = channel
            .queue_declare(QUEUE.into(), passive, FieldTable::default())
            .await
            .doing("read the queue's length")?
            .message_count();
        if u64::from(in_queue) >= expected {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(BenchError::Undelivered { in_queue, expected });
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

async fn purge(channel: &Channel) -> Result<(), BenchError> {
    channel
        .queue_purge(QUEUE.into(), QueuePurgeOptions::default())
        .await
        .doing("purge the queue")?;
    Ok(())
}
