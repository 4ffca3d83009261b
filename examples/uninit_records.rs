//! Unsafe Rust that reads heap memory it never wrote, and passes under glibc.
//!
//! `pack` lays names out in fixed 32-byte slots for a (pretend) on-disk table.
//! To skip zeroing the buffer it uses `Vec::with_capacity` + `set_len`, and
//! copies each name into its slot, "knowing" every slot is written. It is not:
//! the bytes after each name (the padding) are never written, and `Vec::set_len`
//! requires every element up to the new length to be initialized. The table's
//! checksum covers the padding, so it depends on what the allocator left there.
//!
//! Under glibc the 32 KB buffer is fresh memory from the top of the heap, which
//! reads as zeros: the checksum is the same on every run and nothing looks wrong.
//! Under pattern-alloc the padding reads as the pattern, and `pattern-alloc hunt`
//! sees the checksum change with it:
//!
//! ```sh
//! cargo build --release --workspace --examples
//! target/release/pattern-alloc hunt -- target/release/examples/uninit_records
//! ```
//!
//! This example uses the default (system) allocator on purpose: the hunt
//! preloads pattern-alloc underneath it, as it would for any program.
//!
//! The buffer is made in a function that is never inlined and passed through
//! `black_box`, so the optimizer cannot see that the padding it later reads
//! was never written (to the compiler such a read is undefined behaviour, and
//! it could fold it away).

use std::hint::black_box;

const SLOT: usize = 32;
const RECORDS: usize = 1000;

/// FNV-1a: a checksum of every byte of the table, padding included.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[inline(never)]
fn pack(names: &[String]) -> Vec<u8> {
    let mut table: Vec<u8> = Vec::with_capacity(names.len() * SLOT);
    // BUG: claims every byte is initialized; only the names are written below.
    // Clippy's uninit_vec lint flags this form (the allow stands for the
    // review that waved it through); when the reservation and the set_len are
    // in different functions no lint sees it, and the hunt still does.
    #[allow(clippy::uninit_vec)]
    unsafe {
        table.set_len(names.len() * SLOT)
    };
    for (slot, name) in table.chunks_exact_mut(SLOT).zip(names) {
        let length = name.len().min(SLOT);
        slot[..length].copy_from_slice(&name.as_bytes()[..length]);
    }
    black_box(table)
}

fn main() {
    let names: Vec<String> = (0..RECORDS).map(|i| format!("user-{i:04}")).collect();
    let table = pack(&names);
    println!("packed {} records into {} bytes", names.len(), table.len());
    println!("first slot: {}", table[..SLOT].escape_ascii());
    println!("table checksum: {:016x}", checksum(black_box(&table)));
}
