//! RabbitMQ pools: `workers` AMQP connections (one channel each, as in
//! MongooseIM), a bounded queue in front of them, pipelined publishes with
//! publisher confirms, reconnection with a fixed delay, and a bounded drain on
//! close.
//!
//! [`RabbitPool::publish`] is O(1) and never waits: it picks the worker from
//! the routing key (so one key always uses one channel and keeps its order),
//! counts the message against the pool's bound and hands it over. Each worker
//! (see [`worker`]) owns its connection and channel and publishes up to
//! [`MAX_IN_FLIGHT`] messages at once; with confirms on a message counts as
//! published only when the broker acks it, a nack or a confirm timeout
//! republishes it (at most [`MAX_ATTEMPTS`] failed attempts), and a lost
//! connection republishes everything unconfirmed on the next one.
//!
//! Reconnection policy (ours): after a lost connection the worker reconnects
//! at once; after a failed attempt it waits `reconnect_delay` (at least
//! [`MIN_RECONNECT_DELAY`]) and tries again, for as long as the pool lives.
//! `reconnect_attempts` is MongooseIM's limit, after which its worker gives up
//! and loses its queue; we never give up while the pool is open, so events
//! wait in the bounded queue (beyond the bound `publish` says `Overloaded` and
//! counts it) and are published once a connection is back. Every attempt that
//! fails is reported as a `Failed` connection event.
//!
//! The queue (one lane per worker, one bound for all), the close and the
//! counters are the shared pool runtime's ([`crate::pool`]); the workers and
//! declarations are this backend's [`pool::Strategy`] (see [`supervisor`]).

mod connect;
mod counters;
mod declare;
mod publish;
mod supervisor;
mod unroutable;
mod window;
mod wire;
mod worker;

use crate::pool::spool::{self, PersistTag, SpoolConfig, SpoolJob, SpoolSink, SpoolStats, Spooled};
use crate::pool::{self, DeadLetters, Intake, Letter};
use crate::report::{OutcomeSink, Reporter, Tag};
use crate::secret::Secret;
use crate::tls::TlsOptions;
use bytes::Bytes;
use counters::RabbitCounters;
use lapin::types::ShortString;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

pub use crate::pool::{StartError, DROP_DRAIN};
pub use counters::RabbitStats;
pub use declare::{DeclareFailure, DeclareResult, ExchangeSpec};
pub use unroutable::UnroutableNotice;
pub use wire::PublishOptions;

/// Publishes in flight (written and not yet confirmed) per channel. Enough
/// to keep a local broker busy; more costs CPU for nothing, as lapin settles
/// each multiple ack by scanning every pending confirm of the channel
/// (measured here: 256 gave the most messages/s and the least CPU per
/// message, 1000 about 20% more CPU).
pub const MAX_IN_FLIGHT: usize = 256;
/// Failed attempts (nack, confirm timeout, channel error) after which a
/// message is dropped as `RetriesExhausted`. A lost connection is not a
/// failed attempt: those messages are republished whatever the count.
pub const MAX_ATTEMPTS: u32 = 5;
/// Floor of the wait between failed connection attempts, so a zero delay
/// cannot spin.
pub const MIN_RECONNECT_DELAY: Duration = Duration::from_millis(100);
/// Bound on one connection attempt (TCP, TLS and the AMQP handshake).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A pool's settings, already typed; [`RabbitPool::start`] validates them.
#[derive(Debug, Clone)]
pub struct RabbitPoolConfig {
    pub host: String,
    pub port: u16,
    pub username: String,
    /// Never logged, never in an error or a `Debug` output.
    pub password: Secret,
    pub virtual_host: String,
    /// Channels in confirm mode: a message counts once acked.
    pub confirms_enabled: bool,
    /// MongooseIM's give-up limit; see the module doc for what we do instead.
    pub reconnect_attempts: u32,
    /// Wait between failed connection attempts.
    pub reconnect_delay: Duration,
    /// AMQP connections (one channel each).
    pub workers: usize,
    /// Messages that may wait (all workers together); beyond it `Overloaded`.
    pub queue_capacity: usize,
    /// An unconfirmed publish older than this counts as failed and is republished.
    pub confirm_timeout: Duration,
    /// TLS (AMQPS) when present, with the same options as an HTTP pool.
    pub tls: Option<TlsOptions>,
}

