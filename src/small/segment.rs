//! Segments and the page pool.
//!
//! A segment is 4 MiB aligned to 4 MiB, mapped from `pages`. Its first 64 KiB
//! hold the `Segment` header (the descriptors of its slab pages); the other 63
//! slab pages hold blocks, so block memory comes straight from the page source
//! and keeps the source's backing. A pointer finds its segment by masking and
//! its page by a shift; a bitmap over the address space (`SEGMENT_MAP`, one
//! bit per 4 MiB) says whether an address belongs to a segment at all.
//!
//! Segments are never unmapped: a thread freeing into a page reads the page's
//! descriptor after its push, when the owner may already have emptied and
//! released the page, so descriptors must stay readable. Memory goes back to
//! the kernel per slab page instead: a released page stays committed ("dirty")
//! until it has stayed free while `DECOMMIT_AGE` more pages were released, or
//! until more than `DIRTY_LIMIT` pages are dirty, then `MADV_DONTNEED` drops it.
//! On a lazy backend (refpage, memfd windows) a segment reads as the pattern
//! it was mapped for, and a decommitted page reads as that pattern again: a
//! page of a class with that pattern is carved without any fill, fresh or
//! recycled; only dirty pages (and pages of other patterns) are filled.

use core::cell::Cell;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicU64, Ordering};

use super::page::{Page, PAGE_FREE, SLAB_PAGE_SIZE};
use crate::lock::SpinLock;
use crate::pages::{self, Contents};
use crate::report;
use crate::stats::{self, GLOBAL};

pub const SEGMENT_SIZE: usize = 4 << 20;
pub const PAGES_PER_SEGMENT: usize = SEGMENT_SIZE / SLAB_PAGE_SIZE;
const SEGMENT_SHIFT: u32 = SEGMENT_SIZE.trailing_zeros();
const ADDRESS_BITS: u32 = 48;
/// Pages 1.. carry blocks; page 0 is the header.
const ALL_BLOCK_PAGES: u64 = !1;

const DECOMMIT_AGE: u64 = 32;
const SWEEP_EVERY: u64 = 16;
const DIRTY_LIMIT: u64 = 256;

#[repr(C)]
pub struct Segment {
    pub pages: [Page; PAGES_PER_SEGMENT],
    pub backing: Contents,
    // Pool state, under the pool lock.
    free_mask: Cell<u64>,
    dirty_mask: Cell<u64>,
    next: Cell<*mut Segment>,
}

const _: () = assert!(core::mem::size_of::<Segment>() <= SLAB_PAGE_SIZE);

static SEGMENT_MAP: [AtomicU64; 1 << (ADDRESS_BITS - SEGMENT_SHIFT - 6)] =
    [const { AtomicU64::new(0) }; 1 << (ADDRESS_BITS - SEGMENT_SHIFT - 6)];

/// The segment holding `ptr`, if `ptr` lies in one.
#[inline]
pub fn segment_of(ptr: *const u8) -> Option<&'static Segment> {
    let address = crate::tag::address(ptr as *mut u8) as usize;
    if address >> ADDRESS_BITS != 0 {
        return None;
    }
    let index = address >> SEGMENT_SHIFT;
    let word = SEGMENT_MAP[index >> 6].load(Ordering::Relaxed);
    if word & (1 << (index & 63)) == 0 {
        return None;
    }
    // SAFETY: registered segments stay mapped for the life of the process.
    Some(unsafe { &*((address & !(SEGMENT_SIZE - 1)) as *const Segment) })
}

impl Segment {
    #[inline]
    pub fn base(&self) -> usize {
        self as *const Segment as usize
    }

    /// The index of the slab page holding `ptr` (0 is the header).
    #[inline]
    pub fn page_index(&self, ptr: *const u8) -> usize {
        (ptr as usize - self.base()) / SLAB_PAGE_SIZE
    }
}

struct Pool {
    /// Segments with at least one free slab page.
    partial: *mut Segment,
    releases: u64,
    dirty: u64,
}

