//! HTTP pools: a bounded queue in front of `workers` worker tasks, each
//! owning at most one keep-alive HTTP/1.1 connection; retries with backoff,
//! and a bounded drain on close.
//!
//! Requests are written by hyper's HTTP/1.1 client connection (not reqwest):
//! the request target goes out exactly as built by [`url`] (MongooseIM's
//! client sends `path_prefix ++ path` unchanged) and the only headers added
//! to the callback's are `host` (unless it gave one) and `content-length`,
//! which is what hyper's pooled client wrote before us. Header names go out
//! in lower case: MongooseIM's client writes names as the callback gives
//! them, and its default callback gives `content-type` (in lower case since
//! 2020), so the default request is the same on the wire. Names a custom
//! callback writes in another case still go out in lower case (hyper keeps
//! no original case for requests it did not parse).
//!
//! [`HttpPool::submit`] is O(1) and never waits: it validates the request,
//! `try_send`s it and wakes an idle worker. Each worker (see [`worker`])
//! takes one job at a time from the queue and runs its attempts on its own
//! connection, so a request crosses no task boundary besides hyper's
//! connection task; `workers` bounds jobs in progress (a job waiting to retry
//! keeps its worker). The queue, the close and the counters are the shared
//! pool runtime's ([`crate::pool`]); the workers are this backend's
//! [`pool::Strategy`] (see [`dispatch`]). Outcomes go to the pool's reporter.

mod dispatch;
mod health;
mod url;
mod worker;

use crate::pool::spool::{self, PersistTag, SpoolConfig, SpoolJob, SpoolSink, Spooled};
use crate::pool::{self, DeadLetters, Intake, Letter};
use crate::report::{OutcomeSink, Tag};
use crate::stats::{Counters, Stats};
use crate::EventId;
use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::Uri;
use hyper_rustls::{FixedServerNameResolver, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::service::TowerToHyperService;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};
use url::UrlBase;

pub use crate::pool::{StartError, DROP_DRAIN};
pub use health::{DOWN_AFTER_SERVER_ERRORS, PROBE_FIRST, PROBE_MAX};
pub use http::header;

use crate::tls::{self, TlsOptions};

/// Idle keep-alive connections are closed after this long.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// A pool's settings, already typed; [`HttpPool::start`] validates the values.
#[derive(Debug, Clone)]
pub struct HttpPoolConfig {
    /// Prefix of every URL (host ++ path prefix); a job's path is appended as is.
    pub base_url: String,
    /// Most requests in flight at once; also the keep-alive pool size.
    pub workers: usize,
    /// Bound on one attempt (connect, send, read the response). Zero makes
    /// every attempt time out at once, as a zero timeout does in MongooseIM.
    pub request_timeout: Duration,
    /// Jobs that may wait for a free worker; beyond that `submit` is `Overloaded`.
    pub queue_capacity: usize,
    /// TLS settings; `None` means the defaults (verify the peer against the system roots).
    pub tls: Option<TlsOptions>,
}

/// One request to send. The URL is the pool's `base_url` followed by `path`.
#[derive(Debug)]
pub struct HttpJob<'a, T> {
    pub tag: T,
    /// The event's ID; every attempt of the job carries it.
    pub id: EventId,
    pub path: &'a str,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Attempts after the first one for connection errors, timeouts and 5xx.
    pub max_retries: u32,
    /// Wait before the first retry; doubles for each next one (plus jitter).
    pub retry_base: Duration,
    pub delivery: Delivery,
}

/// How a job rides out a slow, throttling or down endpoint (ours).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// Retry an attempt whose request was sent and got no answer in time.
    /// Off by default: the endpoint may have processed it; the job then
    /// ends as [`crate::Outcome::TimedOut`] (outcome unknown).
    pub retry_on_timeout: bool,
    /// Hold the job while its endpoint is down (refuses connections, or
    /// answers 5xx to everything), without using its retries, until it is
    /// this old (counted from its ID's time); then it is given up as
    /// [`crate::DropReason::Expired`]. `None`: no hold, only the retries.
    pub max_age: Option<Duration>,
    /// The longest wait a `Retry-After` of a 429 or 503 may ask for.
    pub retry_after_max: Duration,
}

