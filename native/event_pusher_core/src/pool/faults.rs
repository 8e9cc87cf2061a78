//! Panics to provoke, for the crate's own tests (feature `test-hooks`).

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

#[derive(Debug, Default)]
pub(crate) struct Faults {
    task: AtomicBool,
    attempt: AtomicBool,
}

impl Faults {
    /// The pool's task loop (an HTTP worker taking its next job, a rabbit
    /// worker, the SNS dispatcher) panics once, the next time it loops.
    pub fn arm_task(&self) {
        self.task.store(true, SeqCst);
    }

    /// The next delivery attempt panics.
    pub fn arm_attempt(&self) {
        self.attempt.store(true, SeqCst);
    }

    /// Panics here if `arm_task` was called since the last time.
    pub fn task_point(&self) {
        if self.task.swap(false, SeqCst) {
            panic!("injected task panic");
        }
    }

    /// Panics here if `arm_attempt` was called since the last time.
    pub fn attempt_point(&self) {
        if self.attempt.swap(false, SeqCst) {
            panic!("injected attempt panic");
        }
    }
}