// SAFETY: the pool is only used under its lock.
unsafe impl Send for Pool {}

static POOL: SpinLock<Pool> = SpinLock::new(Pool { partial: null_mut(), releases: 0, dirty: 0 });

pub fn lock_for_fork() {
    POOL.acquire_for_fork();
}

pub fn unlock_after_fork() {
    POOL.release_after_fork();
}

/// A free slab page for a new owner: dirty (recently used, resident) pages
/// first. Returns the page and whether it holds stale data.
pub fn take_page() -> Option<(&'static Page, bool)> {
    let mut pool = POOL.lock();
    let mut chosen: *mut Segment = null_mut();
    let mut cursor = pool.partial;
    while !cursor.is_null() {
        // SAFETY: segments on the list are live.
        let segment = unsafe { &*cursor };
        if segment.dirty_mask.get() != 0 {
            chosen = cursor;
            break;
        }
        if chosen.is_null() {
            chosen = cursor;
        }
        cursor = segment.next.get();
    }
    if chosen.is_null() {
        return None;
    }
    // SAFETY: as above.
    let segment = unsafe { &*chosen };
    let dirty_mask = segment.dirty_mask.get();
    let candidates = if dirty_mask != 0 { dirty_mask } else { segment.free_mask.get() };
    let index = candidates.trailing_zeros() as usize;
    let dirty = dirty_mask & (1 << index) != 0;
    segment.free_mask.set(segment.free_mask.get() & !(1 << index));
    segment.dirty_mask.set(dirty_mask & !(1 << index));
    if dirty {
        pool.dirty -= 1;
    }
    if segment.free_mask.get() == 0 {
        unlink_partial(&mut pool, chosen);
    }
    Some((&segment.pages[index], dirty))
}

/// Gives an empty page back. The caller has marked it free.
pub fn release_page(page: &Page) {
    debug_assert_eq!(page.state.load(Ordering::Relaxed), PAGE_FREE);
    let Some(segment) = segment_of(page as *const Page as *const u8) else {
        report::fatal(format_args!("internal error: page descriptor {:p} outside any segment", page));
    };
    let index = (page as *const Page as usize - segment.pages.as_ptr() as usize) / core::mem::size_of::<Page>();
    let mut pool = POOL.lock();
    if segment.free_mask.get() == 0 {
        segment.next.set(pool.partial);
        pool.partial = segment as *const Segment as *mut Segment;
    }
    segment.free_mask.set(segment.free_mask.get() | (1 << index));
    segment.dirty_mask.set(segment.dirty_mask.get() | (1 << index));
    pool.releases += 1;
    pool.dirty += 1;
    page.freed_at.set(pool.releases);
    if pool.releases.is_multiple_of(SWEEP_EVERY) || pool.dirty > DIRTY_LIMIT {
        sweep(&mut pool);
    }
}

/// Decommits dirty pages that stayed free long enough (all of them when too
/// many are dirty).
fn sweep(pool: &mut Pool) {
    let everything = pool.dirty > DIRTY_LIMIT;
    let mut cursor = pool.partial;
    while !cursor.is_null() {
        // SAFETY: segments on the list are live.
        let segment = unsafe { &*cursor };
        let mut dirty = segment.dirty_mask.get();
        while dirty != 0 {
            let index = dirty.trailing_zeros() as usize;
            dirty &= dirty - 1;
            let page = &segment.pages[index];
            if !everything && pool.releases - page.freed_at.get() < DECOMMIT_AGE {
                continue;
            }
            let start = (segment.base() + index * SLAB_PAGE_SIZE) as *mut u8;
            // SAFETY: a free page holds no live block.
            if unsafe { pages::decommit(start, SLAB_PAGE_SIZE, segment.backing) } {
                segment.dirty_mask.set(segment.dirty_mask.get() & !(1 << index));
                pool.dirty -= 1;
                stats::add(&GLOBAL.pages_decommitted, 1);
            }
        }
        cursor = segment.next.get();
    }
}

