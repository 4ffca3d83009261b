//! Failure injection (`pattern_alloc::inject`): the kernel refusing a mapping,
//! a move, a memfd or a decommit must end in null (the caller's ENOMEM) or in
//! a fallback backend, and never touch a live block.
//!
//! The allocator under test is a `PatternAlloc` value driven directly; this
//! binary's global allocator stays the system's, so an armed fault never hits
//! the test's own bookkeeping. The fault switches and the heap are
//! process-wide, so the steps run one after another on the main thread
//! (harness = false). Steps that need a process whose first allocation meets
//! the fault run this binary again as a child.

use core::alloc::{GlobalAlloc, Layout};
use std::time::Duration;

use allocator_tests::*;
use pattern_alloc::inject::{self, Fault};

static A: PatternAlloc = PatternAlloc::new();

const CHILD: &str = "ROBUSTNESS_FAULTS_CHILD";

/// A block the program wrote `stamp(seed)` over, all of its requested size.
struct Live {
    ptr: *mut u8,
    layout: Layout,
    seed: u64,
}

impl Live {
    fn check(&self, what: &str) {
        unsafe { check_stamp(self.ptr, self.layout.size(), self.seed) }
            .unwrap_or_else(|e| panic!("{what}: live block {:p} ({:?}) changed: {e}", self.ptr, self.layout));
    }
}

/// Allocates and checks a fresh block; None when the allocator said null.
fn try_alloc(layout: Layout, seed: u64) -> Option<Live> {
    let ptr = unsafe { A.alloc(layout) };
    if ptr.is_null() {
        return None;
    }
    let block = unsafe { check_fresh_block(&A, ptr, layout) }.unwrap_or_else(|e| panic!("{e}"));
    unsafe { stamp(block.ptr, layout.size(), seed) };
    Some(Live { ptr, layout, seed })
}

fn try_alloc_zeroed(layout: Layout) -> Option<*mut u8> {
    let ptr = unsafe { A.alloc_zeroed(layout) };
    if ptr.is_null() {
        return None;
    }
    let usable = unsafe { A.usable_size(ptr) };
    unsafe { assert_bytes(ptr, usable, 0, format_args!("alloc_zeroed({layout:?}) = {ptr:p}")) };
    Some(ptr)
}

/// Reallocates a live block to `new_size`. On null the old block must be
/// untouched and stays live; otherwise the kept bytes must have moved along
/// and the rest read as the pattern.
fn try_realloc(block: Live, new_size: usize) -> Result<Live, Live> {
    let old_pattern = A.pattern_of(block.layout);
    let old_class = A.class_of_layout(block.layout);
    let new = unsafe { A.realloc(block.ptr, block.layout, new_size) };
    if new.is_null() {
        block.check("after a failed realloc");
        return Err(block);
    }
    let new_layout = layout(new_size, block.layout.align());
    let kept = block.layout.size().min(new_size);
    unsafe { check_stamp(new, kept, block.seed) }
        .unwrap_or_else(|e| panic!("realloc {:p} -> {new:p} ({new_size}): kept bytes changed: {e}", block.ptr));
    let new_class = A.class_of_layout(new_layout);
    let pattern = if new == block.ptr || (old_class == LARGE_CLASS && new_class == LARGE_CLASS) {
        old_pattern
    } else {
        A.pattern_of(new_layout)
    };
    let usable = unsafe { A.usable_size(new) };
    assert!(usable >= new_size, "realloc to {new_size}: usable size {usable}");
    unsafe { assert_bytes(new.add(kept), new_size - kept, pattern, format_args!("grown part of {new:p}")) };
    unsafe { stamp(new, new_size, block.seed) };
    Ok(Live { ptr: new, layout: new_layout, seed: block.seed })
}

fn free(block: Live) {
    block.check("before free");
    unsafe { A.dealloc(block.ptr, block.layout) };
}

/// Blocks of every kind, written: what a failure must never touch.
fn live_set(seed: u64) -> Vec<Live> {
    let sizes = [1, 16, 100, 1000, 4096, 20_000, 40_000, 300 * KIB, 3 * MIB];
    let mut live = Vec::new();
    for (i, &size) in sizes.iter().enumerate() {
        for align in [8, 4096] {
            let seed = seed + (i * 2 + (align == 4096) as usize) as u64;
            live.push(try_alloc(layout(size, align), seed).expect("allocation before any fault"));
        }
    }
    live
}

fn check_all(live: &[Live], what: &str) {
    live.iter().for_each(|b| b.check(what));
}