/// The default cap of a `Retry-After` wait.
pub const DEFAULT_RETRY_AFTER_MAX: Duration = Duration::from_secs(60);

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            retry_on_timeout: false,
            max_age: None,
            retry_after_max: DEFAULT_RETRY_AFTER_MAX,
        }
    }
}

/// Opens a pool's connections: TCP (no delay), and TLS for `https`.
pub(crate) type Connector = TowerToHyperService<HttpsConnector<HttpConnector>>;

/// Where and how a pool connects; shared by its workers.
pub(crate) struct Endpoint {
    pub connector: Connector,
    /// `scheme://authority/` of `base_url`.
    pub origin: Uri,
    /// Added to a request whose headers have no `host`.
    pub host: HeaderValue,
}

pool::submit_error! {
    /// No HTTP request line can carry `base_url ++ path` (e.g. too long).
    InvalidPath => "invalid path"
}

/// A job inside the pool: validated and ready to send.
///
/// Headers wait as a list: a `HeaderMap` takes some 700 bytes for one
/// header, and a busy pool holds tens of thousands of queued jobs. Each
/// attempt builds its request's map from the list.
pub(crate) struct Job<T> {
    tag: T,
    /// Kept by retries and by replays from the spool; its time is the
    /// job's birth, for `Delivery::max_age`.
    id: EventId,
    /// The request target, in origin form.
    target: Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
    max_retries: u32,
    retry_base: Duration,
    delivery: Delivery,
}

/// A job's record in the spool: target, headers, retry policy, body.
impl<T: Send + 'static> SpoolJob for Job<Spooled<T>> {
    type Tag = T;
    fn id(&self) -> EventId {
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
        put_bytes(out, self.target.to_string().as_bytes());
        put_u32(out, self.max_retries);
        put_u32(out, millis(self.retry_base, u32::MAX));
        let delivery = &self.delivery;
        put_u32(out, u32::from(delivery.retry_on_timeout));
        // u32::MAX: no maximum age.
        put_u32(
            out,
            delivery
                .max_age
                .map_or(u32::MAX, |age| millis(age, u32::MAX - 1)),
        );
        put_u32(out, millis(delivery.retry_after_max, u32::MAX));
        put_u32(out, self.headers.len() as u32);
        for (name, value) in &self.headers {
            put_bytes(out, name.as_str().as_bytes());
            put_bytes(out, value.as_bytes());
        }
        out.extend_from_slice(&self.body);
    }
    fn decode_fields(fields: &[u8], id: EventId, tag: Spooled<T>) -> Option<Self> {
        let mut f = spool::record::Fields(fields);
        let target = Uri::try_from(f.bytes()?).ok()?;
        let max_retries = f.u32()?;
        let retry_base = Duration::from_millis(u64::from(f.u32()?));
        let retry_on_timeout = f.u32()? != 0;
        let max_age = match f.u32()? {
            u32::MAX => None,
            ms => Some(Duration::from_millis(u64::from(ms))),
        };
        let delivery = Delivery {
            retry_on_timeout,
            max_age,
            retry_after_max: Duration::from_millis(u64::from(f.u32()?)),
        };
        let count = f.u32()?;
        let mut headers = Vec::with_capacity(count.min(64) as usize);
        for _ in 0..count {
            let name = HeaderName::from_bytes(f.bytes()?).ok()?;
            let value = HeaderValue::from_bytes(f.bytes()?).ok()?;
            headers.push((name, value));
        }
        Some(Job {
            tag,
            id,
            target,
            headers,
            body: Bytes::copy_from_slice(f.0),
            max_retries,
            retry_base,
            delivery,
        })
    }
}

/// A duration in whole ms for a spool record, at most `cap`.
fn millis(duration: Duration, cap: u32) -> u32 {
    u32::try_from(duration.as_millis()).map_or(cap, |ms| ms.min(cap))
}

/// The handle of a running pool. Dropping it closes the pool (drain [`DROP_DRAIN`]).
pub struct HttpPool<T: Send + 'static> {
    base_url: UrlBase,
    intake: Intake<Job<Spooled<T>>, Infallible>,
    dead: Arc<DeadLetters<Job<Spooled<T>>>>,
    /// Wakes an idle worker after a job was queued.
    job_ready: Arc<Notify>,
    #[cfg(feature = "test-hooks")]
    faults: Arc<pool::Faults>,
}

