//! C7 misuse through the probe, in a child process: double frees, interior
//! pointers, pointers the allocator never returned and reallocs of freed
//! blocks stop the process with one line on stderr (`pattern-alloc: ...
//! double free|invalid free|realloc of freed block ...`) and
//! abort() (SIGABRT). And a layout mmap cannot satisfy gives null.

use std::os::unix::process::ExitStatusExt;

use allocator_tests::run_probe;

const PROBE: &str = env!("CARGO_BIN_EXE_probe");

/// Runs a misuse action and checks: it was reached, the process died by
/// SIGABRT, and stderr has exactly one allocator line containing one of `phrases`.
#[track_caller]
fn misuse(action: &str, phrases: &[&str]) {
    let run = run_probe(PROBE, None, &[action]);
    assert_eq!(run.value("misuse"), Some(action), "the misuse was not reached: {run:#?}");
    assert_eq!(run.value("survived"), None, "{action} went unnoticed: {run:#?}");
    assert_eq!(run.status.signal(), Some(libc::SIGABRT), "{action}: expected death by SIGABRT: {run:#?}");
    let lines = run.allocator_lines();
    assert_eq!(lines.len(), 1, "{action}: expected exactly one `pattern-alloc: ` line: {run:#?}");
    assert!(phrases.iter().any(|p| lines[0].contains(p)), "{action}: the line names none of {phrases:?}: {run:#?}");
    assert!(!run.stderr.contains("panicked"), "{action}: a panic instead of a report: {run:#?}");
}

#[test]
fn double_free_of_a_small_block() {
    misuse("double-free-small", &["double free"]);
}

#[test]
fn double_free_of_a_large_block() {
    // Once unmapped, a large block may no longer be known: either word is right.
    misuse("double-free-large", &["double free", "invalid free"]);
}

#[test]
fn free_of_an_interior_pointer_of_a_small_block() {
    misuse("interior-small", &["invalid free"]);
}

#[test]
fn free_of_an_interior_pointer_of_a_large_block() {
    misuse("interior-large", &["invalid free"]);
}

#[test]
fn realloc_of_a_freed_small_block() {
    misuse("realloc-freed-small", &["realloc of freed block"]);
}

#[test]
fn realloc_of_a_freed_large_block() {
    misuse("realloc-freed-large", &["invalid realloc"]);
}

#[test]
fn free_of_a_slab_slot_never_handed_out() {
    misuse("free-never-handed-out", &["never allocated"]);
}

#[test]
fn free_of_a_stack_address() {
    misuse("free-stack", &["invalid free"]);
}

#[test]
fn free_of_a_libc_malloc_pointer() {
    misuse("free-libc-malloc", &["invalid free"]);
}

#[test]
fn a_layout_mmap_cannot_satisfy_gives_null() {
    // RLIMIT_AS at 1 TiB in the probe: 2^46 bytes cannot be mapped, whatever
    // the machine's overcommit policy.
    let run = run_probe(PROBE, None, &["huge"]);
    assert!(run.status.success(), "{run:#?}");
    for key in ["huge", "zeroed", "aligned", "realloc"] {
        assert_eq!(run.expect_value(key), "null", "{key}: {run:#?}");
    }
    assert_eq!(run.expect_value("after"), "ok", "the allocator must still work: {run:#?}");
}
