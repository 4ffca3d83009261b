//! Benchmarks for pattern-alloc. The benchmarks live in `benches/`; this crate
//! holds the workloads they share, each generic over the allocator so that
//! PatternAlloc and `std::alloc::System` run the same monomorphized code.
//!
//! Run them with `cargo bench -p pattern-alloc-benches --bench malloc_free`, or
//! `bash ci/bench.sh` for a short run that also prints the PatternAlloc/System
//! time ratio per benchmark. Every benchmark measures both allocators in the
//! same run, in one criterion group, so the report shows them side by side.

use std::alloc::{handle_alloc_error, GlobalAlloc, Layout};
use std::hint::black_box;
use std::ptr;

/// The page size, for touching one byte per page.
pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if size > 0 {
        size as usize
    } else {
        4096
    }
}

/// A 16-aligned layout of `size` bytes (`size > 0`).
pub fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 16).expect("benchmark sizes are valid layouts")
}

/// One allocation and its free. The block escapes through `black_box` and gets
/// one byte written, as a real program would, so neither the pair nor the
/// write can be optimized away and no allocator can skip refilling the block.
#[inline]
pub fn malloc_free<A: GlobalAlloc>(a: &A, layout: Layout) {
    // SAFETY: `layout` has a non-zero size; the block is freed with the same layout.
    unsafe {
        let p = a.alloc(layout);
        if p.is_null() {
            handle_alloc_error(layout);
        }
        let p = black_box(p);
        ptr::write_volatile(p, 1);
        a.dealloc(p, layout);
    }
}

/// One allocation, one byte written per page (so every page is faulted in),
/// and its free.
#[inline]
pub fn malloc_touch_free<A: GlobalAlloc>(a: &A, layout: Layout, page: usize) {
    // SAFETY: as in `malloc_free`; every offset written is below `layout.size()`.
    unsafe {
        let p = a.alloc(layout);
        if p.is_null() {
            handle_alloc_error(layout);
        }
        let p = black_box(p);
        let mut offset = 0;
        while offset < layout.size() {
            ptr::write_volatile(p.add(offset), 1);
            offset += page;
        }
        a.dealloc(p, layout);
    }
}

/// What `Vec<u32>::push` does for `1..=count`, through raw `realloc`: start at
/// capacity 4, double when full, write every element, free at the end.
/// Returns a value derived from the contents so the work cannot be dropped.
pub fn realloc_growth<A: GlobalAlloc>(a: &A, count: u32) -> u32 {
    const ELEM: usize = size_of::<u32>();
    let mut cap = 4usize;
    let mut layout = Layout::from_size_align(cap * ELEM, align_of::<u32>()).expect("small layout");
    // SAFETY: every layout has a non-zero size; `realloc` gets the block's
    // current layout; writes stay below `len < cap`.
    unsafe {
        let mut p = a.alloc(layout) as *mut u32;
        if p.is_null() {
            handle_alloc_error(layout);
        }
        let mut len = 0usize;
        for value in 1..=count {
            if len == cap {
                let new_size = cap * 2 * ELEM;
                let grown = a.realloc(p as *mut u8, layout, new_size) as *mut u32;
                if grown.is_null() {
                    handle_alloc_error(Layout::from_size_align_unchecked(new_size, layout.align()));
                }
                cap *= 2;
                layout = Layout::from_size_align_unchecked(new_size, layout.align());
                p = grown;
            }
            p.add(len).write(value);
            len += 1;
        }
        let p = black_box(p);
        let result = p.read() ^ p.add(len - 1).read();
        a.dealloc(p as *mut u8, layout);
        result
    }
}

/// `count` blocks allocated on this thread and freed on another: the
/// allocating thread sends batches of 256 pointers over a channel to a
/// freeing thread. Returns the time until the last block is freed. The
/// channel and batch vectors use the program's global allocator, the same
/// for every allocator measured.
pub fn cross_thread_free<A: GlobalAlloc + Sync>(a: &'static A, layout: Layout, count: u64) -> std::time::Duration {
    const BATCH: usize = 256;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<usize>>(64);
    let started = std::time::Instant::now();
    let freer = std::thread::spawn(move || {
        for batch in rx {
            for p in batch {
                // SAFETY: every pointer came from `a.alloc(layout)` and is freed once.
                unsafe { a.dealloc(p as *mut u8, layout) };
            }
        }
    });
    let mut left = count;
    while left > 0 {
        let n = left.min(BATCH as u64) as usize;
        let mut batch = Vec::with_capacity(n);
        for _ in 0..n {
            // SAFETY: `layout` has a non-zero size.
            let p = unsafe { a.alloc(layout) };
            if p.is_null() {
                handle_alloc_error(layout);
            }
            // SAFETY: the block has at least one byte.
            unsafe { ptr::write_volatile(p, 1) };
            batch.push(p as usize);
        }
        tx.send(batch).expect("the freeing thread is alive");
        left -= n as u64;
    }
    drop(tx);
    freer.join().expect("the freeing thread does not panic");
    started.elapsed()
}
