//! C7 misuse through the LD_PRELOAD library (c/misuse.c), in child processes:
//! the C ABI must report the same misuses as the Rust face (one
//! `pattern-alloc: ...` line naming the pointer, then SIGABRT). One case
//! documents the limit of detection: a pointer in none of our records that is
//! not page-aligned is taken to be glibc's and handed to glibc's free, which
//! reports it in its own words.

use std::os::unix::process::ExitStatusExt;

use allocator_tests::preload::*;
use allocator_tests::Run;

fn run(action: &str) -> Run {
    let run = Exec::preloaded(c_program("misuse"), None).arg(action).run();
    assert!(!run.timed_out, "{action}: hung\n{}", describe(&run));
    assert_eq!(run.value("misuse"), Some(action), "{action}: the misuse was not reached\n{}", describe(&run));
    assert_eq!(run.value("survived"), None, "{action} went unnoticed\n{}", describe(&run));
    assert_eq!(run.status.signal(), Some(libc::SIGABRT), "{action}: expected SIGABRT\n{}", describe(&run));
    run
}

/// The misuse ends in SIGABRT with exactly one allocator line that contains
/// `phrase` and names the pointer (an `0x` address).
#[track_caller]
fn reported(action: &str, phrase: &str) {
    let run = run(action);
    let lines = run.allocator_lines();
    assert_eq!(lines.len(), 1, "{action}: expected one `pattern-alloc: ` line\n{}", describe(&run));
    assert!(lines[0].contains(phrase), "{action}: the line does not say {phrase:?}\n{}", describe(&run));
    assert!(lines[0].contains(" 0x"), "{action}: the line names no pointer\n{}", describe(&run));
}

#[test]
fn double_free_of_a_small_block() {
    reported("double-free-small", "double free of 0x");
}

#[test]
fn double_free_of_a_large_block() {
    reported("double-free-large", "invalid free of 0x");
}

#[test]
fn interior_pointer_into_a_small_block() {
    reported("interior-small", "interior pointer, 16 bytes into a 64-byte block");
}

#[test]
fn page_aligned_interior_pointer_into_a_large_block() {
    reported("interior-large-page", "not a live block");
}

#[test]
fn realloc_of_a_freed_small_block() {
    reported("realloc-freed-small", "realloc of freed block 0x");
}

#[test]
fn realloc_of_a_freed_large_block() {
    reported("realloc-freed-large", "invalid realloc of 0x");
}

#[test]
fn usable_size_of_a_freed_large_block() {
    reported("usable-size-freed-large", "invalid usable-size query of 0x");
}

/// Not ours to judge: glibc's free gets it (README, "Misuse detection").
#[test]
fn unaligned_interior_pointer_into_a_large_block_goes_to_glibc() {
    let run = run("interior-large-unaligned");
    assert!(run.allocator_lines().is_empty(), "expected glibc's report, not ours\n{}", describe(&run));
    assert!(run.stderr.contains("invalid pointer"), "glibc's message is missing\n{}", describe(&run));
}
