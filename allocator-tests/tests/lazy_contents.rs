//! Lazily patterned memory (`Backend::Memfd`, DESIGN.md §4) reads exactly as
//! eagerly filled memory, while costing (almost) nothing until touched:
//! large blocks and slab segments come back patterned with no fill, resident
//! memory is what was written, recycled blocks are reset by MADV_DONTNEED,
//! realloc moves windows and its growth reads as the pattern, shrinking
//! gives the pattern back, calloc stays zero.
//!
//! `harness = false`: the steps run one after another on the main thread, so
//! the RSS and counter deltas are this test's own. Under a `PATTERN_ALLOC`
//! that selects another backend only the contents are checked.

use core::alloc::GlobalAlloc;
use core::hint::black_box;
use core::ptr::{read_volatile, write_volatile};

use allocator_tests::*;

#[global_allocator]
static A: PatternAlloc = PatternAlloc::new().backend(Backend::Memfd);

fn lazy() -> bool {
    matches!(A.stats().backend, "memfd" | "refpage")
}

/// Checks one 8-byte word per page and every byte of a few pages spread over the block.
unsafe fn assert_sampled(p: *const u8, len: usize, byte: u8, what: &str) {
    let word = u64::from_ne_bytes([byte; 8]);
    for offset in (0..len).step_by(PAGE) {
        let got = unsafe { read_volatile(p.add(offset) as *const u64) };
        assert_eq!(got, word, "{what}: word at {offset} of {len}");
    }
    for page in [0, len / PAGE / 3, len / PAGE / 2, len / PAGE - 1] {
        unsafe { assert_bytes(p.add(page * PAGE), PAGE, byte, format_args!("{what}: page {page}")) };
    }
}

fn fresh_large_blocks_need_no_fill() {
    for (size, align) in [(40_000, 8), (MIB, 8), (2 * MIB, 2 * MIB), (3 * MIB + 5, 64 * KIB), (64 * MIB, 8)] {
        let before = A.stats();
        let b = alloc_checked(&A, layout(size, align), format_args!("fresh {size} at {align}"));
        let after = A.stats();
        if lazy() {
            let filled = after.bytes_patterned - before.bytes_patterned;
            // A cached block up to 512 KiB may be refilled; fresh windows are not.
            assert!(filled == 0 || size <= 512 * KIB, "{size}: {filled} bytes filled eagerly");
            if filled == 0 && after.large_cache_hits == before.large_cache_hits {
                assert!(after.bytes_lazy >= before.bytes_lazy + b.usable as u64, "{size}: {before:?} -> {after:?}");
            }
        }
        unsafe { free(&A, b) };
    }
    // A gibibyte: pointer back at once, every page patterned (sampled).
    let l = layout(1 << 30, 8);
    let p = black_box(unsafe { A.alloc(l) });
    assert!(!p.is_null());
    unsafe { assert_sampled(p, 1 << 30, A.pattern_of(l), "1 GiB block") };
    unsafe { A.dealloc(p, l) };
}

fn resident_memory_is_what_was_written() {
    if !lazy() {
        assert!(backend_overridden_away_from("memfd"), "backend {} instead of memfd", A.stats().backend);
        return println!("skipped resident memory: PATTERN_ALLOC chose backend {}", A.stats().backend);
    }
    let size = 256 * MIB;
    let l = layout(size, 8);
    let anon_before = proc_status_kib("RssAnon:") * KIB;
    let p = black_box(unsafe { A.alloc(l) });
    assert!(!p.is_null());
    let pattern = A.pattern_of(l);
    // 1% of the pages written.
    for page in (0..size / PAGE).step_by(100) {
        unsafe { write_volatile(p.add(page * PAGE + 8), 0x11) };
    }
    let written = proc_status_kib("RssAnon:") * KIB - anon_before;
    println!("RssAnon +{} KiB after writing 1% of a 256 MiB block", written / KIB);
    assert!(written <= size / 50, "writing 1% of the pages made {written} bytes resident");
    // Reading every page shares the memfd's pages: no private copies.
    let mut sum = 0u64;
    for page in 0..size / PAGE {
        sum += unsafe { read_volatile(p.add(page * PAGE + 16)) } as u64;
    }
    assert_eq!(sum, (size / PAGE) as u64 * pattern as u64);
    let after_read = proc_status_kib("RssAnon:") * KIB - anon_before;
    assert!(after_read <= written + MIB, "a read scan made {} bytes private", after_read - written);
    unsafe { A.dealloc(p, l) };
}

fn freed_blocks_come_back_patterned_without_a_fill() {
    let size = 4 * MIB;
    let l = layout(size, 8);
    let b = alloc_checked(&A, l, "to be recycled");
    unsafe { dirty(b.ptr, b.usable, 0x77) };
    let address = b.ptr;
    unsafe { free(&A, b) };
    let before = A.stats();
    let again = alloc_checked(&A, l, "recycled (cache hit)");
    let after = A.stats();
    if lazy() && again.ptr == address {
        assert_eq!(after.large_cache_hits, before.large_cache_hits + 1);
        assert_eq!(after.bytes_patterned, before.bytes_patterned, "a decommitted lazy block needs no fill");
    }
    unsafe { free(&A, again) };
}

