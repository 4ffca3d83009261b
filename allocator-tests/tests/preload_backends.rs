//! The C programs under each page backend the library offers on this machine
//! (DESIGN.md section 9: the suite runs under each backend), named explicitly
//! with `backend=`: contents of every allocation function, small and all-large,
//! threads with cross-thread frees, fork while threads allocate.

use allocator_tests::preload::*;

#[test]
fn contents_under_each_backend() {
    for backend in backends() {
        run_checked("contents", Some(&format!("backend={backend}")), "0xaa", &[]);
        run_checked("contents", Some(&format!("backend={backend}:large_threshold=0:fill=0x5c")), "0x5c", &[]);
    }
}

#[test]
fn threads_and_fork_under_each_backend() {
    for backend in backends() {
        let options = format!("backend={backend}");
        run_checked("threads", Some(&options), "0xaa", &["4000", "2"]);
        let run = run_checked("fork", Some(&options), "0xaa", &["20"]);
        assert!(run.stdout.contains("20 children ok"), "{}", describe(&run));
    }
}
