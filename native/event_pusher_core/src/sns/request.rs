//! Running one batch of jobs for one topic: a request per attempt (`Publish`
//! for a single job, `PublishBatch` for several), the outcome of every job's
//! attempt reported, and the jobs that failed retried together with
//! MongooseIM's backoff while the ones SNS accepted are done.

use super::{backoff, reason, Job, SnsCounters, MAX_BATCH};
use crate::report::{DropReason, Outcome, Reporter, Tag};
use crate::stats::Counters;
use aws_sdk_sns::types::PublishBatchRequestEntry;
use futures_util::FutureExt;
use std::borrow::Cow;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A failed attempt's short reason (never a secret).
pub(crate) type Reason = Cow<'static, str>;

/// What every request task of a pool shares (one `Arc` per pool).
pub(crate) struct Shared<T> {
    pub client: aws_sdk_sns::Client,
    pub request_timeout: Duration,
    pub retry_count: u32,
    pub retry_time: Duration,
    pub counters: Arc<SnsCounters>,
    pub reporter: Reporter<T>,
    /// Tells the dispatcher when a batch's first attempt ended and when a
    /// request task is done (its slot is free).
    pub signals: mpsc::UnboundedSender<Signal>,
    /// Where jobs that failed for good go.
    pub dead: std::sync::Arc<crate::pool::DeadLetters<super::Job<T>>>,
    /// Cancelled when the drain deadline passes: running jobs stop and are dropped.
    pub hard_stop: CancellationToken,
    #[cfg(feature = "test-hooks")]
    pub faults: Arc<crate::pool::Faults>,
}

/// From request tasks to the dispatcher.
pub(crate) enum Signal {
    /// The first attempt of a partial batch for this topic has ended: the
    /// topic may send its next partial batch.
    FirstAttemptDone(Arc<str>),
    /// A request task ended; its slot is free. For a FIFO topic, its
    /// topic: the next batch of that topic may start (one at a time, so
    /// that SNS receives each group's events in order).
    Finished(Option<Arc<str>>),
}

/// Sends the task's signals, also when the task panics or is dropped.
pub(crate) struct TaskGuard {
    signals: mpsc::UnboundedSender<Signal>,
    partial_topic: Option<Arc<str>>,
    fifo_topic: Option<Arc<str>>,
}

impl TaskGuard {
    pub fn new(
        signals: mpsc::UnboundedSender<Signal>,
        partial_topic: Option<Arc<str>>,
        fifo_topic: Option<Arc<str>>,
    ) -> Self {
        TaskGuard {
            signals,
            partial_topic,
            fifo_topic,
        }
    }

    fn first_attempt_done(&mut self) {
        if let Some(topic) = self.partial_topic.take() {
            let _ = self.signals.send(Signal::FirstAttemptDone(topic));
        }
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.first_attempt_done();
        let _ = self.signals.send(Signal::Finished(self.fifo_topic.take()));
    }
}

/// Jobs for one topic sent in one request per attempt.
pub(crate) struct Batch<T> {
    pub topic: Arc<str>,
    pub jobs: Vec<Job<T>>,
}

