//! Size classes: about four per power of two (Scudo's shape), 16 B .. 32 KiB.
//!
//! Classes 0..8 step by 16 bytes up to 128; above that each power-of-two
//! interval (2^k, 2^(k+1)] is split into quarters: 160, 192, 224, 256, 320, ...
//! Every class size is a multiple of 16, so blocks carved at `i * size` from a
//! 64 KiB-aligned slab page are 16-aligned, and a class whose size is a multiple
//! of a larger alignment serves that alignment too. The last class index
//! (`LARGE_CLASS`) stands for every large block, so pattern tables and stats
//! have one row per class including "large".

/// Number of slab (small) classes.
pub const SMALL_CLASS_COUNT: usize = 40;
/// Pattern tables and stats have one more row: large blocks.
pub const CLASS_COUNT: usize = SMALL_CLASS_COUNT + 1;
/// The class index that stands for all large blocks.
pub const LARGE_CLASS: usize = SMALL_CLASS_COUNT;
/// Largest size a slab class serves.
pub const MAX_SMALL_SIZE: usize = 32 * 1024;
/// Smallest block: room for a free-list link and a double-free cookie.
pub const MIN_BLOCK: usize = 16;

const LINEAR_CLASSES: usize = 8;
const LINEAR_MAX: usize = LINEAR_CLASSES * MIN_BLOCK;

/// Size in bytes of slab class `class` (`class < SMALL_CLASS_COUNT`).
#[inline]
pub const fn class_size(class: usize) -> usize {
    if class < LINEAR_CLASSES {
        (class + 1) * MIN_BLOCK
    } else {
        let group = (class - LINEAR_CLASSES) / 4;
        let quarter = (class - LINEAR_CLASSES) % 4;
        (5 + quarter) << (5 + group)
    }
}

/// The smallest class whose blocks hold `size` bytes, or None above `MAX_SMALL_SIZE`.
#[inline]
pub const fn class_of(size: usize) -> Option<usize> {
    if size <= LINEAR_MAX {
        let size = if size == 0 { 1 } else { size };
        return Some(size.div_ceil(MIN_BLOCK) - 1);
    }
    if size > MAX_SMALL_SIZE {
        return None;
    }
    let below = size - 1;
    let log2 = (usize::BITS - 1 - below.leading_zeros()) as usize;
    let quarter = (below >> (log2 - 2)) - 4;
    Some(LINEAR_CLASSES + (log2 - 7) * 4 + quarter)
}

/// The smallest class holding `size` bytes whose block addresses are all
/// multiples of `align` (a power of two), or None when no slab class fits.
#[inline]
pub const fn class_for(size: usize, align: usize) -> Option<usize> {
    if align <= MIN_BLOCK {
        return class_of(size);
    }
    let wanted = if size > align { size } else { align };
    let mut class = match class_of(wanted) {
        Some(c) => c,
        None => return None,
    };
    while class < SMALL_CLASS_COUNT {
        if class_size(class).is_multiple_of(align) {
            return Some(class);
        }
        class += 1;
    }
    None
}

/// `offset / size` for `offset < 2^16` and a slab class size, without a
/// division: `(offset * magic) >> 32` with `magic = 2^32 / size + 1`. The error
/// term is below `2^16 / 2^32 < 1 / size`, so the quotient is exact (checked
/// for every class and offset in the tests below).
#[inline]
pub const fn div_magic(size: usize) -> u64 {
    (1u64 << 32) / size as u64 + 1
}

#[inline]
pub const fn fast_div(offset: usize, magic: u64) -> usize {
    ((offset as u64 * magic) >> 32) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_increasing_multiples_of_16_up_to_32k() {
        let mut previous = 0;
        for class in 0..SMALL_CLASS_COUNT {
            let size = class_size(class);
            assert!(size > previous, "class {class}");
            assert_eq!(size % MIN_BLOCK, 0);
            previous = size;
        }
        assert_eq!(class_size(0), 16);
        assert_eq!(class_size(SMALL_CLASS_COUNT - 1), MAX_SMALL_SIZE);
    }

    #[test]
    fn about_four_classes_per_power_of_two() {
        for log2 in 8..=15 {
            let in_group = (0..SMALL_CLASS_COUNT)
                .filter(|&c| class_size(c) > 1 << (log2 - 1) && class_size(c) <= 1 << log2)
                .count();
            assert_eq!(in_group, 4, "interval ending at 2^{log2}");
        }
    }

    #[test]
    fn every_size_maps_to_the_smallest_class_that_holds_it() {
        for size in 0..=MAX_SMALL_SIZE {
            let class = class_of(size).unwrap();
            assert!(class_size(class) >= size.max(1), "size {size}");
            if class > 0 {
                assert!(class_size(class - 1) < size, "size {size} not tight");
            }
        }
        assert_eq!(class_of(MAX_SMALL_SIZE + 1), None);
        assert_eq!(class_of(usize::MAX), None);
    }

    #[test]
    fn round_trip_class_size_to_class() {
        for class in 0..SMALL_CLASS_COUNT {
            assert_eq!(class_of(class_size(class)), Some(class));
        }
    }

    #[test]
    fn aligned_classes_are_multiples_of_the_alignment() {
        for log2 in 0..=17 {
            let align = 1usize << log2;
            for size in [1, 7, 16, 100, 1000, 4096, 5000, 20000, 32768] {
                match class_for(size, align) {
                    Some(c) => {
                        assert!(class_size(c) >= size);
                        assert_eq!(class_size(c) % align.max(16), 0, "size {size} align {align}");
                    }
                    None => assert!(size.max(align) > 16384 || align > MAX_SMALL_SIZE),
                }
            }
        }
        assert_eq!(class_for(1, 65536), None);
        assert_eq!(class_for(100, 4096), Some(class_of(4096).unwrap()));
    }

    #[test]
    fn fast_division_is_exact_for_every_offset_in_a_slab_page() {
        for class in 0..SMALL_CLASS_COUNT {
            let size = class_size(class);
            let magic = div_magic(size);
            for offset in 0..65536 {
                assert_eq!(fast_div(offset, magic), offset / size, "size {size} offset {offset}");
            }
        }
    }
}
