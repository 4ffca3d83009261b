//! The crash report of the library (`crash_report=1`, src/crash.rs): a
//! program that dereferences a pointer read from fresh heap memory dies with
//! the same signal as without the handler, after one line naming the signal
//! and one per register holding a pattern (with its size class under
//! class_patterns=1). Faults on threads created later and signals sent with
//! kill() are handed back the same way. A Rust program with pattern-alloc as
//! its global allocator gets the report too, although std installs its own
//! SIGSEGV handler at start-up.

use std::os::unix::process::ExitStatusExt as _;

use allocator_tests::preload::*;
use allocator_tests::Run;
use pattern_alloc::{class_of, class_size, DISTINCT_PATTERNS};

fn crash(size: usize, where_: &str, options: Option<&str>) -> Run {
    let run = Exec::preloaded(c_program("crash_fresh_pointer"), options).arg(size.to_string()).arg(where_).run();
    assert!(!run.timed_out, "hung\n{}", describe(&run));
    assert!(!run.stdout.contains("survived"), "the program must not survive\n{}", describe(&run));
    run
}

#[track_caller]
fn killed_by(run: &Run, signal: i32) {
    assert_eq!(run.status.signal(), Some(signal), "{}", describe(run));
}

/// The decoded register line: "<reg> = 0x<16 hex digits>: <description>".
#[track_caller]
fn register_line(run: &Run, description: &str) {
    let found = run
        .stderr
        .lines()
        .any(|line| line.starts_with("pattern-alloc:   ") && line.contains(" = 0x") && line.ends_with(description));
    assert!(found, "no register line ending in {description:?}\n{}", describe(run));
}

#[test]
fn the_same_signal_with_and_without_the_handler() {
    let without = crash(64, "main", None);
    killed_by(&without, libc::SIGSEGV);
    assert!(without.stderr.is_empty(), "no report unless asked\n{}", describe(&without));
    let with = crash(64, "main", Some("crash_report=1"));
    killed_by(&with, libc::SIGSEGV);
    assert!(with.stderr.starts_with("pattern-alloc: SIGSEGV ("), "{}", describe(&with));
    register_line(&with, "0xaaaaaaaaaaaaaaaa: alloc pattern");
}

#[test]
fn class_patterns_name_the_size_class() {
    for size in [64, 100, 3000] {
        let class = class_of(size).unwrap();
        let byte = DISTINCT_PATTERNS[class];
        let run = crash(size, "main", Some("crash_report=1:class_patterns=1"));
        killed_by(&run, libc::SIGSEGV);
        let value = format!("0x{}", format!("{byte:02x}").repeat(8));
        register_line(
            &run,
            &format!("{value}: alloc pattern of size class {class} (up to {} bytes)", class_size(class)),
        );
    }
    // A large block: its own row.
    let run = crash(100_000, "main", Some("crash_report=1:class_patterns=1"));
    register_line(&run, "alloc pattern of large blocks (over 32768 bytes)");
}

#[test]
fn a_pattern_shared_with_the_free_pattern_names_both() {
    let run = crash(64, "main", Some("crash_report=1:free_fill=0xaa"));
    killed_by(&run, libc::SIGSEGV);
    register_line(&run, "0xaaaaaaaaaaaaaaaa: alloc pattern / free pattern");
}

#[test]
fn a_fault_on_a_later_thread_is_decoded_too() {
    let run = crash(64, "thread", Some("crash_report=1"));
    killed_by(&run, libc::SIGSEGV);
    register_line(&run, "0xaaaaaaaaaaaaaaaa: alloc pattern");
}

#[test]
fn a_sent_signal_is_raised_again() {
    let run = crash(64, "raise", Some("crash_report=1"));
    killed_by(&run, libc::SIGSEGV);
    assert!(run.stderr.contains("SIGSEGV sent by process"), "{}", describe(&run));
}

#[test]
fn a_rust_program_reports_despite_std_s_own_handler() {
    for where_ in ["main", "thread"] {
        let run = Exec::new(env!("CARGO_BIN_EXE_crash_probe")).arg(where_).env("PATTERN_ALLOC", "crash_report=1").run();
        killed_by(&run, libc::SIGSEGV);
        register_line(&run, "0xaaaaaaaaaaaaaaaa: alloc pattern");
        let silent = Exec::new(env!("CARGO_BIN_EXE_crash_probe")).arg(where_).run();
        killed_by(&silent, libc::SIGSEGV);
        assert!(!silent.stderr.contains("pattern-alloc:"), "{}", describe(&silent));
    }
}
