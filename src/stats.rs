//! Counters. Hot counters live in each thread heap (owner-written relaxed
//! atomics: a load and a store, no locked instruction); rarely-touched ones are
//! global atomics. `snapshot` adds them up.

use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::size_class::{class_size, CLASS_COUNT, LARGE_CLASS};

/// Per-class counts and bytes. For small classes bytes are counts times the
/// block size; for the large row they are the usable sizes handed out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassStats {
    /// Block size of the class; 0 for the large row.
    pub block_size: usize,
    pub allocs: u64,
    pub frees: u64,
    pub bytes_allocated: u64,
    pub bytes_freed: u64,
}

impl ClassStats {
    pub fn live(&self) -> u64 {
        self.allocs.saturating_sub(self.frees)
    }
    pub fn live_bytes(&self) -> u64 {
        self.bytes_allocated.saturating_sub(self.bytes_freed)
    }
}

/// A snapshot of the allocator's counters (`PatternAlloc::stats`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// The page source in use: "refpage" (kernel reference page), "memfd"
    /// (memfd windows) or "eager" (mmap + memset); the requested one ("auto"
    /// included) until a patterned mapping made the choice.
    pub backend: &'static str,
    /// One row per slab class, then one for large blocks (`LARGE_CLASS`).
    pub classes: [ClassStats; CLASS_COUNT],
    /// Bytes written with a pattern by the allocator (recycled blocks, slab
    /// pages carved from zero memory, eager large blocks).
    pub bytes_patterned: u64,
    /// Bytes written with the free pattern (`free_fill`).
    pub bytes_free_filled: u64,
    /// Bytes zeroed for zeroed allocations.
    pub bytes_zeroed: u64,
    /// Bytes mapped already reading as a pattern (lazy backends: slab
    /// segments, large blocks, realloc growth), that nobody had to fill.
    pub bytes_lazy: u64,
    /// Patterned mappings the lazy backend could not serve (mapping cap
    /// reached, too many patterns, the kernel refused), served eagerly.
    pub lazy_fallbacks: u64,
    /// memfd window mappings in use, and the cap on them for new blocks
    /// (half of vm.max_map_count; 0 before the memfd backend starts).
    pub lazy_mappings: u64,
    pub lazy_mapping_cap: u64,
    /// Pattern sources (refpage descriptors, memfds) made, and how many of
    /// them the program closed or replaced under us (each was made again).
    pub lazy_sources: u64,
    pub lazy_sources_lost: u64,
    /// Bytes currently mapped for slab segments and large blocks.
    pub bytes_mapped: u64,
    /// Slab segments currently mapped.
    pub segments: u64,
    /// Slab pages given back to the kernel with MADV_DONTNEED.
    pub pages_decommitted: u64,
    /// Large allocations served from the cache of freed large blocks.
    pub large_cache_hits: u64,
    /// Heaps ever created (an exited thread's heap is reused by the next new
    /// thread), and heaps now owned by a live thread.
    pub heaps_created: u64,
    pub heaps_in_use: u64,
}

impl Stats {
    pub fn total(&self) -> ClassStats {
        let mut total = ClassStats::default();
        for row in &self.classes {
            total.allocs += row.allocs;
            total.frees += row.frees;
            total.bytes_allocated += row.bytes_allocated;
            total.bytes_freed += row.bytes_freed;
        }
        total
    }
}

/// Counters a heap keeps for its classes (only the owning thread writes them).
pub struct HeapCounters {
    allocs: [AtomicU64; CLASS_COUNT],
    frees: [AtomicU64; CLASS_COUNT],
    patterned: AtomicU64,
    free_filled: AtomicU64,
    zeroed: AtomicU64,
}

impl HeapCounters {
    pub const fn new() -> Self {
        HeapCounters {
            allocs: [const { AtomicU64::new(0) }; CLASS_COUNT],
            frees: [const { AtomicU64::new(0) }; CLASS_COUNT],
            patterned: AtomicU64::new(0),
            free_filled: AtomicU64::new(0),
            zeroed: AtomicU64::new(0),
        }
    }
    #[inline]
    pub fn count_patterned(&self, bytes: usize) {
        bump(&self.patterned, bytes as u64);
    }
    #[inline]
    pub fn count_free_filled(&self, bytes: usize) {
        bump(&self.free_filled, bytes as u64);
    }
    #[inline]
    pub fn count_zeroed(&self, bytes: usize) {
        bump(&self.zeroed, bytes as u64);
    }
    #[inline]
    pub fn count_alloc(&self, class: usize) {
        bump(&self.allocs[class], 1);
    }
    #[inline]
    pub fn count_free(&self, class: usize) {
        bump(&self.frees[class], 1);
    }
    fn add_to(&self, stats: &mut Stats) {
        stats.bytes_patterned += self.patterned.load(Relaxed);
        stats.bytes_free_filled += self.free_filled.load(Relaxed);
        stats.bytes_zeroed += self.zeroed.load(Relaxed);
        for class in 0..LARGE_CLASS {
            stats.classes[class].allocs += self.allocs[class].load(Relaxed);
            stats.classes[class].frees += self.frees[class].load(Relaxed);
        }
    }
}

