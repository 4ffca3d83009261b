//! `pattern-alloc` usage and tool errors (exit 2, one line on stderr), the
//! library search, and `pattern-alloc run` (options passed through, merged
//! with the caller's PATTERN_ALLOC; the command's exit status or signal kept).

use std::os::unix::process::ExitStatusExt as _;

use allocator_tests::cli::*;
use allocator_tests::preload::*;
use allocator_tests::Run;

/// Exit 2 and exactly one line on stderr, mentioning `needle`; nothing on stdout.
#[track_caller]
fn one_line_error(run: &Run, needle: &str) {
    assert!(!run.timed_out, "hung\n{}", describe(run));
    assert_eq!(run.status.code(), Some(2), "{}", describe(run));
    assert_eq!(run.stderr.lines().count(), 1, "one line expected\n{}", describe(run));
    assert!(run.stderr.starts_with("pattern-alloc: "), "{}", describe(run));
    assert!(run.stderr.contains(needle), "missing {needle:?}\n{}", describe(run));
    assert!(run.stdout.is_empty(), "{}", describe(run));
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    let cases: &[(&[&str], &str)] = &[
        (&[], "missing subcommand"),
        (&["walk"], "unknown subcommand"),
        (&["hunt"], "missing the command"),
        (&["hunt", "--"], "missing the command"),
        (&["run", "--fill", "0x100", "true"], "is not a byte"),
        (&["run", "--fill"], "needs a value"),
        (&["hunt", "--patterns", "0xaa", "true"], "at least two patterns"),
        (&["hunt", "--patterns", "0xaa,zz", "true"], "is not a byte"),
        (&["hunt", "--runs", "0", "true"], "--runs"),
        (&["hunt", "--timeout", "0", "true"], "--timeout"),
        (&["hunt", "--colour", "true"], "unknown option --colour"),
        (&["hunt", "--", "/nonexistent/program"], "cannot run /nonexistent/program"),
        (&["run", "--", "/nonexistent/program"], "cannot run /nonexistent/program"),
    ];
    for (args, needle) in cases {
        let run = pattern_alloc(*args).run();
        one_line_error(&run, needle);
    }
    let help = pattern_alloc(["--help"]).run_ok("--help");
    assert!(help.stdout.starts_with("usage: pattern-alloc run"), "{}", describe(&help));
}

#[test]
fn a_missing_library_says_what_to_do() {
    // The tool copied somewhere without the library beside it.
    let dir = programs_dir().join(format!("lonely-tool-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let lonely = dir.join("pattern-alloc");
    // A hard link, not a copy: a file just written may still be open for
    // writing in a child another test thread forked (exec fails with ETXTBSY).
    // The kernel names an executable by the path it was started from.
    let _ = std::fs::remove_file(&lonely);
    std::fs::hard_link(tool(), &lonely).unwrap();
    for subcommand in ["run", "hunt"] {
        let run = Exec::new(&lonely).args([subcommand, "--", "true"]).run();
        one_line_error(&run, "libpattern_alloc.so not found beside");
        assert!(run.stderr.contains("cargo build --release --workspace"), "{}", describe(&run));
        assert!(run.stderr.contains("--lib PATH or PATTERN_ALLOC_LIB=PATH"), "{}", describe(&run));
    }
    // Told where it is, the same copy works.
    let program = c_program("hunt_subjects");
    let run = Exec::new(&lonely).args(["run", "--lib"]).arg(library()).arg(&program).arg("fresh-byte").run();
    assert_success(&run, "run --lib");
    assert_eq!(run.stdout, "0xaa\n");
    let run = Exec::new(&lonely)
        .env("PATTERN_ALLOC_LIB", library())
        .args(["run", "--fill", "0x5c", "--"])
        .arg(&program)
        .arg("fresh-byte")
        .run();
    assert_success(&run, "run with PATTERN_ALLOC_LIB");
    assert_eq!(run.stdout, "0x5c\n");
    // A wrong path is an error, not a fallback.
    let run = Exec::new(&lonely).args(["run", "--lib", "/nonexistent.so", "true"]).run();
    one_line_error(&run, "--lib /nonexistent.so: no such file");
    let run = Exec::new(tool()).env("PATTERN_ALLOC_LIB", "/nonexistent.so").args(["hunt", "true"]).run();
    one_line_error(&run, "PATTERN_ALLOC_LIB /nonexistent.so: no such file");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn hunting_a_program_the_library_cannot_enter_is_an_error_not_a_clean_result() {
    // A statically linked program ignores LD_PRELOAD: every run would agree
    // without the pattern ever reaching it.
    let program = programs_dir().join("hunt_subjects-static");
    let mut cmd = std::process::Command::new("gcc");
    cmd.args(["-static", "-O1", "-I"])
        .arg(sources_dir())
        .arg("-o")
        .arg(&program)
        .arg(sources_dir().join("hunt_subjects.c"));
    assert_success(&Exec::command(cmd).run(), "gcc -static (libc.a is in Debian's libc6-dev)");
    let run = pattern_alloc(["hunt", "--"]).arg(&program).arg("correct").run();
    assert_eq!(run.status.code(), Some(2), "{}", describe(&run));
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("pattern-alloc: the library was never initialized"), "{}", describe(&run));
    assert!(run.stdout.is_empty(), "no verdict on stdout\n{}", describe(&run));
}

#[test]
fn run_passes_options_and_keeps_the_exit_status() {
    let program = c_program("hunt_subjects");
    let run = pattern_alloc(["run", "--fill", "0x5c", "--"]).arg(&program).arg("fresh-byte").run();
    assert_success(&run, "run --fill 0x5c");
    assert_eq!(run.stdout, "0x5c\n");
    // The caller's PATTERN_ALLOC applies; the tool's keys win over it.
    let run = pattern_alloc(["run"]).env("PATTERN_ALLOC", "fill=0x11").arg(&program).arg("fresh-byte").run();
    assert_eq!(run.stdout, "0x11\n", "{}", describe(&run));
    let run =
        pattern_alloc(["run", "--fill=0x22"]).env("PATTERN_ALLOC", "fill=0x11").arg(&program).arg("fresh-byte").run();
    assert_eq!(run.stdout, "0x22\n", "{}", describe(&run));
    // --stats reaches the library.
    let run = pattern_alloc(["run", "--stats", "--"]).arg(&program).arg("fresh-byte").run();
    assert!(run.stderr.contains("pattern-alloc: stats backend="), "{}", describe(&run));
    // Exit status and signal are the command's own.
    let run = pattern_alloc(["run", "--"]).arg(&program).args(["exit", "7"]).run();
    assert_eq!(run.status.code(), Some(7), "{}", describe(&run));
    let run = pattern_alloc(["run", "--crash-report", "--"]).arg(c_program("crash_fresh_pointer")).arg("64").run();
    assert_eq!(run.status.signal(), Some(libc::SIGSEGV), "{}", describe(&run));
    assert!(run.stderr.contains("= 0xaaaaaaaaaaaaaaaa: alloc pattern"), "{}", describe(&run));
}
