//! For tests/cli_crash.rs: a Rust program with pattern-alloc as its global
//! allocator that follows a pointer read from fresh heap memory. Rust's std
//! installs its own SIGSEGV handler at start-up; with `crash_report=1` the
//! library's report must still appear and the process die of SIGSEGV.
//! Usage: crash_probe [main|thread]

use std::alloc::{alloc, Layout};
use std::hint::black_box;

use pattern_alloc::PatternAlloc;

#[global_allocator]
static A: PatternAlloc = PatternAlloc::new();

#[inline(never)]
fn fresh_pointer() -> usize {
    let layout = Layout::from_size_align(64, 8).expect("layout");
    // SAFETY: a valid layout; the block is read (volatile: it is unwritten) and leaked.
    unsafe {
        let block = black_box(alloc(layout)) as *const usize;
        std::ptr::read_volatile(block)
    }
}

fn follow(address: usize) -> u8 {
    // A byte pointer: the read must reach the hardware, not trip a debug alignment check.
    // SAFETY: none; this is the crash under test.
    unsafe { std::ptr::read_volatile(black_box(address as *const u8)) }
}

fn main() {
    let address = fresh_pointer();
    println!("pointer read from fresh memory: {address:#x}");
    let value = if std::env::args().nth(1).as_deref() == Some("thread") {
        std::thread::spawn(move || follow(address)).join().expect("thread")
    } else {
        follow(address)
    };
    println!("survived: {value}");
}
