//! Arm64 memory tagging (MTE), DESIGN.md §7: detection, the per-thread
//! tagged-address ABI, `PROT_MTE` mappings and the tag instructions.
//!
//! Every 16-byte granule of a `PROT_MTE` mapping carries a 4-bit allocation
//! tag; a load or store through a pointer whose top-byte tag (bits 59:56)
//! differs faults (SIGSEGV, `SEGV_MTESERR` in sync mode). Tag 0 is what fresh
//! and freed memory carry; blocks get 1..15 (`crate::tag` decides which).
//!
//! Tags are only ever set together with the data the contract promises:
//! `stgp` writes the pattern and the tag in one store, `st2g`/`stg` tag
//! without touching data, and the zeroing forms (`stzg`, `dc gzva`) are used
//! only where zeros are wanted (`alloc_zeroed`, calloc).
//!
//! The control register is per thread (`PR_SET_TAGGED_ADDR_CTRL`): the thread
//! that initializes enables it, threads created later inherit it, and every
//! thread that allocates checks once (`ensure_thread`), which covers threads
//! created before the first allocation.

use core::arch::asm;
use core::cell::Cell;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

use super::{eager, Contents, MapKind, Mapping};
use crate::config::{Config, Mte, MteTags, DEFAULT_CLASS_TAGS};
use crate::report;
use crate::size_class::CLASS_COUNT;

const AT_HWCAP2: libc::c_ulong = 26;
const HWCAP2_MTE: libc::c_ulong = 1 << 18;
const PROT_MTE: libc::c_int = 0x20;
const PR_SET_TAGGED_ADDR_CTRL: libc::c_int = 55;
const PR_TAGGED_ADDR_ENABLE: libc::c_ulong = 1;
const PR_MTE_TCF_SYNC: libc::c_ulong = 1 << 1;
const PR_MTE_TCF_ASYNC: libc::c_ulong = 1 << 2;
const PR_MTE_TAG_SHIFT: libc::c_ulong = 3;
/// `irg` may pick tags 1..15, never 0 (freed memory).
const IRG_INCLUDE_MASK: libc::c_ulong = 0xfffe;

/// The unit one tag covers.
pub const GRANULE: usize = 16;
const TAG_SHIFT: u32 = 56;
const TAG_MASK: usize = 0xf << TAG_SHIFT;
/// Bits 63:56: the tag and the rest of the byte the hardware ignores (TBI).
const TOP_BYTE: usize = 0xff << TAG_SHIFT;

const OFF: u8 = 0;
const SYNC: u8 = 1;
const ASYNC: u8 = 2;

static MODE: AtomicU8 = AtomicU8::new(OFF);
static RANDOM: AtomicBool = AtomicBool::new(false);
static CLASS_TAGS: [AtomicU8; CLASS_COUNT] = [const { AtomicU8::new(0) }; CLASS_COUNT];
/// `dc gzva` block size from `dczid_el0`, or 0 when the instruction is prohibited.
static DCZ_BLOCK: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread has called `PR_SET_TAGGED_ADDR_CTRL` (or inherited it).
    static THREAD_ENABLED: Cell<bool> = const { Cell::new(false) };
}

/// Whether the kernel (or qemu-user) advertises MTE.
pub fn hardware_has_mte() -> bool {
    // SAFETY: getauxval has no preconditions.
    unsafe { libc::getauxval(AT_HWCAP2) & HWCAP2_MTE != 0 }
}

