//! Routes each request to the slab front end or to large blocks, and moves
//! blocks between them on realloc. Shared by the Rust face and (later) the C ABI.

use crate::init::Runtime;
use crate::size_class::{class_for, class_of, LARGE_CLASS, MIN_BLOCK};
use crate::stats::GLOBAL;
use crate::{fill, large, small};

/// The slab class serving `size` bytes at `align`, if any.
#[inline]
fn small_class(runtime: &Runtime, size: usize, align: usize) -> Option<usize> {
    if size > runtime.large_threshold {
        return None;
    }
    if align <= MIN_BLOCK {
        class_of(size)
    } else {
        class_for(size, align)
    }
}

/// The class index (`LARGE_CLASS` for large blocks) a request would get.
pub fn class_of_layout(runtime: &Runtime, size: usize, align: usize) -> usize {
    small_class(runtime, size, align).unwrap_or(LARGE_CLASS)
}

/// A block of at least `size` bytes aligned to `align` (a power of two),
/// reading as its class's pattern, or as zeros when `zeroed`. Null when the
/// request is impossible or memory is exhausted.
#[inline]
pub fn allocate(runtime: &Runtime, size: usize, align: usize, zeroed: bool) -> *mut u8 {
    if !align.is_power_of_two() {
        return core::ptr::null_mut();
    }
    match small_class(runtime, size, align) {
        Some(class) => small::alloc(runtime, class, zeroed),
        None => large::alloc(runtime, size, align, zeroed),
    }
}

/// # Safety
/// `ptr` is null or a live block of this allocator (anything else is
/// detected where the design can and stops the process).
#[inline]
pub unsafe fn deallocate(runtime: &Runtime, ptr: *mut u8) {
    if ptr.is_null() {
        return;
    }
    match small::segment_of(ptr) {
        // SAFETY: ptr lies in that segment.
        Some(segment) => unsafe { small::free(runtime, segment, ptr) },
        // SAFETY: not in a segment, so only a large block can be valid.
        None => unsafe { large::free(runtime, ptr) },
    }
}

/// Resizes a live block of `old_size` bytes to `new_size`, keeping the first
/// `min(old_size, new_size)` bytes; bytes past `old_size` read as the pattern
/// (C3). Null (the old block untouched) on failure.
///
/// # Safety
/// `ptr` is null or a live block of at least `old_size` bytes aligned to `align`.
pub unsafe fn reallocate(runtime: &Runtime, ptr: *mut u8, old_size: usize, align: usize, new_size: usize) -> *mut u8 {
    if ptr.is_null() {
        return allocate(runtime, new_size, align, false);
    }
    match small::segment_of(ptr) {
        Some(segment) => {
            let usable = small::realloc_usable_size(runtime, segment, ptr);
            // Stay in place unless the block would be less than half used.
            if new_size <= usable && (new_size >= usable / 2 || usable == MIN_BLOCK) {
                if new_size < old_size {
                    let pattern = small::pattern_of_block(segment, ptr);
                    let stale = old_size.min(usable) - new_size;
                    // SAFETY: [new_size, min(old_size, usable)) lies in the block.
                    unsafe { fill::fill_counted(ptr.add(new_size), stale, pattern, &GLOBAL.bytes_patterned) };
                }
                return ptr;
            }
        }
        None => {
            // Under MTE a large block moves by copy: its pages keep their tags.
            if small_class(runtime, new_size, align).is_none() && !crate::tag::enabled() {
                // SAFETY: not in a segment: a large block (checked inside).
                return unsafe { large::realloc(ptr, old_size, new_size) };
            }
            // The copy below reads the block: a freed large block may be
            // unmapped already, so it is checked first.
            large::realloc_usable_size(ptr);
        }
    }
    let moved = allocate(runtime, new_size, align, false);
    if !moved.is_null() {
        // SAFETY: both blocks are live and hold at least the copied length.
        unsafe {
            core::ptr::copy_nonoverlapping(ptr, moved, old_size.min(new_size));
            deallocate(runtime, ptr);
        }
    }
    moved
}

/// `usable_size` of a block about to be reallocated; a freed block stops the
/// process with a realloc message.
///
/// # Safety
/// `ptr` is a block of this allocator.
pub unsafe fn realloc_usable_size(runtime: &Runtime, ptr: *mut u8) -> usize {
    match small::segment_of(ptr) {
        Some(segment) => small::realloc_usable_size(runtime, segment, ptr),
        None => large::realloc_usable_size(ptr),
    }
}

/// # Safety
/// `ptr` is a live block of this allocator.
pub unsafe fn usable_size(_runtime: &Runtime, ptr: *mut u8) -> usize {
    match small::segment_of(ptr) {
        Some(segment) => small::usable_size(segment, ptr),
        None => large::usable_size(ptr),
    }
}
