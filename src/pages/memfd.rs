//! The userspace reference page: one sealed memfd of `WINDOW` bytes per
//! pattern, filled once; a block is a range of address space covered by
//! private mappings ("windows") of it. Reads share the memfd's pages, the
//! first write to a page copies it, `MADV_DONTNEED` drops the copies so the
//! range reads as the pattern again.
//!
//! Windows are laid out by address: the window covering address `a` maps file
//! offset `a % WINDOW`, and no window crosses a multiple of `WINDOW`. So the
//! number of mappings a range needs follows from its address alone (`slots`),
//! every sub-range can be unmapped or remapped on its own, and a block keeps
//! its layout when it moves to an address with the same remainder. Windows of
//! neighbouring slots never merge (their file offsets are not contiguous), so
//! each slot costs one entry of the kernel's `vm.max_map_count` budget.
//!
//! `WINDOW` = 2 MiB, measured on the CI machine (benches/benches/lazy_large.rs
//! `--window-sweep`): one window mapping costs ~1.9 us (1 GiB in ~1 ms, 512
//! mappings), making and filling the memfd ~0.8 ms, and a full write costs
//! the same as anonymous memory for every width from 256 KiB to 8 MiB.
//! Narrower windows cost more mappings per GiB; wider ones cost more shmem per
//! pattern and a slower start. The cap (`cap`) keeps half of vm.max_map_count
//! for the program: 32765 windows, 64 GiB of lazily patterned memory by default.

use core::sync::atomic::Ordering;

use super::sys_lazy;
use crate::stats::GLOBAL;
use crate::sys;

pub const WINDOW: usize = 2 << 20;

// The window count and its cap live in the stats counters, which report
// them: `lazy_mappings` is the sum of `slots` over live ranges (an estimate
// of the VMAs, high when windows of neighbouring blocks merged) and
// `lazy_mapping_cap` how many new blocks may use (0 until `init_cap`).

/// Reads vm.max_map_count once and keeps half of it for the program.
pub fn init_cap() {
    let mut limit = None;
    sys_lazy::for_each_line(b"/proc/sys/vm/max_map_count\0", &mut |line| {
        limit = limit.or_else(|| sys_lazy::parse_decimal(line));
    });
    let limit = limit.unwrap_or(65530) as usize;
    GLOBAL.lazy_mapping_cap.store(limit as u64 / 2, Ordering::Relaxed);
}

pub fn cap() -> usize {
    GLOBAL.lazy_mapping_cap.load(Ordering::Relaxed) as usize
}

/// Window slots that `[start, start + len)` touches.
pub fn slots(start: usize, len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    (start + len).div_ceil(WINDOW) - start / WINDOW
}

/// Counts `count` more windows if that stays within the cap (`force`: always;
/// for growing a block that already has windows).
fn take(count: usize, force: bool) -> bool {
    let count = count as u64;
    if force {
        GLOBAL.lazy_mappings.fetch_add(count, Ordering::Relaxed);
        return true;
    }
    let cap = cap() as u64;
    GLOBAL
        .lazy_mappings
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| used.checked_add(count).filter(|&n| n <= cap))
        .is_ok()
}

fn give_back(count: usize) {
    GLOBAL.lazy_mappings.fetch_sub(count as u64, Ordering::Relaxed);
}

/// Makes the sealed memfd of `pattern`: WINDOW bytes of it, numbered above 2
/// (a program that started with 0-2 closed gets them back as it left them).
pub fn create(pattern: u8) -> Option<i32> {
    let mut fd = sys_lazy::memfd_create(b"pattern-alloc\0")?;
    if fd <= 2 {
        let moved = sys_lazy::dup_at_least(fd, 3);
        sys_lazy::close(fd);
        fd = moved?;
    }
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
    if sys_lazy::truncate(fd, WINDOW) && sys_lazy::fill_fd(fd, WINDOW, pattern) && sys_lazy::add_seals(fd, seals) {
        Some(fd)
    } else {
        sys_lazy::close(fd);
        None
    }
}

