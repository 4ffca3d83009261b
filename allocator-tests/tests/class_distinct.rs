//! C5 with the built-in table (`.distinct_class_patterns()`, class_patterns=1):
//! a block of class c reads as 0xA0 + c, large blocks as 0xA0 + LARGE_CLASS.

use allocator_tests::*;

#[global_allocator]
static A: PatternAlloc = PatternAlloc::new().distinct_class_patterns();

#[test]
fn every_class_reads_its_own_byte() {
    let seen = check_every_class_pattern(&A);
    if env_override().is_none() {
        assert_eq!(A.effective_config().class_patterns, ClassPatterns::Distinct);
        assert_eq!(seen, DISTINCT_PATTERNS);
        for (class, &byte) in seen.iter().enumerate() {
            assert_eq!(byte as usize, 0xA0 + class);
        }
        assert_eq!(A.pattern_of(layout(1, 1)), 0xA0);
        assert_eq!(A.pattern_of(layout(MAX_SMALL_SIZE, 8)), 0xA0 + SMALL_CLASS_COUNT as u8 - 1);
        assert_eq!(A.pattern_of(layout(MAX_SMALL_SIZE + 1, 8)), 0xA0 + LARGE_CLASS as u8);
    }
}
