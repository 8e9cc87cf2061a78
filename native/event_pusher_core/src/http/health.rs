//! What a pool knows about its endpoint, shared by its workers: a pause a
//! server asked for (`Retry-After`), whether the endpoint is down (then one
//! probe at a time, with backoff, while the other jobs wait), and how many
//! attempts may run at once (halved by timeouts and 429s down to a quarter
//! of the workers, grown back by one per answer).
//!
//! While nothing of that is in force (the usual case) an attempt costs one
//! atomic load and two atomic adds here: the lock is taken only while the
//! endpoint is in trouble.

use crate::pool::sleep_until_some;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// The first wait between probes of a down endpoint; doubled after each
/// failed probe (plus jitter) up to [`PROBE_MAX`].
pub const PROBE_FIRST: Duration = Duration::from_millis(100);
/// The longest wait between probes: how late at most a pool notices that
/// its endpoint is back.
pub const PROBE_MAX: Duration = Duration::from_secs(5);
/// Server errors in a row (no answer in between, whichever job) that make
/// an endpoint down. One refused connection is enough; a 5xx may be about
/// one event only.
pub const DOWN_AFTER_SERVER_ERRORS: u32 = 3;

/// What an attempt showed about the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// It answered (any status but 5xx and 429).
    Answered,
    /// No connection, or the request could not be started on it: nothing
    /// reached the endpoint.
    Unreachable,
    /// A 5xx without `Retry-After`, or a connection broken mid-request.
    ServerError,
    /// The request was sent and no answer came in time.
    Timeout,
    /// A 429 without `Retry-After`: slow down.
    Throttled,
    /// A 429 or 503 with `Retry-After`: no attempt before this wait is over.
    RetryAfter(Duration),
}

impl Verdict {
    /// Whether the endpoint itself failed the attempt (not the event).
    pub fn endpoint_failed(self) -> bool {
        matches!(self, Verdict::Unreachable | Verdict::ServerError)
    }
}

pub(crate) struct Health {
    workers: usize,
    /// The fewest attempts allowed at once: a quarter of the workers (at
    /// least one). Lower, an endpoint that is slow for every request would
    /// get so few that the queue overflows and events are surely lost,
    /// where a timed-out one was probably delivered.
    min_allowed: usize,
    /// Attempts running now.
    in_use: AtomicUsize,
    /// Set while `state` is not calm: attempts then go through the lock.
    troubled: AtomicBool,
    state: Mutex<State>,
    /// Woken when the state changed (an attempt ended while troubled).
    changed: Notify,
}

struct State {
    /// No attempt starts before this (a `Retry-After`).
    paused_until: Option<Instant>,
    down: Option<Down>,
    /// Server errors since the last answer, whichever job.
    server_errors: u32,
    /// Attempts allowed at once, 1..=workers.
    allowed: usize,
}

struct Down {
    /// The next probe may start then.
    next_probe: Instant,
    /// The wait before the probe after it, if this one fails.
    wait: Duration,
    probing: bool,
}

/// Leave to run one attempt; dropped without [`Ticket::finish`] (a panic,
/// a stop), it gives its place and its probe back.
pub(crate) struct Ticket {
    health: Arc<Health>,
    probe: bool,
    finished: bool,
}

