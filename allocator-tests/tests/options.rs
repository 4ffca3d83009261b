//! Each key of the `PATTERN_ALLOC` options string takes effect (DESIGN.md
//! section 5), observed from outside: the `probe` binary runs with a given
//! string and prints what it saw. The probe's in-code configuration is
//! `fill(0x6b).free_fill(0x5c)`, so "the in-code value stayed in force" is
//! visible as 0x6b / 0x5c, and the environment overriding it as anything else.

use allocator_tests::{class_of, run_probe, Run, LARGE_CLASS};

const PROBE: &str = env!("CARGO_BIN_EXE_probe");

/// Runs the probe and requires a clean exit.
#[track_caller]
fn probe(options: Option<&str>, args: &[&str]) -> Run {
    let run = run_probe(PROBE, options, args);
    assert!(run.status.success(), "probe {args:?} with PATTERN_ALLOC={options:?} failed: {run:#?}");
    run
}

/// The probe's `pattern` action: the byte a fresh block reads as, and more.
#[track_caller]
fn pattern(options: Option<&str>, size: usize, align: usize) -> Run {
    let run = probe(options, &["pattern", &size.to_string(), &align.to_string()]);
    assert_eq!(run.expect_value("uniform"), "1", "block not uniform: {run:#?}");
    assert_eq!(run.expect_value("aligned"), "1", "block misaligned: {run:#?}");
    assert_eq!(run.expect_value("byte"), run.expect_value("pattern_of"), "pattern_of disagrees: {run:#?}");
    run
}

#[track_caller]
fn byte_of(options: Option<&str>, size: usize, align: usize) -> String {
    pattern(options, size, align).expect_value("byte").to_string()
}

#[track_caller]
fn config(options: Option<&str>) -> Run {
    probe(options, &["config"])
}

#[track_caller]
fn no_allocator_lines(run: &Run) {
    assert!(run.allocator_lines().is_empty(), "unexpected allocator output: {run:#?}");
}

/// Exactly one allocator line on stderr, starting with `start`.
#[track_caller]
fn one_line_starting(run: &Run, start: &str) {
    let lines = run.allocator_lines();
    assert_eq!(lines.len(), 1, "expected one line starting `{start}`: {run:#?}");
    assert!(lines[0].starts_with(start), "expected a line starting `{start}`: {run:#?}");
}

#[test]
fn without_the_variable_the_in_code_config_is_in_force() {
    let run = pattern(None, 100, 8);
    assert_eq!(run.expect_value("byte"), "0x6b");
    assert_eq!(run.expect_value("row"), class_of(100).unwrap().to_string());
    assert_eq!(run.expect_value("usable"), "112");
    no_allocator_lines(&run);
    let run = config(None);
    for (key, value) in [
        ("fill", "0x6b"),
        ("free_fill", "0x5c"),
        ("class_patterns", "uniform"),
        ("backend", "auto"),
        ("large_threshold", "32768"),
        ("stats", "0"),
        ("verbose", "0"),
    ] {
        assert_eq!(run.expect_value(key), value, "{key}: {run:#?}");
    }
    no_allocator_lines(&run);
    // An empty string changes nothing.
    assert_eq!(byte_of(Some(""), 100, 8), "0x6b");
}

#[test]
fn fill_overrides_the_in_code_fill() {
    for options in ["fill=0x11", "fill=17", " fill = 0x11 ", "fill=0X11"] {
        for (size, align) in [(1, 1), (100, 8), (5000, 4096), (32768, 8), (100_000, 8), (1, 2 << 20)] {
            assert_eq!(
                byte_of(Some(options), size, align),
                "0x11",
                "PATTERN_ALLOC={options} size {size} align {align}"
            );
        }
        assert_eq!(config(Some(options)).expect_value("fill"), "0x11");
    }
    assert_eq!(byte_of(Some("fill=0"), 100, 8), "0x00");
    assert_eq!(byte_of(Some("fill=0xff"), 100_000, 8), "0xff");
    // Zeroed memory stays zero whatever the fill.
    let run = probe(Some("fill=0x11"), &["zeroed", "100000", "8"]);
    assert_eq!(run.expect_value("zero"), "1");
    let run = probe(Some("fill=0x11"), &["zeroed", "100", "8"]);
    assert_eq!(run.expect_value("zero"), "1");
}

