//! A spin lock usable inside the allocator, with the fork rule of DESIGN.md §2.
//!
//! Not `spin::Mutex`: during fork our prepare handler holds every allocator
//! lock, and application `pthread_atfork` handlers registered before ours run
//! *after* it on the same thread. If one of them allocates, it must pass the
//! locks its own thread already holds (research/preload-rust.md §4), so
//! `lock` lets the thread recorded in `FORK_OWNER` through without taking
//! anything. The other threads are excluded all the same: the locks are held.

use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::sys;

/// The thread that is forking while it holds every lock, or 0.
static FORK_OWNER: AtomicUsize = AtomicUsize::new(0);

pub struct SpinLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the lock serializes every access to `value`.
unsafe impl<T: Send> Sync for SpinLock<T> {}
unsafe impl<T: Send> Send for SpinLock<T> {}

pub struct Guard<'a, T> {
    lock: &'a SpinLock<T>,
    owned: bool,
}

impl<T> SpinLock<T> {
    pub const fn new(value: T) -> Self {
        SpinLock { locked: AtomicBool::new(false), value: UnsafeCell::new(value) }
    }

    pub fn lock(&self) -> Guard<'_, T> {
        if forking_thread() {
            return Guard { lock: self, owned: false };
        }
        self.acquire();
        Guard { lock: self, owned: true }
    }

    fn acquire(&self) {
        let mut spins = 0u32;
        loop {
            if !self.locked.load(Ordering::Relaxed)
                && self.locked.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok()
            {
                return;
            }
            spins += 1;
            if spins < 64 {
                core::hint::spin_loop();
            } else {
                // SAFETY: sched_yield has no preconditions.
                unsafe { libc::sched_yield() };
            }
        }
    }

    /// Takes the lock for the duration of a fork (see `fork_prepare`).
    pub fn acquire_for_fork(&self) {
        self.acquire();
    }

    /// Releases a lock taken by `acquire_for_fork`, in the parent or the child
    /// (the child has only the forking thread, which held it).
    pub fn release_after_fork(&self) {
        self.locked.store(false, Ordering::Release);
    }
}

impl<T> Deref for Guard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: we hold the lock (or the forking thread holds every lock).
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for Guard<'_, T> {
    fn drop(&mut self) {
        if self.owned {
            self.lock.locked.store(false, Ordering::Release);
        }
    }
}

#[inline]
fn forking_thread() -> bool {
    let owner = FORK_OWNER.load(Ordering::Relaxed);
    owner != 0 && owner == sys::thread_id()
}

/// Marks the calling thread as the one forking (after it took every lock).
pub fn set_fork_owner() {
    FORK_OWNER.store(sys::thread_id(), Ordering::Relaxed);
}

pub fn clear_fork_owner() {
    FORK_OWNER.store(0, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excludes_other_threads() {
        static COUNTER: SpinLock<u64> = SpinLock::new(0);
        let threads: [_; 4] = core::array::from_fn(|_| {
            std::thread::spawn(|| {
                for _ in 0..20_000 {
                    *COUNTER.lock() += 1;
                }
            })
        });
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(*COUNTER.lock(), 80_000);
    }

    #[test]
    fn forking_thread_passes_locks_it_holds() {
        let lock = SpinLock::new(5);
        lock.acquire_for_fork();
        set_fork_owner();
        assert_eq!(*lock.lock(), 5);
        clear_fork_owner();
        lock.release_after_fork();
        assert_eq!(*lock.lock(), 5);
    }
}