/// Covers `[start, start + len)` (address space we own) with windows of `fd`.
///
/// # Safety
/// The range must be page-aligned address space the caller owns.
unsafe fn map_windows(start: usize, len: usize, fd: i32) -> bool {
    let end = start + len;
    let mut at = start;
    while at < end {
        let slot_end = ((at / WINDOW) + 1) * WINDOW;
        let piece = slot_end.min(end) - at;
        // SAFETY: inside the caller's range.
        if !unsafe { sys_lazy::map_file_fixed(at as *mut u8, piece, fd, at % WINDOW) } {
            return false;
        }
        at += piece;
    }
    true
}

/// Maps windows of `fd` over `[start, start + len)` of a block we own,
/// replacing the windows there (for a tail mapped from a source that was
/// lost meanwhile). The number of windows does not change.
///
/// # Safety
/// The range must be page-aligned windows of a block the caller owns.
pub unsafe fn remap_windows(start: *mut u8, len: usize, fd: i32) {
    // SAFETY: the caller's range.
    if !unsafe { map_windows(start as usize, len, fd) } {
        crate::report::fatal(format_args!("cannot map pattern windows over {start:p} again"));
    }
}

/// A new block of `len` bytes whose `base + offset` is a multiple of `align`,
/// all windows of `fd`. None past the cap or when the kernel refuses.
pub fn map(len: usize, align: usize, offset: usize, fd: i32) -> Option<*mut u8> {
    let base = super::reserve_aligned(len, align, offset)?;
    let count = slots(base as usize, len);
    if !take(count, false) {
        // SAFETY: our fresh reservation.
        unsafe { sys::unmap(base, len) };
        return None;
    }
    // SAFETY: the reservation is ours.
    if !unsafe { map_windows(base as usize, len, fd) } {
        // SAFETY: as above; the windows made so far go with it.
        unsafe { sys::unmap(base, len) };
        give_back(count);
        return None;
    }
    Some(base)
}

/// Unmaps a whole block or its tail.
///
/// # Safety
/// The range must be windows nothing refers to any more; when it is a tail,
/// `block_start` is where the block starts.
pub unsafe fn unmap(block_start: usize, start: usize, len: usize) -> bool {
    // SAFETY: the caller's range.
    if !unsafe { sys::unmap(start as *mut u8, len) } {
        return false;
    }
    let before = slots(block_start, start + len - block_start);
    give_back(before - slots(block_start, start - block_start));
    true
}

/// Grows or shrinks the windowed block at `base` from `len` to `new_len`
/// bytes, keeping `base + offset` a multiple of `align`; grown bytes are
/// windows of `fd` (which must be a memfd of the block's pattern). Nothing is
/// copied: windows move with mremap, one slot at a time. None (the block
/// unchanged) when the kernel refuses.
///
/// # Safety
/// `[base, base + len)` is a live windowed block owned by the caller.
pub unsafe fn resize(base: *mut u8, len: usize, new_len: usize, align: usize, fd: Option<i32>) -> Option<*mut u8> {
    let start = base as usize;
    if new_len <= len {
        // SAFETY: the tail belongs to the caller's block.
        return unsafe { unmap(start, start + new_len, len - new_len) }.then_some(base);
    }
    let fd = fd?;
    let grown = slots(start, new_len) - slots(start, len);
    // Grow in place when the address space after the block is free.
    if sys_lazy::reserve_exactly((start + len) as *mut u8, new_len - len) {
        // SAFETY: we just reserved the tail.
        if unsafe { map_windows(start + len, new_len - len, fd) } {
            take(grown, true);
            return Some(base);
        }
        // SAFETY: our tail reservation (and the windows made in it).
        unsafe { sys::unmap((start + len) as *mut u8, new_len - len) };
        return None;
    }
    // SAFETY: the caller's block.
    let target = unsafe { move_windows(start, len, new_len, align, fd) }?;
    take(grown, true);
    Some(target as *mut u8)
}

