//! Large blocks: each its own mapping from `pages`, one header page in front.
//!
//! Layout: `[header page][usable bytes, whole pages]`; the user pointer is the
//! first byte after the header page and is aligned as requested (pages::map
//! aligns `base + PAGE_SIZE`). The registry records every live user pointer, so
//! a free is checked before the header is read. On a lazy backend the mapping
//! already reads as the pattern and nothing is filled; zeroed blocks are
//! always anonymous memory. Freed mappings are cached (`cache`): up to
//! `RESIDENT_MAX` they stay resident, filled with the free pattern (or the
//! alloc pattern, which then needs no fill on reuse), larger ones are
//! decommitted, which on a lazy backend makes them read as the pattern again.
//! Realloc moves pages with mremap, never bytes; a shrink decommits the
//! whole pages it gives up where that restores the pattern.

mod cache;
mod registry;

use crate::fill;
use crate::init::Runtime;
use crate::pages::{self, Contents, Mapping, PAGE_SIZE};
use crate::report;
use crate::size_class::LARGE_CLASS;
use crate::stats::{self, GLOBAL};
use crate::tag;

const HEADER_MAGIC: u64 = 0x7061_7474_6572_6e21;

/// Freed blocks up to this size stay resident in the cache: one memset at free
/// costs far less than decommitting and faulting every page in again on reuse
/// (64 KiB: ~3 us vs ~50 us measured with the eager backend). With 16 cache
/// entries this keeps at most 8 MiB resident.
const RESIDENT_MAX: usize = 512 * 1024;

#[repr(C)]
struct Header {
    /// `HEADER_MAGIC ^ user pointer`: a stale or foreign header does not match.
    magic: u64,
    mapping: Mapping,
    align: usize,
    pattern: u8,
}

fn header_of(user: *mut u8) -> *mut Header {
    user.wrapping_sub(PAGE_SIZE) as *mut Header
}

/// Mapping length for a block of `size` bytes, or None when impossible.
fn mapping_len(size: usize) -> Option<usize> {
    let usable = pages::round_up_to_page(size.max(1))?;
    let len = usable.checked_add(PAGE_SIZE)?;
    (len <= isize::MAX as usize).then_some(len)
}

/// Allocates a large block; null when impossible or out of memory.
pub fn alloc(runtime: &Runtime, size: usize, align: usize, zeroed: bool) -> *mut u8 {
    let align = align.max(PAGE_SIZE);
    let Some(len) = mapping_len(size) else { return core::ptr::null_mut() };
    let pattern = runtime.patterns[LARGE_CLASS];
    let want = if zeroed { Contents::Zero } else { Contents::Pattern(pattern) };
    let (mapping, contents) = match take_cached(len, align, want) {
        Some(cached) => cached,
        None => match pages::map(len, align, PAGE_SIZE, want) {
            Some(mapping) => (mapping, mapping.backing),
            None => return core::ptr::null_mut(),
        },
    };
    let user = mapping.base.wrapping_add(PAGE_SIZE);
    let usable = mapping.len - PAGE_SIZE;
    if contents != want {
        let byte = if zeroed { 0 } else { pattern };
        let counter = if zeroed { &GLOBAL.bytes_zeroed } else { &GLOBAL.bytes_patterned };
        // SAFETY: the usable range is ours.
        unsafe { fill::fill_counted(user, usable, byte, counter) };
    }
    // SAFETY: the header page is ours.
    unsafe { header_of(user).write(Header { magic: HEADER_MAGIC ^ user as u64, mapping, align, pattern }) };
    if !registry::insert(user as usize) {
        // SAFETY: nobody has seen the mapping.
        unsafe { pages::unmap(mapping) };
        return core::ptr::null_mut();
    }
    stats::add(&GLOBAL.large_allocs, 1);
    stats::add(&GLOBAL.large_bytes_allocated, usable as u64);
    tag::large_block(user, usable, zeroed)
}

/// A cached mapping trimmed to `len`, with what its usable bytes read as.
fn take_cached(len: usize, align: usize, want: Contents) -> Option<(Mapping, Contents)> {
    let max_refill = if pages::is_lazy() { RESIDENT_MAX + PAGE_SIZE } else { usize::MAX };
    let (mapping, contents) = cache::take(len, align, PAGE_SIZE, want, max_refill)?;
    stats::add(&GLOBAL.large_cache_hits, 1);
    if mapping.len == len {
        return Some((mapping, contents));
    }
    // SAFETY: the cached mapping is ours; shrinking keeps its base.
    match unsafe { pages::resize(mapping, len, align, PAGE_SIZE) } {
        Some(trimmed) => Some((trimmed, contents)),
        None => {
            // SAFETY: as above.
            unsafe { pages::unmap(mapping) };
            None
        }
    }
}

/// The header of a block whose registration (`registered`: found, or found
/// and removed) was just checked; a fatal report naming the misuse otherwise.
fn checked_header(user: *mut u8, registered: bool, what: &str) -> &'static mut Header {
    if !registered {
        report::fatal(format_args!(
            "invalid {what} of {user:p}: not a live block of this allocator (freed already, or a foreign pointer)"
        ));
    }
    // SAFETY: registered blocks have a header page in front.
    let header = unsafe { &mut *header_of(user) };
    if header.magic != HEADER_MAGIC ^ user as u64 {
        report::fatal(format_args!("corrupted header of large block {user:p}"));
    }
    header
}

