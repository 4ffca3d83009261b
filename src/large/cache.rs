//! A small cache of freed large mappings, reused to save the mmap/munmap pair
//! and, for small ones, the page faults. Each entry says what its usable bytes
//! read as: nothing stale stays readable (C4), since the owner either
//! pattern-filled or decommitted the mapping before putting it here. Bounded
//! in entries and in address space; the oldest entry is unmapped for room.

use crate::lock::SpinLock;
use crate::pages::{self, Contents, Mapping};

const ENTRIES: usize = 16;
const MAX_ENTRY: usize = 64 << 20;
const MAX_TOTAL: usize = 256 << 20;

struct Cache {
    entries: [Option<(Mapping, Contents)>; ENTRIES],
    /// Insertion order, for evicting the oldest.
    ages: [u64; ENTRIES],
    clock: u64,
    total: usize,
}

// SAFETY: only used under its lock.
unsafe impl Send for Cache {}

static CACHE: SpinLock<Cache> =
    SpinLock::new(Cache { entries: [None; ENTRIES], ages: [0; ENTRIES], clock: 0, total: 0 });

/// A cached mapping of at least `len` bytes (and at most twice that) whose
/// `base + offset` is a multiple of `align`, preferring one whose contents are
/// `want`, then the smallest; with what its usable bytes read as. A mapping
/// reading as something else is taken only up to `max_refill` bytes (on a
/// lazy backend a fresh mapping needs no fill at all, so refilling a big one
/// would be the slower choice).
pub fn take(len: usize, align: usize, offset: usize, want: Contents, max_refill: usize) -> Option<(Mapping, Contents)> {
    let mut cache = CACHE.lock();
    let mut best: Option<usize> = None;
    let rank = |(mapping, contents): (Mapping, Contents)| (contents != want, mapping.len);
    for (index, entry) in cache.entries.iter().enumerate() {
        let Some((mapping, contents)) = *entry else { continue };
        let fits = mapping.len >= len
            && mapping.len / 2 <= len
            && (contents == want || mapping.len <= max_refill)
            && (mapping.base as usize + offset).is_multiple_of(align);
        if fits && best.is_none_or(|b| cache.entries[b].is_some_and(|other| rank(other) > rank((mapping, contents)))) {
            best = Some(index);
        }
    }
    let index = best?;
    let entry = cache.entries[index].take()?;
    cache.total -= entry.0.len;
    Some(entry)
}

/// Keeps a dead mapping whose usable bytes read as `contents`; returns the
/// mapping when it does not fit.
pub fn put(mapping: Mapping, contents: Contents) -> Option<Mapping> {
    if mapping.len > MAX_ENTRY {
        return Some(mapping);
    }
    let mut evicted = None;
    let mut cache = CACHE.lock();
    let slot = match cache.entries.iter().position(Option::is_none) {
        Some(free) => free,
        None => {
            let oldest = (0..ENTRIES).min_by_key(|&i| cache.ages[i]).unwrap_or(0);
            evicted = cache.entries[oldest].take();
            cache.total -= evicted.map_or(0, |(m, _)| m.len);
            oldest
        }
    };
    if cache.total + mapping.len > MAX_TOTAL {
        drop(cache);
        release(evicted);
        return Some(mapping);
    }
    cache.clock += 1;
    cache.ages[slot] = cache.clock;
    cache.entries[slot] = Some((mapping, contents));
    cache.total += mapping.len;
    drop(cache);
    release(evicted);
    None
}

fn release(entry: Option<(Mapping, Contents)>) {
    if let Some((mapping, _)) = entry {
        // SAFETY: cached mappings hold no live block.
        unsafe { pages::unmap(mapping) };
    }
}

pub fn lock_for_fork() {
    CACHE.acquire_for_fork();
}

pub fn unlock_after_fork() {
    CACHE.release_after_fork();
}
