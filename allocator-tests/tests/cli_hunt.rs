//! `pattern-alloc hunt`: divergence found in both bundled examples (exit 1),
//! none in correct programs (exit 0, stdin replayed to every run), a
//! nondeterministic program reported as such (exit 3), a crash under some
//! patterns reported with the library's decoded registers.

use allocator_tests::cli::*;
use allocator_tests::preload::*;
use allocator_tests::Run;

fn code(run: &Run) -> Option<i32> {
    assert!(!run.timed_out, "hung\n{}", describe(run));
    run.status.code()
}

#[track_caller]
fn expect_code(run: &Run, expected: i32, what: &str) {
    assert_eq!(code(run), Some(expected), "{what}: unexpected exit status\n{}", describe(run));
}

/// The progress lines go to stderr, one per run, and never to stdout.
#[track_caller]
fn expect_progress(run: &Run, runs: usize) {
    let progress: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("pattern-alloc hunt: [")).collect();
    assert_eq!(progress.len(), runs, "progress lines\n{}", describe(run));
    assert!(progress[runs - 1].contains(&format!("[{runs}/{runs}]")), "{}", describe(run));
    assert!(!run.stdout.contains("pattern-alloc hunt: ["), "progress leaked into stdout\n{}", describe(run));
}

/// The example programs pass silently under glibc: two plain runs agree and exit 0.
#[track_caller]
fn silent_under_glibc(program: &std::path::Path) {
    let first = Exec::new(program).run_ok("example under glibc");
    let second = Exec::new(program).run_ok("example under glibc, again");
    assert_eq!(first.stdout, second.stdout, "the example must be deterministic under glibc");
}

#[test]
fn hunt_finds_the_c_example() {
    let program = c_example("uninit_histogram");
    silent_under_glibc(&program);
    let glibc = Exec::new(&program).run_ok("glibc");
    assert!(glibc.stdout.contains(" 4 letters: 2\n"), "glibc's fresh memory is zeros here\n{}", describe(&glibc));
    let run = pattern_alloc(["hunt", "--"]).arg(&program).run();
    expect_code(&run, 1, "hunt on the C example");
    expect_progress(&run, 4);
    for expected in [
        "DIVERGENCE",
        "stdout differs, first at line 3:",
        "fill=0x00 |  4 letters: 2\n",
        "fill=0xaa |  4 letters: 2863311532\n",
        "stderr: the same in every run",
        "shows '2863311532', which is the pattern plus 2",
    ] {
        assert!(run.stdout.contains(expected), "missing {expected:?}\n{}", describe(&run));
    }
}

#[test]
fn hunt_finds_the_rust_example() {
    let program = rust_example("uninit_records");
    silent_under_glibc(program);
    let run = pattern_alloc(["hunt", "--patterns", "0xaa,0x00", "--"]).arg(program).run();
    expect_code(&run, 1, "hunt on the Rust example");
    expect_progress(&run, 3);
    assert!(run.stdout.contains("stdout differs, first at line 2:"), "{}", describe(&run));
    assert!(run.stdout.contains("fill=0xaa | first slot: user-0000\\xaa\\xaa"), "{}", describe(&run));
}

#[test]
fn hunt_finds_nothing_in_a_correct_program() {
    let run = pattern_alloc(["hunt", "--runs", "2", "--"]).arg(c_program("hunt_subjects")).arg("correct").run();
    expect_code(&run, 0, "hunt on a correct program");
    expect_progress(&run, 6);
    assert!(run.stdout.contains("all 6 runs agree"), "{}", describe(&run));
}

#[test]
fn hunt_replays_stdin_to_every_run() {
    let input: Vec<u8> = (0..5000).map(|i| if i % 61 == 60 { b'\n' } else { b'a' + (i % 26) as u8 }).collect();
    let program = c_program("hunt_subjects");
    let direct = Exec::new(&program).arg("stdin").stdin(input.clone()).run_ok("stdin summary under glibc");
    assert!(direct.stdout.starts_with("stdin: 5000 bytes, 81 lines"), "{}", describe(&direct));
    let run = pattern_alloc(["hunt", "--"]).arg(&program).arg("stdin").stdin(input).run();
    // Were stdin not replayed, the runs after the first would read nothing and differ.
    expect_code(&run, 0, "hunt on a program reading stdin");
    assert!(run.stdout.contains(&format!("stdout {} bytes", direct.stdout.len())), "{}", describe(&run));
    // A shell pipeline reading stdin, as a user would hunt one.
    let run = pattern_alloc(["hunt", "--", "sh", "-c", "sort | uniq -c | sort -rn"]).stdin("b\na\nb\nc\nb\n").run();
    expect_code(&run, 0, "hunt on a shell pipeline reading stdin");
}

#[test]
fn a_nondeterministic_program_is_not_blamed_on_memory() {
    let run = pattern_alloc(["hunt", "--"]).arg(c_program("hunt_subjects")).arg("nondeterministic").run();
    expect_code(&run, 3, "hunt on a program printing its pid");
    assert!(run.stdout.contains("NONDETERMINISTIC"), "{}", describe(&run));
    assert!(!run.stdout.contains("DIVERGENCE"), "{}", describe(&run));
    assert!(run.stdout.contains("run 1 | pid "), "{}", describe(&run));
    // Only the two baseline runs were needed to tell.
    assert_eq!(run.stderr.lines().filter(|l| l.starts_with("pattern-alloc hunt: [")).count(), 2, "{}", describe(&run));
}

#[test]
fn a_crash_under_some_patterns_is_a_divergence_with_decoded_registers() {
    let run = pattern_alloc(["hunt", "--"]).arg(c_program("hunt_subjects")).arg("checked-pointer").run();
    expect_code(&run, 1, "hunt on a program following a pointer from fresh memory");
    for expected in [
        "fill=0x00: exit 0",
        "fill=0xaa: killed by SIGSEGV",
        "pattern-alloc's report under fill=0xaa:",
        "= 0xaaaaaaaaaaaaaaaa: alloc pattern",
        "fault address = 0xffffffffffffffff: alloc pattern",
        "the exit status depends on the pattern",
    ] {
        assert!(run.stdout.contains(expected), "missing {expected:?}\n{}", describe(&run));
    }
    // --no-crash-report: the same divergence, without the library's lines.
    let run =
        pattern_alloc(["hunt", "--no-crash-report", "--"]).arg(c_program("hunt_subjects")).arg("checked-pointer").run();
    expect_code(&run, 1, "hunt --no-crash-report");
    assert!(!run.stdout.contains("alloc pattern"), "{}", describe(&run));
}

#[test]
fn a_run_that_hangs_under_one_pattern_is_stopped_and_reported() {
    // The loop count is read from fresh memory: 0 under 0x00, billions under 0xaa.
    let run = pattern_alloc(["hunt", "--timeout", "2", "--patterns", "0x00,0xaa", "--"])
        .arg(c_program("hunt_subjects"))
        .arg("spin")
        .run();
    expect_code(&run, 1, "hunt on a program whose loop count comes from fresh memory");
    assert!(run.stdout.contains("fill=0xaa: timed out after 2 s"), "{}", describe(&run));
}
