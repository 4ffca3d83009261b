//! A slab page: 64 KiB of same-size blocks with its own free lists
//! (mimalloc's free-list sharding).
//!
//! - `free`: blocks ready for the owning thread; owner frees push here too.
//! - `thread_free`: an atomic stack that other threads push freed blocks onto;
//!   the owner takes it whole (`collect`) when `free` runs dry.
//! - `bump`: blocks past it were never handed out, so they still read as the
//!   page's backing; only recycled blocks (and carved ones when `needs_fill`)
//!   are filled on allocation.
//!
//! A freed block holds the list link in its first 8 bytes and a cookie
//! (`address ^ secret`) in the next 8, which is how a second free of the same
//! block is recognized. The owner-only fields are Cells: by construction only
//! the owning thread (or whoever holds the lock that stands for it: the
//! fallback heap's or the abandoned lists') touches them.

use core::cell::Cell;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU8, Ordering};

use super::heap::Heap;

pub const SLAB_PAGE_SIZE: usize = 64 * 1024;

/// A free block's first 16 bytes.
#[repr(C)]
pub struct Block {
    pub next: *mut Block,
    pub cookie: u64,
}

pub const PAGE_FREE: u8 = 0;
pub const PAGE_IN_USE: u8 = 1;

/// Cache-line aligned: descriptors of pages owned by different threads sit
/// side by side in a segment header, and their owners write them constantly.
#[repr(C, align(64))]
pub struct Page {
    // Owner-only state.
    pub free: Cell<*mut Block>,
    /// Blocks handed out and not yet back on `free` (remote frees count until collected).
    pub used: Cell<u32>,
    pub capacity: Cell<u32>,
    /// Carved blocks need the pattern written (the page did not come pristine).
    pub needs_fill: Cell<bool>,
    /// Links in the owner's lists (or the pool's and abandoned lists when unowned).
    pub next: Cell<*mut Page>,
    pub prev: Cell<*mut Page>,
    /// Pool bookkeeping: when the page was freed, whether it holds stale data.
    pub freed_at: Cell<u64>,
    pub dirty: Cell<bool>,

    // Fixed while the page is in use: read by any thread freeing into it.
    pub class: Cell<u8>,
    pub pattern: Cell<u8>,
    pub block_size: Cell<u32>,
    pub div_magic: Cell<u64>,
    pub start: Cell<*mut u8>,

    // Shared state.
    pub state: AtomicU8,
    /// Blocks carved so far; a free beyond it is of a block never handed out.
    pub bump: AtomicU32,
    pub owner: AtomicPtr<Heap>,
    pub thread_free: AtomicPtr<Block>,
    /// The owner moved the page to its full list; remote frees then leave a hint.
    pub in_full: AtomicBool,
}

// SAFETY: see the module comment: owner-only fields are touched by one thread
// at a time, shared fields are atomics.
unsafe impl Sync for Page {}

impl Page {
    /// Carves the next never-used block, if any.
    #[inline]
    pub fn carve(&self) -> Option<*mut u8> {
        let bump = self.bump.load(Ordering::Relaxed);
        if bump >= self.capacity.get() {
            return None;
        }
        self.bump.store(bump + 1, Ordering::Relaxed);
        self.used.set(self.used.get() + 1);
        // SAFETY: bump < capacity, so the block lies inside the page.
        Some(unsafe { self.start.get().add(bump as usize * self.block_size.get() as usize) })
    }

    /// Pops a recycled block.
    #[inline]
    pub fn pop(&self) -> Option<*mut u8> {
        let block = self.free.get();
        if block.is_null() {
            return None;
        }
        // SAFETY: blocks on `free` are ours and hold a valid link.
        self.free.set(unsafe { (*block).next });
        self.used.set(self.used.get() + 1);
        Some(block as *mut u8)
    }

    /// Owner free: the block must already hold its cookie.
    #[inline]
    pub fn push_local(&self, block: *mut Block) {
        // SAFETY: the block is ours again and at least 16 bytes long.
        unsafe { (*block).next = self.free.get() };
        self.free.set(block);
        self.used.set(self.used.get() - 1);
    }

    /// Free from a thread that does not own the page. Model-checked with
    /// `collect` and the full-page hint in loom/tests/remote_free.rs: keep the
    /// orderings there in step with these.
    #[inline]
    pub fn push_remote(&self, block: *mut Block) {
        let mut head = self.thread_free.load(Ordering::Relaxed);
        loop {
            // SAFETY: the freeing thread owns the block until the push succeeds.
            unsafe { (*block).next = head };
            match self.thread_free.compare_exchange_weak(head, block, Ordering::SeqCst, Ordering::Relaxed) {
                Ok(_) => return,
                Err(current) => head = current,
            }
        }
    }

