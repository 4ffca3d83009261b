//! C4 with `.free_fill(0x55)`: a freed small block reads as the free pattern,
//! except at most its first 16 bytes (the free-list link), until it is reused;
//! reused, it reads as the alloc pattern again, all of it.
//!
//! `harness = false`: the checks run one after another on the main thread, so
//! no other thread can reuse a freed block between the free and the reads.
//! Reading a freed block is what this allocator promises to make meaningful;
//! the slab memory stays mapped, and the reads are volatile.

use core::alloc::GlobalAlloc;
use core::hint::black_box;
use std::thread;

use allocator_tests::*;

#[global_allocator]
static A: PatternAlloc = PatternAlloc::new().free_fill(0x55);

/// The link may use the first 16 bytes of a freed block.
const LINK: usize = 16;

fn freed_small_blocks_read_as_the_free_pattern(free_byte: u8) {
    for class in (0..SMALL_CLASS_COUNT).filter(|&c| is_small(&A, class_size(c))) {
        for align in [8, 16] {
            let l = layout(class_size(class), align);
            let b = alloc_checked(&A, l, format_args!("class {class}"));
            unsafe { dirty(b.ptr, b.usable, 0x3C) };
            unsafe { A.dealloc(b.ptr, l) };
            // No allocation between the free and the check (the message is
            // only formatted when it fails).
            if let Err(e) = unsafe { check_bytes(b.ptr.add(LINK), b.usable - LINK, free_byte) } {
                panic!("freed block of class {class} ({} bytes): {e}", b.usable);
            }
            // Reused: the pattern again over the whole usable size, link included.
            let again = alloc_checked(&A, l, format_args!("class {class} after the free"));
            unsafe { free(&A, again) };
        }
    }
}

fn many_freed_blocks_at_once(free_byte: u8) {
    for size in [24, 200, 3000, 20000].into_iter().filter(|&s| is_small(&A, s)) {
        let l = layout(size, 8);
        let blocks: Vec<Block> = (0..50).map(|_| alloc_checked(&A, l, "batch")).collect();
        let mut freed = Vec::with_capacity(blocks.len());
        for b in &blocks {
            unsafe { dirty(b.ptr, b.usable, 0x3D) };
        }
        for b in blocks {
            unsafe { A.dealloc(b.ptr, b.layout) };
            freed.push((b.ptr as usize, b.usable));
        }
        for &(addr, usable) in &freed {
            let p = black_box(addr as *const u8);
            if let Err(e) = unsafe { check_bytes(p.add(LINK), usable - LINK, free_byte) } {
                panic!("one of 50 freed blocks of {size} bytes: {e}");
            }
        }
        let again: Vec<Block> = (0..50).map(|_| alloc_checked(&A, l, "batch reused")).collect();
        for b in again {
            unsafe { free(&A, b) };
        }
    }
}

fn freed_by_another_thread(free_byte: u8) {
    // A class std's thread machinery is unlikely to use, so that the
    // spawn/join below does not reuse the block before it is read.
    let l = layout(24576, 8);
    if !is_small(&A, l.size()) {
        return;
    }
    let b = alloc_checked(&A, l, "to be freed remotely");
    unsafe { dirty(b.ptr, b.usable, 0x3E) };
    let addr = b.ptr as usize;
    thread::spawn(move || unsafe { A.dealloc(addr as *mut u8, l) }).join().unwrap();
    if let Err(e) = unsafe { check_bytes(b.ptr.add(LINK), b.usable - LINK, free_byte) } {
        panic!("block freed by another thread: {e}");
    }
    let again = alloc_checked(&A, l, "after the remote free");
    unsafe { free(&A, again) };
}

fn stats_count_free_filled_bytes() {
    if !is_small(&A, 4096) {
        return;
    }
    let before = A.stats().bytes_free_filled;
    let l = layout(4096, 8);
    for _ in 0..10 {
        let b = alloc_checked(&A, l, "stats");
        unsafe { free(&A, b) };
    }
    let after = A.stats().bytes_free_filled;
    assert!(after >= before + 10 * (4096 - LINK as u64), "bytes_free_filled went from {before} to {after}");
}

fn zeroed_after_free_fill() {
    for size in [16, 1000, 32768] {
        let l = layout(size, 8);
        let b = alloc_checked(&A, l, "zeroed source");
        unsafe { free(&A, b) };
        let p = black_box(unsafe { A.alloc_zeroed(l) });
        assert!(!p.is_null());
        unsafe { assert_bytes(p, A.usable_size(p), 0, format_args!("alloc_zeroed({size}) after a free fill")) };
        unsafe { A.dealloc(p, l) };
    }
}

fn main() {
    let config = A.effective_config();
    let Some(free_byte) = config.free_fill else {
        println!("free_fill: skipped, PATTERN_ALLOC turned the free pattern off");
        return;
    };
    if env_override().is_none() {
        assert_eq!(free_byte, 0x55);
    }
    let checks: [(&str, &dyn Fn()); 5] = [
        ("freed_small_blocks_read_as_the_free_pattern", &|| freed_small_blocks_read_as_the_free_pattern(free_byte)),
        ("many_freed_blocks_at_once", &|| many_freed_blocks_at_once(free_byte)),
        ("freed_by_another_thread", &|| freed_by_another_thread(free_byte)),
        ("stats_count_free_filled_bytes", &stats_count_free_filled_bytes),
        ("zeroed_after_free_fill", &zeroed_after_free_fill),
    ];
    for (name, check) in checks {
        check();
        println!("free_fill::{name} ... ok");
    }
    println!("free_fill: {} passed, 0 failed", checks.len());
}
