//! Large blocks reallocated by many threads at once (moved with mremap, grown,
//! shrunk, across the 32 KiB boundary). A binary of its own: a registry race
//! here ends in abort(), which would hide the results of other tests.

use core::alloc::GlobalAlloc;

use allocator_tests::*;

#[global_allocator]
static A: PatternAlloc = PatternAlloc::new();

const THREADS: usize = 8;

#[test]
fn concurrent_large_reallocs() {
    // Large blocks grown, shrunk and moved across the 32 KiB boundary by all
    // threads at once: each keeps its prefix, and its tail reads as the pattern.
    run_threads_at_once(THREADS, |t| {
        let steps = [40_000, 100_000, 33_000, 300_000, 5000, 70_000, 1 << 20, 40_000, 100];
        for round in 0..40usize {
            let align = [8, 4096, 64 * KIB][(round + t) % 3];
            let mut b = alloc_checked(&A, layout(steps[0], align), "large start");
            let seed = (t * 1000 + round) as u64;
            unsafe { stamp(b.ptr, b.layout.size(), seed) };
            for &new in &steps[1..] {
                let old = b.layout.size();
                let q = core::hint::black_box(unsafe { A.realloc(b.ptr, b.layout, new) });
                assert!(!q.is_null(), "thread {t}: realloc({old} -> {new}) returned null");
                assert_eq!(q as usize % align, 0);
                let nl = layout(new, align);
                let (want_usable, pattern) = expectations(&A, nl);
                let usable = unsafe { A.usable_size(q) };
                assert!(usable == want_usable || (q == b.ptr && new <= old), "usable {usable} for {nl:?}");
                unsafe { check_stamp(q, old.min(new), seed) }
                    .unwrap_or_else(|e| panic!("thread {t}: realloc({old} -> {new}): {e}"));
                if new > old {
                    unsafe { assert_bytes(q.add(old), usable - old, pattern, "tail after growth") };
                }
                b = Block { ptr: q, layout: nl, usable, pattern };
                unsafe { stamp(b.ptr, new, seed) };
            }
            unsafe { free(&A, b) };
        }
    });
}
