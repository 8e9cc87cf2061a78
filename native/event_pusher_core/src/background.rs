//! Our threads run behind the BEAM's schedulers.
//!
//! On a host with few cores, a runtime thread woken by a socket would
//! otherwise preempt the scheduler running a user's process at once, and
//! that process would wait for the event pusher after all. Marked
//! `SCHED_BATCH`, our threads keep their fair share of CPU but wait for the
//! running thread's time slice to end instead of preempting it.

/// Marks the calling thread as a background (batch) thread. Failing leaves
/// the thread as it was, which is only slower for the callers, not wrong.
pub fn mark_current_thread() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 is the calling thread; `param` lives across the call.
        let _ = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
    }
}