/// Turns tagging on for the process when `config` asks for it and the
/// hardware has it; one warning line otherwise. Runs once, at initialization.
pub fn init(config: &Config) {
    let mode = match config.mte {
        Mte::Off => return,
        Mte::Sync => SYNC,
        Mte::Async => ASYNC,
    };
    if !hardware_has_mte() {
        report::line(format_args!("warning: mte: this CPU or kernel has no MTE (HWCAP2_MTE clear); tagging is off"));
        return;
    }
    for (class, slot) in CLASS_TAGS.iter().enumerate() {
        let tag = match config.mte_tags {
            MteTags::Table(table) if (1..=15).contains(&table[class]) => table[class],
            _ => DEFAULT_CLASS_TAGS[class],
        };
        slot.store(tag, Ordering::Relaxed);
    }
    RANDOM.store(config.mte_tags == MteTags::Random, Ordering::Relaxed);
    DCZ_BLOCK.store(dcz_block(), Ordering::Relaxed);
    MODE.store(mode, Ordering::Release);
    if !enable_thread(mode) {
        MODE.store(OFF, Ordering::Release);
        report::line(format_args!("warning: mte: prctl(PR_SET_TAGGED_ADDR_CTRL) failed; tagging is off"));
    }
}

/// Whether blocks are tagged.
#[inline(always)]
pub fn enabled() -> bool {
    MODE.load(Ordering::Relaxed) != OFF
}

pub fn random_tags() -> bool {
    RANDOM.load(Ordering::Relaxed)
}

/// The tag of size class `class` (`LARGE_CLASS` for large blocks).
#[inline]
pub fn class_tag(class: usize) -> u8 {
    CLASS_TAGS[class].load(Ordering::Relaxed)
}

fn enable_thread(mode: u8) -> bool {
    let fault = if mode == ASYNC { PR_MTE_TCF_ASYNC } else { PR_MTE_TCF_SYNC };
    let control = PR_TAGGED_ADDR_ENABLE | fault | (IRG_INCLUDE_MASK << PR_MTE_TAG_SHIFT);
    let zero: libc::c_ulong = 0;
    // SAFETY: prctl with these arguments only changes the calling thread's control register.
    let done = unsafe { libc::prctl(PR_SET_TAGGED_ADDR_CTRL, control, zero, zero, zero) } == 0;
    THREAD_ENABLED.with(|flag| flag.set(done));
    done
}

/// Enables tag checking and the tagged-address ABI on the calling thread if
/// it has not been yet: a thread created before initialization did not
/// inherit it, and syscalls would refuse its tagged pointers.
#[inline]
pub fn ensure_thread() {
    if enabled() && !THREAD_ENABLED.with(Cell::get) && !enable_thread(MODE.load(Ordering::Relaxed)) {
        report::fatal(format_args!("mte: prctl(PR_SET_TAGGED_ADDR_CTRL) failed on a new thread"));
    }
}

/// Anonymous `PROT_MTE` memory (tags 0, data zero) with `base + offset`
/// aligned to `align`. Under MTE every patterned mapping is one of these:
/// qemu-user models tags only on anonymous pages, and a real kernel would
/// need the reference page's content tagged per class.
pub fn map(len: usize, align: usize, offset: usize) -> Option<Mapping> {
    let base = eager::make_aligned(len, align, offset, map_tagged)?;
    Some(Mapping { base, len, backing: Contents::Zero, kind: MapKind::Anonymous })
}

fn map_tagged(len: usize) -> Option<*mut u8> {
    // The same failure injection as every other mapping (tests only).
    if crate::inject::should_fail(crate::inject::Fault::Map) {
        crate::sys::set_errno(libc::ENOMEM);
        return None;
    }
    let prot = libc::PROT_READ | libc::PROT_WRITE | PROT_MTE;
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
    // SAFETY: a fresh anonymous mapping touches no existing memory.
    let ptr = unsafe { libc::mmap(core::ptr::null_mut(), len, prot, flags, -1, 0) };
    (ptr != libc::MAP_FAILED).then_some(ptr as *mut u8)
}

/// `ptr` without its top byte: the address the allocator's records use.
#[inline(always)]
pub fn address(ptr: *mut u8) -> *mut u8 {
    (ptr as usize & !TOP_BYTE) as *mut u8
}

#[inline(always)]
pub fn tag_of(ptr: *const u8) -> u8 {
    ((ptr as usize & TAG_MASK) >> TAG_SHIFT) as u8
}

#[inline(always)]
pub fn with_tag(ptr: *mut u8, tag: u8) -> *mut u8 {
    ((ptr as usize & !TOP_BYTE) | ((tag as usize & 0xf) << TAG_SHIFT)) as *mut u8
}

