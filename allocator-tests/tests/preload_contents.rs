//! What every exported C allocation function returns reads as, under
//! LD_PRELOAD (c/contents.c): the pattern over the whole malloc_usable_size
//! for the malloc and memalign families and the `__libc_*` aliases, zeros for
//! calloc, kept prefix and patterned growth for realloc/reallocarray, blocks
//! of 1 byte to 8 MiB, fresh and recycled, alignments 8 bytes to 2 MiB.

use allocator_tests::preload::*;

#[test]
fn default_pattern() {
    run_checked("contents", None, "0xaa", &[]);
}

#[test]
fn chosen_fill() {
    run_checked("contents", Some("fill=0x5c"), "0x5c", &[]);
}

/// Every block from the large path (one mapping each), with a zero fill:
/// pages fresh from the kernel already read as it.
#[test]
fn all_blocks_large() {
    run_checked("contents", Some("large_threshold=0"), "0xaa", &[]);
    run_checked("contents", Some("large_threshold=0:fill=0x00"), "0x00", &[]);
}

/// class_patterns=1: each block reads as one byte of the class table
/// (0xA0 + class), and blocks of different sizes read differently.
#[test]
fn class_patterns() {
    run_checked("contents", Some("class_patterns=1"), "class", &[]);
}

/// free_fill=0x55: freed small blocks read 0x55 past their first 16 bytes (C4).
#[test]
fn free_fill() {
    let run = Exec::preloaded(c_program("contents"), Some("free_fill=0x55:backend=eager"))
        .env("EXPECT_FILL", "0xaa")
        .env("EXPECT_FREE_FILL", "0x55")
        .run();
    assert_success(&run, "contents with free_fill=0x55");
}

/// The program itself is right about glibc's results where they do not
/// depend on the pattern.
#[test]
fn glibc_control() {
    run_glibc_control("contents", &[]);
}

/// The checks can fail: the library fills 0xAA while the program is told to
/// expect 0x5c, and a run without the preload is caught by the PA_LIB check.
#[test]
fn checks_are_live() {
    let run = Exec::preloaded(c_program("contents"), None).env("EXPECT_FILL", "0x5c").run();
    assert!(!run.timed_out && run.status.code() == Some(1), "expected exit status 1\n{}", describe(&run));
    assert!(
        run.stderr.contains("reads 0xaa, expected 0x5c"),
        "the pattern mismatch was not reported\n{}",
        describe(&run)
    );

    let run = Exec::new(c_program("contents")).env("PA_LIB", library()).run();
    assert!(!run.timed_out && run.status.code() == Some(1), "expected exit status 1\n{}", describe(&run));
    assert!(run.stderr.contains("is not loaded in this process"), "{}", describe(&run));
}