/// A change in one of the pool's connections (not tied to one message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionEvent {
    /// A worker connected and opened its channel.
    Opened,
    /// A connection that was open is gone (lost, or closed by `close`).
    Closed,
    /// A connection attempt failed; a person can read the reason.
    Failed(String),
    /// Mandatory messages came back unroutable since the last notice
    /// (rate-limited, see `unroutable`).
    Unroutable(UnroutableNotice),
}

/// Where a pool's connection events go. Called on the pool's reporter thread,
/// in order with the outcomes.
pub trait PoolEvents: Send + 'static {
    fn connection(&mut self, event: ConnectionEvent);
}

pool::submit_error! {
    /// The exchange name or routing key is longer than AMQP allows (255 bytes).
    TooLong => "exchange or routing key longer than 255 bytes"
}

/// A message inside the pool.
pub(crate) struct Message<T> {
    pub tag: T,
    /// The event's ID, made when the message entered the pool; republishes
    /// and replays from the spool keep it.
    pub id: crate::EventId,
    pub exchange: ShortString,
    pub routing_key: ShortString,
    pub body: Bytes,
    /// Position in the worker's arrival order, kept across republishes.
    pub order: u64,
    /// Failed attempts so far (nack, confirm timeout, channel error).
    pub failures: u32,
    pub options: PublishOptions,
    /// Set once the broker returned it (mandatory, no queue took it).
    pub returns: Option<unroutable::Returns>,
}

impl<T: Send + 'static> Letter for Message<Spooled<T>> {
    type Tag = T;
    fn id(&self) -> crate::EventId {
        self.id
    }
    fn tag(&self) -> &T {
        &self.tag.tag
    }
    fn target(&self) -> String {
        format!("{} {}", self.exchange, self.routing_key)
    }
    fn size(&self) -> usize {
        self.body.len()
    }
    fn reset(&mut self) {
        // Its spool record was acked when it became a dead letter: a
        // replay gets a new one from the spool (none without a spool).
        self.tag.seq = None;
        self.failures = 0;
    }
}

/// What the workers, declarations and the supervisor of a pool share.
pub(crate) struct Shared<T> {
    pub endpoint: connect::Endpoint,
    pub confirms: bool,
    pub reconnect_delay: Duration,
    pub confirm_timeout: Duration,
    pub counters: Arc<RabbitCounters>,
    pub reporter: Reporter<T>,
    pub events: Arc<Mutex<dyn PoolEvents>>,
    pub links: declare::Links,
    /// Exchanges declared through the pool: a new connection declares them
    /// again before it publishes (see `declare::Declared`).
    pub declared: declare::Declared,
    /// Where messages that failed for good go.
    pub dead: Arc<DeadLetters<Message<T>>>,
    /// Test hook: the next worker to loop panics.
    #[cfg(feature = "test-hooks")]
    pub fault: Arc<pool::Faults>,
}

impl<T: Tag> Shared<T> {
    /// Reports a connection event on the reporter thread, in order with outcomes.
    pub fn connection_event(&self, event: ConnectionEvent) {
        let events = self.events.clone();
        self.reporter.call(Box::new(move || {
            // A sink that panicked once keeps receiving events.
            let mut events = events.lock().unwrap_or_else(|e| e.into_inner());
            events.connection(event);
        }));
    }
}