/// One composite operation: a mix that needs new segments, large mappings,
/// windows, moves and decommits. Whatever fails must fail cleanly.
fn churn(live: &mut Vec<Live>, seed: u64) -> usize {
    let mut nulls = 0;
    for (i, &(size, align)) in
        [(3 * MIB, 4096), (600 * KIB, 2 * MIB), (24 * KIB, 8), (5000, 64), (70 * KIB, 8)].iter().enumerate()
    {
        match try_alloc(layout(size, align), seed + i as u64) {
            Some(block) => live.push(block),
            None => nulls += 1,
        }
    }
    match try_alloc_zeroed(layout(2 * MIB, 8)) {
        Some(p) => unsafe { A.dealloc(p, layout(2 * MIB, 8)) },
        None => nulls += 1,
    }
    // Grow, then shrink, the newest blocks (mremap, window moves, resets).
    for (index, factor) in [(live.len() - 1, 5), (live.len() - 2, 3)] {
        if index >= live.len() {
            continue;
        }
        let block = live.swap_remove(index);
        let size = block.layout.size() * factor;
        match try_realloc(block, size) {
            Ok(grown) => match try_realloc(grown, size / 7 + 1) {
                Ok(shrunk) => live.push(shrunk),
                Err(kept) => {
                    nulls += 1;
                    live.push(kept)
                }
            },
            Err(kept) => {
                nulls += 1;
                live.push(kept)
            }
        }
    }
    // Free the older half of what churn made (large frees decommit).
    while live.len() > 24 {
        free(live.remove(18));
    }
    nulls
}

/// The n-th mapping (and, separately, the n-th move or decommit) of a churn
/// step fails, for every n the step reaches: all blocks stay intact.
fn every_single_failure_of_a_churn_step() {
    let mut live = live_set(1000);
    for fault in [Fault::Map, Fault::Remap, Fault::Madvise] {
        let mut skip = 0u32;
        loop {
            let injected = inject::injected(fault);
            inject::arm(fault, skip, 1);
            let nulls = churn(&mut live, 2000 + skip as u64 * 16);
            inject::disarm(fault);
            check_all(&live, &format!("after failing {fault:?} call {skip} of a churn step ({nulls} nulls)"));
            if inject::injected(fault) == injected {
                break; // the step made fewer than skip + 1 such calls
            }
            skip += 1;
            assert!(skip < 10_000, "a churn step should not make this many {fault:?} calls");
        }
        eprintln!("{fault:?}: calls 0..{skip} of a churn step failed one at a time; live blocks intact");
    }
    for block in live {
        free(block);
    }
}

/// No mapping works at all: allocation ends in null (large at once, small once
/// the pages already mapped are used up), then everything works again.
fn allocate_until_null_under_a_mapping_ban() {
    let mut live = live_set(3000);
    inject::arm(Fault::Map, 0, u32::MAX);
    inject::arm(Fault::Remap, 0, u32::MAX);
    let mut filled = Vec::new();
    let small = is_small(&A, 8 * KIB);
    let step = layout(8 * KIB, 8);
    let mut reached_null = false;
    for i in 0..200_000u64 {
        match try_alloc(step, 5000 + i) {
            Some(block) => filled.push(block),
            None => {
                reached_null = true;
                break;
            }
        }
    }
    assert!(reached_null, "200000 blocks of 8 KiB without a single mapping");
    for size in [64 * KIB, 5 * MIB] {
        if let Some(block) = try_alloc(layout(size, 8), 7) {
            // Only a cached mapping can serve it.
            assert!(!is_small(&A, size), "{size} bytes from nowhere");
            free(block);
        }
    }
    assert!(try_alloc_zeroed(layout(64 * MIB, 8)).is_none(), "64 MiB zeroed without a mapping");
    // Growth that needs a mapping or a move fails and keeps the block.
    let big = live.pop().unwrap();
    let big = match try_realloc(big, 40 * MIB) {
        Ok(_) => panic!("a 40 MiB realloc succeeded without mmap or mremap"),
        Err(kept) => kept,
    };
    live.push(big);
    inject::disarm(Fault::Map);
    inject::disarm(Fault::Remap);
    check_all(&live, "after the mapping ban");
    check_all(&filled, "after the mapping ban");
    eprintln!("mapping ban: {} blocks of 8 KiB (small: {small}) before null", filled.len());
    for block in filled.drain(..) {
        free(block);
    }
    // Everything works again, with the right contents.
    for i in 0..64u64 {
        filled.push(try_alloc(step, 9000 + i).expect("allocation after the ban"));
    }
    live.push(try_alloc(layout(5 * MIB, 8), 11).expect("large allocation after the ban"));
    for block in filled.into_iter().chain(live) {
        free(block);
    }
}

