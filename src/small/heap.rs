//! Thread heaps: per-class lists of slab pages owned by one thread.
//!
//! Each heap keeps, per class, `avail` (pages that may have room; the first is
//! the one allocations come from) and `full` (pages found without room). A
//! thread freeing into a full page it does not own leaves a hint
//! (`remote_hint`), and the owner then looks through that class's full pages
//! for remotely freed blocks. The owner marks a page full and then looks at
//! the remote list once more, and a remote free pushes and then reads the
//! flag, both sequentially consistent: one of them always sees the other, so
//! no freed block is stranded on a full page without a hint.
//!
//! At thread exit the heap's empty pages go back to the pool and the rest are
//! abandoned: unowned, on a global list per class, where a thread needing a
//! page of that class adopts them. Heaps themselves are never unmapped (a
//! remote free may still leave a hint on a heap whose thread exited); they
//! are reused by new threads.
//!
//! Allocations reached while a thread has no usable heap (during its set-up or
//! after its exit destructor) go to the fallback heap under a lock.

use core::cell::Cell;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicBool, Ordering};

use super::page::{Block, Page, PageList, PAGE_FREE, PAGE_IN_USE, SLAB_PAGE_SIZE};
use super::segment::{self, segment_of};
use crate::fill;
use crate::init::Runtime;
use crate::lock::SpinLock;
use crate::pages::{self, Contents};
use crate::report;
use crate::size_class::{class_size, div_magic, SMALL_CLASS_COUNT};
use crate::stats::{self, HeapCounters, GLOBAL};

pub struct Heap {
    avail: [Cell<*mut Page>; SMALL_CLASS_COUNT],
    full: [Cell<*mut Page>; SMALL_CLASS_COUNT],
    remote_hint: [AtomicBool; SMALL_CLASS_COUNT],
    pub counters: HeapCounters,
    next_free: Cell<*mut Heap>,
    next_all: Cell<*mut Heap>,
}

// SAFETY: a heap's Cells are used by its owning thread only (the fallback
// heap's under its lock); other threads touch only `remote_hint` and counters.
unsafe impl Sync for Heap {}

impl Heap {
    const fn new() -> Heap {
        Heap {
            avail: [const { Cell::new(null_mut()) }; SMALL_CLASS_COUNT],
            full: [const { Cell::new(null_mut()) }; SMALL_CLASS_COUNT],
            remote_hint: [const { AtomicBool::new(false) }; SMALL_CLASS_COUNT],
            counters: HeapCounters::new(),
            next_free: Cell::new(null_mut()),
            next_all: Cell::new(null_mut()),
        }
    }

    fn as_ptr(&self) -> *mut Heap {
        self as *const Heap as *mut Heap
    }

    /// Allocates a block of `class`; null when memory is exhausted.
    #[inline]
    pub fn alloc(&self, runtime: &Runtime, class: usize, zeroed: bool) -> *mut u8 {
        let page = self.avail[class].get();
        if !page.is_null() {
            // SAFETY: pages on our lists are live descriptors we own.
            let page = unsafe { &*page };
            if let Some(block) = page.pop() {
                return self.hand_out(page, block, true, zeroed);
            }
            if let Some(block) = page.carve() {
                return self.hand_out(page, block, false, zeroed);
            }
        }
        self.alloc_generic(runtime, class, zeroed)
    }

    /// Writes what the contract promises over the whole block.
    #[inline]
    fn hand_out(&self, page: &Page, block: *mut u8, recycled: bool, zeroed: bool) -> *mut u8 {
        #[cfg(all(target_arch = "aarch64", target_os = "linux"))]
        if crate::tag::enabled() {
            return super::tag::hand_out(&self.counters, page, block, recycled, zeroed);
        }
        let size = page.block_size.get() as usize;
        // SAFETY: the block is ours now and `size` bytes long.
        unsafe {
            if zeroed {
                fill::fill_block(block, size, 0);
                self.counters.count_zeroed(size);
            } else if recycled || page.needs_fill.get() {
                fill::fill_block(block, size, page.pattern.get());
                self.counters.count_patterned(size);
            }
        }
        self.counters.count_alloc(page.class.get() as usize);
        block
    }