/// Moves the windows of `[start, start + len)` into a fresh range of
/// `new_len` bytes whose address has the same remainder modulo
/// max(WINDOW, align), so the slot layout and the alignment are kept, after
/// covering the new tail with windows of `fd`. Each vacated slot is reserved
/// again at once, so that a failure part-way can move the windows back
/// without touching anyone else's mapping. Returns the new start; on failure
/// the block is back where it was.
///
/// # Safety
/// `[start, start + len)` is a live windowed block owned by the caller.
unsafe fn move_windows(start: usize, len: usize, new_len: usize, align: usize, fd: i32) -> Option<usize> {
    let modulus = WINDOW.max(align);
    let raw = sys::reserve(new_len.checked_add(modulus)?)? as usize;
    let target = raw + (start.wrapping_sub(raw) & (modulus - 1));
    // SAFETY: the ends of our fresh reservation, then its tail part.
    unsafe {
        sys::unmap(raw as *mut u8, target - raw);
        sys::unmap((target + new_len) as *mut u8, raw + new_len + modulus - (target + new_len));
        if !map_windows(target + len, new_len - len, fd) {
            sys::unmap(target as *mut u8, new_len);
            return None;
        }
    }
    let end = start + len;
    let mut at = start;
    // Where the first vacated slot could not be reserved again: another
    // thread's mmap took it (the kernel likes fresh holes), so from there on
    // the old range may hold mappings that are not ours.
    let mut ours_until = end;
    while at < end {
        let piece = (((at / WINDOW) + 1) * WINDOW).min(end) - at;
        let to = target + (at - start);
        // SAFETY: the piece is ours; `to` lies in our reservation.
        if unsafe { sys::remap(at as *mut u8, piece, piece, Some(to as *mut u8)) }.is_none() {
            if ours_until != end {
                crate::report::fatal(format_args!(
                    "cannot move large block {:p} back after a failed realloc",
                    start as *const u8
                ));
            }
            // SAFETY: windows `[start, at)` sit at `target`, their old places are reserved.
            unsafe { move_back(start, target, at - start) };
            // SAFETY: the target range is ours.
            unsafe { sys::unmap(target as *mut u8, new_len) };
            return None;
        }
        if !sys_lazy::reserve_exactly(at as *mut u8, piece) && ours_until == end {
            ours_until = at;
        }
        at += piece;
    }
    // Our reservations go; past `ours_until` they are left in place (address
    // space only), since unmapping there could hit someone else's mapping.
    // SAFETY: `[start, ours_until)` holds only our reservations.
    unsafe { sys::unmap(start as *mut u8, ours_until - start) };
    Some(target)
}

