//! Where memory comes from: the only module that creates mappings.
//!
//! A `Mapping` records what its untouched (or decommitted) pages read as: its
//! `backing`. Three backends make them (DESIGN.md §4), tried in this order by
//! `backend=auto`:
//! - `refpage`: the kernel reference page, one private mapping of a refpage
//!   descriptor per block (refpage.rs);
//! - `memfd`: its userspace emulation, a block covered by private windows of a
//!   sealed memfd (memfd.rs);
//! - `eager`: anonymous memory reading as zero; callers that want a pattern
//!   fill it themselves (eager.rs).
//!
//! The lazy ones return `Contents::Pattern(b)` mappings, so the front ends
//! skip the fill without knowing which backend they run on, and
//! `MADV_DONTNEED` (`decommit`) brings the pattern back. Zeroed requests
//! always get anonymous memory.
//!
//! The backend is chosen at the first request for patterned memory (not at
//! load time: the probe reads /proc and issues syscalls), under the sources
//! lock; requests a lazy backend cannot serve (the mapping cap, the source
//! bounds, a refusal) fall back to eager and are counted.

mod eager;
mod memfd;
#[cfg(all(target_arch = "aarch64", target_os = "linux"))]
pub mod mte;
mod refpage;
mod sources;
mod sys_lazy;

use core::sync::atomic::{AtomicI64, AtomicU8, Ordering};

use crate::config::{Backend, Config};
use crate::fill;
use crate::report;
use crate::stats::{self, GLOBAL};
use crate::sys;
use core::sync::atomic::AtomicU64;
use sources::{Kind, Source, Sources};

pub use crate::sys::PAGE_SIZE;

/// What a range of memory reads as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contents {
    Zero,
    Pattern(u8),
}

/// How a mapping is built, which decides how it is resized and unmapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapKind {
    /// One anonymous mapping.
    Anonymous,
    /// One private mapping of a refpage descriptor.
    Refpage,
    /// Private memfd windows, one per `memfd::WINDOW` slot.
    Windows,
}

/// One mapping made by `map`.
#[derive(Clone, Copy, Debug)]
pub struct Mapping {
    pub base: *mut u8,
    pub len: usize,
    /// What untouched and decommitted pages of this mapping read as.
    pub backing: Contents,
    pub kind: MapKind,
}

const UNRESOLVED: u8 = 0;
const EAGER: u8 = 1;
const MEMFD: u8 = 2;
const REFPAGE: u8 = 3;

static REQUESTED: AtomicU8 = AtomicU8::new(UNRESOLVED);
static ACTIVE: AtomicU8 = AtomicU8::new(UNRESOLVED);
/// The refpage syscall number: `refpage_nr=` (or -1 to probe the patch's
/// number when no seccomp filter is in force), then the one that worked.
static REFPAGE_NR: AtomicI64 = AtomicI64::new(-1);

fn backend_code(backend: Backend) -> u8 {
    match backend {
        Backend::Auto => UNRESOLVED,
        Backend::Eager => EAGER,
        Backend::Memfd => MEMFD,
        Backend::Refpage => REFPAGE,
    }
}

/// Records the requested backend at initialization; the choice itself waits
/// for the first patterned mapping.
pub fn select(config: &Config) {
    REQUESTED.store(backend_code(config.backend), Ordering::Relaxed);
    REFPAGE_NR.store(config.refpage_nr.map_or(-1, i64::from), Ordering::Relaxed);
    let active = if config.backend == Backend::Eager { EAGER } else { UNRESOLVED };
    ACTIVE.store(active, Ordering::Release);
}

/// Arm64 memory tagging (`mte=`): on where asked for and available; one
/// warning line where asked for and absent.
pub fn init_tagging(config: &Config) {
    #[cfg(all(target_arch = "aarch64", target_os = "linux"))]
    mte::init(config);
    #[cfg(not(all(target_arch = "aarch64", target_os = "linux")))]
    if config.mte != crate::config::Mte::Off {
        report::line(format_args!("warning: mte: memory tagging needs arm64 Linux; tagging is off"));
    }
}

/// The backend in use, or the one requested while nothing needed one yet.
pub fn backend_name() -> &'static str {
    let code = match ACTIVE.load(Ordering::Acquire) {
        UNRESOLVED => REQUESTED.load(Ordering::Relaxed),
        active => active,
    };
    match code {
        EAGER => "eager",
        MEMFD => "memfd",
        REFPAGE => "refpage",
        _ => "auto",
    }
}

/// Whether patterned mappings come from a lazy backend.
pub fn is_lazy() -> bool {
    matches!(ACTIVE.load(Ordering::Acquire), MEMFD | REFPAGE)
}