#[test]
fn free_fill_overrides_and_turns_off() {
    let run = probe(None, &["free", "200"]);
    assert_eq!(run.expect_value("freed"), "0x5c", "in-code free pattern: {run:#?}");
    assert_eq!(run.expect_value("again"), "0x6b", "reused block: {run:#?}");
    let run = probe(Some("free_fill=0x55"), &["free", "200"]);
    assert_eq!(run.expect_value("freed"), "0x55", "{run:#?}");
    assert_eq!(run.expect_value("again"), "0x6b", "{run:#?}");
    let run = probe(Some("free_fill=0x55"), &["free", "30000"]);
    assert_eq!(run.expect_value("freed"), "0x55", "{run:#?}");
    for off in ["free_fill=off", "free_fill=none"] {
        let run = probe(Some(off), &["free", "200"]);
        let freed = run.expect_value("freed");
        assert!(freed != "0x5c" && freed != "0x55", "PATTERN_ALLOC={off} still free-fills: {run:#?}");
        assert_eq!(run.expect_value("again"), "0x6b", "{run:#?}");
        assert_eq!(config(Some(off)).expect_value("free_fill"), "off");
    }
}

#[test]
fn class_patterns_selects_the_distinct_table() {
    let opts = Some("class_patterns=1");
    for (size, align) in [(1, 1), (100, 8), (1000, 8), (32768, 8)] {
        let class = class_of(size).unwrap();
        assert_eq!(byte_of(opts, size, align), format!("{:#04x}", 0xA0 + class), "size {size}");
    }
    assert_eq!(byte_of(opts, 100_000, 8), format!("{:#04x}", 0xA0 + LARGE_CLASS));
    assert_eq!(config(opts).expect_value("class_patterns"), "distinct");
    assert_eq!(byte_of(Some("class_patterns=0"), 100, 8), "0x6b");
    assert_eq!(config(Some("class_patterns=0")).expect_value("class_patterns"), "uniform");
}

#[test]
fn backend_is_selected() {
    let run = config(Some("backend=eager"));
    assert_eq!(run.expect_value("backend"), "eager");
    assert_eq!(run.expect_value("stats_backend"), "eager");
    no_allocator_lines(&run);
    let run = config(Some("backend=auto"));
    assert_eq!(run.expect_value("backend"), "auto");
    assert!(!run.expect_value("stats_backend").is_empty());
    for (size, align) in [(100, 8), (100_000, 8), (1 << 20, 2 << 20)] {
        assert_eq!(byte_of(Some("backend=eager"), size, align), "0x6b");
    }
    // Unknown backends are bad values; auto stays.
    let run = config(Some("backend=bogus"));
    one_line_starting(&run, "pattern-alloc: warning: bad value");
    assert_eq!(run.expect_value("backend"), "auto");
}

#[test]
fn large_threshold_moves_the_small_large_boundary() {
    let opts = Some("large_threshold=4K");
    let row = |options, size| pattern(options, size, 8).expect_value("row").to_string();
    let usable = |options, size| pattern(options, size, 8).expect_value("usable").to_string();
    assert_eq!(row(opts, 8192), LARGE_CLASS.to_string(), "an 8 KiB block is large under 4K");
    assert_eq!(row(opts, 4097), LARGE_CLASS.to_string());
    assert_eq!(usable(opts, 5000), "8192", "large blocks are page-rounded");
    assert_eq!(row(opts, 4096), class_of(4096).unwrap().to_string());
    assert_eq!(usable(opts, 4096), "4096");
    assert_eq!(config(opts).expect_value("large_threshold"), "4096");
    // The default keeps them small.
    assert_eq!(row(None, 8192), class_of(8192).unwrap().to_string());
    assert_eq!(usable(None, 5000), "5120");
    // 0: everything is large.
    assert_eq!(row(Some("large_threshold=0"), 1), LARGE_CLASS.to_string());
    assert_eq!(usable(Some("large_threshold=0"), 1), "4096");
    // Combined with the class table: the large row's byte.
    let byte = byte_of(Some("large_threshold=4K:class_patterns=1"), 5000, 8);
    assert_eq!(byte, format!("{:#04x}", 0xA0 + LARGE_CLASS));
}

