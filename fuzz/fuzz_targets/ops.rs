//! Operation sequences against a shadow model.
//!
//! The input is read as a sequence of operations (alloc, zeroed alloc,
//! realloc, C-face realloc, free, writes, hand-offs to a second thread) on a
//! `PatternAlloc` value called directly (the fuzzer's own allocations stay
//! with the system allocator). The model holds, for every live block, what each of its usable
//! bytes must read as; after every step every live block is compared with it:
//! - never-written bytes read as the block's pattern (C1), zeros after a
//!   zeroed alloc (C2), written bytes survive realloc (C3);
//! - the pointer is aligned as asked, and the usable size is the class size
//!   (small) or the request rounded up to a page (large).
//!
//! `large_threshold` is 4 KiB so large blocks (mmap, mremap, the cache) are
//! reached with small requests.

#![no_main]

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use pattern_alloc::{class_size, PatternAlloc, LARGE_CLASS};

static A: PatternAlloc = PatternAlloc::new().large_threshold(4096).free_fill(0x55);

const PAGE: usize = 4096;
const MAX_LIVE: usize = 48;
const MAX_OPS: usize = 400;

/// One live block and what each of its usable bytes must read as.
struct Block {
    ptr: *mut u8,
    size: usize,
    align: usize,
    /// Served by the large path (its own mapping): realloc then moves pages,
    /// with their contents, instead of copying the requested bytes.
    large: bool,
    pattern: u8,
    expected: Vec<u8>,
}

/// Requests served by the second thread, so frees and reallocs cross threads
/// (the remote free path) and blocks it allocated get freed by this one.
enum Request {
    Alloc(Layout, bool),
    Free(usize, Layout),
    Realloc(usize, Layout, usize),
}

struct Worker {
    requests: Sender<Request>,
    replies: Receiver<usize>,
}

fn worker() -> &'static Mutex<Worker> {
    static WORKER: OnceLock<Mutex<Worker>> = OnceLock::new();
    WORKER.get_or_init(|| {
        let (requests, inbox) = channel::<Request>();
        let (outbox, replies) = channel::<usize>();
        std::thread::spawn(move || {
            for request in inbox {
                let reply = unsafe {
                    match request {
                        Request::Alloc(l, false) => A.alloc(l) as usize,
                        Request::Alloc(l, true) => A.alloc_zeroed(l) as usize,
                        Request::Free(p, l) => {
                            A.dealloc(p as *mut u8, l);
                            0
                        }
                        Request::Realloc(p, l, n) => A.realloc(p as *mut u8, l, n) as usize,
                    }
                };
                if outbox.send(reply).is_err() {
                    return;
                }
            }
        });
        Mutex::new(Worker { requests, replies })
    })
}

fn on_worker(request: Request) -> usize {
    let worker = worker().lock().unwrap();
    worker.requests.send(request).unwrap();
    worker.replies.recv().unwrap()
}

/// The input as a stream of numbers; zeros once it runs out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> usize {
        usize::from(self.byte()) | usize::from(self.byte()) << 8
    }

    /// Mostly small sizes, some around the large threshold, a few large.
    fn size(&mut self) -> usize {
        let kind = self.byte();
        let raw = self.u16();
        match kind % 8 {
            0..=2 => raw % 129,
            3 | 4 => raw % 4097,
            5 => 4096 - 64 + raw % 128,
            6 => raw % (64 * 1024 + 1),
            _ if !raw.is_multiple_of(8) => raw % (256 * 1024 + 1),
            // Up to 1 MiB, rarely: a block that may span two memfd windows.
            _ => raw * 16 % (1024 * 1024 + 1),
        }
    }

    /// Powers of two up to 64 KiB, mostly small.
    fn align(&mut self) -> usize {
        let b = self.byte();
        let shift = if b < 160 { b % 5 } else { b % 17 };
        1 << shift
    }
}

fn layout_of(block: &Block) -> Layout {
    Layout::from_size_align(block.size, block.align).unwrap()
}

/// Usable size the allocator promises for a block of this layout and kind.
fn promised_usable(size: usize, align: usize, large: bool) -> usize {
    if large {
        size.max(1).next_multiple_of(PAGE)
    } else {
        class_size(A.class_of_layout(Layout::from_size_align(size, align).unwrap()))
    }
}

/// Compares a block with its model; `what` and `step` say where, on failure.
fn check(block: &Block, what: &str, step: usize) {
    let ptr = black_box(block.ptr);
    assert!((ptr as usize).is_multiple_of(block.align), "{what} {step}: {ptr:p} is not aligned to {}", block.align);
    let usable = unsafe { A.usable_size(ptr) };
    assert_eq!(usable, block.expected.len(), "{what} {step}: usable size of {ptr:p} (size {})", block.size);
    // SAFETY: a live block of `usable` bytes; the allocator returned it
    // through an opaque call, so the compiler knows nothing of its contents.
    let actual = unsafe { std::slice::from_raw_parts(ptr as *const u8, usable) };
    if actual != block.expected.as_slice() {
        let at = actual.iter().zip(&block.expected).position(|(a, e)| a != e).unwrap();
        panic!(
            "{what} {step}: block {ptr:p} (size {}, align {}, large {}, usable {usable}): byte {at} reads {:#04x}, the model says {:#04x}",
            block.size, block.align, block.large, actual[at], block.expected[at]
        );
    }
}

