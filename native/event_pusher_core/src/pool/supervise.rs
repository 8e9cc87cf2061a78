//! The one restart loop: a long-lived task whose state lives outside the
//! future that runs it, so a panic is caught, counted, reported, and the
//! task resumes with its state (queues, connections, close progress) intact.

use futures_util::FutureExt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

/// Pause before resuming a task that panicked, so a panic that repeats
/// cannot spin a runtime thread.
pub(crate) const RESTART_PAUSE: Duration = Duration::from_millis(10);

/// A task run under [`supervise`].
pub(crate) trait Supervised: Send {
    /// Runs the task to its end; called again after a panic.
    fn run(&mut self) -> impl Future<Output = ()> + Send;
    /// After `run` panicked, before it runs again: count and report the
    /// panic and put right what it may have left half done.
    fn recover(&mut self);
}

/// Runs `task` until it ends, resuming it after every panic.
pub(crate) async fn supervise<S: Supervised>(mut task: S) {
    while AssertUnwindSafe(task.run()).catch_unwind().await.is_err() {
        task.recover();
        tokio::time::sleep(RESTART_PAUSE).await;
    }
}
