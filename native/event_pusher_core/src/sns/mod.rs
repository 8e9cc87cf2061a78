//! SNS pools: a bounded queue in front of an aws-sdk-sns client, at most
//! `pool_size` requests in flight, MongooseIM's retry backoff, optional
//! batching with `PublishBatch`, and a bounded drain on close.
//!
//! [`SnsPool::publish`] is O(1) and never waits: it counts the job against
//! the queue capacity and hands it to the dispatcher (see [`dispatch`], this
//! backend's [`pool::Strategy`]), which groups queued jobs by topic and
//! starts one request task per batch (see [`request`]); every outcome goes to
//! the pool's reporter. Queue, close and counters are the shared pool
//! runtime's ([`crate::pool`]).

mod backoff;
mod client;
mod dispatch;
mod fifo;
mod reason;
mod request;

use crate::pool::spool::{self, PersistTag, SpoolConfig, SpoolJob, SpoolSink, Spooled};
use crate::pool::{self, DeadLetters, Intake, Letter};
use crate::report::{OutcomeSink, Tag};
use crate::secret::Secret;
use crate::stats::Counters;
use aws_sdk_sns::types::MessageAttributeValue;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

pub use crate::pool::{StartError, DROP_DRAIN};
pub use backoff::backoff;

/// Bound on one request (connect, send, read the answer) unless configured.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Most entries in one `PublishBatch` request (the SNS limit).
pub const MAX_BATCH: usize = 10;

/// Most payload bytes (messages and attributes) in one PublishBatch: SNS
/// rejects a larger request whole (`BatchRequestTooLong`), so a batch stops
/// growing before this.
pub const MAX_BATCH_BYTES: usize = 256 * 1024;

/// A pool's settings, already typed; [`SnsPool::start`] validates the values.
#[derive(Debug, Clone)]
pub struct SnsPoolConfig {
    /// `https://host`, `http://host:port`, or a bare host (then `https://host`).
    pub endpoint: String,
    /// Signs the requests.
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: Secret,
    /// Most requests in flight at once.
    pub pool_size: usize,
    /// Retries of a failed publish (MongooseIM's `publish_retry_count`).
    pub retry_count: u32,
    /// Base of the backoff (MongooseIM's `publish_retry_time_ms`); zero retries at once.
    pub retry_time: Duration,
    /// Send notifications queued for one topic together with `PublishBatch`.
    pub batching: bool,
    /// Jobs that may wait; beyond that `publish` is `Overloaded`.
    pub queue_capacity: usize,
    /// Bound on one request. Zero makes every attempt time out unsent.
    pub request_timeout: Duration,
}

/// The type and value of one message attribute, as SNS takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeValue {
    /// `DataType=String`, `StringValue`.
    String(String),
    /// `DataType=Binary`, `BinaryValue` (raw bytes; base64 on the wire).
    Binary(Vec<u8>),
    /// `DataType=Number`, `StringValue` holding the number's text.
    Number(String),
}

/// One notification to publish.
#[derive(Debug)]
pub struct SnsJob<T> {
    pub tag: T,
    /// The event's ID; every attempt of the job carries it.
    pub id: crate::EventId,
    pub topic_arn: String,
    /// The message body (our JSON), published as a plain `Message`.
    pub message: String,
    pub attributes: Vec<(String, AttributeValue)>,
    /// The `MessageGroupId` on a FIFO topic (the user's bare JID); ignored
    /// on a standard topic. See [`fifo`].
    pub group: Option<String>,
}

pool::submit_error! {
    /// An attribute the SDK cannot represent.
    InvalidAttribute => "invalid attribute"
}