impl Health {
    pub fn new(workers: usize) -> Self {
        Health {
            workers,
            min_allowed: (workers / 4).max(1),
            in_use: AtomicUsize::new(0),
            troubled: AtomicBool::new(false),
            state: Mutex::new(State {
                paused_until: None,
                down: None,
                server_errors: 0,
                allowed: workers,
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent between statements: a panic elsewhere
        // while it was held leaves it usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until an attempt may start; `None` once `expires` has passed
    /// first. A job that `holds` waits for a down endpoint to come back
    /// (or for its turn to probe it); one that does not goes on trying.
    pub async fn admit(self: &Arc<Self>, holds: bool, expires: Option<Instant>) -> Option<Ticket> {
        loop {
            if expires.is_some_and(|e| Instant::now() >= e) {
                return None;
            }
            if !self.troubled.load(SeqCst) {
                self.in_use.fetch_add(1, SeqCst);
                return Some(self.ticket(false));
            }
            // Registered before looking, so that a change right after the
            // look still wakes this job.
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let wake = {
                let mut state = self.lock();
                let in_use = self.in_use.load(SeqCst);
                match state.admit(Instant::now(), holds, in_use) {
                    Ok(probe) => {
                        self.in_use.fetch_add(1, SeqCst);
                        return Some(self.ticket(probe));
                    }
                    Err(wake) => wake,
                }
            };
            let until = match (wake, expires) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            tokio::select! {
                _ = changed => {}
                _ = sleep_until_some(until) => {}
            }
        }
    }

    fn ticket(self: &Arc<Self>, probe: bool) -> Ticket {
        Ticket {
            health: self.clone(),
            probe,
            finished: false,
        }
    }

    /// Whether the endpoint is down now.
    #[cfg(test)]
    fn is_down(&self) -> bool {
        self.lock().down.is_some()
    }

    fn release(&self, probe: bool, verdict: Option<Verdict>) -> bool {
        self.in_use.fetch_sub(1, SeqCst);
        if !self.troubled.load(SeqCst) && matches!(verdict, Some(Verdict::Answered)) {
            return false;
        }
        let down = {
            let mut state = self.lock();
            let now = Instant::now();
            state.update(now, probe, verdict, self.min_allowed, self.workers);
            let troubled = state.paused_until.is_some_and(|p| p > now)
                || state.down.is_some()
                || state.allowed < self.workers
                || state.server_errors > 0;
            self.troubled.store(troubled, SeqCst);
            state.down.is_some()
        };
        self.changed.notify_waiters();
        down
    }
}

impl Ticket {
    /// Ends the attempt with what it showed; returns whether the endpoint
    /// is down now (the job then waits for it instead of using a retry).
    pub fn finish(mut self, verdict: Verdict) -> bool {
        self.finished = true;
        self.health.release(self.probe, Some(verdict))
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.finished {
            self.health.release(self.probe, None);
        }
    }
}

impl State {
    /// `Ok(probe)` when an attempt may start; else when to look again
    /// (`None`: when an attempt ends).
    fn admit(&mut self, now: Instant, holds: bool, in_use: usize) -> Result<bool, Option<Instant>> {
        if let Some(until) = self.paused_until {
            if until > now {
                return Err(Some(until));
            }
            self.paused_until = None;
        }
        let mut probe = false;
        if holds {
            if let Some(down) = &mut self.down {
                if down.probing {
                    return Err(None);
                }
                if down.next_probe > now {
                    return Err(Some(down.next_probe));
                }
                down.probing = true;
                probe = true;
            }
        }
        if !probe && in_use >= self.allowed {
            return Err(None);
        }
        Ok(probe)
    }

    /// `verdict` is `None` for an attempt that was abandoned.
    fn update(
        &mut self,
        now: Instant,
        probe: bool,
        verdict: Option<Verdict>,
        min_allowed: usize,
        workers: usize,
    ) {
        if probe {
            if let Some(down) = &mut self.down {
                down.probing = false;
            }
        }
        let Some(verdict) = verdict else { return };
        match verdict {
            Verdict::Answered => {
                self.server_errors = 0;
                self.down = None;
                self.allowed = (self.allowed + 1).min(workers);
            }
            Verdict::RetryAfter(wait) => {
                // It answered: up, but asks for a pause (all attempts wait).
                self.server_errors = 0;
                self.down = None;
                let until = now + wait;
                self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
            }
            Verdict::Timeout | Verdict::Throttled => {
                self.allowed = (self.allowed / 2).max(min_allowed);
            }
            Verdict::Unreachable | Verdict::ServerError => {
                self.server_errors = self.server_errors.saturating_add(1);
                match &mut self.down {
                    Some(down) if probe => {
                        down.wait = crate::retry::backoff(down.wait, 2).min(PROBE_MAX);
                        down.next_probe = now + down.wait;
                    }
                    Some(_) => {}
                    None if verdict == Verdict::Unreachable
                        || self.server_errors >= DOWN_AFTER_SERVER_ERRORS =>
                    {
                        self.down = Some(Down {
                            next_probe: now + PROBE_FIRST,
                            wait: PROBE_FIRST,
                            probing: false,
                        });
                    }
                    None => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(workers: usize) -> Arc<Health> {
        Arc::new(Health::new(workers))
    }

    #[tokio::test(start_paused = true)]
    async fn a_calm_endpoint_admits_at_once() {
        let h = health(2);
        let a = h.admit(true, None).await.expect("admitted");
        let b = h.admit(true, None).await.expect("admitted");
        assert!(!a.finish(Verdict::Answered));
        assert!(!b.finish(Verdict::Answered));
        assert!(!h.troubled.load(SeqCst));
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_connection_holds_jobs_and_one_probe_at_a_time_with_backoff() {
        let h = health(4);
        let t = h.admit(true, None).await.expect("admitted");
        assert!(t.finish(Verdict::Unreachable), "down after one refusal");
        let start = Instant::now();
        let probe = h.admit(true, None).await.expect("probe");
        assert!(probe.probe);
        assert!(start.elapsed() >= PROBE_FIRST);
        // A second holding job waits while the probe runs.
        let waiting = tokio::time::timeout(Duration::from_secs(60), h.admit(true, None)).await;
        assert!(waiting.is_err(), "no second attempt while probing");
        // A job that does not hold goes on trying.
        assert!(h.admit(false, None).await.is_some());
        assert!(probe.finish(Verdict::Unreachable));
        let before = Instant::now();
        let probe = h.admit(true, None).await.expect("second probe");
        let waited = before.elapsed();
        assert!(waited >= PROBE_FIRST * 2, "{waited:?}");
        assert!(!probe.finish(Verdict::Answered), "up after an answer");
        assert!(!h.is_down());
    }

    #[tokio::test(start_paused = true)]
    async fn probes_back_off_up_to_the_maximum() {
        let h = health(1);
        assert!(h
            .admit(true, None)
            .await
            .expect("a")
            .finish(Verdict::Unreachable));
        let mut last = Duration::ZERO;
        for _ in 0..12 {
            let before = Instant::now();
            let probe = h.admit(true, None).await.expect("probe");
            last = before.elapsed();
            assert!(last <= PROBE_MAX, "{last:?}");
            probe.finish(Verdict::ServerError);
        }
        assert_eq!(last, PROBE_MAX);
    }

    #[tokio::test(start_paused = true)]
    async fn server_errors_make_it_down_only_when_nothing_answers_between() {
        let h = health(4);
        for _ in 0..5 {
            for verdict in [
                Verdict::ServerError,
                Verdict::ServerError,
                Verdict::Answered,
            ] {
                h.admit(true, None).await.expect("admitted").finish(verdict);
            }
        }
        assert!(!h.is_down());
        for _ in 0..DOWN_AFTER_SERVER_ERRORS - 1 {
            assert!(!h
                .admit(true, None)
                .await
                .expect("a")
                .finish(Verdict::ServerError));
        }
        assert!(h
            .admit(true, None)
            .await
            .expect("a")
            .finish(Verdict::ServerError));
    }

    #[tokio::test(start_paused = true)]
    async fn an_expired_job_stops_waiting() {
        let h = health(1);
        h.admit(true, None)
            .await
            .expect("a")
            .finish(Verdict::Unreachable);
        let probe = h.admit(true, None).await.expect("probe");
        let expires = Instant::now() + Duration::from_secs(3);
        assert!(h.admit(true, Some(expires)).await.is_none());
        assert!(Instant::now() >= expires);
        drop(probe);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_pauses_every_attempt() {
        let h = health(4);
        let t = h.admit(false, None).await.expect("a");
        assert!(!t.finish(Verdict::RetryAfter(Duration::from_secs(2))));
        let before = Instant::now();
        h.admit(false, None)
            .await
            .expect("b")
            .finish(Verdict::Answered);
        assert!(before.elapsed() >= Duration::from_secs(2));
        assert!(!h.troubled.load(SeqCst));
    }

    #[tokio::test(start_paused = true)]
    async fn timeouts_halve_the_attempts_at_once_and_answers_grow_them_back() {
        let h = health(8);
        let timeout = |h: Arc<Health>| async move {
            h.admit(false, None)
                .await
                .expect("a")
                .finish(Verdict::Timeout)
        };
        timeout(h.clone()).await;
        assert_eq!(h.lock().allowed, 4);
        for _ in 0..3 {
            timeout(h.clone()).await;
        }
        // A quarter of the workers at least.
        assert_eq!(h.lock().allowed, 2);
        let one = h.admit(false, None).await.expect("one");
        let two = h.admit(false, None).await.expect("two");
        let third = tokio::time::timeout(Duration::from_secs(60), h.admit(false, None)).await;
        assert!(third.is_err(), "two at a time after timeouts");
        one.finish(Verdict::Answered);
        assert_eq!(h.lock().allowed, 3);
        two.finish(Verdict::Answered);
        for _ in 0..5 {
            h.admit(false, None)
                .await
                .expect("a")
                .finish(Verdict::Answered);
        }
        assert_eq!(h.lock().allowed, 8);
        assert!(!h.troubled.load(SeqCst));
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_probe_lets_the_next_one_go() {
        let h = health(2);
        h.admit(true, None)
            .await
            .expect("a")
            .finish(Verdict::Unreachable);
        drop(h.admit(true, None).await.expect("probe"));
        let next = tokio::time::timeout(Duration::from_secs(1), h.admit(true, None)).await;
        let next = next.expect("not waiting").expect("admitted");
        assert!(next.probe);
        assert_eq!(h.in_use.load(SeqCst), 1);
        drop(next);
        assert_eq!(h.in_use.load(SeqCst), 0);
    }
}
