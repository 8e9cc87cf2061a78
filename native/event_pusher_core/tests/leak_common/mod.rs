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