/// A snapshot of an SNS pool's counters (the NIF's `pool_stats/1` map).
///
/// Once idle: `submitted = published + dropped_retries_exhausted + dropped_closed`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnsStats {
    /// Jobs accepted by `publish`.
    pub submitted: u64,
    /// Jobs SNS accepted.
    pub published: u64,
    /// `publish` calls refused (overloaded or closed).
    pub rejected: u64,
    /// Job attempts that failed (a request error, or the job's entry of a batch).
    pub failed_attempts: u64,
    /// Job attempts after the first one.
    pub retried: u64,
    /// HTTP requests made to SNS (`Publish` or `PublishBatch`).
    pub requests: u64,
    /// Jobs waiting now.
    pub queued: u64,
    /// Jobs taken from the queue and not finished (sending or waiting to retry).
    pub in_flight: u64,
    /// `publish` calls refused because the queue was full.
    pub dropped_overloaded: u64,
    /// Accepted jobs given up because the pool closed before they finished.
    pub dropped_closed: u64,
    /// Accepted jobs given up after their last retry failed.
    pub dropped_retries_exhausted: u64,
    /// Panics caught (and recovered from) in the pool's tasks or reporter.
    pub panics: u64,
}

/// The live counters: the common ones (`sent` counts published jobs) plus
/// what only SNS pools have.
#[derive(Debug, Default)]
pub(crate) struct SnsCounters {
    pub common: Arc<Counters>,
    pub requests: AtomicU64,
}

/// A job inside the pool: attributes in the SDK's form, ready to send.
pub(crate) struct Job<T> {
    tag: T,
    /// Kept by retries and by replays from the spool.
    id: crate::EventId,
    topic: Arc<str>,
    message: String,
    attributes: Option<HashMap<String, MessageAttributeValue>>,
    /// Set on a FIFO topic only.
    fifo: Option<fifo::FifoIds>,
}

impl<T> Job<T> {
    /// What this job adds to a batch's size as SNS counts it (message plus
    /// attribute names, types and values).
    pub(crate) fn payload_bytes(&self) -> usize {
        let attributes = self.attributes.as_ref().map_or(0, |attrs| {
            attrs
                .iter()
                .map(|(name, v)| {
                    name.len()
                        + v.data_type().len()
                        + v.string_value().map_or(0, str::len)
                        + v.binary_value().map_or(0, |b| b.as_ref().len())
                })
                .sum()
        });
        self.message.len() + attributes
    }
}

/// A job's record in the spool: topic, message, attributes as SNS takes them.
impl<T: Send + 'static> SpoolJob for Job<Spooled<T>> {
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
        put_bytes(out, self.topic.as_bytes());
        put_bytes(out, self.message.as_bytes());
        let attributes = self.attributes.iter().flatten();
        put_u32(out, self.attributes.as_ref().map_or(0, |a| a.len() as u32));
        for (name, value) in attributes {
            put_bytes(out, name.as_bytes());
            put_bytes(out, value.data_type().as_bytes());
            match value.binary_value() {
                Some(blob) => {
                    put_u32(out, 1);
                    put_bytes(out, blob.as_ref());
                }
                None => {
                    put_u32(out, 0);
                    put_bytes(out, value.string_value().unwrap_or_default().as_bytes());
                }
            }
        }
        match &self.fifo {
            Some(ids) => {
                put_u32(out, 1);
                put_bytes(out, ids.group.as_bytes());
                put_bytes(out, ids.deduplication.as_bytes());
            }
            None => put_u32(out, 0),
        }
    }
    fn decode_fields(fields: &[u8], id: crate::EventId, tag: Spooled<T>) -> Option<Self> {
        let mut f = spool::record::Fields(fields);
        let topic = Arc::from(f.str()?);
        let message = f.str()?.to_owned();
        let count = f.u32()?;
        let mut attributes = HashMap::with_capacity(count.min(64) as usize);
        for _ in 0..count {
            let name = f.str()?.to_owned();
            let builder = MessageAttributeValue::builder().data_type(f.str()?);
            let builder = match f.u32()? {
                1 => builder.binary_value(aws_sdk_sns::primitives::Blob::new(f.bytes()?)),
                _ => builder.string_value(f.str()?),
            };
            attributes.insert(name, builder.build().ok()?);
        }
        let fifo = match f.u32()? {
            1 => Some(fifo::FifoIds {
                group: f.str()?.to_owned(),
                deduplication: f.str()?.to_owned(),
            }),
            _ => None,
        };
        Some(Job {
            tag,
            id,
            topic,
            message,
            attributes: (count > 0).then_some(attributes),
            fifo,
        })
    }
}