/// Chooses the backend: refpage if requested (or auto) and verified, then
/// memfd, then eager. A backend asked for by name that is missing gets one
/// warning line. Runs once, under the sources lock.
fn resolve(table: &mut Sources, pattern: u8) -> u8 {
    let requested = REQUESTED.load(Ordering::Relaxed);
    let mut chosen = EAGER;
    if matches!(requested, UNRESOLVED | REFPAGE) {
        let explicit = REFPAGE_NR.load(Ordering::Relaxed);
        let nr = if explicit >= 0 {
            Some(explicit)
        } else if refpage::seccomp_filtered() {
            None
        } else {
            Some(refpage::PATCH_NR)
        };
        if let Some(nr) = nr {
            if let Some(fd) = refpage::create(nr, pattern) {
                if table.add(fd, Kind::Refpage, pattern).is_some() {
                    REFPAGE_NR.store(nr, Ordering::Relaxed);
                    chosen = REFPAGE;
                }
            }
        }
        if chosen != REFPAGE && requested == REFPAGE {
            let why = if nr.is_some() {
                "the kernel has no refpage_create"
            } else {
                "not probed under a seccomp filter (refpage_nr= probes anyway)"
            };
            report::line(format_args!("warning: backend=refpage: {why}; using memfd"));
        }
    }
    if chosen == EAGER && requested != EAGER {
        memfd::init_cap();
        match memfd::create(pattern) {
            Some(fd) if table.add(fd, Kind::Memfd, pattern).is_some() => chosen = MEMFD,
            _ => {
                if requested != UNRESOLVED {
                    report::line(format_args!("warning: backend: memfd windows are unavailable; using eager"));
                }
            }
        }
    }
    ACTIVE.store(chosen, Ordering::Release);
    chosen
}

/// A checked source of `pattern` from the active lazy backend (choosing the
/// backend first if needed); None on the eager backend or past the bounds.
fn lazy_source(pattern: u8) -> Option<Source> {
    let mut table = sources::lock();
    let active = match ACTIVE.load(Ordering::Acquire) {
        UNRESOLVED => resolve(&mut table, pattern),
        active => active,
    };
    match active {
        REFPAGE => {
            let nr = REFPAGE_NR.load(Ordering::Relaxed);
            table.get(pattern, Kind::Refpage, &mut |p| refpage::create(nr, p))
        }
        MEMFD => table.get(pattern, Kind::Memfd, &mut memfd::create),
        _ => None,
    }
}

/// How often a mapping is retried when its source turned out to be lost
/// while it was being mapped.
const ATTEMPTS: usize = 4;

/// A lazily patterned mapping, or None when the eager backend must serve it.
fn map_lazy(len: usize, align: usize, offset: usize, pattern: u8) -> Option<Mapping> {
    if ACTIVE.load(Ordering::Acquire) == EAGER {
        return None;
    }
    for _ in 0..ATTEMPTS {
        let source = lazy_source(pattern)?;
        let (base, kind) = match source.kind {
            Kind::Memfd => (memfd::map(len, align, offset, source.fd), MapKind::Windows),
            Kind::Refpage => (refpage::map(len, align, offset, source.fd), MapKind::Refpage),
        };
        let mapping = Mapping { base: base?, len, backing: Contents::Pattern(pattern), kind };
        // The program may have closed our descriptor and opened another file
        // under its number while we mapped it: then the block could show
        // that file. Checked after mapping, the identity proves it did not.
        if source.still_ours() {
            return Some(mapping);
        }
        // SAFETY: nobody has seen the mapping.
        unsafe { unmap_raw(mapping) };
    }
    None
}

/// Maps `len` bytes (a multiple of the page size) such that `base + offset`
/// is a multiple of `align` (a power of two of at least a page). `prefer` is
/// what the caller would like untouched memory to read as; the result's
/// `backing` says what it got.
pub fn map(len: usize, align: usize, offset: usize, prefer: Contents) -> Option<Mapping> {
    #[cfg(all(target_arch = "aarch64", target_os = "linux"))]
    if mte::enabled() {
        let mapping = mte::map(len, align, offset)?;
        stats::add(&GLOBAL.bytes_mapped, len as u64);
        return Some(mapping);
    }
    let _errno = sys_lazy::ErrnoGuard::new();
    let lazy = match prefer {
        Contents::Pattern(pattern) => {
            let lazy = map_lazy(len, align, offset, pattern);
            if lazy.is_none() && is_lazy() {
                stats::add(&GLOBAL.lazy_fallbacks, 1);
            }
            lazy
        }
        Contents::Zero => None,
    };
    let mapping = match lazy {
        Some(mapping) => {
            stats::add(&GLOBAL.bytes_lazy, len as u64);
            mapping
        }
        None => eager::map(len, align, offset)?,
    };
    stats::add(&GLOBAL.bytes_mapped, mapping.len as u64);
    Some(mapping)
}

