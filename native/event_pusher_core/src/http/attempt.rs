//! Running one job: attempts with a per-attempt timeout, retries with backoff,
//! and the outcome of the last attempt reported to the pool's reporter.

use super::Job;
use crate::report::{DropReason, Outcome, Reporter, Tag};
use crate::retry::backoff;
use crate::stats::Counters;
use futures_util::FutureExt;
use http_body_util::{BodyExt, Full};
use std::borrow::Cow;
use std::error::Error as StdError;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// What every job task of a pool shares (one `Arc` per pool).
pub(crate) struct Shared<T> {
    pub client: super::Client,
    pub request_timeout: Duration,
    pub counters: std::sync::Arc<Counters>,
    pub reporter: Reporter<T>,
    /// Cancelled when the drain deadline passes: running jobs stop and are dropped.
    pub hard_stop: CancellationToken,
    #[cfg(feature = "test-hooks")]
    pub faults: std::sync::Arc<super::dispatch::Faults>,
}

/// How a job's attempts ended.
enum End {
    /// A response that is not retried (the job is done).
    Final(Outcome),
    /// The last allowed attempt failed with this outcome.
    Exhausted(Outcome),
}

impl<T: Tag> Shared<T> {
    /// Runs a job to its end and reports it. `in_flight` was bumped by the dispatcher.
    pub async fn run_job(&self, job: Job<T>) {
        let end = tokio::select! {
            biased;
            _ = self.hard_stop.cancelled() => None,
            end = self.attempts(&job) => Some(end),
        };
        let counters = &self.counters;
        match end {
            Some(End::Final(outcome)) => {
                Counters::bump(&counters.sent);
                self.reporter.outcome(job.tag, outcome);
            }
            Some(End::Exhausted(outcome)) => {
                Counters::bump(&counters.dropped_retries_exhausted);
                self.reporter.outcome(job.tag.clone(), outcome);
                let dropped = Outcome::Dropped(DropReason::RetriesExhausted);
                self.reporter.outcome(job.tag, dropped);
            }
            None => {
                Counters::bump(&counters.dropped_closed);
                let dropped = Outcome::Dropped(DropReason::Closed);
                self.reporter.outcome(job.tag, dropped);
            }
        }
        Counters::drop_one(&counters.in_flight);
    }

    async fn attempts(&self, job: &Job<T>) -> End {
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let outcome = self.guarded_attempt(job).await;
            let retryable = match outcome {
                Outcome::Response { status, .. } => (500..=599).contains(&status),
                _ => true,
            };
            if !retryable {
                return End::Final(outcome);
            }
            Counters::bump(&self.counters.failed_attempts);
            if attempt > job.max_retries {
                return End::Exhausted(outcome);
            }
            // Only a job's last attempt is reported: MongooseIM emits one
            // instrumentation event per notification; retries are counted.
            drop(outcome);
            let wait = backoff(job.retry_base, attempt);
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            Counters::bump(&self.counters.retried);
        }
    }

    /// One attempt; a panic inside it becomes a failed attempt (and is counted
    /// and reported) instead of killing the job.
    async fn guarded_attempt(&self, job: &Job<T>) -> Outcome {
        let started = Instant::now();
        match AssertUnwindSafe(self.attempt(job, started))
            .catch_unwind()
            .await
        {
            Ok(outcome) => outcome,
            Err(_) => {
                Counters::bump(&self.counters.panics);
                self.reporter.panic("http_attempt");
                Outcome::Error {
                    reason: Cow::Borrowed("panic"),
                    elapsed_us: micros(started),
                }
            }
        }
    }

    async fn attempt(&self, job: &Job<T>, started: Instant) -> Outcome {
        #[cfg(feature = "test-hooks")]
        if self
            .faults
            .attempt
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            panic!("injected attempt panic");
        }
        if self.request_timeout.is_zero() {
            return timeout_outcome(started);
        }
        let mut request = http::Request::new(Full::new(job.body.clone()));
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = job.uri.clone();
        *request.headers_mut() = job.headers.clone();
        let exchange = async {
            let response = self.client.request(request).await?;
            let status = response.status().as_u16();
            // Read the body to the end so the connection can be reused; a
            // broken body after the status line still counts as a response.
            let mut body = response.into_body();
            while let Some(Ok(_)) = body.frame().await {}
            Ok::<u16, hyper_util::client::legacy::Error>(status)
        };
        match tokio::time::timeout(self.request_timeout, exchange).await {
            Ok(Ok(status)) => Outcome::Response {
                status,
                elapsed_us: micros(started),
            },
            Ok(Err(e)) => Outcome::Error {
                reason: error_reason(e),
                elapsed_us: micros(started),
            },
            Err(_) => timeout_outcome(started),
        }
    }
}

fn timeout_outcome(started: Instant) -> Outcome {
    Outcome::Error {
        reason: Cow::Borrowed("timeout"),
        elapsed_us: micros(started),
    }
}

fn micros(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// A short reason for a failed attempt: a fixed word for the common cases,
/// otherwise the innermost cause. Never the URL (hyper's errors do not hold
/// it; it may hold credentials).
fn error_reason(e: hyper_util::client::legacy::Error) -> Cow<'static, str> {
    let mut root: &(dyn StdError + 'static) = &e;
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
    let kind = if e.is_connect() {
        "connect_failed"
    } else {
        "request_failed"
    };
    Cow::Owned(format!("{kind}: {root}"))
}
