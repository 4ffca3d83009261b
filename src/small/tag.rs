//! Handing out a slab block under arm64 memory tagging: the block gets its
//! tag (`crate::tag`) in the same pass that writes what the contract promises
//! (`stgp` for the pattern, `stzg`/`dc gzva` for zeros), or a tag-only pass
//! when its memory already reads as the pattern.

use super::page::Page;
use crate::stats::HeapCounters;
use crate::tag::{self, SmallFill};

/// The tagged counterpart of `Heap::hand_out`.
pub fn hand_out(counters: &HeapCounters, page: &Page, block: *mut u8, recycled: bool, zeroed: bool) -> *mut u8 {
    let size = page.block_size.get() as usize;
    let class = page.class.get() as usize;
    let fill = if zeroed {
        counters.count_zeroed(size);
        SmallFill::Zero
    } else if recycled || page.needs_fill.get() {
        counters.count_patterned(size);
        SmallFill::Pattern(page.pattern.get())
    } else {
        SmallFill::Keep
    };
    let tag = tag::small_tag(class, block, size, page.start.get(), page.capacity.get() as usize);
    counters.count_alloc(class);
    // SAFETY: the block is ours now, `size` bytes of a PROT_MTE segment.
    unsafe { tag::small_block(block, size, tag, fill) }
}
