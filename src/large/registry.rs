//! Which addresses are live large blocks: one bit per 4 KiB page of a 48-bit
//! address space, in two levels (a static table of 1 GiB leaves, each leaf a
//! 32 KiB bitmap mapped on first use). A free of a pointer that is not
//! recorded here is a misuse, caught before its header is ever read.

use core::ptr::null_mut;
use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use crate::pages::{self, PAGE_SIZE};
use crate::sys;

const ADDRESS_BITS: u32 = 48;
const PAGE_SHIFT: u32 = PAGE_SIZE.trailing_zeros();
const LEAF_BITS: u32 = 18;
const LEAF_WORDS: usize = (1 << LEAF_BITS) / 64;
const LEAF_BYTES: usize = LEAF_WORDS * 8;
const TOP_ENTRIES: usize = 1 << (ADDRESS_BITS - PAGE_SHIFT - LEAF_BITS);

static TOP: [AtomicPtr<AtomicU64>; TOP_ENTRIES] = [const { AtomicPtr::new(null_mut()) }; TOP_ENTRIES];

/// (leaf index, word index, bit mask) of an address, if it fits the table.
fn position(address: usize) -> Option<(usize, usize, u64)> {
    if address >> ADDRESS_BITS != 0 || !address.is_multiple_of(PAGE_SIZE) {
        return None;
    }
    let page = address >> PAGE_SHIFT;
    let bit = page & ((1 << LEAF_BITS) - 1);
    Some((page >> LEAF_BITS, bit / 64, 1 << (bit % 64)))
}

fn leaf(index: usize, create: bool) -> Option<&'static [AtomicU64; LEAF_WORDS]> {
    let mut current = TOP[index].load(Ordering::Acquire);
    if current.is_null() {
        if !create {
            return None;
        }
        let fresh = pages::map_metadata(LEAF_BYTES)? as *mut AtomicU64;
        match TOP[index].compare_exchange(null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => current = fresh,
            Err(winner) => {
                // SAFETY: our mapping lost the race and nobody saw it.
                unsafe { sys::unmap(fresh as *mut u8, LEAF_BYTES) };
                current = winner;
            }
        }
    }
    // SAFETY: leaves are zero-initialized mappings of LEAF_BYTES, never unmapped.
    Some(unsafe { &*(current as *const [AtomicU64; LEAF_WORDS]) })
}

/// Records a live block; false when the address cannot be recorded.
pub fn insert(address: usize) -> bool {
    let Some((top, word, mask)) = position(address) else { return false };
    let Some(leaf) = leaf(top, true) else { return false };
    leaf[word].fetch_or(mask, Ordering::AcqRel);
    true
}

/// Forgets a block; false when it was not recorded (not ours, or freed already).
pub fn remove(address: usize) -> bool {
    let Some((top, word, mask)) = position(address) else { return false };
    let Some(leaf) = leaf(top, false) else { return false };
    leaf[word].fetch_and(!mask, Ordering::AcqRel) & mask != 0
}

pub fn contains(address: usize) -> bool {
    let Some((top, word, mask)) = position(address) else { return false };
    let Some(leaf) = leaf(top, false) else { return false };
    leaf[word].load(Ordering::Acquire) & mask != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_contains_remove() {
        let address = 0x7123_4567_8000;
        assert!(!contains(address));
        assert!(insert(address));
        assert!(contains(address));
        assert!(!contains(address + PAGE_SIZE));
        assert!(remove(address));
        assert!(!remove(address));
        assert!(!contains(address));
    }

    #[test]
    fn rejects_unaligned_and_out_of_range_addresses() {
        assert!(!insert(0x7000_0000_0010));
        assert!(!insert(1 << 50));
        assert!(!contains(usize::MAX));
        assert!(!remove(0x10));
    }
}
