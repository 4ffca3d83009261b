//! C4 for large blocks: once freed, a large block is unmapped, decommitted or
//! overwritten with a pattern (small ones stay cached, filled with the free
//! pattern or the alloc pattern), so nothing the program wrote there stays
//! readable. The former address is
//! read with process_vm_readv on our own pid, which fails with EFAULT where
//! nothing is mapped (fine) and otherwise copies what is there.
//!
//! One test, run step by step, so that no other thread of this binary can
//! allocate the freed range between the free and the read.

use core::alloc::GlobalAlloc;

use allocator_tests::*;

#[global_allocator]
static A: PatternAlloc = PatternAlloc::new();

/// High half of every word this test writes: easy to recognize.
const MAGIC: u64 = 0x5EED_F00D_0000_0000;

unsafe fn stamp_magic(p: *mut u8, len: usize) {
    for w in 0..len / 8 {
        unsafe { core::ptr::write_volatile((p as *mut u64).add(w), MAGIC | w as u64) };
    }
}

/// Reads `[addr, addr + len)` through process_vm_readv into `buf`. Returns the
/// number of bytes copied (0 when the range is unmapped from its start).
fn read_own_memory(addr: usize, buf: &mut [u8]) -> usize {
    let local = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let remote = libc::iovec { iov_base: addr as *mut libc::c_void, iov_len: buf.len() };
    let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    if n < 0 {
        let err = std::io::Error::last_os_error();
        assert_eq!(err.raw_os_error(), Some(libc::EFAULT), "process_vm_readv: {err}");
        return 0;
    }
    n as usize
}

/// Asserts that none of `buf` is data this test wrote, and (with `strict`)
/// that every byte is 0 (decommitted), the large pattern or the free pattern.
fn assert_nothing_stale(buf: &[u8], pattern: u8, strict: bool, what: &str) {
    let stale = buf.chunks_exact(8).filter(|w| u64::from_ne_bytes((*w).try_into().unwrap()) >> 32 == MAGIC >> 32);
    let stale = stale.count();
    assert_eq!(stale, 0, "{what}: {stale} words written before the free are still readable");
    let free_pattern = A.effective_config().free_fill;
    if let Some(i) = buf.iter().position(|&b| strict && b != 0 && b != pattern && Some(b) != free_pattern) {
        panic!("{what}: byte {i} reads {:#04x}, not 0 nor the pattern {pattern:#04x} nor the free pattern", buf[i]);
    }
}

fn freed_blocks(size: usize, align: usize) {
    let l = layout(size, align);
    let mut buf = vec![0u8; round_up(size, PAGE)]; // allocated before the free, not after
    let b = alloc_checked(&A, l, format_args!("{l:?}"));
    unsafe { stamp_magic(b.ptr, b.usable) };
    let (addr, usable, pattern) = (b.ptr as usize, b.usable, b.pattern);
    unsafe { free(&A, b) };
    let n = read_own_memory(addr, &mut buf[..usable]);
    assert_nothing_stale(&buf[..n], pattern, true, &format!("freed {l:?} ({n} of {usable} bytes readable)"));
}

fn moved_by_realloc(size: usize, new: usize) {
    let l = layout(size, 8);
    let mut buf = vec![0u8; round_up(size, PAGE)];
    let b = alloc_checked(&A, l, "realloc source");
    unsafe { stamp_magic(b.ptr, size) };
    let q = core::hint::black_box(unsafe { A.realloc(b.ptr, l, new) });
    assert!(!q.is_null());
    let usable_new = unsafe { A.usable_size(q) };
    let (old_start, old_end) = (b.ptr as usize, b.ptr as usize + b.usable);
    let (new_start, new_end) = (q as usize, q as usize + usable_new);
    // The old range minus whatever the new block covers.
    let mut ranges = Vec::with_capacity(2);
    if new_start > old_start {
        ranges.push((old_start, new_start.min(old_end)));
    }
    if new_end < old_end {
        ranges.push((new_end.max(old_start), old_end));
    }
    for (from, to) in ranges {
        let n = read_own_memory(from, &mut buf[..to - from]);
        // Not strict: the realloc itself may have mapped new memory there.
        assert_nothing_stale(&buf[..n], b.pattern, false, &format!("range left behind by realloc({size} -> {new})"));
    }
    unsafe { A.dealloc(q, layout(new, 8)) };
}

#[test]
fn freed_large_blocks_show_no_stale_data() {
    for (size, align) in [
        (MAX_SMALL_SIZE + 1, 8),
        (40_000, 8),
        (100_000, 8),
        (100_000, 64 * KIB),
        (MIB, 8),
        (MIB, 2 * MIB),
        (8 * MIB + 123, 8),
    ] {
        // Twice: the second free may go through a cache of freed large blocks.
        freed_blocks(size, align);
        freed_blocks(size, align);
    }
    for (size, new) in [(MIB, 16 * MIB), (100_000, 3 * MIB), (8 * MIB, MIB), (4 * MIB, 40_000), (200_000, 1000)] {
        moved_by_realloc(size, new);
    }
}
