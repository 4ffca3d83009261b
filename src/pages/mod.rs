//! Where memory comes from: the only module that creates mappings.
//!
//! A `Mapping` records what its untouched (or decommitted) pages read as: its
//! `backing`. The eager backend hands out anonymous memory, so its backing is
//! zero and callers that need a pattern fill it themselves, once. Lazy backends
//! (the kernel reference page and its memfd emulation, a later issue) will
//! return `Contents::Pattern(b)` backings from the same calls, so the front
//! ends skip the fill without knowing which backend they run on.

mod eager;

use core::sync::atomic::{AtomicU8, Ordering};

use crate::config::Backend;
use crate::stats::{self, GLOBAL};
use crate::sys;

pub use crate::sys::PAGE_SIZE;

/// What a range of memory reads as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contents {
    Zero,
    Pattern(u8),
}

/// One mapping made by `map`.
#[derive(Clone, Copy, Debug)]
pub struct Mapping {
    pub base: *mut u8,
    pub len: usize,
    /// What untouched and decommitted pages of this mapping read as.
    pub backing: Contents,
}

static ACTIVE: AtomicU8 = AtomicU8::new(0);
const EAGER: u8 = 1;

/// Picks the backend at initialization (`backend=auto` takes the best one
/// this build has, which is eager for now).
pub fn select(requested: Backend) {
    let chosen = match requested {
        Backend::Auto | Backend::Eager => EAGER,
    };
    ACTIVE.store(chosen, Ordering::Relaxed);
}

pub fn backend_name() -> &'static str {
    match ACTIVE.load(Ordering::Relaxed) {
        EAGER => "eager",
        _ => "none",
    }
}

/// Maps `len` bytes (a multiple of the page size) such that `base + offset`
/// is a multiple of `align` (a power of two of at least a page). `prefer` is
/// what the caller would like untouched memory to read as; the result's
/// `backing` says what it got.
pub fn map(len: usize, align: usize, offset: usize, prefer: Contents) -> Option<Mapping> {
    let _ = prefer;
    let mapping = eager::map(len, align, offset)?;
    stats::add(&GLOBAL.bytes_mapped, mapping.len as u64);
    Some(mapping)
}

/// Unmaps a whole mapping or its tail.
///
/// # Safety
/// Nothing may use the range afterwards.
pub unsafe fn unmap(base: *mut u8, len: usize) {
    if unsafe { sys::unmap(base, len) } {
        stats::sub(&GLOBAL.bytes_mapped, len as u64);
    }
}

/// Gives the pages of `[ptr, ptr + len)` back to the kernel; afterwards they
/// read as `backing` again. Returns false when the kernel refused (the memory
/// then keeps its contents and stays resident).
///
/// # Safety
/// Page-aligned range of a mapping with that backing, holding nothing live.
pub unsafe fn decommit(ptr: *mut u8, len: usize, backing: Contents) -> bool {
    let _ = backing;
    unsafe { sys::dont_need(ptr, len) }
}

/// Grows or shrinks `mapping` to `new_len` bytes, moving it if needed while
/// keeping `base + offset` a multiple of `align`. Pages past the old length
/// read as the mapping's backing. The contents move with the pages; nothing
/// is copied through userspace.
///
/// # Safety
/// `mapping` must be a live mapping from `map`; on success the old address
/// range must not be used any more.
pub unsafe fn resize(mapping: Mapping, new_len: usize, align: usize, offset: usize) -> Option<Mapping> {
    let resized = unsafe { eager::resize(mapping, new_len, align, offset) }?;
    if new_len >= mapping.len {
        stats::add(&GLOBAL.bytes_mapped, (new_len - mapping.len) as u64);
    } else {
        stats::sub(&GLOBAL.bytes_mapped, (mapping.len - new_len) as u64);
    }
    Some(resized)
}

/// Zeroed memory for the allocator's own metadata (not counted as heap).
pub fn map_metadata(len: usize) -> Option<*mut u8> {
    sys::map_anonymous(len)
}

pub const fn round_up_to_page(size: usize) -> Option<usize> {
    match size.checked_add(PAGE_SIZE - 1) {
        Some(v) => Some(v & !(PAGE_SIZE - 1)),
        None => None,
    }
}
