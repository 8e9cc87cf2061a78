//! The methods every backend's pool handle has alike, written once.

/// Adds `close`, the dead-letter methods and, with `test-hooks`, the fault
/// injectors to a backend's pool handle, whose fields `intake` (an
/// [`super::Intake`]), `dead` (an `Arc<`[`super::DeadLetters`]`>` of its
/// jobs) and `faults` (an `Arc<`[`super::Faults`]`>`, with `test-hooks`)
/// they use, and its method `requeue(&self, job) -> Option<job>` (the job
/// back if the queue refused it). Inherent
/// methods rather than a trait's, so callers (the NIF, benchmarks) need no
/// import; each backend names its hooks after its own tasks.
///
/// ```text
/// impl<T: Send + 'static> Pool<T> {
///     pool::handle_methods! {
///         /// Test hook: ... (doc of the task hook)
///         task_panic: inject_worker_panic,
///         /// Test hook: ... (doc of the attempt hook; optional)
///         attempt_panic: inject_attempt_panic,
///     }
/// }
/// ```
macro_rules! handle_methods {
    (
        $(#[$task_doc:meta])* task_panic: $task:ident,
        $($(#[$attempt_doc:meta])* attempt_panic: $attempt:ident,)?
    ) => {
        /// Stops taking work at once; what is queued or in flight may
        /// finish within `drain`, the rest is dropped (reported and
        /// counted); then the pool's connections close and `done` runs on
        /// the reporter thread, after the pool's last outcome. Closing again
        /// later only runs `done` (dropped 0).
        pub fn close(
            &self,
            drain: ::std::time::Duration,
            done: impl FnOnce($crate::CloseReport) + Send + 'static,
        ) {
            self.intake.close(drain, Box::new(done));
        }

        /// The oldest `limit` dead letters (jobs that failed for good).
        pub fn dead_letters(&self, limit: usize) -> Vec<$crate::pool::DeadLetterInfo<T>>
        where
            T: Clone,
        {
            self.dead.list(limit)
        }

        /// Queues the selected dead letters again (same event IDs, fresh
        /// attempts), oldest first, as long as the queue takes them; the
        /// rest stay. Returns how many were queued.
        pub fn replay_dead_letters(&self, select: &$crate::pool::Select) -> u64 {
            self.dead.replay(select, |job| self.requeue(job))
        }

        /// Removes the selected dead letters; returns how many.
        pub fn purge_dead_letters(&self, select: &$crate::pool::Select) -> u64 {
            self.dead.purge(select)
        }

        pub fn dead_letter_stats(&self) -> $crate::pool::DeadLetterStats {
            self.dead.stats()
        }

        $(#[$task_doc])*
        #[cfg(feature = "test-hooks")]
        pub fn $task(&self) {
            self.faults.arm_task();
        }

        $(
            $(#[$attempt_doc])*
            #[cfg(feature = "test-hooks")]
            pub fn $attempt(&self) {
                self.faults.arm_attempt();
            }
        )?
    };
}

pub(crate) use handle_methods;
