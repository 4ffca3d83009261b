//! 1,000 short-lived threads, a few at a time, each allocating and freeing
//! (and freeing a block its predecessor left behind). Per-thread state must be
//! given back at thread exit: heaps_in_use returns to the baseline and the
//! resident set does not grow with the number of threads.
//!
//! One test in this binary, so that no other test's memory moves the numbers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;

use allocator_tests::*;

#[global_allocator]
static A: PatternAlloc = PatternAlloc::new();

const AT_ONCE: usize = 4;

/// The largest heaps_in_use a churn thread saw while it was alive.
static MAX_HEAPS_SEEN: AtomicU64 = AtomicU64::new(0);

/// One short life: allocate a mix of sizes, check, stamp, verify, free; free
/// the block handed over by an earlier thread and hand one on.
fn life(id: usize, inherited: Option<(usize, usize, u64)>) -> (usize, usize, u64) {
    let mut blocks = Vec::with_capacity(200);
    for n in 0..200 {
        let size = match n % 50 {
            0 => 64 * KIB + id % 4096,
            1 => 5000,
            _ => 1 + (n * 53 + id * 11) % 2048,
        };
        let b = alloc_checked(&A, layout(size, 8), format_args!("thread {id} #{n}"));
        unsafe { stamp(b.ptr, size, (id * 1000 + n) as u64) };
        blocks.push(b);
    }
    for (n, b) in blocks.into_iter().enumerate() {
        unsafe { check_stamp(b.ptr, b.layout.size(), (id * 1000 + n) as u64) }.unwrap();
        unsafe { free(&A, b) };
    }
    if let Some((addr, size, seed)) = inherited {
        unsafe { check_stamp(addr as *const u8, size, seed) }.unwrap();
        unsafe { core::alloc::GlobalAlloc::dealloc(&A, addr as *mut u8, layout(size, 8)) };
    }
    MAX_HEAPS_SEEN.fetch_max(A.stats().heaps_in_use, Ordering::Relaxed);
    let size = 100 + id % 900;
    let b = alloc_checked(&A, layout(size, 8), "handed on");
    unsafe { stamp(b.ptr, size, id as u64) };
    (b.ptr as usize, size, id as u64)
}

/// Runs threads `from..to`, at most AT_ONCE alive at a time.
fn churn(from: usize, to: usize, mut handed: Option<(usize, usize, u64)>) -> Option<(usize, usize, u64)> {
    let mut id = from;
    while id < to {
        let batch = AT_ONCE.min(to - id);
        let (tx, rx) = mpsc::channel();
        let handles: Vec<_> = (0..batch)
            .map(|k| {
                let tx = tx.clone();
                let inherited = if k == 0 { handed.take() } else { None };
                thread::spawn(move || tx.send(life(id + k, inherited)).unwrap())
            })
            .collect();
        drop(tx);
        for h in handles {
            h.join().unwrap();
        }
        let mut results: Vec<_> = rx.into_iter().collect();
        handed = results.pop();
        for (addr, size, seed) in results {
            unsafe { check_stamp(addr as *const u8, size, seed) }.unwrap();
            unsafe { core::alloc::GlobalAlloc::dealloc(&A, addr as *mut u8, layout(size, 8)) };
        }
        id += batch;
    }
    handed
}

#[test]
fn thousand_short_lived_threads() {
    // Warm up: the first threads set up whatever is set up once.
    let handed = churn(0, 20, None);
    let base_heaps = A.stats().heaps_in_use;
    let base_created = A.stats().heaps_created;
    let base_rss = vm_rss();

    let handed = churn(20, 200, handed);
    let rss_200 = vm_rss();
    let handed = churn(200, 1000, handed);
    let rss_1000 = vm_rss();
    if let Some((addr, size, seed)) = handed {
        unsafe { check_stamp(addr as *const u8, size, seed) }.unwrap();
        unsafe { core::alloc::GlobalAlloc::dealloc(&A, addr as *mut u8, layout(size, 8)) };
    }

    let stats = A.stats();
    eprintln!(
        "rss: base {} KiB, after 200 threads {} KiB, after 1000 {} KiB; heaps in use {} (base {}), created {}",
        base_rss / 1024,
        rss_200 / 1024,
        rss_1000 / 1024,
        stats.heaps_in_use,
        base_heaps,
        stats.heaps_created
    );
    // Heaps may be pooled (heaps_created stays small) or made per thread, but
    // the churn threads did hold heaps of their own while they lived ...
    assert!(stats.heaps_created >= base_created);
    let seen = MAX_HEAPS_SEEN.load(Ordering::Relaxed);
    assert!(
        seen > base_heaps || !is_small(&A, 16),
        "heaps_in_use never rose above the baseline {base_heaps} during the churn"
    );
    // ... and every churn thread has been joined, so its heap is no longer in use.
    assert!(
        stats.heaps_in_use <= base_heaps + 1,
        "heaps_in_use is {} after the churn, {base_heaps} before: thread exit does not give heaps back",
        stats.heaps_in_use
    );
    assert!(
        rss_1000 <= rss_200 + 16 * MIB,
        "RSS grew from {} KiB after 200 threads to {} KiB after 1000",
        rss_200 / 1024,
        rss_1000 / 1024
    );
    assert!(
        rss_1000 <= base_rss + 64 * MIB,
        "RSS grew from {} KiB to {} KiB over 980 threads",
        base_rss / 1024,
        rss_1000 / 1024
    );
    // And the process still allocates normally.
    for size in [1, 100, 5000, 40000] {
        let b = alloc_checked(&A, layout(size, 8), "after the churn");
        unsafe { free(&A, b) };
    }
}