/// The allocation tag of the granule holding `ptr` (`ldg`; no check, no fault
/// on a tag mismatch).
///
/// # Safety
/// `ptr` must point into a mapping.
#[inline(always)]
pub unsafe fn memory_tag(ptr: *const u8) -> u8 {
    let mut tagged = address(ptr as *mut u8);
    // SAFETY: ldg reads the tag store of a mapped granule.
    unsafe {
        asm!(".arch_extension memtag", "ldg {p}, [{p}]", p = inout(reg) tagged, options(readonly, nostack, preserves_flags))
    };
    tag_of(tagged)
}

/// A random tag from 1..15 (the prctl include mask) that is not set in `exclude`.
#[inline(always)]
pub fn random_tag(exclude: u16) -> u8 {
    let tagged: usize;
    // SAFETY: irg only computes a value.
    unsafe {
        asm!(".arch_extension memtag", "irg {t}, {z}, {m}", t = out(reg) tagged, z = in(reg) 0usize,
             m = in(reg) exclude as usize, options(nomem, nostack, preserves_flags))
    };
    tag_of(tagged as *const u8)
}

/// Tags `[ptr, ptr + len)` with `ptr`'s tag, keeping the data.
///
/// # Safety
/// A 16-aligned range of a `PROT_MTE` mapping, `len` a multiple of 16, owned by the caller.
pub unsafe fn set_tags(ptr: *mut u8, len: usize) {
    let mut cursor = ptr as usize;
    let end = cursor + len;
    // SAFETY (all asm below): each store lies inside the caller's range.
    while end - cursor >= 2 * GRANULE {
        unsafe {
            asm!(".arch_extension memtag", "st2g {p}, [{p}]", p = in(reg) cursor, options(nostack, preserves_flags))
        };
        cursor += 2 * GRANULE;
    }
    if cursor != end {
        unsafe {
            asm!(".arch_extension memtag", "stg {p}, [{p}]", p = in(reg) cursor, options(nostack, preserves_flags))
        };
    }
}

/// Writes `byte` over `[ptr, ptr + len)` and tags it with `ptr`'s tag, one
/// `stgp` (16 bytes of data and their tag) per granule.
///
/// # Safety
/// As `set_tags`.
pub unsafe fn fill_and_tag(ptr: *mut u8, len: usize, byte: u8) {
    let word = u64::from_ne_bytes([byte; 8]);
    let mut cursor = ptr as usize;
    let end = cursor + len;
    while cursor != end {
        // SAFETY: inside the caller's range.
        unsafe {
            asm!(".arch_extension memtag", "stgp {w}, {w}, [{p}]", w = in(reg) word, p = in(reg) cursor,
                 options(nostack, preserves_flags))
        };
        cursor += GRANULE;
    }
}

/// Zeroes `[ptr, ptr + len)` and tags it with `ptr`'s tag: `dc gzva` over
/// whole `dczid_el0` blocks, `stzg` for the granules around them.
///
/// # Safety
/// As `set_tags`.
pub unsafe fn zero_and_tag(ptr: *mut u8, len: usize) {
    let block = DCZ_BLOCK.load(Ordering::Relaxed);
    let mut cursor = ptr as usize;
    let end = cursor + len;
    if block != 0 {
        while cursor != end && !cursor.is_multiple_of(block) {
            // SAFETY: inside the caller's range.
            unsafe { stzg(cursor) };
            cursor += GRANULE;
        }
        while end - cursor >= block {
            // SAFETY: a whole aligned block inside the caller's range.
            unsafe {
                asm!(".arch_extension memtag", "dc gzva, {p}", p = in(reg) cursor, options(nostack, preserves_flags))
            };
            cursor += block;
        }
    }
    while cursor != end {
        // SAFETY: inside the caller's range.
        unsafe { stzg(cursor) };
        cursor += GRANULE;
    }
}

