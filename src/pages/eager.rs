//! The eager backend: anonymous private memory (reads as zero until written).
//! Callers that want a pattern fill it themselves, once: mmap + memset.
//! `resize` also serves refpage mappings, which are one mapping each as well.

use super::{Contents, MapKind, Mapping, PAGE_SIZE};
use crate::sys;

/// Maps `len` bytes with `base + offset` aligned to `align`.
pub fn map(len: usize, align: usize, offset: usize) -> Option<Mapping> {
    debug_assert!(align.is_power_of_two() && align >= PAGE_SIZE && len.is_multiple_of(PAGE_SIZE));
    let base = make_aligned(len, align, offset, sys::map_anonymous)?;
    Some(Mapping { base, len, backing: Contents::Zero, kind: MapKind::Anonymous })
}

/// `len` bytes of fresh anonymous memory from `make` (read-write memory or a
/// PROT_NONE reservation) whose `base + offset` is a multiple of `align`:
/// `len + align` is made and the ends are given back.
pub(super) fn make_aligned(
    len: usize,
    align: usize,
    offset: usize,
    make: fn(usize) -> Option<*mut u8>,
) -> Option<*mut u8> {
    let slack = if align > PAGE_SIZE { align } else { 0 };
    let raw = make(len.checked_add(slack)?)?;
    let base = aligned_base(raw as usize, align, offset);
    let head = base - raw as usize;
    // SAFETY: the head and tail are parts of the fresh mapping that we give back.
    unsafe {
        sys::unmap(raw, head);
        sys::unmap((base + len) as *mut u8, slack - head);
    }
    Some(base as *mut u8)
}

/// The lowest address `>= start` whose `+ offset` is a multiple of `align`.
pub(super) fn aligned_base(start: usize, align: usize, offset: usize) -> usize {
    ((start + offset + align - 1) & !(align - 1)) - offset
}

/// # Safety
/// See `pages::resize`.
pub unsafe fn resize(mapping: Mapping, new_len: usize, align: usize, offset: usize) -> Option<Mapping> {
    if new_len <= mapping.len {
        // SAFETY: the tail beyond new_len belongs to the caller's mapping.
        unsafe { sys::unmap(mapping.base.add(new_len), mapping.len - new_len) };
        return Some(Mapping { len: new_len, ..mapping });
    }
    let base = if align <= PAGE_SIZE {
        // SAFETY: the caller owns the whole mapping.
        unsafe { sys::remap(mapping.base, mapping.len, new_len, None)? }
    } else {
        // A kernel-chosen address would lose the alignment: reserve an aligned
        // target range and move the pages there.
        let target = make_aligned(new_len, align, offset, sys::reserve)?;
        // SAFETY: the target is our fresh reservation, which mremap replaces.
        match unsafe { sys::remap(mapping.base, mapping.len, new_len, Some(target)) } {
            Some(moved) => moved,
            None => {
                // SAFETY: as above; the pages stayed where they were.
                unsafe { sys::unmap(target, new_len) };
                return None;
            }
        }
    };
    Some(Mapping { base, len: new_len, ..mapping })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_base_respects_offset() {
        assert_eq!(aligned_base(0x1000, 0x10000, 0), 0x10000);
        assert_eq!(aligned_base(0x1000, 0x10000, 0x1000), 0xF000);
        assert_eq!(aligned_base(0x10000, 0x10000, 0), 0x10000);
        assert_eq!(aligned_base(0x11000, 0x10000, 0x1000), 0x1F000);
    }

    #[test]
    fn map_is_aligned_zeroed_and_resizable() {
        let mapping = map(3 * PAGE_SIZE, 1 << 21, PAGE_SIZE).unwrap();
        assert_eq!((mapping.base as usize + PAGE_SIZE) % (1 << 21), 0);
        unsafe {
            assert_eq!(core::ptr::read_volatile(mapping.base.add(3 * PAGE_SIZE - 1)), 0);
            *mapping.base.add(PAGE_SIZE) = 7;
            let grown = resize(mapping, 600 * PAGE_SIZE, 1 << 21, PAGE_SIZE).unwrap();
            assert_eq!((grown.base as usize + PAGE_SIZE) % (1 << 21), 0);
            assert_eq!(*grown.base.add(PAGE_SIZE), 7);
            assert_eq!(core::ptr::read_volatile(grown.base.add(600 * PAGE_SIZE - 1)), 0);
            let shrunk = resize(grown, PAGE_SIZE * 2, 1 << 21, PAGE_SIZE).unwrap();
            assert_eq!(*shrunk.base.add(PAGE_SIZE), 7);
            sys::unmap(shrunk.base, shrunk.len);
        }
    }
}