    #[inline(never)]
    fn alloc_generic(&self, runtime: &Runtime, class: usize, zeroed: bool) -> *mut u8 {
        loop {
            let mut page = self.avail[class].get();
            while !page.is_null() {
                // SAFETY: as in `alloc`.
                let current = unsafe { &*page };
                if let Some(block) = current.carve() {
                    return self.hand_out(current, block, false, zeroed);
                }
                current.collect();
                if let Some(block) = current.pop() {
                    return self.hand_out(current, block, true, zeroed);
                }
                PageList::remove(&self.avail[class], current);
                current.in_full.store(true, Ordering::SeqCst);
                if current.thread_free.load(Ordering::SeqCst).is_null() {
                    PageList::push_front(&self.full[class], current);
                } else {
                    current.in_full.store(false, Ordering::Relaxed);
                    PageList::push_front(&self.avail[class], current);
                }
                page = self.avail[class].get();
            }
            if self.remote_hint[class].swap(false, Ordering::Acquire) && self.revive_full_pages(class) {
                continue;
            }
            let Some(page) = adopt_abandoned(class).or_else(|| new_page(runtime, class)) else {
                return null_mut();
            };
            page.owner.store(self.as_ptr(), Ordering::Release);
            page.collect();
            PageList::push_front(&self.avail[class], page);
        }
    }

    /// Moves full pages that received remote frees back to `avail`; pages that
    /// other threads emptied completely go back to the pool once `avail` has one.
    fn revive_full_pages(&self, class: usize) -> bool {
        let mut revived = false;
        let mut page = self.full[class].get();
        while !page.is_null() {
            // SAFETY: as in `alloc`.
            let current = unsafe { &*page };
            page = current.next.get();
            if current.collect() == 0 {
                continue;
            }
            if current.used.get() == 0 && revived {
                PageList::remove(&self.full[class], current);
                current.in_full.store(false, Ordering::Relaxed);
                release(current);
            } else {
                self.unfull(current);
                revived = true;
            }
        }
        revived
    }

    fn unfull(&self, page: &Page) {
        let class = page.class.get() as usize;
        PageList::remove(&self.full[class], page);
        page.in_full.store(false, Ordering::Relaxed);
        PageList::push_front(&self.avail[class], page);
    }

    /// Free by the owning thread.
    #[inline]
    pub fn free_local(&self, page: &Page, block: *mut Block) {
        page.push_local(block);
        self.counters.count_free(page.class.get() as usize);
        if page.in_full.load(Ordering::Relaxed) {
            self.unfull(page);
        }
        if page.used.get() == 0 {
            self.page_emptied(page);
        }
    }

    /// Keeps the last page of a class (so alternating malloc/free does not
    /// bounce a page through the pool); gives other empty pages back.
    fn page_emptied(&self, page: &Page) {
        let class = page.class.get() as usize;
        let only_page = core::ptr::eq(self.avail[class].get(), page) && page.next.get().is_null();
        if only_page {
            return;
        }
        PageList::remove(&self.avail[class], page);
        release(page);
    }

    /// Thread exit: empty pages go back to the pool, the others are abandoned.
    fn abandon_all(&self) {
        for class in 0..SMALL_CLASS_COUNT {
            for head in [&self.avail[class], &self.full[class]] {
                while let Some(page) = PageList::pop_front(head) {
                    // SAFETY: the page was on our list.
                    let page = unsafe { &*page };
                    page.in_full.store(false, Ordering::Relaxed);
                    page.collect();
                    if page.used.get() == 0 {
                        release(page);
                    } else {
                        page.owner.store(null_mut(), Ordering::Release);
                        let abandoned = ABANDONED.lock();
                        PageList::push_front(&abandoned.heads[class], page);
                    }
                }
            }
            self.remote_hint[class].store(false, Ordering::Relaxed);
        }
    }

    /// Leaves a hint for the owner of a full page that a remote free landed.
    #[inline]
    pub fn hint_remote_free(&self, class: usize) {
        self.remote_hint[class].store(true, Ordering::Release);
    }
}

/// Marks an empty page free and gives it to the pool.
fn release(page: &Page) {
    page.owner.store(null_mut(), Ordering::Relaxed);
    page.state.store(PAGE_FREE, Ordering::Release);
    segment::release_page(page);
}

/// Takes a free page from the pool (reclaiming empty abandoned pages, then
/// mapping a new segment, when it has none) and sets it up for `class`.
fn new_page(runtime: &Runtime, class: usize) -> Option<&'static Page> {
    let pattern = runtime.patterns[class];
    let (page, dirty) = segment::take_page()
        .or_else(|| {
            reclaim_abandoned();
            segment::take_page()
        })
        .or_else(|| if segment::grow(pattern) { segment::take_page() } else { None })?;
    let Some(segment) = segment_of(page.start.get()) else {
        report::fatal(format_args!("internal error: slab page {:p} outside any segment", page.start.get()));
    };
    let size = class_size(class);
    page.class.set(class as u8);
    page.pattern.set(pattern);
    page.block_size.set(size as u32);
    page.div_magic.set(div_magic(size));
    page.capacity.set((SLAB_PAGE_SIZE / size) as u32);
    page.needs_fill.set(dirty || segment.backing != Contents::Pattern(pattern));
    page.free.set(null_mut());
    page.used.set(0);
    page.bump.store(0, Ordering::Relaxed);
    page.in_full.store(false, Ordering::Relaxed);
    page.state.store(PAGE_IN_USE, Ordering::Release);
    Some(page)
}

