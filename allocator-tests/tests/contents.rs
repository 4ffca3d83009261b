//! C1, C2, C7 with the default configuration (fill 0xAA, backend auto).
//!
//! Every size 1..=600, every class size and its neighbours, page boundaries,
//! 1 MiB and 64 MiB, at alignments 1 .. 2 MiB; fresh and recycled blocks (dirty,
//! free, allocate the same layout again); the whole usable size is checked, as
//! are the usable size itself and the alignment of the pointer. Then
//! `alloc_zeroed` after dirty frees, and null for impossible requests.

use core::alloc::GlobalAlloc;
use core::hint::black_box;

use allocator_tests::*;

#[global_allocator]
static A: PatternAlloc = PatternAlloc::new();

/// Allocates `count` blocks of `l`, checks them, dirties their whole usable
/// size, frees them, and does it again: the second round is served from
/// recycled memory and must read as the pattern again. Returns how many of
/// the second round's addresses were seen in the first.
fn fresh_then_recycled(l: core::alloc::Layout, count: usize) -> usize {
    let first: Vec<Block> = (0..count).map(|i| alloc_checked(&A, l, format_args!("fresh #{i} of {l:?}"))).collect();
    for b in &first {
        unsafe { dirty(b.ptr, b.usable, 0xD1) };
    }
    let addresses: Vec<usize> = first.iter().map(|b| b.ptr as usize).collect();
    for b in first {
        unsafe { free(&A, b) };
    }
    let second: Vec<Block> = (0..count).map(|i| alloc_checked(&A, l, format_args!("recycled #{i} of {l:?}"))).collect();
    let reused = second.iter().filter(|b| addresses.contains(&(b.ptr as usize))).count();
    for b in second {
        unsafe { free(&A, b) };
    }
    reused
}

#[test]
fn default_configuration_is_in_force() {
    let config = A.effective_config();
    if env_override().is_none() {
        assert_eq!(config, Config::DEFAULT);
        assert_eq!(A.pattern_of(layout(1, 1)), 0xAA);
        assert_eq!(A.pattern_of(layout(1 << 20, 1)), 0xAA);
    }
    assert_eq!(config.large_threshold, A.effective_config().large_threshold, "read once");
}

#[test]
fn every_size_up_to_600_fresh_and_recycled() {
    let mut reused = 0;
    for size in 1..=600 {
        for align in [1, 8, 16] {
            reused += fresh_then_recycled(layout(size, align), 4);
        }
    }
    assert!(reused > 0, "no block was ever reused: the recycled checks checked nothing");
}

#[test]
fn class_sizes_page_boundaries_and_large_sizes_at_every_alignment() {
    let mut reused = 0;
    for size in interesting_sizes() {
        for align in alignments_up_to(2 * MIB) {
            let count = if size > 64 * KIB { 1 } else { 3 };
            reused += fresh_then_recycled(layout(size, align), count);
        }
    }
    assert!(reused > 0, "no block was ever reused");
}

#[test]
fn sixty_four_mib() {
    for align in [1, 4096, 2 * MIB] {
        fresh_then_recycled(layout(64 * MIB, align), 1);
    }
    // Odd sizes around it: usable is the page-rounded size, all of it pattern.
    fresh_then_recycled(layout(64 * MIB - 1, 16), 1);
    fresh_then_recycled(layout(64 * MIB + 1, 16), 1);
}

#[test]
fn interleaved_classes_and_long_lived_neighbours() {
    // Blocks of many classes live side by side while others come and go:
    // neighbours must keep their data, newcomers must read as the pattern.
    let sizes = [8, 24, 100, 250, 700, 1500, 3000, 6000, 12000, 30000, 40000, 70000];
    let mut live: Vec<(Block, u64)> = Vec::new();
    for round in 0..30u64 {
        for (i, &size) in sizes.iter().enumerate() {
            let b = alloc_checked(&A, layout(size, 8), format_args!("round {round} size {size}"));
            let seed = round * 100 + i as u64;
            unsafe { stamp(b.ptr, b.usable, seed) };
            live.push((b, seed));
        }
        // Free every other block, oldest first, after checking its data.
        let mut keep = Vec::new();
        for (n, (b, seed)) in live.drain(..).enumerate() {
            unsafe { check_stamp(b.ptr, b.usable, seed) }.unwrap_or_else(|e| panic!("neighbour data lost: {e}"));
            if n % 2 == 0 {
                unsafe { free(&A, b) };
            } else {
                keep.push((b, seed));
            }
        }
        live = keep;
    }
    for (b, seed) in live {
        unsafe { check_stamp(b.ptr, b.usable, seed) }.unwrap();
        unsafe { free(&A, b) };
    }
}