fn unlink_partial(pool: &mut Pool, target: *mut Segment) {
    let mut link: *mut *mut Segment = &mut pool.partial;
    // SAFETY: walks the pool's own singly-linked list under its lock.
    unsafe {
        while !(*link).is_null() {
            if *link == target {
                *link = (*target).next.get();
                (*target).next.set(null_mut());
                return;
            }
            link = (*(*link)).next.as_ptr();
        }
    }
}

/// Maps a new segment and adds its pages to the pool. `prefer` is the pattern
/// the caller would like fresh block memory to read as.
pub fn grow(prefer: u8) -> bool {
    let Some(mapping) = pages::map(SEGMENT_SIZE, SEGMENT_SIZE, 0, Contents::Pattern(prefer)) else {
        return false;
    };
    let segment = mapping.base as *mut Segment;
    if (mapping.base as usize) >> ADDRESS_BITS != 0 {
        // SAFETY: the mapping is ours and unused.
        unsafe { pages::unmap(mapping) };
        return false;
    }
    // SAFETY: the header page is ours; it is initialized before anyone sees it.
    unsafe {
        let pages_ptr = core::ptr::addr_of_mut!((*segment).pages) as *mut Page;
        for index in 0..PAGES_PER_SEGMENT {
            pages_ptr.add(index).write(Page::unused((mapping.base as usize + index * SLAB_PAGE_SIZE) as *mut u8));
        }
        core::ptr::addr_of_mut!((*segment).backing).write(mapping.backing);
        core::ptr::addr_of_mut!((*segment).free_mask).write(Cell::new(ALL_BLOCK_PAGES));
        core::ptr::addr_of_mut!((*segment).dirty_mask).write(Cell::new(0));
        core::ptr::addr_of_mut!((*segment).next).write(Cell::new(null_mut()));
    }
    let index = mapping.base as usize >> SEGMENT_SHIFT;
    SEGMENT_MAP[index >> 6].fetch_or(1 << (index & 63), Ordering::Release);
    stats::add(&GLOBAL.segments, 1);
    let mut pool = POOL.lock();
    // SAFETY: initialized above.
    unsafe { (*segment).next.set(pool.partial) };
    pool.partial = segment;
    true
}

impl Page {
    pub(super) fn unused(start: *mut u8) -> Page {
        Page {
            free: Cell::new(null_mut()),
            used: Cell::new(0),
            capacity: Cell::new(0),
            needs_fill: Cell::new(false),
            next: Cell::new(null_mut()),
            prev: Cell::new(null_mut()),
            freed_at: Cell::new(0),
            dirty: Cell::new(false),
            class: Cell::new(0),
            pattern: Cell::new(0),
            block_size: Cell::new(0),
            div_magic: Cell::new(0),
            start: Cell::new(start),
            state: core::sync::atomic::AtomicU8::new(PAGE_FREE),
            bump: core::sync::atomic::AtomicU32::new(0),
            owner: core::sync::atomic::AtomicPtr::new(null_mut()),
            thread_free: core::sync::atomic::AtomicPtr::new(null_mut()),
            in_full: core::sync::atomic::AtomicBool::new(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fits_in_the_first_slab_page() {
        assert!(core::mem::size_of::<Segment>() <= SLAB_PAGE_SIZE);
        assert_eq!(PAGES_PER_SEGMENT, 64);
    }

    #[test]
    fn grown_segments_are_found_by_address_and_hand_out_pages() {
        assert!(grow(0xAA));
        let (page, _dirty) = take_page().unwrap();
        let start = page.start.get();
        assert_eq!(start as usize % SLAB_PAGE_SIZE, 0);
        let segment = segment_of(start).unwrap();
        assert_eq!(segment.page_index(unsafe { start.add(100) }), segment.page_index(start));
        assert!(core::ptr::eq(&segment.pages[segment.page_index(start)], page));
        assert!(segment_of(&SEGMENT_MAP as *const _ as *const u8).is_none());
        assert!(segment_of(usize::MAX as *const u8).is_none());
        release_page(page);
    }
}
