//! The counters of `PatternAlloc::stats()`, with the backend named explicitly
//! (`Backend::Eager`). Tests in this binary run in parallel, so counts are
//! checked as lower bounds of what each test did itself.

use core::alloc::GlobalAlloc;
use core::hint::black_box;

use allocator_tests::*;

#[global_allocator]
static A: PatternAlloc = PatternAlloc::new().backend(Backend::Eager);

#[test]
fn configuration_and_backend() {
    let config = A.effective_config();
    if env_override().is_none() {
        assert_eq!(config, Config { backend: Backend::Eager, ..Config::DEFAULT });
    }
    let stats = A.stats();
    if config.backend == Backend::Eager {
        assert_eq!(stats.backend, "eager");
    } else {
        assert!(!stats.backend.is_empty());
    }
}

#[test]
fn counts_by_class_go_up_for_allocs_and_frees() {
    // Classes no other test here uses much: 2560 and 12288 bytes.
    for size in [2500, 12288].into_iter().filter(|&s| is_small(&A, s)) {
        let class = class_of(size).unwrap();
        let before = A.stats().classes[class];
        assert_eq!(before.block_size, class_size(class));
        let blocks: Vec<Block> = (0..100).map(|_| alloc_checked(&A, layout(size, 8), "counted")).collect();
        let mid = A.stats().classes[class];
        assert!(mid.allocs >= before.allocs + 100, "class {class}: allocs {} -> {}", before.allocs, mid.allocs);
        assert!(mid.bytes_allocated >= before.bytes_allocated + 100 * class_size(class) as u64);
        assert!(mid.live() >= 100, "class {class}: {} live with 100 held", mid.live());
        for b in blocks {
            unsafe { free(&A, b) };
        }
        let after = A.stats().classes[class];
        assert!(after.frees >= mid.frees + 100, "class {class}: frees {} -> {}", mid.frees, after.frees);
        assert!(after.bytes_freed >= mid.bytes_freed + 100 * class_size(class) as u64);
        assert_eq!(after.live_bytes(), after.bytes_allocated - after.bytes_freed);
    }
}

#[test]
fn large_row_counts_usable_bytes() {
    let before = A.stats().classes[LARGE_CLASS];
    let blocks: Vec<Block> = (0..3).map(|_| alloc_checked(&A, layout(100_000, 8), "large")).collect();
    let mid = A.stats().classes[LARGE_CLASS];
    assert!(mid.allocs >= before.allocs + 3);
    assert!(mid.bytes_allocated >= before.bytes_allocated + 3 * round_up(100_000, PAGE) as u64);
    for b in blocks {
        unsafe { free(&A, b) };
    }
    let after = A.stats().classes[LARGE_CLASS];
    assert!(after.frees >= mid.frees + 3);
    assert!(after.bytes_freed >= mid.bytes_freed + 3 * round_up(100_000, PAGE) as u64);
}

#[test]
fn bytes_patterned_grows_when_recycled_blocks_are_refilled() {
    let l = layout(6144, 8);
    if !is_small(&A, l.size()) {
        return; // PATTERN_ALLOC lowered large_threshold
    }
    // Make sure a recycled 6144-byte block exists, then reuse it.
    let b = alloc_checked(&A, l, "first");
    unsafe { dirty(b.ptr, b.usable, 0x11) };
    unsafe { free(&A, b) };
    let before = A.stats().bytes_patterned;
    let b = alloc_checked(&A, l, "recycled");
    let after = A.stats().bytes_patterned;
    unsafe { free(&A, b) };
    assert!(after >= before + 6144, "bytes_patterned went from {before} to {after} over a recycled 6144-byte block");
}

#[test]
fn bytes_zeroed_grows_for_recycled_zeroed_blocks() {
    let l = layout(7168, 8);
    if !is_small(&A, l.size()) {
        return; // PATTERN_ALLOC lowered large_threshold
    }
    let b = alloc_checked(&A, l, "first");
    unsafe { dirty(b.ptr, b.usable, 0x12) };
    unsafe { free(&A, b) };
    let before = A.stats().bytes_zeroed;
    let p = black_box(unsafe { A.alloc_zeroed(l) });
    assert!(!p.is_null());
    unsafe { assert_bytes(p, A.usable_size(p), 0, "alloc_zeroed(7168)") };
    let after = A.stats().bytes_zeroed;
    unsafe { A.dealloc(p, l) };
    assert!(after > before, "bytes_zeroed stayed at {before} over a recycled zeroed block");
}

#[test]
fn global_counters_and_totals() {
    let keep = alloc_checked(&A, layout(300_000, 8), "keep one large block mapped");
    let stats = A.stats();
    assert!(stats.heaps_in_use <= stats.heaps_created);
    if is_small(&A, 16) {
        assert!(stats.heaps_created >= 1 && stats.heaps_in_use >= 1, "{stats:?}");
        assert!(stats.segments >= 1, "a slab segment is mapped");
    }
    assert!(stats.bytes_mapped >= 300_000, "bytes_mapped {} with a 300 KB block live", stats.bytes_mapped);
    let total = stats.total();
    let sum = |f: fn(&pattern_alloc::ClassStats) -> u64| stats.classes.iter().map(f).sum::<u64>();
    assert_eq!(total.allocs, sum(|c| c.allocs));
    assert_eq!(total.frees, sum(|c| c.frees));
    assert_eq!(total.bytes_allocated, sum(|c| c.bytes_allocated));
    assert_eq!(total.bytes_freed, sum(|c| c.bytes_freed));
    for (class, row) in stats.classes.iter().enumerate().take(SMALL_CLASS_COUNT) {
        assert_eq!(row.block_size, class_size(class));
        assert_eq!(row.bytes_allocated, row.allocs * class_size(class) as u64, "class {class}");
    }
    assert_eq!(stats.classes[LARGE_CLASS].block_size, 0);
    unsafe { free(&A, keep) };
}

#[test]
fn stats_in_other_threads_are_counted() {
    if !is_small(&A, 10_000) {
        return; // PATTERN_ALLOC lowered large_threshold
    }
    let class = class_of(10_000).unwrap();
    let before = A.stats().classes[class].allocs;
    std::thread::spawn(|| {
        for _ in 0..50 {
            let b = alloc_checked(&A, layout(10_000, 8), "in a thread");
            unsafe { free(&A, b) };
        }
    })
    .join()
    .unwrap();
    let after = A.stats();
    assert!(after.classes[class].allocs >= before + 50, "counts of an exited thread must not be lost");
}