struct AbandonedLists {
    heads: [Cell<*mut Page>; SMALL_CLASS_COUNT],
}

// SAFETY: only used under its lock.
unsafe impl Send for AbandonedLists {}

static ABANDONED: SpinLock<AbandonedLists> =
    SpinLock::new(AbandonedLists { heads: [const { Cell::new(null_mut()) }; SMALL_CLASS_COUNT] });

fn adopt_abandoned(class: usize) -> Option<&'static Page> {
    let abandoned = ABANDONED.lock();
    let page = PageList::pop_front(&abandoned.heads[class])?;
    // SAFETY: abandoned pages are live descriptors nobody owns.
    Some(unsafe { &*page })
}

/// Gives abandoned pages whose blocks have all been freed back to the pool.
fn reclaim_abandoned() {
    let abandoned = ABANDONED.lock();
    for head in &abandoned.heads {
        let mut page = head.get();
        while !page.is_null() {
            // SAFETY: as in adopt_abandoned; the lock stands in for an owner.
            let current = unsafe { &*page };
            page = current.next.get();
            current.collect();
            if current.used.get() == 0 {
                PageList::remove(head, current);
                release(current);
            }
        }
    }
}

struct HeapPool {
    free: *mut Heap,
    all: *mut Heap,
    carve_from: *mut u8,
    carve_end: *mut u8,
}

// SAFETY: only used under its lock.
unsafe impl Send for HeapPool {}

static HEAPS: SpinLock<HeapPool> =
    SpinLock::new(HeapPool { free: null_mut(), all: null_mut(), carve_from: null_mut(), carve_end: null_mut() });

const HEAP_CHUNK: usize = 256 * 1024;

/// A heap for a new thread: a retired one, or a new one from a metadata chunk.
pub fn acquire_heap() -> Option<&'static Heap> {
    let mut pool = HEAPS.lock();
    let heap = if !pool.free.is_null() {
        let heap = pool.free;
        // SAFETY: heaps on the free list are live.
        pool.free = unsafe { (*heap).next_free.get() };
        heap
    } else {
        let size = core::mem::size_of::<Heap>().next_multiple_of(64);
        if pool.carve_from.is_null() || (pool.carve_end as usize - pool.carve_from as usize) < size {
            let chunk = pages::map_metadata(HEAP_CHUNK)?;
            pool.carve_from = chunk;
            // SAFETY: within the chunk just mapped.
            pool.carve_end = unsafe { chunk.add(HEAP_CHUNK) };
        }
        let heap = pool.carve_from as *mut Heap;
        // SAFETY: `size` bytes at carve_from are unused and 64-aligned.
        unsafe {
            pool.carve_from = pool.carve_from.add(size);
            heap.write(Heap::new());
            (*heap).next_all.set(pool.all);
        }
        pool.all = heap;
        stats::add(&GLOBAL.heaps_created, 1);
        heap
    };
    stats::add(&GLOBAL.heaps_in_use, 1);
    // SAFETY: heaps are never unmapped.
    Some(unsafe { &*heap })
}

/// Thread exit: abandons the heap's pages and retires it for reuse.
pub fn retire_heap(heap: &Heap) {
    heap.abandon_all();
    let mut pool = HEAPS.lock();
    heap.next_free.set(pool.free);
    pool.free = heap.as_ptr();
    stats::sub(&GLOBAL.heaps_in_use, 1);
}

static FALLBACK_LOCK: SpinLock<()> = SpinLock::new(());
static FALLBACK_HEAP: Heap = Heap::new();

/// Allocates from the shared fallback heap.
pub fn alloc_fallback(runtime: &Runtime, class: usize, zeroed: bool) -> *mut u8 {
    let _guard = FALLBACK_LOCK.lock();
    FALLBACK_HEAP.alloc(runtime, class, zeroed)
}

/// Calls `visit` with the counters of every heap, the fallback heap included.
pub fn for_each_counters(visit: &mut dyn FnMut(&HeapCounters)) {
    visit(&FALLBACK_HEAP.counters);
    let pool = HEAPS.lock();
    let mut heap = pool.all;
    while !heap.is_null() {
        // SAFETY: heaps are never unmapped.
        let current = unsafe { &*heap };
        visit(&current.counters);
        heap = current.next_all.get();
    }
}

/// Fork: take the locks in the order the code nests them.
pub fn lock_for_fork() {
    FALLBACK_LOCK.acquire_for_fork();
    HEAPS.acquire_for_fork();
    ABANDONED.acquire_for_fork();
    segment::lock_for_fork();
}

pub fn unlock_after_fork() {
    segment::unlock_after_fork();
    ABANDONED.release_after_fork();
    HEAPS.release_after_fork();
    FALLBACK_LOCK.release_after_fork();
}