/// # Safety
/// Nothing may use the mapping afterwards.
unsafe fn unmap_raw(mapping: Mapping) -> bool {
    let start = mapping.base as usize;
    match mapping.kind {
        // SAFETY: the caller's mapping.
        MapKind::Windows => unsafe { memfd::unmap(start, start, mapping.len) },
        // SAFETY: as above.
        MapKind::Anonymous | MapKind::Refpage => unsafe { sys::unmap(mapping.base, mapping.len) },
    }
}

/// Unmaps a whole mapping.
///
/// # Safety
/// Nothing may use the mapping afterwards.
pub unsafe fn unmap(mapping: Mapping) {
    // SAFETY: the caller's promise.
    if unsafe { unmap_raw(mapping) } {
        stats::sub(&GLOBAL.bytes_mapped, mapping.len as u64);
    }
}

/// Gives the pages of `[ptr, ptr + len)` back to the kernel; afterwards they
/// read as `backing` again (the pattern on the lazy backends: the private
/// copies go and the reference shows through). Returns false when the kernel
/// refused (the memory then keeps its contents and stays resident).
///
/// # Safety
/// Page-aligned range of a mapping with that backing, holding nothing live.
pub unsafe fn decommit(ptr: *mut u8, len: usize, backing: Contents) -> bool {
    let _ = backing;
    // SAFETY: the caller's range.
    unsafe { sys::dont_need(ptr, len) }
}

/// Makes `[ptr, ptr + len)` read as `byte`: whole pages are decommitted when
/// the mapping's backing is that byte (no write, and the memory goes back),
/// the rest is written. Bytes written are added to `counter`.
///
/// # Safety
/// A range of one mapping with backing `backing`, holding nothing live.
pub unsafe fn reset(ptr: *mut u8, len: usize, backing: Contents, byte: u8, counter: &AtomicU64) {
    let (start, end) = (ptr as usize, ptr as usize + len);
    let (inner_start, inner_end) = (start.next_multiple_of(PAGE_SIZE), end & !(PAGE_SIZE - 1));
    if backing == Contents::Pattern(byte) && inner_start < inner_end {
        // SAFETY: whole pages inside the caller's range.
        if unsafe { decommit(inner_start as *mut u8, inner_end - inner_start, backing) } {
            // SAFETY: the partial pages at both ends.
            unsafe {
                fill::fill_counted(ptr, inner_start - start, byte, counter);
                fill::fill_counted(inner_end as *mut u8, end - inner_end, byte, counter);
            }
            return;
        }
    }
    // SAFETY: the caller's range.
    unsafe { fill::fill_counted(ptr, len, byte, counter) };
}

/// Grows or shrinks `mapping` to `new_len` bytes, moving it if needed while
/// keeping `base + offset` a multiple of `align`. Pages past the old length
/// read as the mapping's backing. The contents move with the pages; nothing
/// is copied through userspace.
///
/// # Safety
/// `mapping` must be a live mapping from `map`; on success the old address
/// range must not be used any more.
pub unsafe fn resize(mapping: Mapping, new_len: usize, align: usize, offset: usize) -> Option<Mapping> {
    let _errno = sys_lazy::ErrnoGuard::new();
    let resized = match mapping.kind {
        // SAFETY: the caller's mapping.
        MapKind::Windows => unsafe { resize_windows(mapping, new_len, align) }?,
        // SAFETY: as above; one mapping, moved or grown whole by mremap.
        MapKind::Anonymous | MapKind::Refpage => unsafe { eager::resize(mapping, new_len, align, offset) }?,
    };
    if new_len >= mapping.len {
        stats::add(&GLOBAL.bytes_mapped, (new_len - mapping.len) as u64);
        if resized.backing != Contents::Zero {
            stats::add(&GLOBAL.bytes_lazy, (new_len - mapping.len) as u64);
        }
    } else {
        stats::sub(&GLOBAL.bytes_mapped, (mapping.len - new_len) as u64);
    }
    Some(resized)
}