#[test]
fn alloc_zeroed_after_dirty_frees() {
    let mut sizes: Vec<usize> = (0..SMALL_CLASS_COUNT).map(class_size).collect();
    sizes.extend([1, 17, 1000, 4097, 32769, 40000, 100_000, MIB, 4 * MIB + 1]);
    for &size in &sizes {
        for align in [8, 4096, 2 * MIB] {
            let l = layout(size, align);
            let count = if size > 64 * KIB { 2 } else { 16 };
            // Dirty blocks of this layout and free them, so the zeroed ones
            // below come from recycled memory where recycling happens.
            let dirty_blocks: Vec<Block> = (0..count).map(|_| alloc_checked(&A, l, "dirty")).collect();
            for b in &dirty_blocks {
                unsafe { dirty(b.ptr, b.usable, 0xD2) };
            }
            for b in dirty_blocks {
                unsafe { free(&A, b) };
            }
            let zeroed: Vec<*mut u8> = (0..count).map(|_| black_box(unsafe { A.alloc_zeroed(l) })).collect();
            let (want_usable, _) = expectations(&A, l);
            for &p in &zeroed {
                assert!(!p.is_null(), "alloc_zeroed({l:?}) returned null");
                assert_eq!(p as usize % align, 0, "alloc_zeroed({l:?}) = {p:p} is misaligned");
                let usable = unsafe { A.usable_size(p) };
                assert_eq!(usable, want_usable, "alloc_zeroed({l:?}) usable size");
                unsafe { assert_bytes(p, usable, 0, format_args!("alloc_zeroed({l:?}) after dirty frees")) };
                unsafe { dirty(p, usable, 0xD3) };
            }
            for p in zeroed {
                unsafe { A.dealloc(p, l) };
            }
            // And zeroed blocks do not leave zeros behind for the next plain alloc.
            let b = alloc_checked(&A, l, "alloc after alloc_zeroed");
            unsafe { free(&A, b) };
        }
    }
}

#[test]
fn impossible_requests_return_null() {
    let cases = [
        layout(isize::MAX as usize - 8191, 4096),
        layout(isize::MAX as usize - 4095, 4096),
        layout(isize::MAX as usize, 1),
        layout(isize::MAX as usize - (2 * MIB - 1), 2 * MIB),
        layout(usize::MAX / 4, 8),
        // Larger than the whole user address space of x86_64 and arm64 (47/48 bits).
        layout(1 << 48, 8),
        layout(1 << 48, 2 * MIB),
    ];
    for l in cases {
        let p = black_box(unsafe { A.alloc(l) });
        assert!(p.is_null(), "alloc({l:?}) returned {p:p}");
        let p = black_box(unsafe { A.alloc_zeroed(l) });
        assert!(p.is_null(), "alloc_zeroed({l:?}) returned {p:p}");
    }
    // A realloc that cannot be satisfied returns null and leaves the block as it was.
    for (size, align) in [(100, 8), (5000, 4096), (100_000, 8)] {
        let l = layout(size, align);
        let b = alloc_checked(&A, l, "block to grow");
        unsafe { stamp(b.ptr, size, 42) };
        for new_size in [isize::MAX as usize - 8191, 1 << 48] {
            let q = black_box(unsafe { A.realloc(b.ptr, l, new_size) });
            assert!(q.is_null(), "realloc({l:?} -> {new_size}) returned {q:p}");
            unsafe { check_stamp(b.ptr, size, 42) }.unwrap_or_else(|e| panic!("failed realloc changed the block: {e}"));
        }
        unsafe { free(&A, b) };
    }
    // The allocator still works afterwards.
    let b = alloc_checked(&A, layout(1000, 8), "after the null results");
    unsafe { free(&A, b) };
}
