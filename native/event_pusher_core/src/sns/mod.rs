//! SNS pools: a bounded queue in front of an aws-sdk-sns client, at most
//! `pool_size` requests in flight, MongooseIM's retry backoff, optional
//! batching with `PublishBatch`, and a bounded drain on close.
//!
//! [`SnsPool::publish`] is O(1) and never waits: it counts the job against
//! the queue capacity and hands it to the dispatcher (see [`dispatch`]), which
//! groups queued jobs by topic and starts one request task per batch (see
//! [`request`]); every outcome goes to the pool's reporter.

mod backoff;
mod client;
mod dispatch;
mod reason;
mod request;

use crate::http::Secret;
use crate::report::{CloseCallback, CloseReport, OutcomeSink, Reporter, Tag};
use crate::runtime;
use crate::stats::Counters;
use aws_sdk_sns::types::MessageAttributeValue;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

pub use backoff::backoff;

/// How long a pool whose handle was dropped without `close` (its owner died)
/// keeps delivering what it had accepted.
pub const DROP_DRAIN: Duration = Duration::from_secs(5);
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
    pub topic_arn: String,
    /// The message body (our JSON), published as a plain `Message`.
    pub message: String,
    pub attributes: Vec<(String, AttributeValue)>,
}

/// Why a pool could not start. Messages are for people and never hold secrets.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    InvalidConfig(String),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot start the reporter thread: {0}")]
    Thread(std::io::Error),
}

/// Why `publish` refused a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("overloaded")]
    Overloaded,
    #[error("closed")]
    Closed,
    /// An attribute the SDK cannot represent.
    #[error("invalid attribute")]
    InvalidAttribute,
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
    /// Jobs accepted and not yet taken into a request (or dropped).
    pub queued: AtomicU64,
}

/// A job inside the pool: attributes in the SDK's form, ready to send.
pub(crate) struct Job<T> {
    tag: T,
    topic: Arc<str>,
    message: String,
    attributes: Option<HashMap<String, MessageAttributeValue>>,
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

/// Asks the dispatcher to close.
pub(crate) struct CloseCommand {
    drain: Duration,
    done: CloseCallback,
}

/// The handle of a running pool. Dropping it closes the pool (drain [`DROP_DRAIN`]).
pub struct SnsPool<T: Send + 'static> {
    queue: mpsc::UnboundedSender<Job<T>>,
    control: mpsc::UnboundedSender<CloseCommand>,
    capacity: u64,
    closing: AtomicBool,
    counters: Arc<SnsCounters>,
    runtime: &'static tokio::runtime::Handle,
    #[cfg(feature = "test-hooks")]
    faults: Arc<dispatch::Faults>,
}

impl<T: Tag> SnsPool<T> {
    /// Starts a pool whose outcomes go to `sink`. Does no I/O: the SDK client
    /// connects on the first request.
    pub fn start<S: OutcomeSink<T>>(cfg: SnsPoolConfig, sink: S) -> Result<Self, StartError> {
        validate(&cfg)?;
        let client = client::build(&cfg).map_err(StartError::InvalidConfig)?;
        let runtime = runtime::handle().map_err(StartError::Runtime)?;
        let counters = Arc::new(SnsCounters::default());
        let reporter = Reporter::spawn("event_pusher_sns", sink, counters.common.clone())
            .map_err(StartError::Thread)?;
        let (queue, queue_rx) = mpsc::unbounded_channel();
        let (control, control_rx) = mpsc::unbounded_channel();
        #[cfg(feature = "test-hooks")]
        let faults = Arc::new(dispatch::Faults::default());
        let settings = dispatch::Settings {
            pool_size: cfg.pool_size,
            batching: cfg.batching,
        };
        let (signals, signals_rx) = mpsc::unbounded_channel();
        let shared = request::Shared {
            client,
            request_timeout: cfg.request_timeout,
            retry_count: cfg.retry_count,
            retry_time: cfg.retry_time,
            counters: counters.clone(),
            reporter,
            signals,
            hard_stop: tokio_util::sync::CancellationToken::new(),
            #[cfg(feature = "test-hooks")]
            faults: faults.clone(),
        };
        dispatch::spawn(runtime, shared, settings, queue_rx, control_rx, signals_rx);
        Ok(SnsPool {
            queue,
            control,
            capacity: cfg.queue_capacity as u64,
            closing: AtomicBool::new(false),
            counters,
            runtime,
            #[cfg(feature = "test-hooks")]
            faults,
        })
    }

    /// Queues a notification. O(1), never waits.
    pub fn publish(&self, job: SnsJob<T>) -> Result<(), SubmitError> {
        if self.closing.load(Relaxed) {
            return Err(self.refuse(SubmitError::Closed));
        }
        let attributes = sdk_attributes(job.attributes)?;
        let common = &self.counters.common;
        // Reserve a place first, so concurrent callers never overshoot the capacity.
        if self.counters.queued.fetch_add(1, Relaxed) >= self.capacity {
            self.counters.queued.fetch_sub(1, Relaxed);
            Counters::bump(&common.dropped_overloaded);
            return Err(self.refuse(SubmitError::Overloaded));
        }
        let job = Job {
            tag: job.tag,
            topic: Arc::from(job.topic_arn),
            message: job.message,
            attributes,
        };
        match self.queue.send(job) {
            Ok(()) => {
                Counters::bump(&common.submitted);
                Ok(())
            }
            Err(_) => {
                self.counters.queued.fetch_sub(1, Relaxed);
                Err(self.refuse(SubmitError::Closed))
            }
        }
    }

    fn refuse(&self, e: SubmitError) -> SubmitError {
        Counters::bump(&self.counters.common.rejected);
        e
    }
}

impl<T: Send + 'static> SnsPool<T> {
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
            queued: self.counters.queued.load(Relaxed),
            in_flight: c.in_flight.load(Relaxed),
            dropped_overloaded: c.dropped_overloaded.load(Relaxed),
            dropped_closed: c.dropped_closed.load(Relaxed),
            dropped_retries_exhausted: c.dropped_retries_exhausted.load(Relaxed),
            panics: c.panics.load(Relaxed),
        }
    }

    /// Stops taking work at once; what is queued or in flight may finish
    /// within `drain`, the rest is dropped (reported and counted); then `done`
    /// runs on the reporter thread, after the pool's last outcome. Closing
    /// again later only runs `done` (dropped 0).
    pub fn close(&self, drain: Duration, done: impl FnOnce(CloseReport) + Send + 'static) {
        self.closing.store(true, Relaxed);
        let command = CloseCommand {
            drain,
            done: Box::new(done),
        };
        // Refused only once the dispatcher has finished: nothing is left to
        // report, so only the callback runs (off the caller's thread).
        if let Err(mpsc::error::SendError(command)) = self.control.send(command) {
            self.runtime
                .spawn(async move { (command.done)(CloseReport::default()) });
        }
    }

    /// Test hook: make the dispatcher panic once, the next time it loops.
    #[cfg(feature = "test-hooks")]
    pub fn inject_dispatcher_panic(&self) {
        self.faults
            .dispatcher
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Test hook: make the next request attempt panic.
    #[cfg(feature = "test-hooks")]
    pub fn inject_attempt_panic(&self) {
        self.faults
            .attempt
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl<T: Send + 'static> Drop for SnsPool<T> {
    fn drop(&mut self) {
        // Dropping the queue and control senders tells the dispatcher to
        // close with DROP_DRAIN (unless `close` already asked it to).
        self.closing.store(true, Relaxed);
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