impl<T: Tag> HttpPool<T> {
    /// Starts a pool whose outcomes go to `sink`. Reads TLS files: call it
    /// where blocking for a few milliseconds is fine.
    pub fn start<S: OutcomeSink<T>>(cfg: HttpPoolConfig, sink: S) -> Result<Self, StartError> {
        Self::start_with(cfg, None, sink)
    }

    /// [`HttpPool::start`] with a disk spool (see [`crate::pool::spool`]):
    /// what it holds from an earlier run is sent first.
    pub fn start_spooled<S: OutcomeSink<T>>(
        cfg: HttpPoolConfig,
        spool: &SpoolConfig,
        sink: S,
    ) -> Result<Self, StartError>
    where
        T: PersistTag,
    {
        validate(&cfg)?;
        let opened = spool::open::<Job<Spooled<T>>>(spool)?;
        let mut pool = Self::start_with(cfg, Some(opened.acks()), sink)?;
        // Jobs the spool queues wake a worker as `submit` does.
        let ready = pool.job_ready.clone();
        let wake = Box::new(move || ready.notify_one());
        pool.intake
            .attach_spool(opened, &pool.dead, Some(wake))
            .map_err(StartError::Thread)?;
        Ok(pool)
    }

    fn start_with<S: OutcomeSink<T>>(
        cfg: HttpPoolConfig,
        acks: Option<crossbeam_channel::Sender<spool::Control>>,
        sink: S,
    ) -> Result<Self, StartError> {
        let base_url = validate(&cfg)?;
        let endpoint = endpoint(&cfg, &base_url)?;
        let counters = Arc::new(Counters::default());
        let job_ready = Arc::new(Notify::new());
        let dead = Arc::new(DeadLetters::new(pool::DEFAULT_CAPACITY));
        #[cfg(feature = "test-hooks")]
        let faults = Arc::new(pool::Faults::default());
        let (lane, queue) = mpsc::unbounded_channel();
        let intake = pool::start(
            "event_pusher_rep",
            SpoolSink::new(sink, acks),
            counters.clone(),
            vec![lane],
            cfg.queue_capacity,
            |reporter, runtime| {
                let shared = worker::Shared {
                    endpoint,
                    request_timeout: cfg.request_timeout,
                    health: Arc::new(health::Health::new(cfg.workers)),
                    counters,
                    reporter,
                    queue: std::sync::Mutex::new(queue),
                    job_ready: job_ready.clone(),
                    dead: dead.clone(),
                    hard_stop: tokio_util::sync::CancellationToken::new(),
                    #[cfg(feature = "test-hooks")]
                    faults: faults.clone(),
                };
                dispatch::spawn(runtime, shared, cfg.workers)
            },
        )?;
        Ok(HttpPool {
            base_url,
            intake,
            dead,
            job_ready,
            #[cfg(feature = "test-hooks")]
            faults,
        })
    }

    /// Queues a job. O(1), never waits.
    pub fn submit(&self, job: HttpJob<'_, T>) -> Result<(), SubmitError> {
        self.intake.check_open()?;
        let target = self
            .base_url
            .target(job.path)
            .ok_or(SubmitError::InvalidPath)?;
        let job = Job {
            tag: Spooled::new(job.tag),
            id: job.id,
            target,
            headers: header_list(job.headers),
            body: job.body,
            max_retries: job.max_retries,
            retry_base: job.retry_base,
            delivery: job.delivery,
        };
        self.intake.push(0, job)?;
        // Stores a wake-up when no worker waits: a busy worker takes the
        // next job without one.
        self.job_ready.notify_one();
        Ok(())
    }
}

impl<T: Send + 'static> HttpPool<T> {
    /// Queues a dead letter again; gives it back if the queue refuses it.
    fn requeue(&self, job: Job<Spooled<T>>) -> Option<Job<Spooled<T>>> {
        let refused = self.intake.requeue(0, job);
        if refused.is_none() {
            self.job_ready.notify_one();
        }
        refused
    }
}

impl<T: Send + 'static> Letter for Job<Spooled<T>> {
    type Tag = T;
    fn id(&self) -> EventId {
        self.id
    }
    fn tag(&self) -> &T {
        &self.tag.tag
    }
    fn target(&self) -> String {
        self.target.to_string()
    }
    fn size(&self) -> usize {
        self.body.len()
    }
    /// Attempts are counted by the worker running the job. Its age counts
    /// from its ID's time, so a replayed letter would expire at once: an
    /// operator's replay is held through an outage without a maximum age.
    fn reset(&mut self) {
        // Its spool record was acked when it became a dead letter: a
        // replay gets a new one from the spool (none without a spool).
        self.tag.seq = None;
        self.delivery.max_age = None;
    }
}