fn realloc_moves_windows_and_restores_the_pattern() {
    for (old, new, align) in [
        (3 * MIB, 9 * MIB, 8),
        (100_000, 40 * MIB + 3, 8),
        (5 * MIB, 12 * MIB, 4 * MIB),
        (64 * KIB, 3 * MIB, 64 * KIB),
        (9 * MIB, 2 * MIB + 1, 8),
    ] {
        let l = layout(old, align);
        let b = alloc_checked(&A, l, "realloc source");
        unsafe { stamp(b.ptr, old, old as u64) };
        // Something right after it, so that growth usually has to move.
        let neighbour = alloc_checked(&A, layout(old, align), "neighbour");
        let q = black_box(unsafe { A.realloc(b.ptr, l, new) });
        assert!(!q.is_null());
        assert_eq!(q as usize % align, 0, "realloc({old} -> {new}) misaligned");
        let usable = unsafe { A.usable_size(q) };
        unsafe { check_stamp(q, old.min(new), old as u64) }.unwrap_or_else(|e| panic!("{old} -> {new}: {e}"));
        if new > old {
            unsafe { assert_bytes(q.add(old), usable - old, b.pattern, format_args!("{old} -> {new}: tail")) };
        }
        unsafe { assert_bytes(neighbour.ptr, neighbour.usable, neighbour.pattern, "neighbour after the realloc") };
        unsafe { A.dealloc(q, layout(new, align)) };
        unsafe { free(&A, neighbour) };
    }
    // Shrink then grow again: what lay past the shrunk size reads as the pattern.
    let l = layout(8 * MIB, 8);
    let b = alloc_checked(&A, l, "shrink source");
    unsafe { dirty(b.ptr, b.usable, 0x42) };
    let small = 2 * MIB + 1000;
    let q = black_box(unsafe { A.realloc(b.ptr, l, small) });
    let q = black_box(unsafe { A.realloc(q, layout(small, 8), 8 * MIB) });
    unsafe {
        assert_bytes(q, small, 0x42, "kept prefix");
        assert_bytes(q.add(small), 8 * MIB - small, b.pattern, "bytes past the shrunk size, grown again");
        A.dealloc(q, l);
    }
}

fn zeroed_blocks_are_anonymous_zeros() {
    for size in [40_000, 3 * MIB, 64 * MIB] {
        let l = layout(size, 8);
        let p = black_box(unsafe { A.alloc_zeroed(l) });
        assert!(!p.is_null());
        let usable = unsafe { A.usable_size(p) };
        unsafe { assert_bytes(p, usable, 0, format_args!("alloc_zeroed({size})")) };
        // Growth of a zeroed block reads as the pattern past the old size.
        let q = black_box(unsafe { A.realloc(p, l, size * 2) });
        assert!(!q.is_null());
        let grown = unsafe { A.usable_size(q) };
        unsafe { assert_bytes(q, size, 0, "zeros kept") };
        unsafe { assert_bytes(q.add(usable), grown - usable, A.pattern_of(l), "growth of a zeroed block") };
        unsafe { A.dealloc(q, layout(size * 2, 8)) };
    }
}

fn fresh_slab_pages_need_no_fill() {
    let size = 3072;
    if !is_small(&A, size) {
        return println!("skipped slab: {size} bytes are large under this configuration");
    }
    let l = layout(size, 8);
    let before = A.stats();
    // 12 MiB of never-used blocks: fresh segments.
    let blocks: Vec<Block> = (0..4096).map(|_| alloc_checked(&A, l, "fresh slab block")).collect();
    let after = A.stats();
    // With one pattern for every class, every segment reads as this class's
    // pattern (per-class patterns fill pages of segments made for another class).
    if lazy() && A.effective_config().class_patterns == ClassPatterns::Uniform {
        let filled = after.bytes_patterned - before.bytes_patterned;
        assert!(filled < 2 * MIB as u64, "{filled} bytes filled for fresh slab blocks of a lazy segment");
        assert!(after.segments > before.segments);
    }
    for b in blocks {
        unsafe { free(&A, b) };
    }
}

fn stats_name_the_backend() {
    let stats = A.stats();
    if env_override().is_none() {
        assert_eq!(stats.backend, "memfd", "{stats:?}");
        assert!(stats.lazy_mapping_cap > 1000, "{stats:?}");
        assert!(stats.lazy_sources >= 1 && stats.lazy_mappings >= 2, "{stats:?}");
        assert_eq!(stats.lazy_fallbacks, 0, "{stats:?}");
    }
    A.print_stats();
}

fn main() {
    fresh_large_blocks_need_no_fill();
    resident_memory_is_what_was_written();
    freed_blocks_come_back_patterned_without_a_fill();
    realloc_moves_windows_and_restores_the_pattern();
    zeroed_blocks_are_anonymous_zeros();
    fresh_slab_pages_need_no_fill();
    stats_name_the_backend();
    println!("lazy_contents: 7 passed, 0 failed");
}
