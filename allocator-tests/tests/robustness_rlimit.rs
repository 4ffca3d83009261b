//! Memory exhaustion under RLIMIT_AS (`ulimit -v`), through the LD_PRELOAD
//! library: a C program allocates until malloc returns NULL (errno ENOMEM),
//! checks and frees every block, then allocates the same sequence again, all
//! of which must succeed and read as the pattern (c/rlimit_as.c). Under each
//! backend the library runs here: the memfd backend reserves address space
//! for its windows, so its limits are hit on other paths than eager's.

use allocator_tests::preload::*;

#[test]
fn allocate_until_null_free_all_allocate_again() {
    for backend in backends() {
        let options = format!("backend={backend}");
        let run = run_checked("rlimit_as", Some(&options), "0xaa", &["768"]);
        eprintln!("{options}: {}", run.stdout.trim());
    }
}

#[test]
fn the_same_with_all_blocks_large() {
    let run = run_checked("rlimit_as", Some("large_threshold=0"), "0xaa", &["512"]);
    eprintln!("large_threshold=0: {}", run.stdout.trim());
}
