//! C3: realloc keeps the first min(old, new) bytes, and the bytes past the old
//! size up to the new usable size read as the pattern (C1). Within the slab,
//! across the small/large boundary (32 KiB) both ways, and large to larger
//! (moved with mremap).

use core::alloc::{GlobalAlloc, Layout};
use core::hint::black_box;

use allocator_tests::*;

#[global_allocator]
static A: PatternAlloc = PatternAlloc::new();

/// Allocates `old` bytes at `align`, stamps them, reallocs to `new` bytes and
/// checks the result. Returns the new block (stamped with `seed` over
/// min(old, new) bytes).
fn grow_or_shrink(old: usize, new: usize, align: usize, seed: u64) -> Block {
    let l = layout(old, align);
    let b = alloc_checked(&A, l, format_args!("realloc source {l:?}"));
    unsafe { stamp(b.ptr, old, seed) };
    unsafe { realloc_checked(b, new, seed) }
}

/// Reallocs `b` (all of whose `b.layout.size()` bytes carry the stamp `seed`)
/// to `new` bytes and checks prefix, tail, usable size and alignment.
unsafe fn realloc_checked(b: Block, new: usize, seed: u64) -> Block {
    unsafe { realloc_checked_partly_stamped(b, b.layout.size(), new, seed) }
}

/// As `realloc_checked` for a block of which only the first `stamped` bytes
/// carry the stamp and the rest up to the old size still reads as the pattern.
unsafe fn realloc_checked_partly_stamped(b: Block, stamped: usize, new: usize, seed: u64) -> Block {
    let (old, align) = (b.layout.size(), b.layout.align());
    let what = format!("realloc({old} -> {new}, align {align})");
    let q = black_box(unsafe { A.realloc(b.ptr, b.layout, new) });
    assert!(!q.is_null(), "{what} returned null");
    assert_eq!(q as usize % align, 0, "{what} = {q:p} is misaligned");
    let nl = layout(new, align);
    let (want_usable, pattern) = expectations(&A, nl);
    let usable = unsafe { A.usable_size(q) };
    // A block shrunk in place may keep its old usable size.
    let kept_in_place = q == b.ptr && usable == b.usable && new <= old;
    assert!(usable == want_usable || kept_in_place, "{what}: usable size {usable}, expected {want_usable}");
    assert_eq!(A.pattern_of(nl), pattern, "{what}: pattern_of");
    unsafe { check_stamp(q, stamped.min(new), seed) }.unwrap_or_else(|e| panic!("{what}: prefix not kept: {e}"));
    if stamped < old.min(new) {
        let unwritten = old.min(new) - stamped;
        unsafe { assert_bytes(q.add(stamped), unwritten, b.pattern, format_args!("{what}: unwritten prefix")) };
    }
    if new > old {
        unsafe { assert_bytes(q.add(old), usable - old, pattern, format_args!("{what}: bytes past the old size")) };
    }
    Block { ptr: q, layout: nl, usable, pattern }
}

#[test]
fn within_the_slab() {
    let sizes = [1, 15, 16, 17, 31, 100, 127, 128, 129, 500, 1000, 1024, 1025, 4000, 4096, 16000, 32767, 32768];
    let mut seed = 1;
    for &old in &sizes {
        for &new in &sizes {
            for align in [1, 16, 64, 4096] {
                seed += 1;
                let b = grow_or_shrink(old, new, align, seed);
                unsafe { free(&A, b) };
            }
        }
    }
}

#[test]
fn across_the_small_large_boundary() {
    let pairs = [
        (32768, 32769),
        (32769, 32768),
        (1000, 40000),
        (40000, 1000),
        (16, 1 << 20),
        (1 << 20, 16),
        (20000, 100_000),
        (100_000, 20000),
        (32767, 65537),
        (65537, 32767),
    ];
    for (i, &(old, new)) in pairs.iter().enumerate() {
        for align in [8, 4096, 64 * KIB, 2 * MIB] {
            let b = grow_or_shrink(old, new, align, 1000 + i as u64);
            unsafe { free(&A, b) };
        }
    }
}

#[test]
fn large_to_larger_and_back() {
    for align in [8, 2 * MIB] {
        let l = layout(MIB, align);
        let b = alloc_checked(&A, l, "1 MiB");
        unsafe { stamp(b.ptr, MIB, 77) };
        let b = unsafe { realloc_checked(b, 8 * MIB + 3, 77) };
        // Only the first MiB is stamped; the rest of the 8 MiB is still the pattern.
        let b = unsafe { realloc_checked_partly_stamped(b, MIB, 64 * MIB, 77) };
        // Stamp the whole 64 MiB and shrink in steps; the prefix must survive each.
        unsafe { stamp(b.ptr, 64 * MIB, 78) };
        let b = unsafe { realloc_checked(b, 10 * MIB + 1, 78) };
        let b = unsafe { realloc_checked(b, 33 * KIB, 78) };
        let b = unsafe { realloc_checked(b, 2 * MIB, 78) };
        unsafe { free(&A, b) };
    }
}

#[test]
fn grow_one_byte_at_a_time() {
    // Each step writes one more byte; the tail past it must be the pattern.
    let l = layout(1, 8);
    let mut b = alloc_checked(&A, l, "start");
    unsafe { stamp(b.ptr, 1, 5) };
    for size in 2..=3000 {
        b = unsafe { realloc_checked(b, size, 5) };
        unsafe { stamp(b.ptr, size, 5) };
    }
    // ... and back down, in big steps across classes.
    while b.layout.size() > 1 {
        let next = b.layout.size() / 3;
        b = unsafe { realloc_checked(b, next.max(1), 5) };
    }
    unsafe { free(&A, b) };
}

#[test]
fn growth_into_recycled_blocks() {
    // Dirty and free many blocks of the destination classes, so a growing
    // realloc lands on recycled memory; its tail must be refilled.
    for (old, new) in [(1000, 2000), (3000, 7000), (10000, 30000), (30000, 100_000), (100_000, 300_000)] {
        let nl: Layout = layout(new, 8);
        let blocks: Vec<Block> = (0..16).map(|_| alloc_checked(&A, nl, "dirty")).collect();
        for b in &blocks {
            unsafe { dirty(b.ptr, b.usable, 0xD4) };
        }
        for b in blocks {
            unsafe { free(&A, b) };
        }
        for i in 0..16 {
            let b = grow_or_shrink(old, new, 8, 500 + i);
            unsafe { free(&A, b) };
        }
    }
}

#[test]
fn shrink_then_grow_in_place_rereads_the_pattern() {
    // Shrinking forgets the bytes past the new size; growing again must not
    // bring them back: past the (smaller) old size they read as the pattern.
    for (big, small) in [(1000, 900), (4096, 3000), (30000, 25000), (1 << 20, 300_000), (100_000, 40000)] {
        let l = layout(big, 8);
        let b = alloc_checked(&A, l, "big");
        unsafe { stamp(b.ptr, big, 9) };
        let b = unsafe { realloc_checked(b, small, 9) };
        let b = unsafe { realloc_checked(b, big, 9) };
        unsafe { free(&A, b) };
    }
}
