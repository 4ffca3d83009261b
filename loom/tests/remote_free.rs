//! Model checks of the cross-thread free path of `src/small/page.rs` and
//! `src/small/heap.rs`, with loom.
//!
//! Why a model and not the real `Page`: `Page` lives in segment headers made
//! by mmap, is built by const functions and reached from statics; loom's
//! atomics are neither const-constructible nor usable from statics, so
//! switching the real file's atomic types under `cfg(loom)` would mean
//! reorganising the slab code around the checker. Instead this file repeats
//! the algorithm line for line, with the same orderings; each function names
//! the one it models. Keep them in step: a change of an ordering in page.rs
//! or heap.rs must be made here too.
//!
//! What is checked (every interleaving, and every value a weak load may
//! return, up to loom's bounds):
//! 1. `push_remote` from two threads while the owner `collect`s: every block
//!    arrives on the owner's list exactly once, with the link its freeing
//!    thread wrote visible to the owner (loom's `UnsafeCell` reports a data
//!    race otherwise).
//! 2. A remote free into a page on the owner's full list leaves a hint, and
//!    an owner that takes the hint finds the block (the hint's release/acquire
//!    pair carries the push with it).
//! 3. The checks can fail: the `mutation_*` tests weaken one ordering each
//!    (a Relaxed push, a Relaxed hint) and expect loom to report it.
//!
//! The owner yields between its looks: loom only tries running the other
//! threads first where a thread yields or blocks, and without the yield no
//! execution had the owner collect while pushes were in flight (the tests
//! assert that some do now). Run: `RUSTFLAGS="--cfg loom" cargo test
//! --release` in this directory (ci/robustness.sh).
//!
//! Not checked by loom: the handshake between the owner marking a page full
//! (`in_full.store(true, SeqCst)` then `thread_free.load(SeqCst)`) and a
//! remote free (`compare_exchange(SeqCst)` then `in_full.load(SeqCst)`).
//! It relies on the single total order of SeqCst operations, which loom does
//! not model (it treats SeqCst like AcqRel and would report this correct
//! store-load pattern as a failure: tokio-rs/loom#180). The argument, as in
//! heap.rs: the four operations are SeqCst, so they occur in one total order
//! consistent with each thread's program order. If the owner's store comes
//! first, the remote's load (after its own push) sees `in_full` and leaves a
//! hint. Otherwise the remote's push precedes the owner's load, which then
//! sees a non-null list (only the owner empties it) and keeps the page
//! available. `every_sequentially_consistent_order_finds_the_block` below
//! enumerates the six orders to show no case is missed.

#[cfg(loom)]
use std::ptr::null_mut;

/// The link of a free block (`page::Block::next`), written by the thread that
/// frees it and read by the owner after collecting.
#[cfg(loom)]
struct Block {
    next: loom::cell::UnsafeCell<*mut Block>,
}

#[cfg(loom)]
mod model {
    use super::*;
    use loom::cell::UnsafeCell;
    use loom::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

    pub fn block() -> Block {
        Block { next: UnsafeCell::new(null_mut()) }
    }

    /// The fields of `page::Page` this path touches, and the owner heap's hint.
    pub struct Page {
        /// Owner-only (`Cell` in page.rs).
        pub free: UnsafeCell<*mut Block>,
        pub used: UnsafeCell<u32>,
        pub thread_free: AtomicPtr<Block>,
        pub in_full: AtomicBool,
        /// `Heap::remote_hint[class]` of the owner.
        pub hint: AtomicBool,
    }

    unsafe impl Send for Page {}
    unsafe impl Sync for Page {}

    impl Page {
        pub fn new(used: u32) -> Page {
            Page {
                free: UnsafeCell::new(null_mut()),
                used: UnsafeCell::new(used),
                thread_free: AtomicPtr::new(null_mut()),
                in_full: AtomicBool::new(false),
                hint: AtomicBool::new(false),
            }
        }

        /// `Page::push_remote`.
        pub fn push_remote(&self, block: *mut Block) {
            self.push_remote_ordered(block, Ordering::SeqCst);
        }

        /// `push_remote` with another success ordering for its CAS: the
        /// mutation test shows the checker catches a push that publishes the
        /// link too weakly.
        pub fn push_remote_ordered(&self, block: *mut Block, success: Ordering) {
            let mut head = self.thread_free.load(Ordering::Relaxed);
            loop {
                // SAFETY: the freeing thread owns the block until the push succeeds.
                unsafe { (*block).next.with_mut(|next| *next = head) };
                match self.thread_free.compare_exchange_weak(head, block, success, Ordering::Relaxed) {
                    Ok(_) => return,
                    Err(current) => head = current,
                }
            }
        }