/// A message's record in the spool: exchange, routing key, body.
impl<T: Send + 'static> SpoolJob for Message<Spooled<T>> {
    type Tag = T;
    fn id(&self) -> crate::EventId {
        self.id
    }
    fn tag(&self) -> &Spooled<T> {
        &self.tag
    }
    fn tag_mut(&mut self) -> &mut Spooled<T> {
        &mut self.tag
    }
    fn encode_fields(&self, out: &mut Vec<u8>) {
        use spool::record::{put_bytes, put_u32};
        put_bytes(out, self.exchange.as_str().as_bytes());
        put_bytes(out, self.routing_key.as_str().as_bytes());
        let options = &self.options;
        put_u32(
            out,
            u32::from(options.event_properties) | u32::from(options.persistent) << 1,
        );
        // u32::MAX: not mandatory; the retry time in ms otherwise.
        let mandatory = options.mandatory.map_or(u32::MAX, |time| {
            u32::try_from(time.as_millis()).unwrap_or(u32::MAX - 1)
        });
        put_u32(out, mandatory);
        out.extend_from_slice(&self.body);
    }
    fn decode_fields(fields: &[u8], id: crate::EventId, tag: Spooled<T>) -> Option<Self> {
        let mut fields = spool::record::Fields(fields);
        let exchange = ShortString::try_new(fields.str()?).ok()?;
        let routing_key = ShortString::try_new(fields.str()?).ok()?;
        let flags = fields.u32()?;
        let mandatory = match fields.u32()? {
            u32::MAX => None,
            ms => Some(Duration::from_millis(u64::from(ms))),
        };
        let options = PublishOptions {
            event_properties: flags & 1 != 0,
            persistent: flags & 2 != 0,
            mandatory,
        };
        Some(Message {
            tag,
            id,
            exchange,
            routing_key,
            body: Bytes::copy_from_slice(fields.0),
            order: 0,
            failures: 0,
            options,
            // A replay starts a new round of returns.
            returns: None,
        })
    }
}

/// The handle of a running pool. Dropping it closes the pool (drain [`DROP_DRAIN`]).
pub struct RabbitPool<T: Send + 'static> {
    intake: Intake<Message<Spooled<T>>, supervisor::Declare>,
    dead: Arc<DeadLetters<Message<Spooled<T>>>>,
    counters: Arc<RabbitCounters>,
    #[cfg(feature = "test-hooks")]
    faults: Arc<pool::Faults>,
}

impl<T: Tag> RabbitPool<T> {
    /// Starts a pool whose outcomes go to `sink` and connection events to
    /// `events`; connects in the background. Reads TLS files: call it where
    /// blocking for a few milliseconds is fine.
    pub fn start<S: OutcomeSink<T>, E: PoolEvents>(
        cfg: RabbitPoolConfig,
        sink: S,
        events: E,
    ) -> Result<Self, StartError> {
        Self::start_with(cfg, None, sink, events)
    }

    /// [`RabbitPool::start`] with a disk spool (see [`crate::pool::spool`]):
    /// what it holds from an earlier run is published first.
    pub fn start_spooled<S: OutcomeSink<T>, E: PoolEvents>(
        cfg: RabbitPoolConfig,
        spool: &SpoolConfig,
        sink: S,
        events: E,
    ) -> Result<Self, StartError>
    where
        T: PersistTag,
    {
        validate(&cfg)?;
        let opened = spool::open::<Message<Spooled<T>>>(spool)?;
        let mut pool = Self::start_with(cfg, Some(opened.acks()), sink, events)?;
        pool.intake
            .attach_spool(opened, &pool.dead, None)
            .map_err(StartError::Thread)?;
        Ok(pool)
    }

    fn start_with<S: OutcomeSink<T>, E: PoolEvents>(
        cfg: RabbitPoolConfig,
        acks: Option<crossbeam_channel::Sender<spool::Control>>,
        sink: S,
        events: E,
    ) -> Result<Self, StartError> {
        validate(&cfg)?;
        let endpoint = connect::Endpoint::new(&cfg)?;
        let counters = Arc::new(RabbitCounters::default());
        let dead = Arc::new(DeadLetters::new(pool::DEFAULT_CAPACITY));
        #[cfg(feature = "test-hooks")]
        let faults = Arc::new(pool::Faults::default());
        let (lanes, queues): (Vec<_>, Vec<_>) =
            (0..cfg.workers).map(|_| mpsc::unbounded_channel()).unzip();
        let intake = pool::start(
            "event_pusher_rmq",
            SpoolSink::new(sink, acks),
            counters.common.clone(),
            lanes,
            cfg.queue_capacity,
            |reporter, runtime| {
                let shared = Arc::new(Shared {
                    endpoint,
                    confirms: cfg.confirms_enabled,
                    reconnect_delay: cfg.reconnect_delay.max(MIN_RECONNECT_DELAY),
                    confirm_timeout: cfg.confirm_timeout,
                    counters: counters.clone(),
                    reporter,
                    events: Arc::new(Mutex::new(events)),
                    links: declare::Links::new(cfg.workers),
                    declared: declare::Declared::default(),
                    dead: dead.clone(),
                    #[cfg(feature = "test-hooks")]
                    fault: faults.clone(),
                });
                supervisor::spawn(runtime, shared, queues)
            },
        )?;
        Ok(RabbitPool {
            intake,
            dead,
            counters,
            #[cfg(feature = "test-hooks")]
            faults,
        })
    }

