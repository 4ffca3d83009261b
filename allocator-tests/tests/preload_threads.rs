//! Threads and fork under LD_PRELOAD: 8 threads freeing and reallocating each
//! other's blocks (c/threads.c), fork while other threads allocate, 50 times,
//! each child allocating under an alarm (c/fork.c), and 1000 short-lived
//! threads without RSS growth (c/thread_churn.c).

use allocator_tests::preload::*;

#[test]
fn cross_thread_frees() {
    let run = run_checked("threads", None, "0xaa", &["20000", "3"]);
    assert!(run.stdout.contains("freed by another thread"), "{}", describe(&run));
}

#[test]
fn cross_thread_frees_all_large() {
    run_checked("threads", Some("large_threshold=0"), "0xaa", &["4000", "2"]);
}

#[test]
fn cross_thread_frees_glibc_control() {
    run_glibc_control("threads", &["4000", "2"]);
}

#[test]
fn fork_while_threads_allocate() {
    let run = run_checked("fork", None, "0xaa", &["50"]);
    assert!(run.stdout.contains("50 children ok"), "{}", describe(&run));
}

#[test]
fn fork_glibc_control() {
    run_glibc_control("fork", &["10"]);
}

#[test]
fn thread_churn() {
    let run = run_checked("thread_churn", None, "0xaa", &["1000"]);
    assert!(run.stdout.contains("1000 threads"), "{}", describe(&run));
}

#[test]
fn thread_churn_glibc_control() {
    run_glibc_control("thread_churn", &["200"]);
}

/// The harness itself: a program that hangs (here a shell and its child)
/// is killed at the time limit, with its whole process group.
#[test]
fn a_hung_program_is_killed() {
    let started = std::time::Instant::now();
    let run = Exec::new("sh").args(["-c", "sleep 60 & sleep 60"]).limit(std::time::Duration::from_secs(1)).run();
    assert!(run.timed_out, "not reported as timed out: {}", describe(&run));
    assert!(started.elapsed().as_secs() < 20, "took {:?} to give up", started.elapsed());
}