/// The handle of a running pool. Dropping it closes the pool (drain [`DROP_DRAIN`]).
pub struct SnsPool<T: Send + 'static> {
    intake: Intake<Job<Spooled<T>>, Infallible>,
    dead: Arc<DeadLetters<Job<Spooled<T>>>>,
    counters: Arc<SnsCounters>,
    #[cfg(feature = "test-hooks")]
    faults: Arc<pool::Faults>,
}

impl<T: Tag> SnsPool<T> {
    /// Starts a pool whose outcomes go to `sink`. Does no I/O: the SDK client
    /// connects on the first request.
    pub fn start<S: OutcomeSink<T>>(cfg: SnsPoolConfig, sink: S) -> Result<Self, StartError> {
        Self::start_with(cfg, None, sink)
    }

    /// [`SnsPool::start`] with a disk spool (see [`crate::pool::spool`]):
    /// what it holds from an earlier run is published first.
    pub fn start_spooled<S: OutcomeSink<T>>(
        cfg: SnsPoolConfig,
        spool: &SpoolConfig,
        sink: S,
    ) -> Result<Self, StartError>
    where
        T: PersistTag,
    {
        validate(&cfg)?;
        let opened = spool::open::<Job<Spooled<T>>>(spool)?;
        let mut pool = Self::start_with(cfg, Some(opened.acks()), sink)?;
        pool.intake
            .attach_spool(opened, &pool.dead, None)
            .map_err(StartError::Thread)?;
        Ok(pool)
    }

    fn start_with<S: OutcomeSink<T>>(
        cfg: SnsPoolConfig,
        acks: Option<crossbeam_channel::Sender<spool::Control>>,
        sink: S,
    ) -> Result<Self, StartError> {
        validate(&cfg)?;
        let client = client::build(&cfg).map_err(StartError::InvalidConfig)?;
        let counters = Arc::new(SnsCounters::default());
        let dead = Arc::new(DeadLetters::new(pool::DEFAULT_CAPACITY));
        #[cfg(feature = "test-hooks")]
        let faults = Arc::new(pool::Faults::default());
        let (lane, queue) = mpsc::unbounded_channel();
        let intake = pool::start(
            "event_pusher_sns",
            SpoolSink::new(sink, acks),
            counters.common.clone(),
            vec![lane],
            cfg.queue_capacity,
            |reporter, _runtime| {
                let (signals, signals_rx) = mpsc::unbounded_channel();
                let shared = request::Shared {
                    client,
                    request_timeout: cfg.request_timeout,
                    retry_count: cfg.retry_count,
                    retry_time: cfg.retry_time,
                    counters: counters.clone(),
                    reporter,
                    signals,
                    dead: dead.clone(),
                    hard_stop: tokio_util::sync::CancellationToken::new(),
                    #[cfg(feature = "test-hooks")]
                    faults: faults.clone(),
                };
                let settings = dispatch::Settings {
                    pool_size: cfg.pool_size,
                    batching: cfg.batching,
                };
                dispatch::Dispatcher::new(shared, settings, queue, signals_rx)
            },
        )?;
        Ok(SnsPool {
            intake,
            dead,
            counters,
            #[cfg(feature = "test-hooks")]
            faults,
        })
    }

