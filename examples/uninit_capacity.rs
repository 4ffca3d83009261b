//! What does the spare capacity of a fresh `Vec<u8>` read as?
//!
//! Under pattern-alloc: the alloc pattern (0xAA unless configured otherwise),
//! every time. Under glibc's malloc: whatever the last owner of the memory left
//! there — a freed "secret", allocator metadata or zeros, depending on luck.
//!
//! For each size the example first fills a block with secret data and frees it,
//! so the memory the next allocation may recycle is dirty, then allocates the
//! same size again and prints its first 32 unwritten bytes:
//! - pattern-alloc: `Vec::with_capacity(n)` through the global allocator, read
//!   through `spare_capacity_mut()`;
//! - libc: the same sequence with `libc::malloc`/`libc::free` directly.
//!
//! Run: `cargo run --release --example uninit_capacity`, optionally with
//! `PATTERN_ALLOC=fill=0x5c` (or any other options string). Exits 0 only if every
//! pattern-alloc byte shown equals the pattern of its block, so it doubles as a
//! smoke check.

use std::alloc::Layout;
use std::hint::black_box;
use std::mem::MaybeUninit;
use std::process::ExitCode;
use std::ptr;

use pattern_alloc::{ClassPatterns, PatternAlloc};

#[global_allocator]
static A: PatternAlloc = PatternAlloc::new();

/// How many unwritten bytes of each new block are shown.
const SHOWN: usize = 32;
/// The "secret" the previous owner of the memory wrote (32 bytes, repeated).
const SECRET: &[u8; 32] = b"password=hunter2;token=s3cr3t-7 ";
/// Block sizes tried: two small (slab) ones and one large (its own mapping).
const SIZES: [usize; 3] = [64, 4096, 1 << 20];

#[cfg(target_env = "gnu")]
const LIBC_NAME: &str = "glibc malloc";
#[cfg(not(target_env = "gnu"))]
const LIBC_NAME: &str = "libc malloc";

fn main() -> ExitCode {
    let config = A.effective_config();
    println!("pattern-alloc: alloc pattern in force is fill=0x{:02x} (A.effective_config().fill);", config.fill);
    if config.class_patterns != ClassPatterns::Uniform {
        println!("  class_patterns is on: each size class has its own byte, shown per row below.");
    }
    println!("  run with PATTERN_ALLOC=fill=0x.. to change it (e.g. PATTERN_ALLOC=fill=0x5c).");
    println!("Each row: a block of that size was filled with {:?}... and freed;", String::from_utf8_lossy(SECRET));
    println!("then a block of the same size was allocated and its first {SHOWN} unwritten bytes read.\n");
    let (size, allocator, bytes) = ("size", "allocator", format!("first {SHOWN} unwritten bytes (hex)"));
    println!("{size:<8} {allocator:<14} {bytes:<71} as text");

    let mut mismatches = 0;
    for size in SIZES {
        let expected = A.pattern_of(Layout::array::<u8>(size).expect("small size"));
        let ours = pattern_alloc_case(size);
        let theirs = libc_case(size);
        let bad = ours.iter().filter(|&&b| b != expected).count();
        mismatches += bad;
        let verdict = if bad == 0 {
            format!("all 0x{expected:02x}")
        } else {
            format!("{bad} bytes are not the pattern 0x{expected:02x}!")
        };
        println!("{:<8} {:<14} {} {}  {}", human(size), "pattern-alloc", hex(&ours), text(&ours), verdict);
        println!("{:<8} {:<14} {} {}", "", LIBC_NAME, hex(&theirs), text(&theirs));
    }

    if mismatches == 0 {
        println!("\nOK: every pattern-alloc byte shown is the pattern; the libc rows show what a bug would have read.");
        ExitCode::SUCCESS
    } else {
        println!("\nFAIL: {mismatches} pattern-alloc bytes shown are not the pattern (contract C1 broken).");
        ExitCode::FAILURE
    }
}

/// Dirty a block of `size` bytes with the secret, drop it, then read the spare
/// capacity of a fresh `Vec::with_capacity(size)`.
fn pattern_alloc_case(size: usize) -> [u8; SHOWN] {
    let mut secret: Vec<u8> = Vec::with_capacity(size);
    secret.extend(SECRET.iter().cycle().take(size));
    // Let the secret escape, so the writes before the free are not optimized away.
    drop(black_box(secret));

    let mut fresh: Vec<u8> = Vec::with_capacity(size);
    first_spare_bytes(&mut fresh)
}

/// The same sequence through `libc::malloc`/`libc::free`.
fn libc_case(size: usize) -> [u8; SHOWN] {
    // SAFETY: every pointer is checked for NULL; writes and reads stay below `size`.
    unsafe {
        let secret = libc::malloc(size) as *mut u8;
        assert!(!secret.is_null(), "malloc({size}) failed");
        for (i, byte) in SECRET.iter().cycle().take(size).enumerate() {
            secret.add(i).write(*byte);
        }
        libc::free(black_box(secret) as *mut libc::c_void);

        let fresh = libc::malloc(size) as *mut u8;
        assert!(!fresh.is_null(), "malloc({size}) failed");
        let bytes = first_bytes(fresh);
        libc::free(fresh as *mut libc::c_void);
        bytes
    }
}

/// Reads the first `SHOWN` bytes of `v`'s spare capacity. Not inlined and read
/// volatile, so the optimizer cannot reason about the uninitialized memory
/// (DESIGN.md §9): this is the read a buggy program would do.
#[inline(never)]
fn first_spare_bytes(v: &mut Vec<u8>) -> [u8; SHOWN] {
    let spare: &mut [MaybeUninit<u8>] = v.spare_capacity_mut();
    assert!(spare.len() >= SHOWN, "capacity below {SHOWN}");
    let mut out = [0u8; SHOWN];
    for (slot, byte) in spare.iter().zip(out.iter_mut()) {
        // SAFETY: the slot is inside the allocation; the point is to look at
        // bytes nobody wrote, which is what the allocator under test defines.
        *byte = unsafe { ptr::read_volatile(slot.as_ptr()) };
    }
    out
}

/// Reads the first `SHOWN` bytes at `p`, volatile and out of line.
///
/// # Safety
/// `p` must be valid for reads of `SHOWN` bytes.
#[inline(never)]
unsafe fn first_bytes(p: *const u8) -> [u8; SHOWN] {
    let mut out = [0u8; SHOWN];
    for (i, byte) in out.iter_mut().enumerate() {
        // SAFETY: the caller guarantees `SHOWN` readable bytes.
        *byte = unsafe { ptr::read_volatile(p.add(i)) };
    }
    out
}

/// Hex in groups of 8 bytes: 71 characters for 32 bytes.
fn hex(bytes: &[u8]) -> String {
    let groups: Vec<String> = bytes.chunks(8).map(|chunk| chunk.iter().map(|b| format!("{b:02x}")).collect()).collect();
    groups.join(" ")
}

/// Printable ASCII as is, everything else as '.'.
fn text(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| if b.is_ascii_graphic() || b == b' ' { b as char } else { '.' }).collect()
}

fn human(size: usize) -> String {
    match size {
        s if s >= 1 << 20 && s % (1 << 20) == 0 => format!("{} MiB", s >> 20),
        s if s >= 1 << 10 && s % (1 << 10) == 0 => format!("{} KiB", s >> 10),
        s => format!("{s} B"),
    }
}
