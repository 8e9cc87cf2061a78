//! The methods every backend's pool handle has alike, written once.

/// Adds `close` and, with `test-hooks`, the fault injectors to a backend's
/// pool handle, whose fields `intake` (an [`super::Intake`]) and `faults`
/// (an `Arc<`[`super::Faults`]`>`, with `test-hooks`) they use. Inherent
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
