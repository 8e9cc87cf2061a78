//! The caller's side of a pool: the bounded queue (one lane per consuming
//! task), the control channel to the lifecycle task, and the close.

use super::lifecycle::{Lifecycle, Strategy};
use super::spool::{self, SpoolStats};
use super::{supervise, DeadLetters, Letter, Refused, StartError};
use crate::report::{CloseCallback, CloseReport, OutcomeSink, Reporter, Tag};
use crate::runtime;
use crate::stats::Counters;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::mpsc;

/// A request to a pool's lifecycle task.
pub(crate) enum Control<R> {
    Close {
        drain: Duration,
        done: CloseCallback,
    },
    /// A backend's own request (rabbit: declare exchanges).
    Backend(R),
}

/// The queue and control side of a running pool, held by its handle.
///
/// The queue's bound is a counter of places (`Counters::queued`) rather than
/// a bounded channel, so that one bound can cover several lanes (rabbit has
/// one per connection). Dropping it drops the senders: the lifecycle task
/// then closes the pool with [`super::DROP_DRAIN`].
pub(crate) struct Intake<J, R> {
    lanes: Box<[mpsc::UnboundedSender<J>]>,
    capacity: u64,
    counters: Arc<Counters>,
    control: mpsc::UnboundedSender<Control<R>>,
    closing: AtomicBool,
    runtime: &'static Handle,
    /// The disk spool, when the pool has one: jobs go through it.
    spool: Option<spool::Handle<J>>,
}

/// Starts a pool's reporter thread (named `name`, outcomes to `sink`) and
/// its lifecycle task, with the strategy `build` makes from the reporter and
/// the runtime. `lanes` are the queue's sending ends; their receivers belong
/// to the strategy.
pub(crate) fn start<T, S, J>(
    name: &str,
    sink: impl OutcomeSink<T>,
    counters: Arc<Counters>,
    lanes: Vec<mpsc::UnboundedSender<J>>,
    capacity: usize,
    build: impl FnOnce(Reporter<T>, &'static Handle) -> S,
) -> Result<Intake<J, S::Request>, StartError>
where
    T: Tag,
    S: Strategy<Tag = T>,
{
    let runtime = runtime::handle().map_err(StartError::Runtime)?;
    let reporter = Reporter::spawn(name, sink, counters.clone()).map_err(StartError::Thread)?;
    let (control, control_rx) = mpsc::unbounded_channel();
    let strategy = build(reporter, runtime);
    runtime.spawn(supervise(Lifecycle::new(strategy, control_rx)));
    Ok(Intake {
        lanes: lanes.into_boxed_slice(),
        capacity: capacity as u64,
        counters,
        control,
        closing: AtomicBool::new(false),
        runtime,
        spool: None,
    })
}

impl<J, R> Intake<J, R> {
    /// `Closed` once the pool is closing; checked before the backend looks
    /// at the job, so a closed pool says so whatever the job holds.
    pub fn check_open(&self) -> Result<(), Refused> {
        if self.closing.load(Relaxed) {
            return Err(self.refuse(Refused::Closed));
        }
        Ok(())
    }

    /// Starts `spool`'s writer on this queue: from now on jobs go through it,
    /// and `dead`'s letters go to disk (it takes back an earlier run's).
    /// `wake` runs after the writer queued jobs (the http workers wait for it).
    pub fn attach_spool(
        &mut self,
        mut spool: spool::Opened<J>,
        dead: &DeadLetters<J>,
        wake: Option<spool::Wake>,
    ) -> std::io::Result<()>
    where
        J: spool::SpoolJob + Letter,
        <J as spool::SpoolJob>::Tag: spool::PersistTag,
    {
        let (letters, restored) = spool.dead_letters();
        dead.attach(letters, restored);
        let handle = spool.launch(
            self.lanes.to_vec(),
            self.counters.clone(),
            self.capacity,
            wake,
        )?;
        self.spool = Some(handle);
        Ok(())
    }

    pub fn has_spool(&self) -> bool {
        self.spool.is_some()
    }

    pub fn spool_stats(&self) -> SpoolStats {
        self.spool.as_ref().map(|s| s.stats()).unwrap_or_default()
    }

    /// Queues `job` on `lane` (below [`Intake::lanes`]), through the spool
    /// if there is one. O(1), never waits.
    pub fn push(&self, lane: usize, job: J) -> Result<(), Refused> {
        if let Some(spool) = &self.spool {
            return spool
                .submit(lane, job, &self.counters)
                .map_err(|refused| self.refuse(refused));
        }
        let counters = &self.counters;
        // A place first, so concurrent callers never overshoot the capacity.
        if !counters.reserve(self.capacity) {
            return Err(self.refuse(Refused::Overloaded));
        }
        match self.lanes.get(lane).map(|lane| lane.send(job)) {
            Some(Ok(())) => {
                Counters::bump(&counters.submitted);
                Ok(())
            }
            // The lane's task stopped taking jobs: the pool is closing.
            _ => {
                counters.unreserve();
                Err(self.refuse(Refused::Closed))
            }
        }
    }

    /// Queues a job again (a dead letter's replay); gives it back (`Some`)
    /// if the queue is full or the pool closing. Counted as submitted, not
    /// as rejected: a refused replay stays a dead letter. With a spool it is
    /// written there first (and may wait on disk if the queue is full).
    pub fn requeue(&self, lane: usize, job: J) -> Option<J> {
        let counters = &self.counters;
        if self.closing.load(Relaxed) {
            return Some(job);
        }
        if let Some(spool) = &self.spool {
            return spool.requeue(lane, job, counters);
        }
        let Some(sender) = self.lanes.get(lane) else {
            return Some(job);
        };
        if !counters.try_place(self.capacity) {
            return Some(job);
        }
        match sender.send(job) {
            Ok(()) => {
                Counters::bump(&counters.submitted);
                None
            }
            Err(mpsc::error::SendError(job)) => {
                counters.unreserve();
                Some(job)
            }
        }
    }

    fn refuse(&self, refused: Refused) -> Refused {
        Counters::bump(&self.counters.rejected);
        refused
    }

    /// How many lanes the queue has.
    pub fn lanes(&self) -> usize {
        self.lanes.len()
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Stops taking work at once and asks the lifecycle task to close within
    /// `drain`; `done` runs on the reporter thread after the last outcome.
    pub fn close(&self, drain: Duration, done: CloseCallback) {
        self.closing.store(true, Relaxed);
        // The spool's last commit (and its directory's unlock) comes before
        // the owner hears that the pool is closed: it may start it again.
        let done: CloseCallback = match &self.spool {
            Some(spool) => {
                let stop = spool.stopper();
                Box::new(move |report| {
                    stop();
                    done(report)
                })
            }
            None => done,
        };
        let refused = self.control.send(Control::Close { drain, done });
        // Refused only once the pool has finished: nothing is left to
        // report, so only the callback runs (off the caller's thread, like a
        // real close).
        if let Err(mpsc::error::SendError(Control::Close { done, .. })) = refused {
            self.runtime
                .spawn(async move { done(CloseReport::default()) });
        }
    }

    /// Hands a backend request to the lifecycle task; if the pool has
    /// finished, `refused` answers it on the runtime (never on the caller's
    /// thread).
    pub fn request(&self, request: R, refused: impl FnOnce(R) + Send + 'static)
    where
        R: Send + 'static,
    {
        let sent = self.control.send(Control::Backend(request));
        if let Err(mpsc::error::SendError(Control::Backend(request))) = sent {
            self.runtime.spawn(async move { refused(request) });
        }
    }
}
