//! The one tokio runtime of the VM, created on first use and shared by every pool.
//!
//! The runtime lives for the rest of the process (a NIF library is never
//! unloaded while pools may exist), so its worker threads are created once and
//! never multiply with pools.

use once_cell::sync::OnceCell;
use std::io;
use tokio::runtime::{Builder, Handle, Runtime};

static RUNTIME: OnceCell<Runtime> = OnceCell::new();

/// Upper bound on tokio's blocking-pool threads (used only for DNS lookups).
const MAX_BLOCKING_THREADS: usize = 8;

/// The shared runtime's handle, building the runtime the first time.
///
/// Fails only if the OS refuses to create the worker threads.
pub fn handle() -> io::Result<&'static Handle> {
    RUNTIME.get_or_try_init(build).map(Runtime::handle)
}

fn build() -> io::Result<Runtime> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    Builder::new_multi_thread()
        .worker_threads(workers)
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .thread_name("event_pusher_rt")
        .on_thread_start(crate::background::mark_current_thread)
        .enable_all()
        .build()
}
