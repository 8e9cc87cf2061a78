//! A pool's workers. Each takes one job at a time from the pool's queue and
//! runs it to its end on a keep-alive connection it owns: attempts with a
//! per-attempt timeout, retries with backoff, and the outcome of the last
//! attempt reported to the pool's reporter.
//!
//! Owning the connection (instead of checking one out of a shared pool for
//! every request) keeps a request within the worker's task and hyper's
//! connection task: no task per job, no pool lock, no permit. A connection
//! that the server closed, that broke or whose attempt timed out is dropped
//! and the next attempt opens a new one; one left idle for [`IDLE_TIMEOUT`]
//! is closed.

use super::health::{Health, Verdict};
use super::{Endpoint, Job, IDLE_TIMEOUT};
use crate::pool::{self, deadline_after, micros, sleep_until_some, Supervised};
use crate::report::{DropReason, Outcome, Reporter, Tag};
use crate::retry::{backoff, retry_after};
use crate::stats::Counters;
use bytes::Bytes;
use futures_util::FutureExt;
use http::header::{HOST, RETRY_AFTER};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::service::Service as _;
use std::borrow::Cow;
use std::error::Error as StdError;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

type BoxError = Box<dyn StdError + Send + Sync>;

/// What a pool's workers and dispatcher share (one `Arc` per pool).
pub(crate) struct Shared<T> {
    pub endpoint: Endpoint,
    pub request_timeout: Duration,
    /// The endpoint's pause, down state and concurrency bound.
    pub health: Arc<Health>,
    pub counters: Arc<Counters>,
    pub reporter: Reporter<T>,
    /// The pool's queue. Workers only `try_recv` (a lock held for that
    /// instant) and wait on `job_ready` when it is empty.
    pub queue: Mutex<mpsc::UnboundedReceiver<Job<T>>>,
    pub job_ready: Arc<Notify>,
    /// Where jobs that failed for good go.
    pub dead: Arc<pool::DeadLetters<Job<T>>>,
    /// Cancelled when the drain deadline passes: running jobs stop and are dropped.
    pub hard_stop: CancellationToken,
    #[cfg(feature = "test-hooks")]
    pub faults: Arc<pool::Faults>,
}

impl<T> Shared<T> {
    /// The next queued job, if any, without waiting.
    pub fn try_next_job(&self) -> Option<Job<T>> {
        self.try_recv().ok()
    }

    fn try_recv(&self) -> Result<Job<T>, TryRecvError> {
        // A worker that panicked while holding the lock left the receiver
        // intact (try_recv does not panic halfway), so a poisoned lock is
        // used as it is.
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        queue.try_recv()
    }

    /// No more submits; workers end once the queue is empty.
    pub fn close_queue(&self) {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).close();
        self.job_ready.notify_waiters();
    }
}

/// hyper's connection future: it writes requests and reads responses.
type Driver = Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>>;

/// A keep-alive connection. Its driver is polled by the worker's own task
/// while a request is on it (see [`driving`]): a request and its response
/// then cost no wake-ups between tasks or threads.
struct Conn {
    sender: http1::SendRequest<Full<Bytes>>,
    /// `None` once it has returned (the connection is closed); dropped then,
    /// so that hyper cancels what still waits on the connection.
    driver: Option<Driver>,
    /// It has carried a request: a request it fails to even start (the server
    /// closed it meanwhile) goes on a new connection without counting as an
    /// attempt, as hyper's pooled client does.
    reused: bool,
    last_used: Instant,
}

/// Why an attempt got no response.
enum Failure {
    Connect(BoxError),
    Request(hyper::Error),
}

/// How a job's attempts ended. The final failures (`Exhausted`,
/// `Expired`) are reported in [`Worker::run_job`].
enum End {
    /// A response that is not retried (the job is done).
    Final(Outcome),
    /// The last allowed attempt failed with this outcome.
    Exhausted(Outcome),
    /// The last attempt's request was sent and got no answer in time: it
    /// may have been processed (outcome unknown).
    TimedOut { elapsed_us: u64 },
    /// Older than its `max_age` before it could be delivered.
    Expired,
    /// The pool stopped the job (close deadline).
    Stopped,
}

/// One attempt: its outcome, and what it showed about the endpoint.
struct Attempt {
    outcome: Outcome,
    verdict: Verdict,
}