#[inline(always)]
unsafe fn stzg(address: usize) {
    // SAFETY: the caller's granule.
    unsafe {
        asm!(".arch_extension memtag", "stzg {p}, [{p}]", p = in(reg) address, options(nostack, preserves_flags))
    };
}

/// `dc gzva`'s block size, or 0 where `dczid_el0` prohibits it (DZP) or the
/// size is not a whole number of granules. 64 bytes on most cores, 512 under qemu.
fn dcz_block() -> usize {
    let dczid: u64;
    // SAFETY: dczid_el0 is readable from EL0.
    unsafe { asm!("mrs {v}, dczid_el0", v = out(reg) dczid, options(nomem, nostack, preserves_flags)) };
    let block = 4usize << (dczid & 0xf);
    if dczid & 0x10 != 0 || block < GRANULE {
        0
    } else {
        block
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::ptr::read_volatile;

    const LEN: usize = 64 * 1024;

    /// A tagged mapping with tag checking on for this thread, or None (skip)
    /// without MTE; `MTE_REQUIRED=1` turns the skip into a failure.
    fn tagged_memory() -> Option<*mut u8> {
        if !hardware_has_mte() {
            assert!(std::env::var("MTE_REQUIRED").as_deref() != Ok("1"), "MTE_REQUIRED=1 but HWCAP2_MTE is clear");
            return None;
        }
        assert!(enable_thread(SYNC));
        DCZ_BLOCK.store(dcz_block(), Ordering::Relaxed);
        map_tagged(LEN)
    }

    unsafe fn check(ptr: *const u8, len: usize, byte: u8, tag: u8) {
        for offset in 0..len {
            let p = with_tag(ptr as *mut u8, tag);
            unsafe {
                assert_eq!(read_volatile(p.add(offset)), byte, "byte {offset}");
                assert_eq!(memory_tag(p.add(offset)), tag, "tag of byte {offset}");
            }
        }
    }

    #[test]
    fn fill_and_tag_writes_the_pattern_with_the_tag() {
        let Some(base) = tagged_memory() else { return };
        unsafe {
            core::ptr::write_bytes(base, 0x11, 256);
            fill_and_tag(with_tag(base.add(16), 3), 208, 0xAA);
            check(base, 16, 0x11, 0);
            check(base.add(16), 208, 0xAA, 3);
            check(base.add(224), 32, 0x11, 0);
        }
    }

    #[test]
    fn set_tags_keeps_the_data() {
        let Some(base) = tagged_memory() else { return };
        unsafe {
            core::ptr::write_bytes(base, 0x22, 128);
            set_tags(with_tag(base, 9), 48);
            check(base, 48, 0x22, 9);
            check(base.add(48), 80, 0x22, 0);
            set_tags(base, 48);
            check(base, 48, 0x22, 0);
        }
    }

    #[test]
    fn zero_and_tag_zeroes_exactly_its_range() {
        let Some(base) = tagged_memory() else { return };
        let block = DCZ_BLOCK.load(Ordering::Relaxed);
        assert!(block >= GRANULE, "dc gzva block {block}");
        // Unaligned at both ends, longer than two dc gzva blocks.
        let (start, len) = (GRANULE, 2 * block + 3 * GRANULE);
        unsafe {
            core::ptr::write_bytes(base, 0x33, LEN);
            zero_and_tag(with_tag(base.add(start), 5), len);
            check(base, start, 0x33, 0);
            check(base.add(start), len, 0, 5);
            check(base.add(start + len), 2 * block, 0x33, 0);
        }
    }

    #[test]
    fn random_tags_avoid_the_excluded_ones() {
        if tagged_memory().is_none() {
            return;
        }
        let exclude: u16 = 1 | (1 << 4) | (1 << 7);
        let mut seen = 0u16;
        for _ in 0..500 {
            let tag = random_tag(exclude);
            assert!((1..=15).contains(&tag) && exclude & (1 << tag) == 0, "tag {tag}");
            seen |= 1 << tag;
        }
        assert!(seen.count_ones() >= 10, "few tags seen: {seen:#x}");
    }
}