        /// `Page::collect` (owner only).
        pub fn collect(&self) -> u32 {
            if self.thread_free.load(Ordering::Relaxed).is_null() {
                return 0;
            }
            let list = self.thread_free.swap(null_mut(), Ordering::Acquire);
            if list.is_null() {
                return 0;
            }
            let mut count = 1;
            let mut tail = list;
            unsafe {
                while !(*tail).next.with(|next| *next).is_null() {
                    tail = (*tail).next.with(|next| *next);
                    count += 1;
                }
                let free = self.free.with(|free| *free);
                (*tail).next.with_mut(|next| *next = free);
            }
            self.free.with_mut(|free| unsafe { *free = list });
            self.used.with_mut(|used| unsafe { *used -= count });
            count
        }

        /// `Page::pop` (owner only).
        pub fn pop(&self) -> Option<*mut Block> {
            let block = self.free.with(|free| unsafe { *free });
            if block.is_null() {
                return None;
            }
            let next = unsafe { (*block).next.with(|next| *next) };
            self.free.with_mut(|free| unsafe { *free = next });
            self.used.with_mut(|used| unsafe { *used += 1 });
            Some(block)
        }

        /// The tail of `small::free` on a remote thread: push, then a hint if
        /// the page is on its owner's full list (`Heap::hint_remote_free`).
        pub fn remote_free(&self, block: *mut Block, hint_order: Ordering) {
            self.push_remote(block);
            if self.in_full.load(Ordering::SeqCst) {
                self.hint.store(true, hint_order);
            }
        }

        /// `Heap::alloc_generic` after its avail pages ran dry: take the hint
        /// and look through the full pages (`revive_full_pages`). Returns how
        /// many remotely freed blocks the owner found.
        pub fn owner_takes_hint(&self) -> u32 {
            // heap.rs: `remote_hint[class].swap(false, Acquire)`. loom 0.7.3
            // lets a concurrent plain store land between the read and the
            // write of a swap (tokio-rs/loom#254, fixed by the unmerged PR
            // #391), which would "lose" the remote thread's hint. For a bool
            // that only ever becomes false here, this compare_exchange is the
            // same operation: it reads true and writes false, or reads false
            // and leaves it.
            if self.hint.compare_exchange(true, false, Ordering::Acquire, Ordering::Relaxed).is_ok() {
                let found = self.collect();
                if found > 0 {
                    self.in_full.store(false, Ordering::Relaxed);
                }
                found
            } else {
                0
            }
        }
    }
}

#[cfg(loom)]
mod checks {
    use super::model::*;
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// Blocks live as long as the model run; threads pass their addresses.
    struct Blocks(Vec<Block>);

    impl Blocks {
        fn ptr(&self, i: usize) -> *mut Block {
            &self.0[i] as *const Block as *mut Block
        }
    }

    unsafe impl Send for Blocks {}
    unsafe impl Sync for Blocks {}

    /// Model runs (interleavings and weak-load choices) explored, per test.
    fn explored(counter: &'static std::sync::atomic::AtomicUsize, test: &str) {
        eprintln!("{test}: {} executions explored", counter.load(std::sync::atomic::Ordering::Relaxed));
    }