/// Every decommit refused for a while: freed memory stays resident, so it
/// must be overwritten or unmapped instead of being handed out stale.
fn refused_decommits_never_show_stale_bytes() {
    inject::arm(Fault::Madvise, 0, u32::MAX);
    for round in 0..3u64 {
        let mut blocks = Vec::new();
        for (i, size) in [100, 4000, 30_000, 200 * KIB, 700 * KIB, 3 * MIB].into_iter().enumerate() {
            for j in 0..4u64 {
                blocks.push(try_alloc(layout(size, 16), round * 100 + i as u64 * 10 + j).expect("no mapping fault"));
            }
        }
        // Shrinks reset their tails (a refused decommit means writing the pattern).
        let shrunk: Vec<Live> = blocks
            .drain(..)
            .map(|b| {
                let size = b.layout.size() / 3 + 1;
                try_realloc(b, size).unwrap_or_else(|_| panic!("shrink failed"))
            })
            .collect();
        shrunk.into_iter().for_each(free);
        // Fresh blocks now reuse what was freed: try_alloc checks they read as the pattern.
    }
    assert!(inject::injected(Fault::Madvise) > 0, "no decommit was attempted");
    inject::disarm(Fault::Madvise);
}

/// Child: the very first mapping of the process fails (the allocator's own
/// set-up included): null, then normal service.
fn child_first_mappings_fail() {
    inject::arm(Fault::Map, 0, 3);
    let mut nulls = 0;
    for _ in 0..3 {
        let p = unsafe { A.alloc(layout(100, 8)) };
        if p.is_null() {
            nulls += 1;
        } else {
            unsafe { check_fresh_block(&A, p, layout(100, 8)) }.unwrap_or_else(|e| panic!("{e}"));
        }
    }
    assert!(nulls > 0, "three refused mappings and no null");
    let block = try_alloc(layout(100, 8), 1).expect("allocation after the faults");
    let large = try_alloc(layout(MIB, 8), 2).expect("large allocation after the faults");
    free(block);
    free(large);
    println!("child ok: {nulls} nulls");
}

/// Child: no memfd can be created, from the start: `backend=auto` must fall
/// back (to eager here) and blocks still read as the pattern.
fn child_no_memfd() {
    inject::arm(Fault::Memfd, 0, u32::MAX);
    let mut live: Vec<Live> = [10, 5000, 40 * KIB, 3 * MIB]
        .iter()
        .enumerate()
        .map(|(i, &s)| try_alloc(layout(s, 8), i as u64).expect("allocation without memfd"))
        .collect();
    let grown = try_realloc(live.pop().unwrap(), 9 * MIB).unwrap_or_else(|_| panic!("growth without memfd"));
    live.push(grown);
    live.into_iter().for_each(free);
    let stats = A.stats();
    println!("child ok: backend {} memfd refusals {}", stats.backend, inject::injected(Fault::Memfd));
    if env_override().is_none() {
        assert_eq!(stats.backend, "eager", "no memfd and no refpage on this kernel");
        assert!(inject::injected(Fault::Memfd) > 0, "the memfd backend was never tried");
    }
}

fn run_child(step: &str) {
    // Through the test runner where there is one (qemu-user runs no foreign binary by itself).
    let exe = std::env::current_exe().unwrap();
    let mut cmd = target_command(exe.to_str().expect("a UTF-8 test path"));
    cmd.env(CHILD, step);
    let run = run_with_limit(cmd, Duration::from_secs(120));
    assert!(run.status.success() && run.stdout.contains("child ok"), "child {step}: {run:#?}");
    eprintln!("child {step}: {}", run.stdout.trim());
}

fn main() {
    match std::env::var(CHILD).as_deref() {
        Ok("first-mappings") => return child_first_mappings_fail(),
        Ok("no-memfd") => return child_no_memfd(),
        Ok(other) => panic!("unknown child step {other}"),
        Err(_) => {}
    }
    run_child("first-mappings");
    run_child("no-memfd");
    every_single_failure_of_a_churn_step();
    allocate_until_null_under_a_mapping_ban();
    refused_decommits_never_show_stale_bytes();
    println!("robustness_faults: all steps passed");
}
