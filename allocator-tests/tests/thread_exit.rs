//! Allocation during thread exit. Destructors of pthread keys created after the
//! allocator's own key run after the allocator has retired the thread's heap:
//! their allocations are served by the shared fallback heap and must follow
//! the contract like any other. Rust thread_local destructors (which glibc
//! runs before pthread key destructors) allocate and free too.

use core::alloc::GlobalAlloc;
use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use allocator_tests::*;

#[global_allocator]
static A: PatternAlloc = PatternAlloc::new();

static CHECKED: AtomicUsize = AtomicUsize::new(0);
static FAILURES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Allocates blocks of several sizes, checks they are fresh, stamps them and
/// frees some here and returns the rest (to be freed by another thread).
fn allocate_while_exiting(seed: u64) -> Vec<usize> {
    let mut kept = Vec::new();
    for (i, size) in [24usize, 200, 3000, 40_000].into_iter().enumerate() {
        let l = layout(size, 8);
        match try_alloc_checked(&A, l) {
            Ok(b) => {
                unsafe { stamp(b.ptr, size, seed + i as u64) };
                if i % 2 == 0 {
                    unsafe { free(&A, b) };
                } else {
                    kept.push(b.ptr as usize);
                }
                CHECKED.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => FAILURES.lock().unwrap().push(format!("seed {seed}: {e}")),
        }
    }
    kept
}

static LEFT_BEHIND: Mutex<Vec<(usize, usize, u64)>> = Mutex::new(Vec::new());

unsafe extern "C" fn key_destructor(value: *mut libc::c_void) {
    let seed = value as u64;
    for (i, address) in allocate_while_exiting(seed * 100).into_iter().enumerate() {
        let size = [200usize, 40_000][i];
        LEFT_BEHIND.lock().unwrap().push((address, size, seed * 100 + 1 + 2 * i as u64));
    }
}

struct AllocatesOnDrop(u64);

impl Drop for AllocatesOnDrop {
    fn drop(&mut self) {
        // Freed right here: the thread's heap is still alive in this destructor.
        for address in allocate_while_exiting(self.0 * 100 + 50) {
            unsafe { A.dealloc(address as *mut u8, layout(8, 8)) };
        }
    }
}

thread_local! {
    static ON_EXIT: RefCell<Option<AllocatesOnDrop>> = const { RefCell::new(None) };
}

#[test]
fn allocations_in_exit_destructors_follow_the_contract() {
    let mut key: libc::pthread_key_t = 0;
    assert_eq!(unsafe { libc::pthread_key_create(&mut key, Some(key_destructor)) }, 0);
    const THREADS: u64 = 64;
    for batch in 0..THREADS / 8 {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let seed = batch * 8 + t + 1;
                std::thread::spawn(move || {
                    ON_EXIT.with(|slot| *slot.borrow_mut() = Some(AllocatesOnDrop(seed)));
                    unsafe { libc::pthread_setspecific(key, seed as *mut libc::c_void) };
                    let v: Vec<u64> = (0..1000).collect();
                    assert_eq!(v.iter().sum::<u64>(), 999 * 500);
                })
            })
            .collect();
        handles.into_iter().for_each(|h| h.join().unwrap());
    }
    let failures = FAILURES.lock().unwrap();
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(CHECKED.load(Ordering::Relaxed), THREADS as usize * 8);
    // Blocks made by exiting threads' key destructors stay intact and are freed here.
    let left = std::mem::take(&mut *LEFT_BEHIND.lock().unwrap());
    assert_eq!(left.len(), THREADS as usize * 2);
    for (address, size, seed) in left {
        let p = address as *mut u8;
        unsafe { check_stamp(p, size, seed) }.unwrap_or_else(|e| panic!("block of {size} from seed {seed}: {e}"));
        unsafe { A.dealloc(p, layout(size, 8)) };
    }
    // And the allocator still hands out correct memory afterwards.
    for size in [24usize, 200, 3000, 40_000] {
        let b = alloc_checked(&A, layout(size, 8), "after thread exits");
        unsafe { free(&A, b) };
    }
}
