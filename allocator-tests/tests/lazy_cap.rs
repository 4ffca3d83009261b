//! The memfd backend's cap on window mappings (half of vm.max_map_count):
//! once it is reached, allocations still succeed and read as the pattern
//! (served eagerly, counted in `lazy_fallbacks`), and when windows are given
//! back, new blocks are lazy again. The cap is reached with lazily patterned
//! 1 GiB blocks, which cost address space and mappings but no memory; the
//! process's real mapping count stays below vm.max_map_count.
//!
//! `harness = false`: the counters are process-wide.

use allocator_tests::*;

#[global_allocator]
static A: PatternAlloc = PatternAlloc::new().backend(Backend::Memfd);

const GIB: usize = 1 << 30;

fn vmas() -> usize {
    std::fs::read_to_string("/proc/self/maps").unwrap().lines().count()
}

fn main() {
    let start = A.stats();
    if start.backend != "memfd" {
        assert!(backend_overridden_away_from("memfd"), "backend {} instead of memfd: {start:?}", start.backend);
        return println!("lazy_cap: skipped, PATTERN_ALLOC chose backend {}", start.backend);
    }
    let cap = start.lazy_mapping_cap as usize;
    let room = |s: &Stats| cap.saturating_sub(s.lazy_mappings as usize);
    let mut giants = Vec::new();
    // 1 GiB blocks while more than one fits, then 2 MiB ones up to the cap.
    while room(&A.stats()) > 2 * (GIB / (2 * MIB) + 2) {
        let b = unsafe { core::alloc::GlobalAlloc::alloc(&A, layout(GIB, 8)) };
        assert!(!b.is_null(), "1 GiB block {} of the cap test", giants.len());
        giants.push(b as usize);
    }
    let mut small = Vec::new();
    while A.stats().lazy_fallbacks == start.lazy_fallbacks {
        let b = alloc_checked(&A, layout(2 * MIB, 8), "2 MiB block while filling the cap");
        small.push(b);
        assert!(small.len() < 2000, "no fallback after {} blocks: {:?}", small.len(), A.stats());
    }
    let at_cap = A.stats();
    println!(
        "cap {cap}: {} GiB + {} blocks of 2 MiB, {} windows, {} VMAs",
        giants.len(),
        small.len(),
        at_cap.lazy_mappings,
        vmas()
    );
    assert!(at_cap.lazy_mappings as usize <= cap, "{at_cap:?}");
    // Past the cap: large blocks of every size and fresh slab segments, all patterned.
    for size in [40_000, 2 * MIB, 5 * MIB + 7, 64 * MIB] {
        let b = alloc_checked(&A, layout(size, 8), format_args!("{size} past the cap"));
        small.push(b);
    }
    let slab: Vec<Block> = (0..8192).map(|_| alloc_checked(&A, layout(1024, 8), "slab past the cap")).collect();
    let past = A.stats();
    assert!(past.lazy_fallbacks >= at_cap.lazy_fallbacks + 4, "{past:?}");
    // Only growing blocks that already have windows may pass the cap (a block
    // cannot mix windows and anonymous memory): the Vecs of this test.
    assert!((past.lazy_mappings as usize) < cap + 16, "{past:?}");
    assert!(vmas() < 2 * cap, "{} mappings", vmas());
    // Everything still reads as the pattern or as what was written.
    for b in &small {
        unsafe { dirty(b.ptr, 64, 0x12) };
        unsafe { assert_bytes(b.ptr.add(64), b.usable - 64, b.pattern, "held block past the cap") };
    }
    // Windows given back: lazy again.
    unsafe { core::alloc::GlobalAlloc::dealloc(&A, giants.pop().unwrap() as *mut u8, layout(GIB, 8)) };
    let before = A.stats();
    let b = alloc_checked(&A, layout(3 * MIB, 8), "after giving windows back");
    let after = A.stats();
    assert_eq!(after.lazy_fallbacks, before.lazy_fallbacks, "{after:?}");
    assert!(after.bytes_lazy >= before.bytes_lazy + 3 * MIB as u64, "{after:?}");
    unsafe { free(&A, b) };
    for b in slab.into_iter().chain(small) {
        unsafe { free(&A, b) };
    }
    for g in giants {
        unsafe { core::alloc::GlobalAlloc::dealloc(&A, g as *mut u8, layout(GIB, 8)) };
    }
    let end = A.stats();
    assert!(end.lazy_mappings < at_cap.lazy_mappings / 4, "windows not given back: {end:?}");
    println!("lazy_cap: 1 passed, 0 failed");
}
