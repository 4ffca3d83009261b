//! Fork from a multi-threaded process whose other threads are busy allocating
//! (DESIGN.md section 2: a child of a multi-threaded parent must be able to
//! allocate). The child allocates, checks contents, frees blocks of the parent,
//! starts a thread, and leaves with `_exit`; an alarm turns a deadlock into a
//! SIGALRM death that the parent reports.

use core::alloc::GlobalAlloc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use allocator_tests::*;

#[global_allocator]
static A: PatternAlloc = PatternAlloc::new();

const FORKS: usize = 50;
const CHILD_ALARM_S: u32 = 20;

/// What the child does; an Err makes it exit with status 1 after writing the
/// reason to stderr (which the test harness shows).
fn child_work(parent_blocks: &[(usize, usize, u64)], iteration: usize) -> Result<(), String> {
    let sizes = [1, 8, 100, 1000, 5000, 32768, 40000, 200_000];
    let mut held = Vec::new();
    for round in 0..3 {
        for &size in &sizes {
            for align in [8, 4096] {
                let b = try_alloc_checked(&A, layout(size, align)).map_err(|e| format!("round {round}: {e}"))?;
                unsafe { stamp(b.ptr, size.min(4096), size as u64) };
                held.push(b);
            }
        }
        for b in held.drain(..) {
            unsafe { check_stamp(b.ptr, b.layout.size().min(4096), b.layout.size() as u64) }?;
            unsafe { free(&A, b) };
        }
    }
    // Blocks the parent allocated before the fork: intact, and freeable here.
    for &(addr, size, seed) in parent_blocks {
        unsafe { check_stamp(addr as *const u8, size, seed) }.map_err(|e| format!("parent block: {e}"))?;
        unsafe { A.dealloc(addr as *mut u8, layout(size, 8)) };
    }
    let v: Vec<String> = (0..2000).map(|i| i.to_string()).collect();
    if v.iter().enumerate().any(|(i, s)| *s != i.to_string()) {
        return Err("Vec<String> values".into());
    }
    // A new thread in the child gets a heap of its own.
    if iteration.is_multiple_of(5) {
        let t = thread::spawn(|| {
            let b = try_alloc_checked(&A, layout(3000, 8))?;
            unsafe { free(&A, b) };
            Ok::<(), String>(())
        });
        t.join().map_err(|_| "thread in child panicked".to_string())??;
    }
    Ok(())
}

fn busy(stop: Arc<AtomicBool>, id: usize, rounds: Arc<AtomicUsize>) {
    let mut held: Vec<Block> = Vec::new();
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let size = match n % 31 {
            0 => 40_000 + n % 20_000,
            1 => 300_000,
            _ => 1 + (n * 97 + id) % 4000,
        };
        let b = alloc_checked(&A, layout(size, 8), format_args!("busy thread {id}"));
        unsafe { dirty(b.ptr, b.usable, 0x77) };
        held.push(b);
        if held.len() > 100 {
            let b = held.swap_remove(n % held.len());
            unsafe { free(&A, b) };
        }
        n += 1;
        rounds.fetch_add(1, Ordering::Relaxed);
        if n.is_multiple_of(64) {
            thread::yield_now(); // let the forking thread through on small machines
        }
    }
    for b in held {
        unsafe { free(&A, b) };
    }
}

#[test]
fn fork_while_other_threads_allocate() {
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicUsize::new(0));
    let busy_threads: Vec<_> = (0..3)
        .map(|id| {
            let (stop, rounds) = (stop.clone(), rounds.clone());
            thread::spawn(move || busy(stop, id, rounds))
        })
        .collect();
    while rounds.load(Ordering::Relaxed) < 1000 {
        thread::yield_now();
    }

    let mut failures = Vec::new();
    for iteration in 0..FORKS {
        // Blocks the child will check and free (the parent frees them too: each
        // process has its own copy).
        let parent_blocks: Vec<(usize, usize, u64)> = [24usize, 700, 9000, 50_000]
            .iter()
            .map(|&size| {
                let b = alloc_checked(&A, layout(size, 8), "parent block");
                let seed = (iteration * 10 + size) as u64;
                unsafe { stamp(b.ptr, size, seed) };
                (b.ptr as usize, size, seed)
            })
            .collect();
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            unsafe { libc::alarm(CHILD_ALARM_S) };
            let result =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| child_work(&parent_blocks, iteration)));
            let code = match result {
                Ok(Ok(())) => 0,
                Err(_) => 2, // a panic: its message is already on stderr
                Ok(Err(e)) => {
                    let msg = format!("fork child {iteration}: {e}\n");
                    unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
                    1
                }
            };
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(waited, pid);
        if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
            let how = if libc::WIFSIGNALED(status) {
                let sig = libc::WTERMSIG(status);
                let deadlock = if sig == libc::SIGALRM { " (alarm: the child hung, a deadlock?)" } else { "" };
                format!("killed by signal {sig}{deadlock}")
            } else {
                format!("exit status {}", libc::WEXITSTATUS(status))
            };
            failures.push(format!("fork {iteration}: child {how}"));
        }
        for (addr, size, seed) in parent_blocks {
            unsafe { check_stamp(addr as *const u8, size, seed) }.unwrap();
            unsafe { A.dealloc(addr as *mut u8, layout(size, 8)) };
        }
    }

    stop.store(true, Ordering::Relaxed);
    for t in busy_threads {
        t.join().unwrap();
    }
    assert!(failures.is_empty(), "{} of {FORKS} children failed: {failures:#?}", failures.len());
    // The parent is fine too.
    for size in [10, 10_000, 100_000] {
        let b = alloc_checked(&A, layout(size, 8), "parent after the forks");
        unsafe { free(&A, b) };
    }
}