/// A fresh block from either thread: checks the promises and makes its model.
fn fresh(ptr: *mut u8, size: usize, align: usize, zeroed: bool) -> Block {
    assert!(!ptr.is_null(), "alloc({size}, {align}, zeroed {zeroed}) returned null");
    let layout = Layout::from_size_align(size, align).unwrap();
    let large = A.class_of_layout(layout) == LARGE_CLASS;
    let pattern = A.pattern_of(layout);
    let usable = promised_usable(size, align, large);
    let byte = if zeroed { 0 } else { pattern };
    let block = Block { ptr, size, align, large, pattern, expected: vec![byte; usable] };
    check(&block, "fresh block at step", 0);
    block
}

/// The model of `old` reallocated to `new_size` at `new_ptr`.
fn reallocated(old: Block, new_ptr: *mut u8, new_size: usize) -> Block {
    assert!(!new_ptr.is_null(), "realloc({:p}, {} -> {new_size}) returned null", old.ptr, old.size);
    let layout = Layout::from_size_align(new_size, old.align).unwrap();
    let new_large = A.class_of_layout(layout) == LARGE_CLASS;
    let kept = old.size.min(new_size);
    if new_ptr != old.ptr && !(old.large && new_large) {
        // A new block, and the kept bytes copied into it.
        let mut block = fresh_model(new_ptr, new_size, old.align, new_large, A.pattern_of(layout));
        block.expected[..kept].copy_from_slice(&old.expected[..kept]);
        return block;
    }
    // In place, or a large block whose pages moved: bytes the block gives up
    // (past the new size, up to the old size) read as the pattern again,
    // bytes past the old usable size are new and read as the pattern, the
    // rest keeps what it read as.
    let large = old.large;
    // A small block stays in its slot: its usable size is its class's.
    let usable = if large { promised_usable(new_size, old.align, true) } else { old.expected.len() };
    let mut expected = old.expected;
    expected.resize(usable, old.pattern);
    let repatterned_end = old.size.min(usable);
    if new_size < repatterned_end {
        expected[new_size..repatterned_end].fill(old.pattern);
    }
    Block { ptr: new_ptr, size: new_size, align: old.align, large, pattern: old.pattern, expected }
}

fn fresh_model(ptr: *mut u8, size: usize, align: usize, large: bool, pattern: u8) -> Block {
    Block { ptr, size, align, large, pattern, expected: vec![pattern; promised_usable(size, align, large)] }
}

fn run(data: &[u8]) {
    let mut input = Input(data);
    let mut live: Vec<Block> = Vec::new();
    for step in 0..MAX_OPS {
        if input.0.is_empty() {
            break;
        }
        let op = input.byte();
        let pick = usize::from(input.byte());
        match op % 10 {
            0 | 1 if live.len() < MAX_LIVE => {
                let (size, align, zeroed) = (input.size(), input.align(), op % 10 == 1);
                let layout = Layout::from_size_align(size, align).unwrap();
                let ptr = unsafe {
                    if zeroed {
                        A.alloc_zeroed(layout)
                    } else {
                        A.alloc(layout)
                    }
                };
                live.push(fresh(ptr, size, align, zeroed));
            }
            2 if !live.is_empty() => {
                let block = live.swap_remove(pick % live.len());
                unsafe { A.dealloc(block.ptr, layout_of(&block)) };
            }
            3 if !live.is_empty() => {
                let index = pick % live.len();
                let new_size = input.size();
                let block = live.swap_remove(index);
                let new_ptr = unsafe { A.realloc(block.ptr, layout_of(&block), new_size) };
                live.push(reallocated(block, new_ptr, new_size));
            }
            4 | 5 if !live.is_empty() => {
                let index = pick % live.len();
                let block = &mut live[index];
                if block.size > 0 {
                    let offset = input.u16() % block.size;
                    let len = (input.u16() % 512).min(block.size - offset);
                    let byte = input.byte();
                    unsafe { core::ptr::write_bytes(block.ptr.add(offset), byte, len) };
                    block.expected[offset..offset + len].fill(byte);
                }
            }
            6 if !live.is_empty() => {
                let block = live.swap_remove(pick % live.len());
                on_worker(Request::Free(block.ptr as usize, layout_of(&block)));
            }
            7 if !live.is_empty() => {
                let new_size = input.size();
                let block = live.swap_remove(pick % live.len());
                let new_ptr = on_worker(Request::Realloc(block.ptr as usize, layout_of(&block), new_size));
                live.push(reallocated(block, new_ptr as *mut u8, new_size));
            }
            8 if live.len() < MAX_LIVE => {
                let (size, align, zeroed) = (input.size(), input.align(), pick % 2 == 1);
                let layout = Layout::from_size_align(size, align).unwrap();
                let ptr = on_worker(Request::Alloc(layout, zeroed)) as *mut u8;
                live.push(fresh(ptr, size, align, zeroed));
            }
            9 if !live.is_empty() => {
                // The C face (`realloc` of the preload library): it keeps the
                // whole usable size and promises only 16-byte alignment.
                let new_size = input.size();
                let mut block = live.swap_remove(pick % live.len());
                block.size = block.expected.len();
                block.align = block.align.min(16);
                let new_ptr = unsafe { pattern_alloc::raw::reallocate(block.ptr, new_size) };
                live.push(reallocated(block, new_ptr, new_size));
            }
            _ => {}
        }
        for block in &live {
            check(block, "after step", step);
        }
    }
    for block in live {
        check(&block, "at the end, after step", MAX_OPS);
        unsafe { A.dealloc(block.ptr, layout_of(&block)) };
    }
}

fuzz_target!(|data: &[u8]| run(data));