    /// Queues a message for `exchange` with `routing_key`, as MongooseIM
    /// publishes it. O(1), never waits.
    pub fn publish(
        &self,
        tag: T,
        exchange: &str,
        routing_key: &str,
        body: Bytes,
    ) -> Result<(), SubmitError> {
        self.publish_with(tag, exchange, routing_key, body, PublishOptions::default())
    }

    /// [`Self::publish`] with the wire options of [`PublishOptions`].
    pub fn publish_with(
        &self,
        tag: T,
        exchange: &str,
        routing_key: &str,
        body: Bytes,
        options: PublishOptions,
    ) -> Result<(), SubmitError> {
        self.intake.check_open()?;
        let (Ok(exchange), Ok(routing_key)) = (
            ShortString::try_new(exchange),
            ShortString::try_new(routing_key),
        ) else {
            return Err(SubmitError::TooLong);
        };
        let worker = self.worker_for(routing_key.as_str());
        let message = Message {
            tag: Spooled::new(tag),
            id: crate::EventId::new(),
            exchange,
            routing_key,
            body,
            order: 0,
            failures: 0,
            options,
            returns: None,
        };
        Ok(self.intake.push(worker, message)?)
    }
}

impl<T: Send + 'static> RabbitPool<T> {
    /// Queues a dead letter again, on its routing key's worker; gives it
    /// back if the queue refuses it.
    fn requeue(&self, message: Message<Spooled<T>>) -> Option<Message<Spooled<T>>> {
        let worker = self.worker_for(message.routing_key.as_str());
        self.intake.requeue(worker, message)
    }

    /// The worker of a routing key: the same key always goes to the same
    /// channel, which keeps its messages in order.
    fn worker_for(&self, routing_key: &str) -> usize {
        let lanes = self.intake.lanes();
        if lanes == 1 {
            return 0;
        }
        // A fixed-key hasher: stable for the pool's life, no per-call seed.
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(routing_key);
        (hash % lanes as u64) as usize
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> RabbitStats {
        self.counters.snapshot()
    }

    /// The spool's counters, for a pool started with one.
    pub fn spool_stats(&self) -> Option<SpoolStats> {
        self.intake.has_spool().then(|| self.intake.spool_stats())
    }

    /// Declares `exchanges` on a live connection of the pool (waiting for one
    /// for at most `timeout`, which also bounds the declarations), each on a
    /// fresh channel; `done` runs on the reporter thread with the failures.
    pub fn declare_exchanges(
        &self,
        exchanges: Vec<ExchangeSpec>,
        timeout: Duration,
        done: impl FnOnce(DeclareResult) + Send + 'static,
    ) {
        let request = supervisor::Declare {
            exchanges,
            timeout,
            done: Box::new(done),
        };
        self.intake.request(request, |refused| {
            (refused.done)(declare::all_failed(&refused.exchanges, "closed"))
        });
    }

    pool::handle_methods! {
        /// Test hook: make a worker panic once, the next time it loops.
        task_panic: inject_worker_panic,
    }
}

fn validate(cfg: &RabbitPoolConfig) -> Result<(), StartError> {
    let invalid = |msg: &str| Err(StartError::InvalidConfig(msg.to_owned()));
    if cfg.workers == 0 {
        return invalid("workers must be at least 1");
    }
    // Each worker is a connection with its own I/O thread in lapin.
    if cfg.workers > 1000 {
        return invalid("workers must be at most 1000");
    }
    if cfg.queue_capacity == 0 {
        return invalid("queue_capacity must be at least 1");
    }
    if cfg.confirm_timeout.is_zero() {
        return invalid("confirm_timeout must be at least 1 ms");
    }
    if cfg.host.is_empty() {
        return invalid("host must not be empty");
    }
    if cfg.port == 0 {
        return invalid("port must be in 1..65535");
    }
    if cfg.virtual_host.is_empty() {
        return invalid("virtual_host must not be empty");
    }
    Ok(())
}
