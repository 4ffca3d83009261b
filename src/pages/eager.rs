//! The eager backend: anonymous private memory (reads as zero until written).
//! Callers that want a pattern fill it themselves, once: mmap + memset.
//! `resize` also serves refpage mappings, which are one mapping each as well.

use super::{Contents, MapKind, Mapping, PAGE_SIZE};
use crate::sys;

/// Maps `len` bytes with `base + offset` aligned to `align`, by mapping
/// `len + align` and trimming the ends.
pub fn map(len: usize, align: usize, offset: usize) -> Option<Mapping> {
    debug_assert!(align.is_power_of_two() && align >= PAGE_SIZE && len.is_multiple_of(PAGE_SIZE));
    let slack = if align > PAGE_SIZE { align } else { 0 };
    let raw = sys::map_anonymous(len.checked_add(slack)?)?;
    let base = aligned_base(raw as usize, align, offset);
    let head = base - raw as usize;
    // SAFETY: the head and tail are parts of the fresh mapping that we give back.
    unsafe {
        sys::unmap(raw, head);
        sys::unmap((base + len) as *mut u8, slack - head);
    }
    Some(Mapping { base: base as *mut u8, len, backing: Contents::Zero, kind: MapKind::Anonymous })
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
        let slack = align;
        let raw = sys::reserve(new_len.checked_add(slack)?)?;
        let target = aligned_base(raw as usize, align, offset);
        let head = target - raw as usize;
        // SAFETY: `target..target + new_len` lies inside our fresh reservation,
        // which mremap replaces; the trimmed ends are ours too.
        unsafe {
            let Some(moved) = sys::remap(mapping.base, mapping.len, new_len, Some(target as *mut u8)) else {
                sys::unmap(raw, new_len + slack);
                return None;
            };
            sys::unmap(raw, head);
            sys::unmap((target + new_len) as *mut u8, slack - head);
            moved
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
