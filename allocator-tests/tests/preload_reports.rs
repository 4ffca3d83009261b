//! What the preloaded library prints and exports: the stats summary at exit
//! (`stats=1`), the configuration line (`verbose=1`), silence by default, a
//! warning for an unknown option, and the dynamic symbol table (the whole C
//! ABI, nothing of Rust's).

use std::process::Command;

use allocator_tests::preload::*;

/// The number after `key=` on the allocator's stats line.
fn stat(line: &str, key: &str) -> u64 {
    let prefix = format!("{key}=");
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
        .parse()
        .unwrap_or_else(|e| panic!("{key}= in {line:?}: {e}"))
}

#[test]
fn stats_at_exit() {
    let run = Exec::preloaded(c_program("hello"), Some("stats=1")).arg("5000").run_ok("hello with stats=1");
    assert!(run.stdout.contains("hello: 5000 allocations"), "{}", describe(&run));
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("pattern-alloc: stats "))
        .unwrap_or_else(|| panic!("no `pattern-alloc: stats` line on stderr\n{}", describe(&run)));
    // The program itself made 5001 allocations and 5000 frees; the C runtime adds a few.
    let (allocs, frees) = (stat(line, "allocs"), stat(line, "frees"));
    assert!(allocs >= 5001, "allocs={allocs} in {line:?}");
    assert!(frees >= 5000 && frees < allocs, "frees={frees} allocs={allocs} in {line:?}");
}

#[test]
fn verbose_prints_the_configuration() {
    let run = Exec::preloaded(c_program("hello"), Some("verbose=1:fill=0x5c:large_threshold=0"))
        .arg("10")
        .run_ok("hello with verbose=1");
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("pattern-alloc: config "))
        .unwrap_or_else(|| panic!("no `pattern-alloc: config` line on stderr\n{}", describe(&run)));
    for word in ["fill=0x5c", "free_fill=off", "large_threshold=0", "verbose=1"] {
        assert!(line.split_whitespace().any(|w| w == word), "{word} missing in {line:?}");
    }
    assert_eq!(run.stderr.matches("pattern-alloc: config ").count(), 1, "{}", describe(&run));
}

#[test]
fn silent_by_default() {
    let run = Exec::preloaded(c_program("hello"), None).run_ok("hello");
    assert_eq!(run.stderr, "", "the library wrote to stderr without being asked");
    assert_eq!(run.stdout, "hello: 1000 allocations\n");
}

#[test]
fn unknown_option_warns_and_runs() {
    let run = Exec::preloaded(c_program("hello"), Some("no_such_option=1:fill=0x11")).run_ok("hello with a bad option");
    let warnings: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("pattern-alloc: ")).collect();
    assert!(
        warnings.len() == 1 && warnings[0].contains("no_such_option"),
        "expected one warning naming the option\n{}",
        describe(&run)
    );
}

/// Every name of the C ABI (DESIGN.md section 6).
const EXPORTS: &[&str] = &[
    "malloc",
    "free",
    "calloc",
    "realloc",
    "reallocarray",
    "posix_memalign",
    "aligned_alloc",
    "memalign",
    "valloc",
    "pvalloc",
    "malloc_usable_size",
    "cfree",
    "__libc_malloc",
    "__libc_free",
    "__libc_calloc",
    "__libc_realloc",
    "__libc_memalign",
    "__libc_valloc",
    "__libc_pvalloc",
    "__posix_memalign",
    "_Znwm",
    "_Znam",
    "_ZnwmRKSt9nothrow_t",
    "_ZnamRKSt9nothrow_t",
    "_ZnwmSt11align_val_t",
    "_ZnamSt11align_val_t",
    "_ZnwmSt11align_val_tRKSt9nothrow_t",
    "_ZnamSt11align_val_tRKSt9nothrow_t",
    "_ZdlPv",
    "_ZdaPv",
    "_ZdlPvm",
    "_ZdaPvm",
    "_ZdlPvSt11align_val_t",
    "_ZdaPvSt11align_val_t",
    "_ZdlPvmSt11align_val_t",
    "_ZdaPvmSt11align_val_t",
    "_ZdlPvRKSt9nothrow_t",
    "_ZdaPvRKSt9nothrow_t",
    "_ZdlPvSt11align_val_tRKSt9nothrow_t",
    "_ZdaPvSt11align_val_tRKSt9nothrow_t",
];

#[test]
fn exports_the_c_abi_and_nothing_of_rust() {
    require_tool("nm", "binutils");
    let mut cmd = Command::new("nm");
    cmd.args(["-D", "--defined-only"]).arg(library());
    let run = Exec::command(cmd).run_ok("nm -D --defined-only libpattern_alloc.so");
    // Lines are `address type name[@version]`.
    let names: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .map(|n| n.split('@').next().unwrap_or(n))
        .collect();
    let missing: Vec<&&str> = EXPORTS.iter().filter(|e| !names.contains(e)).collect();
    assert!(missing.is_empty(), "not exported: {missing:?}\nnm -D --defined-only:\n{}", run.stdout);
    let rust: Vec<&&str> =
        names.iter().filter(|n| n.starts_with("_ZN") || n.starts_with("_R") || n.contains("rust_")).collect();
    assert!(rust.is_empty(), "Rust symbols exported: {rust:?}");
    let extra: Vec<&&str> = names.iter().filter(|n| !EXPORTS.contains(n)).collect();
    eprintln!("other exported names: {extra:?}");
}