/// Moves the first `done` bytes of windows from `target` back to `start`,
/// over the reservations left in their place.
///
/// # Safety
/// As `move_windows`.
unsafe fn move_back(start: usize, target: usize, done: usize) {
    let mut at = start;
    while at < start + done {
        let piece = (((at / WINDOW) + 1) * WINDOW).min(start + done) - at;
        let from = target + (at - start);
        // SAFETY: `at` is our reservation, `from` our window.
        if unsafe { sys::remap(from as *mut u8, piece, piece, Some(at as *mut u8)) }.is_none() {
            crate::report::fatal(format_args!(
                "out of memory moving large block {:p} back after a failed realloc",
                start as *const u8
            ));
        }
        at += piece;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pages::PAGE_SIZE;
    use core::ptr::read_volatile;

    fn uniform(p: *const u8, len: usize, byte: u8) -> bool {
        (0..len).step_by(509).chain([len - 1]).all(|i| unsafe { read_volatile(p.add(i)) } == byte)
    }

    #[test]
    fn slot_arithmetic() {
        assert_eq!(slots(0, 0), 0);
        assert_eq!(slots(0, WINDOW), 1);
        assert_eq!(slots(0, WINDOW + 4096), 2);
        assert_eq!(slots(WINDOW - 4096, 8192), 2);
        assert_eq!(slots(4 * WINDOW, 2 * WINDOW), 2);
        assert_eq!(slots(WINDOW - 4096, 64 << 20), 33);
    }

    #[test]
    fn windows_read_the_pattern_copy_on_write_and_reset() {
        init_cap();
        let fd = create(0xC3).unwrap();
        assert!(fd > 2);
        let len = 5 * WINDOW + 3 * PAGE_SIZE;
        let base = map(len, 1 << 16, PAGE_SIZE, fd).unwrap();
        assert_eq!((base as usize + PAGE_SIZE) % (1 << 16), 0);
        assert!(uniform(base, len, 0xC3));
        unsafe {
            core::ptr::write_bytes(base.add(WINDOW - 10), 0x11, 20);
            assert_eq!(read_volatile(base.add(WINDOW)), 0x11);
            // The memfd itself is untouched: a second block reads the pattern.
            let other = map(WINDOW, PAGE_SIZE, 0, fd).unwrap();
            assert!(uniform(other, WINDOW, 0xC3));
            assert!(unmap(other as usize, other as usize, WINDOW));
            assert!(sys::dont_need(base, len));
            assert!(uniform(base, len, 0xC3));
            assert!(unmap(base as usize, base as usize, len));
        }
        // Sealed: the shared contents cannot change.
        let shared = unsafe {
            libc::mmap(core::ptr::null_mut(), WINDOW, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0)
        };
        assert_eq!(shared, libc::MAP_FAILED);
        assert_eq!(unsafe { libc::pwrite(fd, [0u8].as_ptr().cast(), 1, 0) }, -1);
        sys_lazy::close(fd);
    }

    #[test]
    fn resize_grows_moves_and_shrinks_without_losing_data() {
        init_cap();
        let fd = create(0x3C).unwrap();
        let align = 4 * WINDOW;
        let len = 3 * WINDOW + 5 * PAGE_SIZE;
        let base = map(len, align, PAGE_SIZE, fd).unwrap();
        unsafe {
            for i in (0..len).step_by(PAGE_SIZE) {
                *base.add(i) = (i / PAGE_SIZE) as u8;
            }
            // Occupy the space after the block so growth must move it.
            let blocker = sys_lazy::reserve_exactly(base.add(len), PAGE_SIZE);
            let grown = resize(base, len, 9 * WINDOW, align, Some(fd)).unwrap();
            assert_eq!((grown as usize + PAGE_SIZE) % align, 0);
            assert_eq!(grown as usize % WINDOW, base as usize % WINDOW);
            for i in (0..len).step_by(PAGE_SIZE) {
                assert_eq!(read_volatile(grown.add(i)), (i / PAGE_SIZE) as u8, "page {}", i / PAGE_SIZE);
            }
            assert!(uniform(grown.add(len), 9 * WINDOW - len, 0x3C));
            if blocker {
                sys::unmap(base.add(len), PAGE_SIZE);
            }
            let shrunk = resize(grown, 9 * WINDOW, PAGE_SIZE * 3, align, None).unwrap();
            assert_eq!(shrunk, grown);
            assert_eq!(read_volatile(shrunk.add(2 * PAGE_SIZE)), 2);
            // Grow in place into the free space after it.
            let again = resize(shrunk, PAGE_SIZE * 3, WINDOW + PAGE_SIZE, align, Some(fd)).unwrap();
            assert_eq!(read_volatile(again.add(PAGE_SIZE)), 1);
            assert!(uniform(again.add(3 * PAGE_SIZE), WINDOW - 2 * PAGE_SIZE, 0x3C));
            assert!(unmap(again as usize, again as usize, WINDOW + PAGE_SIZE));
        }
        sys_lazy::close(fd);
    }

    #[test]
    fn the_cap_refuses_more_windows_than_it_allows() {
        init_cap();
        assert!(cap() >= 1000);
        assert!(!take(cap() + 1, false));
        assert!(take(1, false));
        give_back(1);
    }
}
