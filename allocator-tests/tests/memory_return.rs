//! Memory goes back: slab pages that stay empty are decommitted (MADV_DONTNEED)
//! and RSS falls; decommitted pages come back reading as the pattern; and a
//! producer/consumer pair whose consumer frees every block remotely reuses
//! the producer's pages instead of mapping new segments.

use core::alloc::GlobalAlloc;
use std::sync::mpsc::sync_channel;

use allocator_tests::*;

#[global_allocator]
static A: PatternAlloc = PatternAlloc::new();

const BLOCK: usize = 1024;
const BLOCKS: usize = 32 * 1024; // 32 MiB of 1 KiB blocks

fn empty_pages_are_decommitted() {
    if !is_small(&A, BLOCK) {
        println!("skipped: {BLOCK}-byte blocks are large under this configuration");
        return;
    }
    let l = layout(BLOCK, 8);
    let before = A.stats().pages_decommitted;
    let blocks: Vec<Block> = (0..BLOCKS).map(|_| alloc_checked(&A, l, "fill the slab")).collect();
    for b in &blocks {
        unsafe { dirty(b.ptr, BLOCK, 0x11) };
    }
    let peak = vm_rss();
    for b in blocks {
        unsafe { free(&A, b) };
    }
    let after = vm_rss();
    let decommitted = A.stats().pages_decommitted - before;
    println!("RSS {peak} -> {after} bytes, {decommitted} slab pages decommitted");
    assert!(decommitted >= 256, "only {decommitted} of ~520 emptied slab pages were decommitted");
    assert!(peak - after >= 16 * MIB, "RSS fell only from {peak} to {after} after freeing 32 MiB");

    // The same pages again: decommitted memory must read as the pattern, not zero.
    let blocks: Vec<Block> = (0..BLOCKS).map(|_| alloc_checked(&A, l, "refill after decommit")).collect();
    for b in blocks {
        unsafe { free(&A, b) };
    }
}

fn remote_frees_let_the_producer_reuse_its_pages() {
    const ROUNDS: usize = 2_000_000;
    let l = layout(48, 8);
    let segments_before = A.stats().segments;
    let (send, receive) = sync_channel::<Vec<usize>>(16);
    let consumer = std::thread::spawn(move || {
        let mut freed = 0;
        for batch in receive {
            for (i, address) in batch.into_iter().enumerate() {
                let p = address as *mut u8;
                unsafe { check_stamp(p, 48, (freed + i) as u64) }.unwrap_or_else(|e| panic!("block {i}: {e}"));
                unsafe { A.dealloc(p, l) };
            }
            freed += 256;
        }
        freed
    });
    let mut sent = 0;
    while sent < ROUNDS {
        let batch: Vec<usize> = (0..256)
            .map(|i| {
                let b = alloc_checked(&A, l, "producer");
                unsafe { stamp(b.ptr, 48, (sent + i) as u64) };
                b.ptr as usize
            })
            .collect();
        send.send(batch).unwrap();
        sent += 256;
    }
    drop(send);
    assert_eq!(consumer.join().unwrap(), sent);
    let grown = A.stats().segments - segments_before;
    println!("{sent} blocks of 48 bytes ({} MiB) passed through; {grown} new segments", sent * 48 / MIB);
    assert!(grown <= 4, "{grown} new 4 MiB segments for a live set of at most ~1 MiB");
}

/// A thread allocates 16 MiB, another frees all of it; once the first thread's
/// current page of that class runs out, it finds its other pages emptied and
/// gives them back (until then they stay with it, as in mimalloc).
fn pages_emptied_by_another_thread_go_back() {
    const SIZE: usize = 64;
    const COUNT: usize = 16 * MIB / SIZE;
    if !is_small(&A, SIZE) {
        println!("skipped: {SIZE}-byte blocks are large under this configuration");
        return;
    }
    let l = layout(SIZE, 8);
    let blocks: Vec<usize> = (0..COUNT).map(|_| alloc_checked(&A, l, "producer").ptr as usize).collect();
    let before = A.stats().pages_decommitted;
    std::thread::spawn(move || blocks.into_iter().for_each(|p| unsafe { A.dealloc(p as *mut u8, l) })).join().unwrap();
    let page_worth = 64 * KIB / SIZE;
    let again: Vec<Block> = (0..2 * page_worth).map(|_| alloc_checked(&A, l, "after the remote frees")).collect();
    again.into_iter().for_each(|b| unsafe { free(&A, b) });
    let decommitted = A.stats().pages_decommitted - before;
    println!("{decommitted} slab pages decommitted after another thread freed 16 MiB");
    assert!(decommitted >= 128, "only {decommitted} of ~256 remotely emptied pages went back");
}

fn main() {
    // Producer/consumer first, while no earlier step has left segments to reuse.
    remote_frees_let_the_producer_reuse_its_pages();
    empty_pages_are_decommitted();
    pages_emptied_by_another_thread_go_back();
    println!("memory_return: 3 passed, 0 failed");
}