    /// Moves every remotely freed block onto `free`. Returns how many there were.
    pub fn collect(&self) -> u32 {
        if self.thread_free.load(Ordering::Relaxed).is_null() {
            return 0;
        }
        let list = self.thread_free.swap(null_mut(), Ordering::Acquire);
        if list.is_null() {
            return 0;
        }
        let mut count = 1;
        let mut tail = list;
        // SAFETY: blocks on the remote list are free blocks of this page.
        unsafe {
            while !(*tail).next.is_null() {
                tail = (*tail).next;
                count += 1;
            }
            (*tail).next = self.free.get();
        }
        self.free.set(list);
        self.used.set(self.used.get() - count);
        count
    }
}

/// Intrusive doubly-linked list of pages (a heap's per-class lists, the
/// abandoned lists). Operations take the head by reference.
pub struct PageList;

impl PageList {
    pub fn push_front(head: &Cell<*mut Page>, page: &Page) {
        let first = head.get();
        page.prev.set(null_mut());
        page.next.set(first);
        if !first.is_null() {
            // SAFETY: list members are live page descriptors.
            unsafe { (*first).prev.set(page as *const Page as *mut Page) };
        }
        head.set(page as *const Page as *mut Page);
    }

    pub fn remove(head: &Cell<*mut Page>, page: &Page) {
        let (prev, next) = (page.prev.get(), page.next.get());
        // SAFETY: as above.
        unsafe {
            if prev.is_null() {
                head.set(next);
            } else {
                (*prev).next.set(next);
            }
            if !next.is_null() {
                (*next).prev.set(prev);
            }
        }
        page.prev.set(null_mut());
        page.next.set(null_mut());
    }

    pub fn pop_front(head: &Cell<*mut Page>) -> Option<*mut Page> {
        let first = head.get();
        if first.is_null() {
            return None;
        }
        // SAFETY: as above.
        PageList::remove(head, unsafe { &*first });
        Some(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[repr(align(65536))]
    struct Memory([u8; SLAB_PAGE_SIZE]);

    fn page_of(memory: &mut Memory, block_size: usize) -> Page {
        let page = Page::unused(memory.0.as_mut_ptr());
        page.block_size.set(block_size as u32);
        page.capacity.set((SLAB_PAGE_SIZE / block_size) as u32);
        page
    }

    #[test]
    fn carving_hands_out_each_block_once_then_stops() {
        let mut memory = Box::new(Memory([0; SLAB_PAGE_SIZE]));
        let base = memory.0.as_mut_ptr() as usize;
        let page = page_of(&mut memory, 20480);
        let carved: Vec<usize> = core::iter::from_fn(|| page.carve()).map(|p| p as usize - base).collect();
        assert_eq!(carved, [0, 20480, 40960]);
        assert_eq!(page.used.get(), 3);
        assert!(page.pop().is_none());
    }

    #[test]
    fn local_frees_are_popped_last_in_first_out() {
        let mut memory = Box::new(Memory([0; SLAB_PAGE_SIZE]));
        let page = page_of(&mut memory, 64);
        let blocks: Vec<*mut u8> = (0..3).map(|_| page.carve().unwrap()).collect();
        page.push_local(blocks[0] as *mut Block);
        page.push_local(blocks[2] as *mut Block);
        assert_eq!(page.used.get(), 1);
        assert_eq!(page.pop(), Some(blocks[2]));
        assert_eq!(page.pop(), Some(blocks[0]));
        assert_eq!(page.pop(), None);
        assert_eq!(page.used.get(), 3);
    }

    #[test]
    fn remote_frees_from_many_threads_are_all_collected() {
        let mut memory = Box::new(Memory([0; SLAB_PAGE_SIZE]));
        let page = page_of(&mut memory, 16);
        let blocks: Vec<usize> = (0..4096).map(|_| page.carve().unwrap() as usize).collect();
        std::thread::scope(|scope| {
            for chunk in blocks.chunks(1024) {
                let page = &page;
                scope.spawn(move || chunk.iter().for_each(|&b| page.push_remote(b as *mut Block)));
            }
        });
        assert_eq!(page.collect(), 4096);
        assert_eq!(page.used.get(), 0);
        assert_eq!(page.collect(), 0);
        let mut popped: Vec<usize> = core::iter::from_fn(|| page.pop()).map(|p| p as usize).collect();
        popped.sort_unstable();
        assert_eq!(popped, blocks);
    }

    #[test]
    fn page_list_push_remove_pop() {
        let mut memory = Box::new(Memory([0; SLAB_PAGE_SIZE]));
        let pages: Vec<Page> = (0..3).map(|_| Page::unused(memory.0.as_mut_ptr())).collect();
        let head = Cell::new(null_mut());
        pages.iter().for_each(|p| PageList::push_front(&head, p));
        PageList::remove(&head, &pages[1]);
        let order: Vec<*mut Page> = core::iter::from_fn(|| PageList::pop_front(&head)).collect();
        let expected: Vec<*mut Page> = [&pages[2], &pages[0]].iter().map(|p| *p as *const Page as *mut Page).collect();
        assert_eq!(order, expected);
        assert!(head.get().is_null());
    }
}