/// Owner-only increment: no read-modify-write instruction on the fast path.
#[inline]
fn bump(counter: &AtomicU64, by: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(by), Relaxed);
}

/// Process-wide counters of the slower paths.
pub struct GlobalCounters {
    /// Frees by threads without a heap of their own (set-up, after exit).
    pub small_frees_unowned: [AtomicU64; CLASS_COUNT],
    pub large_allocs: AtomicU64,
    pub large_frees: AtomicU64,
    pub large_bytes_allocated: AtomicU64,
    pub large_bytes_freed: AtomicU64,
    pub large_cache_hits: AtomicU64,
    pub bytes_patterned: AtomicU64,
    pub bytes_free_filled: AtomicU64,
    pub bytes_zeroed: AtomicU64,
    pub bytes_lazy: AtomicU64,
    pub lazy_fallbacks: AtomicU64,
    pub lazy_mappings: AtomicU64,
    pub lazy_mapping_cap: AtomicU64,
    pub lazy_sources: AtomicU64,
    pub lazy_sources_lost: AtomicU64,
    pub bytes_mapped: AtomicU64,
    pub segments: AtomicU64,
    pub pages_decommitted: AtomicU64,
    pub heaps_created: AtomicU64,
    pub heaps_in_use: AtomicU64,
}

pub static GLOBAL: GlobalCounters = GlobalCounters {
    small_frees_unowned: [const { AtomicU64::new(0) }; CLASS_COUNT],
    large_allocs: AtomicU64::new(0),
    large_frees: AtomicU64::new(0),
    large_bytes_allocated: AtomicU64::new(0),
    large_bytes_freed: AtomicU64::new(0),
    large_cache_hits: AtomicU64::new(0),
    bytes_patterned: AtomicU64::new(0),
    bytes_free_filled: AtomicU64::new(0),
    bytes_zeroed: AtomicU64::new(0),
    bytes_lazy: AtomicU64::new(0),
    lazy_fallbacks: AtomicU64::new(0),
    lazy_mappings: AtomicU64::new(0),
    lazy_mapping_cap: AtomicU64::new(0),
    lazy_sources: AtomicU64::new(0),
    lazy_sources_lost: AtomicU64::new(0),
    bytes_mapped: AtomicU64::new(0),
    segments: AtomicU64::new(0),
    pages_decommitted: AtomicU64::new(0),
    heaps_created: AtomicU64::new(0),
    heaps_in_use: AtomicU64::new(0),
};

/// Adds `by` to a shared counter.
#[inline]
pub fn add(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Relaxed);
}

#[inline]
pub fn sub(counter: &AtomicU64, by: u64) {
    counter.fetch_sub(by, Relaxed);
}

/// Called with each heap's counters.
pub type HeapVisitor<'a> = &'a mut dyn FnMut(&HeapCounters);

/// Sums the global counters; `each_heap` must call its argument with every heap's counters.
pub fn snapshot(backend: &'static str, each_heap: &mut dyn FnMut(HeapVisitor<'_>)) -> Stats {
    let g = &GLOBAL;
    let mut stats = Stats {
        backend,
        classes: [ClassStats::default(); CLASS_COUNT],
        bytes_patterned: g.bytes_patterned.load(Relaxed),
        bytes_free_filled: g.bytes_free_filled.load(Relaxed),
        bytes_zeroed: g.bytes_zeroed.load(Relaxed),
        bytes_lazy: g.bytes_lazy.load(Relaxed),
        lazy_fallbacks: g.lazy_fallbacks.load(Relaxed),
        lazy_mappings: g.lazy_mappings.load(Relaxed),
        lazy_mapping_cap: g.lazy_mapping_cap.load(Relaxed),
        lazy_sources: g.lazy_sources.load(Relaxed),
        lazy_sources_lost: g.lazy_sources_lost.load(Relaxed),
        bytes_mapped: g.bytes_mapped.load(Relaxed),
        segments: g.segments.load(Relaxed),
        pages_decommitted: g.pages_decommitted.load(Relaxed),
        large_cache_hits: g.large_cache_hits.load(Relaxed),
        heaps_created: g.heaps_created.load(Relaxed),
        heaps_in_use: g.heaps_in_use.load(Relaxed),
    };
    for class in 0..LARGE_CLASS {
        stats.classes[class].frees = g.small_frees_unowned[class].load(Relaxed);
    }
    each_heap(&mut |heap| heap.add_to(&mut stats));
    for class in 0..LARGE_CLASS {
        let row = &mut stats.classes[class];
        row.block_size = class_size(class);
        row.bytes_allocated = row.allocs * row.block_size as u64;
        row.bytes_freed = row.frees * row.block_size as u64;
    }
    let large = &mut stats.classes[LARGE_CLASS];
    large.allocs = g.large_allocs.load(Relaxed);
    large.frees = g.large_frees.load(Relaxed);
    large.bytes_allocated = g.large_bytes_allocated.load(Relaxed);
    large.bytes_freed = g.large_bytes_freed.load(Relaxed);
    stats
}