    /// Queues a notification. O(1), never waits.
    pub fn publish(&self, job: SnsJob<T>) -> Result<(), SubmitError> {
        self.intake.check_open()?;
        let attributes = sdk_attributes(job.attributes)?;
        let fifo = fifo::is_fifo(&job.topic_arn).then(|| fifo::ids(job.group.as_deref(), job.id));
        let job = Job {
            tag: Spooled::new(job.tag),
            id: job.id,
            topic: Arc::from(job.topic_arn),
            message: job.message,
            attributes,
            fifo,
        };
        Ok(self.intake.push(0, job)?)
    }
}

impl<T: Send + 'static> Letter for Job<Spooled<T>> {
    type Tag = T;
    fn id(&self) -> crate::EventId {
        self.id
    }
    fn tag(&self) -> &T {
        &self.tag.tag
    }
    fn target(&self) -> String {
        self.topic.to_string()
    }
    fn size(&self) -> usize {
        self.payload_bytes()
    }
    // Attempts are counted by the request running the job: nothing to reset.
    fn reset(&mut self) {
        self.tag.seq = None;
    }
}

impl<T: Send + 'static> SnsPool<T> {
    /// Queues a dead letter again; gives it back if the queue refuses it.
    fn requeue(&self, job: Job<Spooled<T>>) -> Option<Job<Spooled<T>>> {
        self.intake.requeue(0, job)
    }

    /// The spool's counters, for a pool started with one.
    pub fn spool_stats(&self) -> Option<crate::pool::spool::SpoolStats> {
        self.intake.has_spool().then(|| self.intake.spool_stats())
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> SnsStats {
        let c = &self.counters.common;
        SnsStats {
            submitted: c.submitted.load(Relaxed),
            published: c.sent.load(Relaxed),
            rejected: c.rejected.load(Relaxed),
            failed_attempts: c.failed_attempts.load(Relaxed),
            retried: c.retried.load(Relaxed),
            requests: self.counters.requests.load(Relaxed),
            queued: c.queued.load(Relaxed),
            in_flight: c.in_flight.load(Relaxed),
            dropped_overloaded: c.dropped_overloaded.load(Relaxed),
            dropped_closed: c.dropped_closed.load(Relaxed),
            dropped_retries_exhausted: c.dropped_retries_exhausted.load(Relaxed),
            panics: c.panics.load(Relaxed),
        }
    }

    pool::handle_methods! {
        /// Test hook: make the dispatcher panic once, the next time it loops.
        task_panic: inject_dispatcher_panic,
        /// Test hook: make the next request attempt panic.
        attempt_panic: inject_attempt_panic,
    }
}

fn sdk_attributes(
    attributes: Vec<(String, AttributeValue)>,
) -> Result<Option<HashMap<String, MessageAttributeValue>>, SubmitError> {
    if attributes.is_empty() {
        return Ok(None);
    }
    let mut map = HashMap::with_capacity(attributes.len());
    for (name, value) in attributes {
        let builder = MessageAttributeValue::builder();
        let builder = match value {
            AttributeValue::String(s) => builder.data_type("String").string_value(s),
            AttributeValue::Number(n) => builder.data_type("Number").string_value(n),
            AttributeValue::Binary(b) => builder
                .data_type("Binary")
                .binary_value(aws_sdk_sns::primitives::Blob::new(b)),
        };
        let value = builder.build().map_err(|_| SubmitError::InvalidAttribute)?;
        map.insert(name, value);
    }
    Ok(Some(map))
}

fn validate(cfg: &SnsPoolConfig) -> Result<(), StartError> {
    let invalid = |msg: &str| Err(StartError::InvalidConfig(msg.to_owned()));
    if cfg.pool_size == 0 {
        return invalid("pool_size must be at least 1");
    }
    if cfg.queue_capacity == 0 {
        return invalid("queue_capacity must be at least 1");
    }
    if cfg.region.is_empty() {
        return invalid("region must not be empty");
    }
    if cfg.access_key_id.is_empty() {
        return invalid("access_key_id must not be empty");
    }
    if cfg.secret_access_key.0.is_empty() {
        return invalid("secret_access_key must not be empty");
    }
    Ok(())
}