struct Worker<T> {
    shared: Arc<Shared<T>>,
    /// Released when the worker ends (the dispatcher waits for it).
    _running: OwnedSemaphorePermit,
    conn: Option<Conn>,
    /// Ready once the pool's close deadline has passed. Registered once for
    /// the worker's life rather than once per job.
    stop: Pin<Box<WaitForCancellationFutureOwned>>,
    /// Armed at or before the running attempt's deadline and re-armed only
    /// when it fires early, so most attempts touch no timer.
    timer: Pin<Box<Sleep>>,
}

/// Runs a worker until the queue is closed and empty, or the pool stops.
/// `running` is released when the worker ends.
pub(crate) async fn run<T: Tag>(shared: Arc<Shared<T>>, running: OwnedSemaphorePermit) {
    pool::supervise(Worker {
        stop: Box::pin(shared.hard_stop.clone().cancelled_owned()),
        timer: Box::pin(tokio::time::sleep(shared.request_timeout)),
        shared,
        _running: running,
        conn: None,
    })
    .await;
}

impl<T: Tag> Supervised for Worker<T> {
    async fn run(&mut self) {
        self.work().await;
    }

    /// A panic outside a job: the part of the pool that takes work from the
    /// queue. The queue is intact; the connection may not be.
    fn recover(&mut self) {
        self.conn = None;
        Counters::bump(&self.shared.counters.panics);
        self.shared.reporter.panic("http_dispatcher");
    }
}

impl<T: Tag> Worker<T> {
    async fn work(&mut self) {
        while let Some(job) = self.next_job().await {
            self.shared.counters.taken(1);
            // `run_job` reports and catches attempt panics itself; this is
            // the last line of defence for the bookkeeping around them.
            if AssertUnwindSafe(self.run_job(job))
                .catch_unwind()
                .await
                .is_err()
            {
                let shared = &self.shared;
                self.conn = None;
                Counters::bump(&shared.counters.panics);
                Counters::drop_one(&shared.counters.in_flight);
                shared.reporter.panic("http_job");
            }
        }
    }