fn live_header(user: *mut u8, what: &str) -> &'static mut Header {
    // The records hold untagged addresses (a pointer may carry an MTE tag).
    let user = tag::address(user);
    checked_header(user, registry::contains(user as usize), what)
}

/// # Safety
/// `user` is not in a slab segment.
pub unsafe fn free(runtime: &Runtime, user: *mut u8) {
    let (user, tag) = tag::split(user);
    let header = checked_header(user, registry::remove(user as usize), "free");
    let mapping = header.mapping;
    let usable = mapping.len - PAGE_SIZE;
    tag::large_free(user, tag, usable, usable <= RESIDENT_MAX);
    stats::add(&GLOBAL.large_frees, 1);
    stats::add(&GLOBAL.large_bytes_freed, usable as u64);
    let contents = if usable <= RESIDENT_MAX {
        let byte = runtime.free_fill.unwrap_or(header.pattern);
        let counter = if runtime.free_fill.is_some() { &GLOBAL.bytes_free_filled } else { &GLOBAL.bytes_patterned };
        // SAFETY: the block is dead and ours.
        unsafe { fill::fill_counted(user, usable, byte, counter) };
        Some(Contents::Pattern(byte))
    } else {
        // SAFETY: the block is dead; decommitting drops its contents.
        unsafe { pages::decommit(mapping.base, mapping.len, mapping.backing) }.then_some(mapping.backing)
    };
    let rejected = match contents {
        Some(contents) => cache::put(mapping, contents),
        None => Some(mapping),
    };
    if let Some(mapping) = rejected {
        // SAFETY: as above.
        unsafe { pages::unmap(mapping) };
    }
}

/// Whether `user` is a live large block (the C ABI forwards others to glibc).
pub fn owns(user: *mut u8) -> bool {
    registry::contains(tag::address(user) as usize)
}

pub fn usable_size(user: *mut u8) -> usize {
    live_header(tag::address(user), "usable-size query").mapping.len - PAGE_SIZE
}

/// `usable_size` for a block about to be reallocated: a freed or unknown
/// block stops the process as an invalid realloc.
pub fn realloc_usable_size(user: *mut u8) -> usize {
    live_header(user, "realloc").mapping.len - PAGE_SIZE
}

/// Resizes a large block to `new_size` bytes in place or by moving its pages.
/// Bytes from `new_size` up to the old size become the pattern again when
/// shrinking; growth reads as the pattern. Null (block untouched) on failure.
///
/// # Safety
/// `user` is a live large block of at least `old_size` bytes.
pub unsafe fn realloc(user: *mut u8, old_size: usize, new_size: usize) -> *mut u8 {
    let header = live_header(user, "realloc");
    let Some(new_len) = mapping_len(new_size) else { return core::ptr::null_mut() };
    let Header { mapping, align, pattern, .. } = *header;
    let old_usable = mapping.len - PAGE_SIZE;
    if new_size < old_size {
        let stale_end = old_size.min(new_len - PAGE_SIZE);
        if new_size < stale_end {
            // SAFETY: inside the block, past what the block keeps.
            unsafe {
                pages::reset(
                    user.add(new_size),
                    stale_end - new_size,
                    mapping.backing,
                    pattern,
                    &GLOBAL.bytes_patterned,
                )
            };
        }
    }
    if new_len == mapping.len {
        return user;
    }
    // Unrecord first: once mremap moves the pages, another thread may map the
    // old range and record a block there, whose bit a later removal would clear.
    registry::remove(user as usize);
    // SAFETY: the mapping is this block's.
    let Some(resized) = (unsafe { pages::resize(mapping, new_len, align, PAGE_SIZE) }) else {
        // Its leaf exists, so recording the unmoved block again cannot fail.
        registry::insert(user as usize);
        return core::ptr::null_mut();
    };
    let new_user = resized.base.wrapping_add(PAGE_SIZE);
    let new_usable = new_len - PAGE_SIZE;
    if new_usable > old_usable && resized.backing != Contents::Pattern(pattern) {
        let tail = new_user.wrapping_add(old_usable);
        // SAFETY: the grown tail is ours.
        unsafe { fill::fill_counted(tail, new_usable - old_usable, pattern, &GLOBAL.bytes_patterned) };
    }
    // SAFETY: the header page moved with the mapping.
    unsafe {
        header_of(new_user).write(Header { magic: HEADER_MAGIC ^ new_user as u64, mapping: resized, align, pattern })
    };
    if !registry::insert(new_user as usize) {
        report::fatal(format_args!("out of memory recording large block {new_user:p}"));
    }
    let (grew, shrank) = (new_usable.saturating_sub(old_usable), old_usable.saturating_sub(new_usable));
    stats::add(&GLOBAL.large_bytes_allocated, grew as u64);
    stats::add(&GLOBAL.large_bytes_freed, shrank as u64);
    new_user
}

/// Fork: the cache, then the page sources (the innermost lock; init.rs
/// calls this after the slab locks).
pub fn lock_for_fork() {
    cache::lock_for_fork();
    pages::lock_for_fork();
}

pub fn unlock_after_fork() {
    pages::unlock_after_fork();
    cache::unlock_after_fork();
}
