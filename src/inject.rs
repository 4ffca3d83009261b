//! Failure injection for tests: makes the n-th mapping, memfd creation or
//! madvise fail as if the kernel had refused it, so tests can show that every
//! such failure ends in null/ENOMEM or a fallback backend, never in a
//! corrupted block.
//!
//! Always compiled (a cargo feature would be unified into every build of the
//! workspace that names it, the preload library included). The cost where it
//! is not armed is one relaxed load of a static before each of those system
//! calls, which all sit on cold paths (a new segment, a large block, a
//! decommit); no allocation, no lock. Only the armed path does more.
//!
//! Not part of the allocator's contract: `#[doc(hidden)]` in lib.rs.

use core::sync::atomic::{AtomicU64, Ordering};

/// The kind of system call a fault is injected into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `mmap`: fresh anonymous memory, address-space reservations (slab
    /// segments, large blocks, metadata) and memfd windows.
    Map,
    /// `mremap`: large-block growth and moves.
    Remap,
    /// `memfd_create`: the pattern sources of the memfd backend.
    Memfd,
    /// `madvise(MADV_DONTNEED)`: decommits and resets.
    Madvise,
}

const KINDS: usize = 4;

/// Per kind: calls to let through before failing (high 32 bits) and how many
/// calls then fail (low 32 bits); 0 when disarmed.
static ARMED: [AtomicU64; KINDS] = [const { AtomicU64::new(0) }; KINDS];
/// Per kind: how many calls were failed on purpose.
static INJECTED: [AtomicU64; KINDS] = [const { AtomicU64::new(0) }; KINDS];

/// Arms `fault`: the next `skip` calls succeed, the `count` after them fail
/// (`u32::MAX`: all of them, until `disarm`). `count == 0` disarms.
pub fn arm(fault: Fault, skip: u32, count: u32) {
    ARMED[fault as usize].store(((skip as u64) << 32) | count as u64, Ordering::SeqCst);
}

pub fn disarm(fault: Fault) {
    arm(fault, 0, 0);
}

/// How many calls of this kind failed because of `arm` so far.
pub fn injected(fault: Fault) -> u64 {
    INJECTED[fault as usize].load(Ordering::SeqCst)
}

/// Whether this call of kind `fault` must fail. Called by `sys` just before
/// the real system call.
#[inline]
pub(crate) fn should_fail(fault: Fault) -> bool {
    if ARMED[fault as usize].load(Ordering::Relaxed) == 0 {
        return false;
    }
    should_fail_armed(fault)
}

#[cold]
fn should_fail_armed(fault: Fault) -> bool {
    let slot = &ARMED[fault as usize];
    let mut state = slot.load(Ordering::SeqCst);
    loop {
        if state == 0 {
            return false;
        }
        let (next, fail) = step(state);
        match slot.compare_exchange_weak(state, next, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => {
                if fail {
                    INJECTED[fault as usize].fetch_add(1, Ordering::SeqCst);
                }
                return fail;
            }
            Err(now) => state = now,
        }
    }
}

/// One call's effect on an armed state: the next state, and whether it fails.
fn step(state: u64) -> (u64, bool) {
    let (skip, count) = (state >> 32, state & u32::MAX as u64);
    match (skip, count) {
        (_, 0) => (state, false),
        (0, c) if c == u32::MAX as u64 => (state, true),
        (0, c) => (c - 1, true),
        (s, c) => (((s - 1) << 32) | c, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Pure state steps: arming a real kind here could fail a system call of
    // another unit test running in parallel.
    #[test]
    fn skips_then_fails_then_stays_disarmed() {
        let mut state = (2u64 << 32) | 2;
        let seen: Vec<bool> = (0..6)
            .map(|_| {
                let (next, fail) = step(state);
                state = next;
                fail
            })
            .collect();
        assert_eq!(seen, [false, false, true, true, false, false]);
        assert_eq!(state, 0);
        let forever = u32::MAX as u64;
        assert_eq!(step(forever), (forever, true));
    }
}