/// # Safety
/// As `resize`, for a windowed mapping.
unsafe fn resize_windows(mapping: Mapping, new_len: usize, align: usize) -> Option<Mapping> {
    let Contents::Pattern(pattern) = mapping.backing else { return None };
    if new_len <= mapping.len {
        // SAFETY: the caller's mapping.
        let base = unsafe { memfd::resize(mapping.base, mapping.len, new_len, align, None) }?;
        return Some(Mapping { base, len: new_len, ..mapping });
    }
    let source = lazy_source(pattern).filter(|s| s.kind == Kind::Memfd)?;
    // SAFETY: the caller's mapping.
    let base = unsafe { memfd::resize(mapping.base, mapping.len, new_len, align, Some(source.fd)) }?;
    let grown = Mapping { base, len: new_len, ..mapping };
    let tail = (base as usize + mapping.len) as *mut u8;
    let mut checked = source;
    for _ in 0..ATTEMPTS {
        // As in map_lazy: the tail's windows must come from our memfd.
        if checked.still_ours() {
            return Some(grown);
        }
        // The block is ours, so its tail can be replaced in place.
        let Some(again) = lazy_source(pattern).filter(|s| s.kind == Kind::Memfd) else { break };
        // SAFETY: the tail belongs to the grown block.
        unsafe { memfd::remap_windows(tail, new_len - mapping.len, again.fd) };
        checked = again;
    }
    report::fatal(format_args!("pattern source for large block {base:p} keeps being closed while it is mapped"))
}

/// Fresh PROT_NONE address space of `len` bytes whose `base + offset` is a
/// multiple of `align`.
fn reserve_aligned(len: usize, align: usize, offset: usize) -> Option<*mut u8> {
    eager::make_aligned(len, align, offset, sys::reserve)
}

/// Zeroed memory for the allocator's own metadata (not counted as heap).
pub fn map_metadata(len: usize) -> Option<*mut u8> {
    sys::map_anonymous(len)
}

pub const fn round_up_to_page(size: usize) -> Option<usize> {
    match size.checked_add(PAGE_SIZE - 1) {
        Some(v) => Some(v & !(PAGE_SIZE - 1)),
        None => None,
    }
}

pub fn lock_for_fork() {
    sources::lock_for_fork();
}

pub fn unlock_after_fork() {
    sources::unlock_after_fork();
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::ptr::read_volatile;

    fn reads(p: *const u8, len: usize, byte: u8) -> bool {
        (0..len).step_by(PAGE_SIZE / 2).chain([len - 1]).all(|i| unsafe { read_volatile(p.add(i)) } == byte)
    }

    fn set_errno(value: i32) {
        unsafe { *libc::__errno_location() = value };
    }

    #[test]
    fn patterned_mappings_reset_resize_and_keep_errno() {
        set_errno(12345);
        let len = 3 * memfd::WINDOW + PAGE_SIZE;
        let mapping = map(len, PAGE_SIZE, 0, Contents::Pattern(0x6D)).unwrap();
        assert_eq!(sys::errno(), 12345, "a successful map changed errno");
        assert!(is_lazy(), "this kernel has memfds: {}", backend_name());
        assert_eq!((mapping.backing, mapping.kind), (Contents::Pattern(0x6D), MapKind::Windows));
        assert!(reads(mapping.base, len, 0x6D));
        unsafe {
            core::ptr::write_bytes(mapping.base, 0x01, len);
            // A range that does not start or end on a page: written at the
            // ends, decommitted between.
            let counter = AtomicU64::new(0);
            reset(mapping.base.add(100), 3 * PAGE_SIZE, mapping.backing, 0x6D, &counter);
            // 4096 - 100 bytes at the head, 100 at the tail.
            assert_eq!(counter.load(Ordering::Relaxed), PAGE_SIZE as u64);
            assert_eq!(read_volatile(mapping.base.add(99)), 0x01);
            assert!(reads(mapping.base.add(100), 3 * PAGE_SIZE, 0x6D));
            assert_eq!(read_volatile(mapping.base.add(100 + 3 * PAGE_SIZE)), 0x01);
            let grown = resize(mapping, 2 * len, PAGE_SIZE, 0).unwrap();
            assert_eq!(sys::errno(), 12345, "a successful resize changed errno");
            assert_eq!(read_volatile(grown.base), 0x01);
            assert!(reads(grown.base.add(len), len, 0x6D));
            assert!(decommit(grown.base, grown.len, grown.backing));
            assert!(reads(grown.base, grown.len, 0x6D));
            unmap(grown);
        }
        // Zeroed requests are anonymous whatever the backend.
        let zero = map(len, PAGE_SIZE, 0, Contents::Zero).unwrap();
        assert_eq!((zero.backing, zero.kind), (Contents::Zero, MapKind::Anonymous));
        assert!(reads(zero.base, len, 0));
        unsafe { unmap(zero) };
    }
}