    fn two_remote_threads_and_the_owner(push_order: loom::sync::atomic::Ordering) -> usize {
        static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        static EARLY: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        RUNS.store(0, std::sync::atomic::Ordering::Relaxed);
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = None;
        builder.check(move || {
            RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let blocks = Arc::new(Blocks((0..3).map(|_| block()).collect()));
            let page = Arc::new(Page::new(3));
            let first = {
                let (page, blocks) = (page.clone(), blocks.clone());
                thread::spawn(move || {
                    page.push_remote_ordered(blocks.ptr(0), push_order);
                    page.push_remote_ordered(blocks.ptr(1), push_order);
                })
            };
            let second = {
                let (page, blocks) = (page.clone(), blocks.clone());
                thread::spawn(move || page.push_remote_ordered(blocks.ptr(2), push_order))
            };
            // The owner collects while the others push: once at once, once
            // after a yield (loom then also runs the pushes first).
            let mut collected = page.collect();
            thread::yield_now();
            collected += page.collect();
            if collected > 0 {
                EARLY.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            first.join().unwrap();
            second.join().unwrap();
            collected += page.collect();
            assert_eq!(collected, 3);
            let mut seen = [0u32; 3];
            while let Some(b) = page.pop() {
                let index = (0..3).find(|&i| blocks.ptr(i) == b).expect("a block that was never freed");
                seen[index] += 1;
            }
            assert_eq!(seen, [1, 1, 1], "each freed block exactly once on the owner's list");
            assert_eq!(page.used.with(|u| unsafe { *u }), 3, "three popped again");
        });
        let early = EARLY.load(std::sync::atomic::Ordering::Relaxed);
        eprintln!("(the owner found remote frees while they were being pushed in {early} of them)");
        assert!(early > 0, "the model never let the owner collect during the pushes");
        RUNS.load(std::sync::atomic::Ordering::Relaxed)
    }

    #[test]
    fn remote_frees_from_two_threads_are_collected_exactly_once() {
        let runs = two_remote_threads_and_the_owner(loom::sync::atomic::Ordering::SeqCst);
        eprintln!("remote_frees_from_two_threads_are_collected_exactly_once: {runs} executions explored");
    }

    /// The check can fail: with a Relaxed CAS the owner may read a link the
    /// freeing thread wrote without synchronization, and loom says so.
    #[test]
    #[should_panic(expected = "Causality violation")]
    fn mutation_a_relaxed_push_is_caught() {
        two_remote_threads_and_the_owner(loom::sync::atomic::Ordering::Relaxed);
    }

    #[test]
    fn a_hint_on_a_full_page_leads_the_owner_to_the_block() {
        a_hint_on_a_full_page(loom::sync::atomic::Ordering::Release);
    }

    /// The check can fail: a Relaxed hint lets the owner take it and still
    /// miss the block, and then nothing tells it to look again.
    #[test]
    #[should_panic(expected = "stranded")]
    fn mutation_a_relaxed_hint_is_caught() {
        a_hint_on_a_full_page(loom::sync::atomic::Ordering::Relaxed);
    }

    fn a_hint_on_a_full_page(hint_order: loom::sync::atomic::Ordering) {
        static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        static EARLY: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        loom::model(move || {
            RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let blocks = Arc::new(Blocks(vec![block()]));
            let page = Arc::new(Page::new(1));
            // The owner moved the page to its full list before the free.
            page.in_full.store(true, loom::sync::atomic::Ordering::SeqCst);
            let remote = {
                let (page, blocks) = (page.clone(), blocks.clone());
                thread::spawn(move || page.remote_free(blocks.ptr(0), hint_order))
            };
            // The owner looks once at once and once after a yield (loom then
            // also runs the remote free first).
            let mut found_early = page.owner_takes_hint();
            thread::yield_now();
            found_early += page.owner_takes_hint();
            if found_early > 0 {
                EARLY.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            remote.join().unwrap();
            // Not found yet: the hint must still be there for the next look.
            let found = found_early + page.owner_takes_hint();
            assert_eq!(found, 1, "the freed block was stranded on a full page without a hint");
            assert_eq!(page.pop(), Some(blocks.ptr(0)));
        });
        explored(&RUNS, "a_hint_on_a_full_page_leads_the_owner_to_the_block");
        assert!(EARLY.load(std::sync::atomic::Ordering::Relaxed) > 0, "the owner never took the hint concurrently");
    }
}

/// The handshake under each of the six orders the SeqCst total order can put
/// the four operations in (see the module comment): in each, the owner sees
/// the block or the remote thread leaves a hint.
#[test]
fn every_sequentially_consistent_order_finds_the_block() {
    // Owner: 0 = store in_full, 1 = load thread_free. Remote: 2 = push, 3 = load in_full.
    let orders = [[0, 1, 2, 3], [0, 2, 1, 3], [0, 2, 3, 1], [2, 0, 1, 3], [2, 0, 3, 1], [2, 3, 0, 1]];
    for order in orders {
        let (mut in_full, mut pushed) = (false, false);
        let (mut owner_saw_block, mut hint) = (false, false);
        for op in order {
            match op {
                0 => in_full = true,
                1 => owner_saw_block = pushed,
                2 => pushed = true,
                _ => hint = in_full,
            }
        }
        assert!(owner_saw_block || hint, "order {order:?} strands the block");
    }
}