impl<T: Tag> Shared<T> {
    /// Runs a batch to its end, reporting every job. `in_flight` was bumped
    /// by the dispatcher for each job.
    pub async fn run_batch(&self, batch: Batch<T>, mut guard: TaskGuard) {
        let Batch { topic, mut jobs } = batch;
        let common = &self.counters.common;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            if attempt > 1 {
                common.retried.fetch_add(jobs.len() as u64, Relaxed);
            }
            let started = Instant::now();
            let results = tokio::select! {
                biased;
                _ = self.hard_stop.cancelled() => return self.drop_closed(jobs),
                results = self.guarded_attempt(&topic, &jobs) => results,
            };
            guard.first_attempt_done();
            let elapsed_us = crate::pool::micros(started.elapsed());
            let mut failed = Vec::new();
            for (job, result) in jobs.into_iter().zip(results) {
                match result {
                    Ok(()) => self.published(job, elapsed_us),
                    Err(reason) => {
                        Counters::bump(&common.failed_attempts);
                        failed.push((job, reason));
                    }
                }
            }
            if failed.is_empty() {
                return;
            }
            let exhausted = attempt > self.retry_count;
            jobs = Vec::with_capacity(failed.len());
            for (job, reason) in failed {
                let outcome = Outcome::Error {
                    reason: reason.clone(),
                    elapsed_us,
                    payload: None,
                };
                self.reporter.outcome(job.tag.clone(), outcome);
                if exhausted {
                    Counters::bump(&common.dropped_retries_exhausted);
                    self.finish(
                        job.tag.clone(),
                        Outcome::Dropped(DropReason::RetriesExhausted),
                    );
                    self.dead.put(job, reason, attempt);
                } else {
                    jobs.push(job);
                }
            }
            if exhausted {
                return;
            }
            let wait = backoff(self.retry_time, attempt);
            if !wait.is_zero() {
                tokio::select! {
                    biased;
                    _ = self.hard_stop.cancelled() => return self.drop_closed(jobs),
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }

    fn published(&self, job: Job<T>, elapsed_us: u64) {
        Counters::bump(&self.counters.common.sent);
        let payload = bytes::Bytes::from(job.message);
        self.finish(
            job.tag,
            Outcome::Published {
                elapsed_us,
                payload,
            },
        );
    }

    fn drop_closed(&self, jobs: Vec<Job<T>>) {
        for job in jobs {
            Counters::bump(&self.counters.common.dropped_closed);
            self.finish(job.tag, Outcome::Dropped(DropReason::Closed));
        }
    }

    /// A job's last outcome: it leaves `in_flight`.
    fn finish(&self, tag: T, outcome: Outcome) {
        self.reporter.outcome(tag, outcome);
        Counters::drop_one(&self.counters.common.in_flight);
    }

    /// One request; a panic inside it fails every job of the attempt (and is
    /// counted and reported) instead of killing the batch.
    async fn guarded_attempt(&self, topic: &str, jobs: &[Job<T>]) -> Vec<Result<(), Reason>> {
        match AssertUnwindSafe(self.attempt(topic, jobs))
            .catch_unwind()
            .await
        {
            Ok(results) => results,
            Err(_) => {
                Counters::bump(&self.counters.common.panics);
                self.reporter.panic("sns_attempt");
                vec![Err(Cow::Borrowed("panic")); jobs.len()]
            }
        }
    }

    /// One result per job, in the jobs' order.
    async fn attempt(&self, topic: &str, jobs: &[Job<T>]) -> Vec<Result<(), Reason>> {
        #[cfg(feature = "test-hooks")]
        self.faults.attempt_point();
        if self.request_timeout.is_zero() {
            return vec![Err(Cow::Borrowed("timeout")); jobs.len()];
        }
        Counters::bump(&self.counters.requests);
        let sent = async {
            match jobs {
                [job] => vec![self.publish_one(topic, job).await],
                _ => self.publish_batch(topic, jobs).await,
            }
        };
        match tokio::time::timeout(self.request_timeout, sent).await {
            Ok(results) => results,
            Err(_) => vec![Err(Cow::Borrowed("timeout")); jobs.len()],
        }
    }

    async fn publish_one(&self, topic: &str, job: &Job<T>) -> Result<(), Reason> {
        self.client
            .publish()
            .topic_arn(topic)
            .message(job.message.clone())
            .set_message_attributes(job.attributes.clone())
            .set_message_group_id(job.fifo.as_ref().map(|f| f.group.clone()))
            .set_message_deduplication_id(job.fifo.as_ref().map(|f| f.deduplication.clone()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| reason::of_sdk_error(&e))
    }

    async fn publish_batch(&self, topic: &str, jobs: &[Job<T>]) -> Vec<Result<(), Reason>> {
        debug_assert!(jobs.len() <= MAX_BATCH);
        let mut entries = Vec::with_capacity(jobs.len());
        for (i, job) in jobs.iter().enumerate() {
            // The entry id is the job's index in this request (unique per request).
            let entry = PublishBatchRequestEntry::builder()
                .id(i.to_string())
                .message(job.message.clone())
                .set_message_attributes(job.attributes.clone())
                .set_message_group_id(job.fifo.as_ref().map(|f| f.group.clone()))
                .set_message_deduplication_id(job.fifo.as_ref().map(|f| f.deduplication.clone()))
                .build();
            match entry {
                Ok(entry) => entries.push(entry),
                // Id and message are always set; a refusal fails the attempt.
                Err(_) => return vec![Err(Cow::Borrowed("invalid_request")); jobs.len()],
            }
        }
        let output = self
            .client
            .publish_batch()
            .topic_arn(topic)
            .set_publish_batch_request_entries(Some(entries))
            .send()
            .await;
        let output = match output {
            Ok(output) => output,
            Err(e) => return vec![Err(reason::of_sdk_error(&e)); jobs.len()],
        };
        // An entry SNS names neither successful nor failed counts as failed.
        let mut results = vec![Err(Cow::Borrowed("missing_result")); jobs.len()];
        let index = |id: Option<&str>| id.and_then(|id| id.parse::<usize>().ok());
        for ok in output.successful() {
            if let Some(slot) = index(ok.id()).and_then(|i| results.get_mut(i)) {
                *slot = Ok(());
            }
        }
        for failed in output.failed() {
            if let Some(slot) = index(Some(failed.id())).and_then(|i| results.get_mut(i)) {
                *slot = Err(reason::of_batch_entry(failed.code()));
            }
        }
        results
    }
}