    /// The next job, waiting while the queue is empty; `None` once the queue
    /// is closed and empty or the pool stops. An idle connection is closed
    /// after [`IDLE_TIMEOUT`].
    async fn next_job(&mut self) -> Option<Job<T>> {
        loop {
            #[cfg(feature = "test-hooks")]
            self.shared.faults.task_point();
            if self.shared.hard_stop.is_cancelled() {
                return None;
            }
            // A busy pool always has a job ready: no wake-up to register.
            match self.shared.try_recv() {
                Ok(job) => return Some(job),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) => {}
            }
            // Registered before looking again, so that a job queued right
            // after the look still wakes this worker.
            let notified = self.shared.job_ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.shared.try_recv() {
                Ok(job) => return Some(job),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) => {}
            }
            let idle_until = self.conn.as_ref().map(|c| c.last_used + IDLE_TIMEOUT);
            tokio::select! {
                _ = &mut notified => {}
                _ = self.stop.as_mut() => return None,
                _ = sleep_until_some(idle_until) => self.conn = None,
            }
        }
    }

    /// Runs a job to its end and reports it. `in_flight` was bumped by `work`.
    async fn run_job(&mut self, job: Job<T>) {
        let end = self.attempts(&job).await;
        let shared = &self.shared;
        let counters = &shared.counters;
        match end {
            End::Final(outcome) => {
                Counters::bump(&counters.sent);
                // A 4xx other than 429 fails the same way however often it
                // is sent: a dead letter, to replay once the cause is fixed.
                let refused = match outcome {
                    Outcome::Response { status, .. }
                        if (400..=499).contains(&status) && status != 429 =>
                    {
                        Some(status)
                    }
                    _ => None,
                };
                shared.reporter.outcome(job.tag.clone(), outcome);
                if let Some(status) = refused {
                    shared.dead.put(job, format!("status {status}"), 1);
                }
            }
            End::Exhausted(outcome) => {
                Counters::bump(&counters.dropped_retries_exhausted);
                let reason = failure_reason(&outcome);
                shared.reporter.outcome(job.tag.clone(), outcome);
                let dropped = Outcome::Dropped(DropReason::RetriesExhausted);
                shared.reporter.outcome(job.tag.clone(), dropped);
                let attempts = job.max_retries.saturating_add(1);
                shared.dead.put(job, reason, attempts);
            }
            End::TimedOut { elapsed_us } => {
                Counters::bump(&counters.timeouts);
                shared
                    .reporter
                    .outcome(job.tag, Outcome::TimedOut { elapsed_us });
            }
            End::Expired => {
                Counters::bump(&counters.dropped_expired);
                let dropped = Outcome::Dropped(DropReason::Expired);
                shared.reporter.outcome(job.tag.clone(), dropped);
                // Attempts a held job made are not kept: 0 says "expired
                // while waiting", whatever came before.
                shared.dead.put(job, "expired", 0);
            }
            End::Stopped => {
                // Its request may be half-sent: that connection is done.
                self.conn = None;
                Counters::bump(&counters.dropped_closed);
                let dropped = Outcome::Dropped(DropReason::Closed);
                shared.reporter.outcome(job.tag, dropped);
            }
        }
        Counters::drop_one(&counters.in_flight);
    }

    async fn attempts(&mut self, job: &Job<T>) -> End {
        let delivery = job.delivery;
        let holds = delivery.max_age.is_some();
        let expires = delivery.max_age.map(|age| expiry(job, age));
        // Retries used: when the job holds, not by attempts that failed
        // while the endpoint was down, asked for a pause or throttled.
        let mut retries: u32 = 0;
        // Throttled attempts that used no retry, for their backoff.
        let mut throttled: u32 = 0;
        loop {
            let health = self.shared.health.clone();
            let ticket = tokio::select! {
                biased;
                _ = self.stop.as_mut() => return End::Stopped,
                ticket = health.admit(holds, expires) => ticket,
            };
            let Some(ticket) = ticket else {
                return End::Expired;
            };
            let Some(Attempt { outcome, verdict }) = self.guarded_attempt(job).await else {
                return End::Stopped;
            };
            let down = ticket.finish(verdict);
            let retry_after = match verdict {
                Verdict::Answered => return End::Final(outcome),
                Verdict::Timeout if !delivery.retry_on_timeout => {
                    return End::TimedOut {
                        elapsed_us: elapsed_us(&outcome),
                    }
                }
                Verdict::RetryAfter(_) => true,
                _ => false,
            };
            Counters::bump(&self.shared.counters.failed_attempts);
            let free = holds
                && (retry_after
                    || verdict == Verdict::Throttled
                    || (down && verdict.endpoint_failed()));
            if !free {
                retries += 1;
                if retries > job.max_retries {
                    return match verdict {
                        Verdict::Timeout => End::TimedOut {
                            elapsed_us: elapsed_us(&outcome),
                        },
                        _ => End::Exhausted(outcome),
                    };
                }
            }
            // Only a job's last attempt is reported: MongooseIM emits one
            // instrumentation event per notification; retries are counted.
            drop(outcome);
            // A pause or a down endpoint is waited for in `admit`.
            let wait = if retry_after || (free && verdict != Verdict::Throttled) {
                Duration::ZERO
            } else if free {
                throttled += 1;
                backoff(job.retry_base, throttled)
            } else {
                backoff(job.retry_base, retries)
            };
            if !wait.is_zero() {
                tokio::select! {
                    biased;
                    _ = self.stop.as_mut() => return End::Stopped,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            Counters::bump(&self.shared.counters.retried);
        }
    }

    /// One attempt, or `None` if the pool stopped meanwhile. A panic inside
    /// it becomes a failed attempt (and is counted and reported) instead of
    /// killing the job.
    async fn guarded_attempt(&mut self, job: &Job<T>) -> Option<Attempt> {
        let started = Instant::now();
        let attempt = AssertUnwindSafe(self.attempt(job, started)).catch_unwind();
        match attempt.await {
            Ok(attempt) => attempt,
            Err(_) => {
                self.conn = None;
                Counters::bump(&self.shared.counters.panics);
                self.shared.reporter.panic("http_attempt");
                Some(Attempt {
                    outcome: Outcome::Error {
                        reason: Cow::Borrowed("panic"),
                        elapsed_us: micros(started.elapsed()),
                        payload: None,
                    },
                    // Our fault, not the endpoint's: retried like a 5xx.
                    verdict: Verdict::ServerError,
                })
            }
        }
    }

    async fn attempt(&mut self, job: &Job<T>, started: Instant) -> Option<Attempt> {
        #[cfg(feature = "test-hooks")]
        self.shared.faults.attempt_point();
        let timeout = self.shared.request_timeout;
        if timeout.is_zero() {
            // Nothing was sent: as if the endpoint could not be reached.
            return Some(Attempt {
                outcome: timeout_outcome(started),
                verdict: Verdict::Unreachable,
            });
        }
        let deadline = deadline_after(started, timeout);
        let Worker {
            shared,
            conn,
            stop,
            timer,
            ..
        } = self;
        // Set once the request is handed to the connection: from then on a
        // timeout leaves its fate unknown.
        let mut sent = false;
        let result = {
            let exchange = exchange(&shared.endpoint, conn, job, &mut sent);
            tokio::pin!(exchange);
            loop {
                tokio::select! {
                    biased;
                    result = &mut exchange => break Some(result),
                    _ = stop.as_mut() => return None,
                    _ = timer.as_mut() => {
                        if Instant::now() >= deadline {
                            break None;
                        }
                        timer.as_mut().reset(deadline);
                    }
                }
            }
        };
        let elapsed_us = micros(started.elapsed());
        let attempt = match result {
            Some(Ok(answer)) => Attempt {
                outcome: Outcome::Response {
                    status: answer.status,
                    elapsed_us,
                },
                verdict: answer.verdict(job.delivery.retry_after_max),
            },
            Some(Err(failure)) => Attempt {
                verdict: if sent {
                    Verdict::ServerError
                } else {
                    Verdict::Unreachable
                },
                outcome: Outcome::Error {
                    reason: error_reason(&failure),
                    elapsed_us,
                    payload: None,
                },
            },
            None => Attempt {
                outcome: timeout_outcome(started),
                verdict: if sent {
                    Verdict::Timeout
                } else {
                    Verdict::Unreachable
                },
            },
        };
        if !matches!(attempt.outcome, Outcome::Response { .. }) {
            // Broken or in an unknown state (a request may be half-sent).
            *conn = None;
        }
        Some(attempt)
    }
}

/// A response's status and what its `Retry-After` asks for.
struct Answer {
    status: u16,
    retry_after: Option<Duration>,
}

impl Answer {
    fn verdict(&self, retry_after_max: Duration) -> Verdict {
        match (self.status, self.retry_after) {
            (429 | 503, Some(wait)) => Verdict::RetryAfter(wait.min(retry_after_max)),
            (429, None) => Verdict::Throttled,
            (500..=599, _) => Verdict::ServerError,
            _ => Verdict::Answered,
        }
    }
}

/// Sends the job's request on the worker's connection (opening one if it
/// has none, or if the one it has was closed) and reads the response to its
/// end, so that the connection can carry the next request. `sent` is set
/// once the request is handed to a connection.
async fn exchange<T>(
    endpoint: &Endpoint,
    slot: &mut Option<Conn>,
    job: &Job<T>,
    sent: &mut bool,
) -> Result<Answer, Failure> {
    loop {
        let conn = match slot {
            Some(conn) if conn.driver.is_some() && !conn.sender.is_closed() => conn,
            _ => {
                *slot = None;
                slot.insert(connect(endpoint).await?)
            }
        };
        let reused = conn.reused;
        let ready = driving(conn, |sender| sender.ready()).await;
        if let Err(e) = ready {
            *slot = None;
            if reused {
                continue;
            }
            return Err(Failure::Request(e));
        }
        let mut request = http::Request::new(Full::new(job.body.clone()));
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = job.target.clone();
        let headers = request.headers_mut();
        headers.reserve(job.headers.len() + 1);
        for (name, value) in &job.headers {
            headers.append(name.clone(), value.clone());
        }
        // Last, unless the callback gave one: where hyper's pooled client put it.
        headers.entry(HOST).or_insert_with(|| endpoint.host.clone());
        *sent = true;
        let result = driving(conn, |sender| sender.try_send_request(request)).await;
        match result {
            Ok(response) => {
                conn.reused = true;
                let status = response.status().as_u16();
                let retry_after = match status {
                    429 | 503 => response
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| retry_after(v.as_bytes(), SystemTime::now())),
                    _ => None,
                };
                // Read the body to the end so the connection can be reused; a
                // broken body after the status line still counts as a response.
                let mut body = response.into_body();
                while let Some(Ok(_)) = driving(conn, |_| body.frame()).await {}
                conn.last_used = Instant::now();
                return Ok(Answer {
                    status,
                    retry_after,
                });
            }
            Err(mut e) => {
                let unsent = e.take_message().is_some();
                *slot = None;
                if unsent && reused {
                    *sent = false;
                    continue;
                }
                // hyper gave the request back unsent: nothing reached the endpoint.
                *sent = !unsent;
                return Err(Failure::Request(e.into_error()));
            }
        }
    }
}

