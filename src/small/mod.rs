//! The slab front end: blocks up to 32 KiB in size classes, carved from
//! 64 KiB slab pages inside 4 MiB segments, served by per-thread heaps.
//!
//! - `segment`: segments, page descriptors, the address map and the page pool.
//! - `page`: one slab page's free lists.
//! - `heap`: thread heaps, abandoned pages, the fallback heap.
//! - `tls`: which heap the calling thread uses, and its exit hook.

mod heap;
mod page;
mod segment;
#[cfg(all(target_arch = "aarch64", target_os = "linux"))]
mod tag;
mod tls;

use core::sync::atomic::Ordering;

use page::{Block, PAGE_IN_USE};
use segment::Segment;

use crate::fill;
use crate::init::Runtime;
use crate::report;
use crate::size_class::fast_div;
use crate::stats::{self, HeapCounters, GLOBAL};

pub use segment::segment_of;

pub fn init() -> bool {
    tls::init()
}

/// Allocates a block of slab class `class`; null when memory is exhausted.
#[inline]
pub fn alloc(runtime: &Runtime, class: usize, zeroed: bool) -> *mut u8 {
    match tls::heap() {
        Some(heap) => heap.alloc(runtime, class, zeroed),
        None => heap::alloc_fallback(runtime, class, zeroed),
    }
}

/// What `free` and `usable_size` learn about a pointer into a segment.
struct Located<'a> {
    page: &'a page::Page,
    size: usize,
}

/// Checks that `ptr` is the start of a block handed out from `segment`;
/// anything else is a misuse that stops the process.
#[inline]
fn locate<'a>(segment: &'a Segment, tagged: *mut u8, what: &str) -> Located<'a> {
    let ptr = crate::tag::address(tagged);
    let index = segment.page_index(ptr);
    let page = &segment.pages[index];
    if index == 0 || page.state.load(Ordering::Acquire) != PAGE_IN_USE {
        report::fatal(format_args!("invalid {what} of {ptr:p}: not a block handed out by this allocator"));
    }
    let size = page.block_size.get() as usize;
    let offset = ptr as usize - page.start.get() as usize;
    let block_index = fast_div(offset, page.div_magic.get());
    if block_index * size != offset {
        report::fatal(format_args!(
            "invalid {what} of {ptr:p}: interior pointer, {} bytes into a {size}-byte block",
            offset - block_index * size
        ));
    }
    if block_index >= page.bump.load(Ordering::Relaxed) as usize {
        report::fatal(format_args!("invalid {what} of {ptr:p}: block was never allocated"));
    }
    Located { page, size }
}

/// Frees a block of `segment`.
///
/// # Safety
/// `ptr` must point into `segment`.
#[inline]
pub unsafe fn free(runtime: &Runtime, segment: &Segment, ptr: *mut u8) {
    let Located { page, size } = locate(segment, ptr, "free");
    let ptr = crate::tag::small_free(ptr, size);
    let block = ptr as *mut Block;
    let cookie = ptr as u64 ^ runtime.secret;
    // SAFETY: the block is at least 16 bytes of our memory.
    unsafe {
        if core::ptr::read_volatile(core::ptr::addr_of!((*block).cookie)) == cookie {
            report::fatal(format_args!("double free of {ptr:p} (size class of {size} bytes)"));
        }
        if let Some(byte) = runtime.free_fill {
            fill::fill(ptr, size, byte);
        }
        (*block).cookie = cookie;
    }
    let class = page.class.get() as usize;
    let current = tls::heap_if_set(tls::current_raw());
    if let Some(heap) = current {
        if core::ptr::eq(page.owner.load(Ordering::Relaxed), heap) {
            if runtime.free_fill.is_some() {
                heap.counters.count_free_filled(size);
            }
            heap.free_local(page, block);
            return;
        }
    }
    count_remote_free(current, class, size, runtime.free_fill.is_some());
    page.push_remote(block);
    if page.in_full.load(Ordering::SeqCst) {
        let owner = page.owner.load(Ordering::Acquire);
        if !owner.is_null() {
            // SAFETY: heaps are never unmapped.
            unsafe { (*owner).hint_remote_free(class) };
        }
    }
}

fn count_remote_free(current: Option<&heap::Heap>, class: usize, size: usize, free_filled: bool) {
    match current {
        Some(heap) => {
            heap.counters.count_free(class);
            if free_filled {
                heap.counters.count_free_filled(size);
            }
        }
        None => {
            stats::add(&GLOBAL.small_frees_unowned[class], 1);
            if free_filled {
                stats::add(&GLOBAL.bytes_free_filled, size as u64);
            }
        }
    }
}

/// The usable size of a live block of `segment`.
pub fn usable_size(segment: &Segment, ptr: *mut u8) -> usize {
    locate(segment, ptr, "usable-size query").size
}

/// The usable size of a block about to be reallocated: like `usable_size`,
/// and a block that still holds its free cookie (freed, not reused since)
/// stops the process as a realloc of a freed block.
pub fn realloc_usable_size(runtime: &Runtime, segment: &Segment, ptr: *mut u8) -> usize {
    let size = locate(segment, ptr, "realloc").size;
    // SAFETY: located: the block is at least 16 bytes of our memory.
    let cookie = unsafe { core::ptr::read_volatile(core::ptr::addr_of!((*(ptr as *mut Block)).cookie)) };
    if cookie == ptr as u64 ^ runtime.secret {
        report::fatal(format_args!("realloc of freed block {ptr:p} (size class of {size} bytes)"));
    }
    size
}

/// The pattern byte of the block at `ptr`.
pub fn pattern_of_block(segment: &Segment, ptr: *mut u8) -> u8 {
    locate(segment, ptr, "realloc").page.pattern.get()
}

pub fn for_each_counters(visit: &mut dyn FnMut(&HeapCounters)) {
    heap::for_each_counters(visit);
}

pub fn lock_for_fork() {
    heap::lock_for_fork();
}

pub fn unlock_after_fork() {
    heap::unlock_after_fork();
}
