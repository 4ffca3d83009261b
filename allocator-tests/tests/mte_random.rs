//! C6 with `mte_tags=random`: neighbouring blocks of one class get different
//! random tags (irg with both neighbours excluded), so an overflow into the
//! next block of the same class traps as well.
#![cfg(all(target_arch = "aarch64", target_os = "linux"))]

use core::alloc::GlobalAlloc;
use core::ptr::read_volatile;

use allocator_tests::mte::*;
use allocator_tests::*;

#[global_allocator]
static A: PatternAlloc = PatternAlloc::new().mte(Mte::Sync).mte_tags(MteTags::Random);

/// Tagging is on, or the hardware has none (the fallback) and the test ends here.
fn tagging_or_skip(test: &str) -> bool {
    allocator_tests::mte::tagging_or_skip(A.mte_active(), test)
}

#[test]
fn neighbours_of_one_class_never_share_a_tag() {
    if !tagging_or_skip("random neighbours") {
        return;
    }
    let l = layout(112, 16);
    let blocks: Vec<Block> = (0..400).map(|i| alloc_checked(&A, l, format_args!("block #{i}"))).collect();
    let mut by_address: Vec<*mut u8> = blocks.iter().map(|b| b.ptr).collect();
    by_address.sort_by_key(|&p| address(p) as usize);
    let mut adjacent = 0;
    let mut tags_seen = [false; 16];
    for pair in by_address.windows(2) {
        assert_ne!(tag_of(pair[0]), 0);
        tags_seen[tag_of(pair[0]) as usize] = true;
        if address(pair[1]) as usize - address(pair[0]) as usize == 112 {
            adjacent += 1;
            assert_ne!(tag_of(pair[0]), tag_of(pair[1]), "neighbours {:p} and {:p}", pair[0], pair[1]);
        }
    }
    assert!(adjacent > 300, "only {adjacent} adjacent pairs");
    assert!(tags_seen.iter().filter(|&&seen| seen).count() >= 8, "tags are not random: {tags_seen:?}");
    for b in blocks {
        unsafe { free(&A, b) };
    }
}

#[test]
fn overflow_into_a_neighbour_of_the_same_class_traps() {
    if !tagging_or_skip("same-class overflow") {
        return;
    }
    let code = in_child(|| unsafe {
        let l = layout(224, 16);
        let blocks: Vec<*mut u8> = (0..32).map(|_| A.alloc(l)).collect();
        let (p, q) = blocks
            .iter()
            .flat_map(|&p| blocks.iter().map(move |&q| (p, q)))
            .find(|&(p, q)| address(q) as usize == address(p) as usize + 224)
            .expect("two adjacent 224-byte blocks");
        assert_ne!(tag_of(p), tag_of(q));
        // One byte past p's end is q's first byte, reached through p's tag.
        read_volatile(p.wrapping_add(224));
    });
    assert_eq!(code, TRAPPED_SYNC, "reading one byte past a 224-byte block: {}", describe(code));
}

#[test]
fn freed_blocks_get_new_tags_and_stale_pointers_trap() {
    if !tagging_or_skip("random use after free") {
        return;
    }
    let code = in_child(|| unsafe {
        let l = layout(48, 16);
        let p = A.alloc(l);
        A.dealloc(p, l);
        read_volatile(p);
    });
    assert_eq!(code, TRAPPED_SYNC, "reading a freed block: {}", describe(code));
}