impl<T: Send + 'static> HttpPool<T> {
    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.intake.counters().snapshot()
    }

    /// The spool's counters, for a pool started with one.
    pub fn spool_stats(&self) -> Option<crate::pool::spool::SpoolStats> {
        self.intake.has_spool().then(|| self.intake.spool_stats())
    }

    pool::handle_methods! {
        /// Test hook: make the dispatching part of a worker (where it takes
        /// its next job) panic once, the next time one loops.
        task_panic: inject_dispatcher_panic,
        /// Test hook: make the next attempt panic.
        attempt_panic: inject_attempt_panic,
    }
}

/// Keep-alive HTTP/1.1 over TCP (no proxy, no redirects), TLS for
/// `https`, with the server name of `server_name_indication.host` if set.
fn endpoint(cfg: &HttpPoolConfig, base_url: &UrlBase) -> Result<Endpoint, StartError> {
    let https = base_url.is_https();
    let tls_config = tls::client_config(cfg.tls.as_ref(), https)?;
    let server_name = match &cfg.tls {
        Some(opts) if https => tls::server_name_override(opts)?,
        _ => None,
    };
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    let builder = HttpsConnectorBuilder::new()
        .with_tls_config(tls_config)
        .https_or_http();
    let builder = match server_name {
        Some(name) => builder.with_server_name_resolver(FixedServerNameResolver::new(name)),
        None => builder,
    };
    let connector = builder.enable_http1().wrap_connector(tcp);
    let host = base_url
        .host_header()
        .ok_or_else(|| StartError::InvalidConfig("base_url has no valid host".into()))?;
    Ok(Endpoint {
        connector: TowerToHyperService::new(connector),
        origin: base_url.origin(),
        host,
    })
}

/// The map's headers in its order (names in order of first appearance, each
/// followed by its other values), which rebuilding the map with `append`
/// keeps, so the request is the same on the wire.
fn header_list(map: HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    let mut list = Vec::with_capacity(map.len());
    let mut last: Option<HeaderName> = None;
    for (name, value) in map {
        // `None`: another value of the name before it.
        if let Some(name) = name {
            last = Some(name);
        }
        if let Some(name) = &last {
            list.push((name.clone(), value));
        }
    }
    list
}

fn validate(cfg: &HttpPoolConfig) -> Result<UrlBase, StartError> {
    let invalid = |msg: String| Err(StartError::InvalidConfig(msg));
    if cfg.workers == 0 {
        return invalid("workers must be at least 1".into());
    }
    if cfg.queue_capacity == 0 {
        return invalid("queue_capacity must be at least 1".into());
    }
    // The bound of tokio's bounded channel, which this queue once was: the
    // same configurations stay valid.
    if cfg.queue_capacity > tokio::sync::Semaphore::MAX_PERMITS {
        return invalid(format!(
            "queue_capacity must be at most {}",
            tokio::sync::Semaphore::MAX_PERMITS
        ));
    }
    if cfg.workers > u32::MAX as usize {
        return invalid("workers is too large".into());
    }
    // Parse errors never echo the URL, which may hold credentials.
    UrlBase::parse(&cfg.base_url).map_err(|e| StartError::InvalidConfig(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_list_rebuilds_the_same_map() {
        let mut map = HeaderMap::new();
        for (name, value) in [
            ("x-a", "1"),
            ("content-type", "t"),
            ("x-a", "2"),
            ("x-b", "3"),
        ] {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        let order = |map: &HeaderMap| -> Vec<(String, String)> {
            map.iter()
                .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("?").to_owned()))
                .collect()
        };
        let list = header_list(map.clone());
        let mut rebuilt = HeaderMap::new();
        for (name, value) in list {
            rebuilt.append(name, value);
        }
        assert_eq!(order(&rebuilt), order(&map));
        assert_eq!(
            order(&map),
            [
                ("x-a", "1"),
                ("x-a", "2"),
                ("content-type", "t"),
                ("x-b", "3")
            ]
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
        );
    }
}
