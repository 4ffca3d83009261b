//! The allocator for callers that hold no `PatternAlloc` value: the C ABI in
//! `preload/`. The configuration is the default, overridden by
//! `PATTERN_ALLOC`; initialization happens at the first call of any function
//! here, whenever it comes (DESIGN.md §6: library constructors allocate
//! before ours would run).
//!
//! Unlike the Rust face, callers here may hand in pointers this allocator did
//! not make (a library opened with RTLD_DEEPBIND allocates from glibc), so
//! every function that takes a pointer first asks who owns it.

use crate::config::Config;
use crate::init::{self, Runtime};
use crate::size_class::MIN_BLOCK;
use crate::{dispatch, large, small, sys};

#[inline]
fn runtime() -> &'static Runtime {
    init::runtime(&Config::DEFAULT)
}

/// Who made a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// This allocator: pass it to the functions here.
    Us,
    /// Somebody else (glibc, for a library opened with RTLD_DEEPBIND): hand it
    /// to the next allocator in line.
    Foreign,
}

/// Decides ownership from the allocator's own records, without reading the
/// block. A page-aligned pointer that is in no record counts as ours: large
/// blocks start on a page, glibc's blocks never do unless aligned on request,
/// so it is almost surely a large block freed twice, and the large path then
/// reports it clearly instead of glibc aborting with "invalid pointer".
#[inline]
pub fn owner_of(ptr: *const u8) -> Owner {
    let recorded = small::segment_of(ptr).is_some() || large::owns(ptr as *mut u8);
    if recorded || (ptr as usize).is_multiple_of(sys::PAGE_SIZE) {
        Owner::Us
    } else {
        Owner::Foreign
    }
}

/// A block of at least `size` bytes aligned to `align` (a power of two),
/// reading as the pattern, or as zeros when `zeroed`; null when impossible or
/// out of memory (errno is the caller's business).
#[inline]
pub fn allocate(size: usize, align: usize, zeroed: bool) -> *mut u8 {
    dispatch::allocate(runtime(), size, align, zeroed)
}

/// Frees `ptr` if it is ours (see `owner_of`) and says whose it was; a
/// foreign block is left untouched for its owner. Null is ignored.
///
/// # Safety
/// `ptr` is null or a live block; misuse of our blocks is detected where the
/// design can and stops the process.
#[inline]
pub unsafe fn deallocate(ptr: *mut u8) -> Owner {
    if ptr.is_null() {
        return Owner::Us;
    }
    let runtime = runtime();
    if let Some(segment) = small::segment_of(ptr) {
        // SAFETY: ptr lies in that segment.
        unsafe { small::free(runtime, segment, ptr) };
        return Owner::Us;
    }
    if owner_of(ptr) == Owner::Foreign {
        return Owner::Foreign;
    }
    // SAFETY: not in a segment; the large path checks its own records.
    unsafe { large::free(runtime, ptr) };
    Owner::Us
}

/// Resizes a block of ours, keeping its whole usable size's contents (a C
/// caller may have written all of it); growth reads as the pattern. Null
/// (block untouched) on failure.
///
/// # Safety
/// `ptr` is null or a live block owned by this allocator.
pub unsafe fn reallocate(ptr: *mut u8, new_size: usize) -> *mut u8 {
    let runtime = runtime();
    let old_size = if ptr.is_null() {
        0
    } else {
        // SAFETY: a block of ours (a freed one is reported as such).
        unsafe { dispatch::realloc_usable_size(runtime, ptr) }
    };
    // SAFETY: live block of ours holding `old_size` bytes; C realloc only
    // promises malloc's alignment for the result.
    unsafe { dispatch::reallocate(runtime, ptr, old_size, MIN_BLOCK, new_size) }
}

/// The number of bytes the caller may use, every one of them following the
/// contract.
///
/// # Safety
/// `ptr` is a live block owned by this allocator.
pub unsafe fn usable_size(ptr: *mut u8) -> usize {
    // SAFETY: forwarded contract.
    unsafe { dispatch::usable_size(runtime(), ptr) }
}

/// Writes `pattern-alloc: <message>` to stderr without allocating and aborts.
pub fn fatal(message: core::fmt::Arguments<'_>) -> ! {
    crate::report::fatal(message)
}