async fn connect(endpoint: &Endpoint) -> Result<Conn, Failure> {
    let io = endpoint
        .connector
        .call(endpoint.origin.clone())
        .await
        .map_err(Failure::Connect)?;
    let (sender, connection) = http1::handshake(io)
        .await
        .map_err(|e| Failure::Connect(Box::new(e)))?;
    Ok(Conn {
        sender,
        driver: Some(Box::pin(connection)),
        reused: false,
        last_used: Instant::now(),
    })
}

/// Runs `start(sender)` to its end while driving the connection in this task.
/// The driver's errors reach the request through hyper; once it has
/// returned, the request future fails (hyper drops its side), so this never
/// waits on a dead connection. Dropping the connection (a timed-out
/// attempt) closes its socket at once.
async fn driving<'a, F, Fut>(conn: &'a mut Conn, start: F) -> Fut::Output
where
    F: FnOnce(&'a mut http1::SendRequest<Full<Bytes>>) -> Fut,
    Fut: Future + 'a,
{
    let Conn { sender, driver, .. } = conn;
    let mut fut = std::pin::pin!(start(sender));
    std::future::poll_fn(move |cx| {
        // The driver first: it writes what the request queued and hands
        // over a response it read, which the request then sees at once.
        if driver
            .as_mut()
            .is_some_and(|d| d.as_mut().poll(cx).is_ready())
        {
            *driver = None;
        }
        fut.as_mut().poll(cx)
    })
    .await
}

/// When a job of `max_age` is too old, from its ID's time (its birth; a
/// clock step moves it too).
fn expiry<T>(job: &Job<T>, max_age: Duration) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let age = Duration::from_millis(now_ms.saturating_sub(job.id.unix_ms()));
    deadline_after(Instant::now(), max_age.saturating_sub(age))
}

