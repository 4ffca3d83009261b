//! C5 with a pattern table given in code (`.class_patterns(TABLE)`): each slab
//! class and the large row read as their own byte.

use allocator_tests::*;

/// 0x10, 0x13, 0x16, ... for the slab classes, 0xE7 for large blocks: no two
/// alike, none 0x00 or the default 0xAA.
const TABLE: [u8; CLASS_COUNT] = {
    let mut table = [0u8; CLASS_COUNT];
    let mut class = 0;
    while class < SMALL_CLASS_COUNT {
        table[class] = 0x10 + 3 * class as u8;
        class += 1;
    }
    table[LARGE_CLASS] = 0xE7;
    table
};

#[global_allocator]
static A: PatternAlloc = PatternAlloc::new().class_patterns(TABLE);

#[test]
fn every_class_reads_its_own_byte() {
    let seen = check_every_class_pattern(&A);
    if env_override().is_none() {
        assert_eq!(A.effective_config().class_patterns, ClassPatterns::Table(TABLE));
        assert_eq!(seen, TABLE);
    }
}

#[test]
fn table_entries_are_distinct() {
    let mut sorted = TABLE;
    sorted.sort_unstable();
    assert!(sorted.windows(2).all(|w| w[0] != w[1]));
    assert!(!TABLE.contains(&0xAA) && !TABLE.contains(&0));
}
