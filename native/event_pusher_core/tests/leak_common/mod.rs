//! What the leak tests share: a counting global allocator for the live heap,
//! and counts of this process's threads and file descriptors from procfs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};
use std::time::Duration;

/// Counts live heap bytes so a test can compare before and after.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Start/close cycles a leak test runs after its warm-up.
pub const CYCLES: usize = 100;

/// Heap growth a test tolerates over its cycles.
pub const HEAP_SLACK: isize = 64 * 1024;

/// Live heap bytes now.
pub fn live_heap() -> isize {
    LIVE.load(Relaxed)
}

/// Entries of a procfs directory (`/proc/self/task`, `/proc/self/fd`).
pub fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).expect("procfs").count()
}

/// What a leak test compares against, counted after its warm-up.
pub struct Baseline {
    pub threads: usize,
    pub fds: usize,
    pub heap: isize,
}

impl Baseline {
    /// Threads and file descriptors now; the heap once `settle` has run
    /// (what must end before the heap is a fair baseline).
    pub fn take(settle: impl FnOnce()) -> Baseline {
        let threads = count("/proc/self/task");
        let fds = count("/proc/self/fd");
        settle();
        Baseline {
            threads,
            fds,
            heap: live_heap(),
        }
    }

    /// After [`CYCLES`] cycles: waits until threads and file descriptors
    /// are back to the baseline (`wait_until`: the suite's polling, with its
    /// deadline), runs `settle`, then asserts the heap grew by less than
    /// [`HEAP_SLACK`] (polled up to `tries` times). Returns the growth.
    pub fn assert_back(
        &self,
        tries: usize,
        wait_until: impl Fn(&str, &mut dyn FnMut() -> bool),
        settle: impl FnOnce(),
    ) -> isize {
        let (threads, fds) = (self.threads, self.fds);
        wait_until("threads back to the baseline", &mut || {
            count("/proc/self/task") <= threads
        });
        wait_until("fds back to the baseline", &mut || {
            count("/proc/self/fd") <= fds
        });
        settle();
        let grown = settled_heap_growth(self.heap, tries);
        assert!(
            grown < HEAP_SLACK,
            "heap grew by {grown} bytes over {CYCLES} cycles"
        );
        grown
    }

    /// The summary line on stderr; `extra` goes before the heap delta.
    pub fn report(&self, grown: isize, extra: &str) {
        eprintln!(
            "threads {} -> {}, fds {} -> {}, {extra}heap delta {grown} bytes",
            self.threads,
            count("/proc/self/task"),
            self.fds,
            count("/proc/self/fd")
        );
    }
}

/// Heap growth since `baseline`, polled every 20 ms up to `tries` times until
/// it falls under `HEAP_SLACK`: tasks of closed connections free their
/// buffers asynchronously.
pub fn settled_heap_growth(baseline: isize, tries: usize) -> isize {
    let mut grown = 0;
    for _ in 0..tries {
        grown = live_heap() - baseline;
        if grown < HEAP_SLACK {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    grown
}