fn elapsed_us(outcome: &Outcome) -> u64 {
    match outcome {
        Outcome::Response { elapsed_us, .. } | Outcome::Error { elapsed_us, .. } => *elapsed_us,
        _ => 0,
    }
}

fn timeout_outcome(started: Instant) -> Outcome {
    Outcome::Error {
        reason: Cow::Borrowed("timeout"),
        elapsed_us: micros(started.elapsed()),
        payload: None,
    }
}

/// A short reason for a failed attempt: a fixed word for the common cases,
/// otherwise the innermost cause. Never the URL (hyper's errors do not hold
/// it; it may hold credentials).
fn error_reason(failure: &Failure) -> Cow<'static, str> {
    let (kind, error): (&str, &(dyn StdError + 'static)) = match failure {
        Failure::Connect(e) => ("connect_failed", e.as_ref()),
        Failure::Request(e) => ("request_failed", e),
    };
    let mut root = error;
    while let Some(source) = root.source() {
        root = source;
    }
    if let Some(io) = root.downcast_ref::<std::io::Error>() {
        match io.kind() {
            std::io::ErrorKind::ConnectionRefused => return Cow::Borrowed("connection_refused"),
            std::io::ErrorKind::ConnectionReset => return Cow::Borrowed("connection_reset"),
            std::io::ErrorKind::TimedOut => return Cow::Borrowed("timeout"),
            _ => {}
        }
    }
    Cow::Owned(format!("{kind}: {root}"))
}

/// An exhausted job's last failure, as its dead letter names it.
fn failure_reason(outcome: &Outcome) -> Cow<'static, str> {
    match outcome {
        Outcome::Response { status, .. } => Cow::Owned(format!("status {status}")),
        Outcome::Error { reason, .. } => reason.clone(),
        _ => Cow::Borrowed("failed"),
    }
}