#[test]
fn stats_prints_a_summary_at_exit() {
    let run = probe(Some("stats=1"), &["exit"]);
    assert!(
        run.stderr.lines().any(|l| l.starts_with("pattern-alloc: stats")),
        "no `pattern-alloc: stats` line at exit: {run:#?}"
    );
    for options in [None, Some("stats=0")] {
        let run = probe(options, &["exit"]);
        assert!(!run.stderr.contains("pattern-alloc: stats"), "stats printed without stats=1: {run:#?}");
    }
}

#[test]
fn print_stats_writes_the_summary_to_stderr() {
    let run = probe(None, &["print-stats"]);
    let lines = run.allocator_lines();
    assert!(lines.first().is_some_and(|l| l.starts_with("pattern-alloc: stats")), "{run:#?}");
    assert!(lines.len() > 2, "the summary has rows: {run:#?}");
}

#[test]
fn verbose_prints_the_config_once() {
    let run = pattern(Some("verbose=1"), 100, 8);
    one_line_starting(&run, "pattern-alloc: config ");
    assert_eq!(run.expect_value("byte"), "0x6b");
    no_allocator_lines(&pattern(Some("verbose=0"), 100, 8));
    no_allocator_lines(&pattern(None, 100, 8));
}

#[test]
fn unknown_keys_warn_and_the_rest_applies() {
    let run = pattern(Some("colour=blue"), 100, 8);
    one_line_starting(&run, "pattern-alloc: warning: unknown option 'colour'");
    assert_eq!(run.expect_value("byte"), "0x6b");
    let run = pattern(Some("colour=blue:fill=0x22"), 100, 8);
    one_line_starting(&run, "pattern-alloc: warning: unknown option 'colour'");
    assert_eq!(run.expect_value("byte"), "0x22");
    let run = config(Some("fill=0x22,bogus"));
    one_line_starting(&run, "pattern-alloc: warning: unknown option 'bogus'");
    assert_eq!(run.expect_value("fill"), "0x22");
}

#[test]
fn bad_values_warn_and_keep_the_previous_value() {
    let run = pattern(Some("fill=zz"), 100, 8);
    one_line_starting(&run, "pattern-alloc: warning: bad value");
    assert_eq!(run.expect_value("byte"), "0x6b");
    let run = pattern(Some("fill=0x1ff"), 100, 8);
    one_line_starting(&run, "pattern-alloc: warning: bad value");
    assert_eq!(run.expect_value("byte"), "0x6b");
    let run = probe(Some("free_fill=0x1ff"), &["free", "200"]);
    one_line_starting(&run, "pattern-alloc: warning: bad value");
    assert_eq!(run.expect_value("freed"), "0x5c");
    let run = config(Some("large_threshold=64K"));
    one_line_starting(&run, "pattern-alloc: warning: bad value");
    assert_eq!(run.expect_value("large_threshold"), "32768");
    let run = probe(Some("stats=maybe"), &["exit"]);
    one_line_starting(&run, "pattern-alloc: warning: bad value");
    assert!(!run.stderr.contains("pattern-alloc: stats"));
    // One warning per bad item; good items in the same string still apply.
    let run = config(Some("fill=zz:verbose=2:class_patterns=1"));
    let warnings = run.allocator_lines().iter().filter(|l| l.starts_with("pattern-alloc: warning: bad value")).count();
    assert_eq!(warnings, 2, "{run:#?}");
    assert_eq!(run.expect_value("class_patterns"), "distinct");
}

#[test]
fn separators_and_several_keys() {
    let run = pattern(Some("fill=0x22,class_patterns=0:verbose=1"), 100, 8);
    assert_eq!(run.expect_value("byte"), "0x22");
    one_line_starting(&run, "pattern-alloc: config ");
    let run = config(Some("fill=0x33,free_fill=0x44:large_threshold=1K,stats=0"));
    assert_eq!(run.expect_value("fill"), "0x33");
    assert_eq!(run.expect_value("free_fill"), "0x44");
    assert_eq!(run.expect_value("large_threshold"), "1024");
}
