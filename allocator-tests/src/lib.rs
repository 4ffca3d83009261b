//! Helpers shared by the integration tests of pattern-alloc.
//!
//! Every test binary in `tests/` declares its own `#[global_allocator]` (with
//! the configuration it needs) and uses these helpers to allocate through it
//! and to check what the memory reads as.
//!
//! DESIGN.md section 9: fresh heap memory is uninitialized to the compiler, so
//! it is only ever read here through `core::ptr::read_volatile`, and fresh
//! pointers pass through `core::hint::black_box` first. Writes that precede a
//! free are volatile too, so that they cannot be dropped as dead stores.
//!
//! The helpers call the `GlobalAlloc` methods of the allocator directly (not
//! `std::alloc::alloc`), so the compiler's allocation-elision rules never apply.

use core::alloc::{GlobalAlloc, Layout};
use core::hint::black_box;
use core::ptr::{read_volatile, write_volatile};
use std::fmt::Write as _;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

pub mod cli;
#[cfg(all(target_arch = "aarch64", target_os = "linux"))]
pub mod mte;
pub mod preload;

pub use pattern_alloc::{
    class_of, class_size, Backend, ClassPatterns, Config, Mte, MteTags, PatternAlloc, Stats, CLASS_COUNT,
    DEFAULT_CLASS_TAGS, DISTINCT_PATTERNS, LARGE_CLASS, MAX_SMALL_SIZE, SMALL_CLASS_COUNT,
};

/// The page size large blocks are rounded to.
pub const PAGE: usize = 4096;
pub const KIB: usize = 1024;
pub const MIB: usize = 1024 * 1024;

/// Smallest block of the slab front end; every class size is a multiple of it.
const MIN_BLOCK: usize = 16;

pub fn layout(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).unwrap_or_else(|e| panic!("layout({size}, {align}): {e}"))
}

pub const fn round_up(x: usize, to: usize) -> usize {
    x.div_ceil(to) * to
}

/// Alignments 1, 2, 4, ... 2 MiB.
pub fn alignments_up_to(max: usize) -> impl Iterator<Item = usize> {
    (0..usize::BITS).map(|s| 1usize << s).take_while(move |&a| a <= max)
}

/// The slab class that serves `size` at `align` (the contract: a class whose
/// size holds the request and is a multiple of the alignment), or None.
pub fn small_class_for(size: usize, align: usize) -> Option<usize> {
    let wanted = if align <= MIN_BLOCK { size } else { size.max(align) };
    let mut class = class_of(wanted)?;
    while class < SMALL_CLASS_COUNT {
        if class_size(class).is_multiple_of(align) {
            return Some(class);
        }
        class += 1;
    }
    None
}

/// The stats / pattern row a block of this layout belongs to under `threshold`.
pub fn expected_class(size: usize, align: usize, threshold: usize) -> usize {
    if size <= threshold {
        if let Some(class) = small_class_for(size, align) {
            return class;
        }
    }
    LARGE_CLASS
}

/// Usable size promised for a block: the class size for small blocks, the
/// size rounded up to a page for large ones.
pub fn expected_usable(size: usize, align: usize, threshold: usize) -> usize {
    match expected_class(size, align, threshold) {
        LARGE_CLASS => round_up(size.max(1), PAGE),
        class => class_size(class),
    }
}

/// Sizes worth testing around the slab classes and the page boundaries:
/// every class size and its neighbours, page multiples +-1, and a few large ones.
pub fn interesting_sizes() -> Vec<usize> {
    let mut sizes = Vec::new();
    for class in 0..SMALL_CLASS_COUNT {
        let s = class_size(class);
        sizes.extend([s - 1, s, s + 1]);
    }
    for pages in [1, 2, 3, 4, 8, 9, 16, 17, 32, 64, 255, 256] {
        let s = pages * PAGE;
        sizes.extend([s - 1, s, s + 1]);
    }
    sizes.extend([100_000, 200_000, MIB - 1, MIB, MIB + 1, 3 * MIB + 5]);
    sizes.sort_unstable();
    sizes.dedup();
    sizes.retain(|&s| s > 0);
    sizes
}

/// Returns the index and value of the first byte of `[p, p + len)` that is not
/// `byte`. Reads only through `read_volatile`, eight bytes at a time where aligned.
///
/// # Safety
/// `[p, p + len)` must be readable.
pub unsafe fn first_mismatch(p: *const u8, len: usize, byte: u8) -> Option<(usize, u8)> {
    let p = black_box(p);
    let word = u64::from_ne_bytes([byte; 8]);
    let mut i = 0;
    unsafe {
        while i < len && !(p as usize + i).is_multiple_of(8) {
            let b = read_volatile(p.add(i));
            if b != byte {
                return Some((i, b));
            }
            i += 1;
        }
        while i + 8 <= len {
            if read_volatile(p.add(i) as *const u64) != word {
                for j in i..i + 8 {
                    let b = read_volatile(p.add(j));
                    if b != byte {
                        return Some((j, b));
                    }
                }
            }
            i += 8;
        }
        while i < len {
            let b = read_volatile(p.add(i));
            if b != byte {
                return Some((i, b));
            }
            i += 1;
        }
    }
    None
}

/// How many bytes of `[p, p + len)` are not `byte`.
///
/// # Safety
/// `[p, p + len)` must be readable.
pub unsafe fn count_mismatches(p: *const u8, len: usize, byte: u8) -> usize {
    let p = black_box(p);
    (0..len).filter(|&i| unsafe { read_volatile(p.add(i)) } != byte).count()
}

/// A description of how `[p, p + len)` fails to read as `byte`, or Ok.
///
/// # Safety
/// `[p, p + len)` must be readable.
pub unsafe fn check_bytes(p: *const u8, len: usize, byte: u8) -> Result<(), String> {
    match unsafe { first_mismatch(p, len, byte) } {
        None => Ok(()),
        Some((i, got)) => {
            let bad = unsafe { count_mismatches(p, len, byte) };
            let mut dump = String::new();
            for j in i..(i + 16).min(len) {
                let _ = write!(dump, "{:02x} ", unsafe { read_volatile(p.add(j)) });
            }
            Err(format!(
                "byte {i} of {len} at {p:p} reads {got:#04x}, expected {byte:#04x} ({bad} bytes differ; from there: {dump})"
            ))
        }
    }
}

/// Panics with `what` and the details unless every byte of `[p, p + len)` is `byte`.
///
/// # Safety
/// `[p, p + len)` must be readable.
#[track_caller]
pub unsafe fn assert_bytes(p: *const u8, len: usize, byte: u8, what: impl std::fmt::Display) {
    if let Err(e) = unsafe { check_bytes(p, len, byte) } {
        panic!("{what}: {e}");
    }
}

/// Writes `byte` over `[p, p + len)` with volatile stores.
///
/// # Safety
/// `[p, p + len)` must be writable.
pub unsafe fn dirty(p: *mut u8, len: usize, byte: u8) {
    let word = u64::from_ne_bytes([byte; 8]);
    let mut i = 0;
    unsafe {
        while i < len && !(p as usize + i).is_multiple_of(8) {
            write_volatile(p.add(i), byte);
            i += 1;
        }
        while i + 8 <= len {
            write_volatile(p.add(i) as *mut u64, word);
            i += 8;
        }
        while i < len {
            write_volatile(p.add(i), byte);
            i += 1;
        }
    }
}

/// splitmix64: the word a stamp puts at word index `index` for `seed`.
pub fn stamp_word(seed: u64, index: u64) -> u64 {
    let mut z = seed.wrapping_add(index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Byte `i` of the stamp `seed`: byte `i % 8` (little-endian) of word `i / 8`.
pub fn stamp_byte(seed: u64, i: usize) -> u8 {
    stamp_word(seed, (i / 8) as u64).to_le_bytes()[i % 8]
}

/// Writes the stamp `seed` over `[p, p + len)` (volatile stores).
///
/// # Safety
/// `[p, p + len)` must be writable.
pub unsafe fn stamp(p: *mut u8, len: usize, seed: u64) {
    unsafe {
        if (p as usize).is_multiple_of(8) {
            let words = len / 8;
            for w in 0..words {
                write_volatile((p as *mut u64).add(w), stamp_word_ne(seed, w));
            }
            for i in words * 8..len {
                write_volatile(p.add(i), stamp_byte(seed, i));
            }
        } else {
            for i in 0..len {
                write_volatile(p.add(i), stamp_byte(seed, i));
            }
        }
    }
}

/// The first byte of `[p, p + len)` that does not match the stamp `seed`.
///
/// # Safety
/// `[p, p + len)` must be readable.
pub unsafe fn check_stamp(p: *const u8, len: usize, seed: u64) -> Result<(), String> {
    let p = black_box(p);
    let mut from = 0;
    if (p as usize).is_multiple_of(8) {
        let words = len / 8;
        while from / 8 < words
            && unsafe { read_volatile((p as *const u64).add(from / 8)) } == stamp_word_ne(seed, from / 8)
        {
            from += 8;
        }
    }
    unsafe { check_stamp_bytes(p, from, len, seed) }
}

/// The stamp word `index` as it lies in memory.
fn stamp_word_ne(seed: u64, index: usize) -> u64 {
    u64::from_ne_bytes(stamp_word(seed, index as u64).to_le_bytes())
}

unsafe fn check_stamp_bytes(p: *const u8, from: usize, len: usize, seed: u64) -> Result<(), String> {
    for i in from..len {
        let got = unsafe { read_volatile(p.add(i)) };
        if got != stamp_byte(seed, i) {
            return Err(format!(
                "byte {i} of {len} at {p:p} reads {got:#04x}, the data written there was {:#04x}",
                stamp_byte(seed, i)
            ));
        }
    }
    Ok(())
}

/// A block that passed the fresh-allocation checks.
#[derive(Clone, Copy, Debug)]
pub struct Block {
    pub ptr: *mut u8,
    pub layout: Layout,
    pub usable: usize,
    pub pattern: u8,
}

/// What a fresh block of `layout` must read as and how big it must be, as the
/// allocator's effective configuration says (so the checks hold whatever
/// `PATTERN_ALLOC` selects).
pub fn expectations(a: &PatternAlloc, layout: Layout) -> (usize, u8) {
    let config = a.effective_config();
    let class = expected_class(layout.size(), layout.align(), config.large_threshold);
    (expected_usable(layout.size(), layout.align(), config.large_threshold), config.pattern(class))
}

/// Checks a block returned for `layout`: not null, aligned, usable size as
/// promised, `pattern_of` agrees with the class table, and every usable byte
/// reads as the pattern (C1). Returns the block; on failure frees it (when
/// it is not null) and describes the problem.
///
/// # Safety
/// `ptr` must be null or a live block of `a` allocated with `layout`.
pub unsafe fn check_fresh_block(a: &PatternAlloc, ptr: *mut u8, layout: Layout) -> Result<Block, String> {
    let ptr = black_box(ptr);
    let (size, align) = (layout.size(), layout.align());
    if ptr.is_null() {
        return Err(format!("alloc({size}, align {align}) returned null"));
    }
    let fail = |msg: String| {
        unsafe { a.dealloc(ptr, layout) };
        Err(format!("alloc({size}, align {align}) = {ptr:p}: {msg}"))
    };
    if !(ptr as usize).is_multiple_of(align) {
        return fail(format!("not aligned to {align}"));
    }
    let (want_usable, want_pattern) = expectations(a, layout);
    let usable = unsafe { a.usable_size(ptr) };
    if usable != want_usable {
        return fail(format!("usable_size is {usable}, expected {want_usable}"));
    }
    let pattern = a.pattern_of(layout);
    if pattern != want_pattern {
        return fail(format!("pattern_of says {pattern:#04x}, the class table says {want_pattern:#04x}"));
    }
    if let Err(e) = unsafe { check_bytes(ptr, usable, pattern) } {
        return fail(e);
    }
    Ok(Block { ptr, layout, usable, pattern })
}

/// Allocates `layout` from `a` and checks it with [`check_fresh_block`].
pub fn try_alloc_checked(a: &PatternAlloc, layout: Layout) -> Result<Block, String> {
    unsafe {
        let ptr = a.alloc(layout);
        check_fresh_block(a, ptr, layout)
    }
}

/// [`try_alloc_checked`] that panics with `what` on failure.
#[track_caller]
pub fn alloc_checked(a: &PatternAlloc, layout: Layout, what: impl std::fmt::Display) -> Block {
    try_alloc_checked(a, layout).unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Frees a block from [`alloc_checked`].
///
/// # Safety
/// The block must be live.
pub unsafe fn free(a: &PatternAlloc, block: Block) {
    unsafe { a.dealloc(block.ptr, block.layout) }
}

/// Resident set size in bytes (VmRSS of /proc/self/status).
/// Runs `work(t)` for t in 0..threads on as many threads, released together by
/// a barrier so they really overlap; a panic in any of them fails the caller.
pub fn run_threads_at_once(threads: usize, work: impl Fn(usize) + Sync) {
    let barrier = std::sync::Barrier::new(threads);
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (barrier, work) = (&barrier, &work);
            scope.spawn(move || {
                barrier.wait();
                work(t);
            });
        }
    });
}

pub fn vm_rss() -> usize {
    proc_status_kib("VmRSS:") * 1024
}

/// A `kB` field of /proc/self/status.
pub fn proc_status_kib(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field} line"));
    line[field.len()..].trim().trim_end_matches("kB").trim().parse().expect("a number of kB")
}

/// Whether the `PATTERN_ALLOC` variable is set for this process: tests that
/// compare the effective configuration with the in-code one only do so when
/// nothing overrides it.
pub fn env_override() -> Option<String> {
    std::env::var("PATTERN_ALLOC").ok()
}

/// Whether `size` (at alignment 8) is served by the slab under the effective
/// configuration (a `PATTERN_ALLOC` large_threshold may move the boundary).
pub fn is_small(a: &PatternAlloc, size: usize) -> bool {
    expected_class(size, 8, a.effective_config().large_threshold) != LARGE_CLASS
}

/// The result of running a program with a time limit.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl Run {
    /// Lines of stderr written by the allocator (`pattern-alloc: ...`).
    pub fn allocator_lines(&self) -> Vec<&str> {
        self.stderr.lines().filter(|l| l.starts_with("pattern-alloc: ")).collect()
    }

    /// The value of the first `key=value` word on stdout.
    pub fn value(&self, key: &str) -> Option<&str> {
        let prefix = format!("{key}=");
        self.stdout.split_whitespace().find_map(|w| w.strip_prefix(prefix.as_str()))
    }

    #[track_caller]
    pub fn expect_value(&self, key: &str) -> &str {
        self.value(key).unwrap_or_else(|| panic!("no `{key}=` in the output: {self:#?}"))
    }
}

/// Runs `cmd` with stdout and stderr captured; kills it after `limit`.
pub fn run_with_limit(mut cmd: Command, limit: Duration) -> Run {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn the probe");
    let pid = child.id() as libc::pid_t;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let (output, timed_out) = match rx.recv_timeout(limit) {
        Ok(output) => (output, false),
        Err(_) => {
            // The waiting thread has not reaped it yet, so the pid is still ours.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            (rx.recv().expect("wait after kill"), true)
        }
    };
    let output = output.expect("wait for the probe");
    Run {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        timed_out,
    }
}

/// C5: every slab class and the large row read as their own pattern byte
/// (`a.effective_config().pattern(class)`), fresh and recycled, at the
/// smallest and largest size of the class, with plain and raised alignments;
/// blocks of all classes interleaved; growth across classes fills the new
/// tail with the new class's byte. Returns the patterns seen per row.
pub fn check_every_class_pattern(a: &PatternAlloc) -> [u8; CLASS_COUNT] {
    let config = a.effective_config();
    for class in 0..SMALL_CLASS_COUNT {
        // Classes above a lowered large_threshold (PATTERN_ALLOC) are served as large.
        let row = if class_size(class) <= config.large_threshold { class } else { LARGE_CLASS };
        let smallest = if class == 0 { 1 } else { class_size(class - 1) + 1 };
        for size in [smallest, class_size(class)] {
            for align in [1, 8, 16] {
                let l = layout(size, align);
                assert_eq!(a.pattern_of(l), config.pattern(row), "pattern_of({l:?}), class {class}");
                for round in 0..2 {
                    let blocks: Vec<Block> =
                        (0..8).map(|_| alloc_checked(a, l, format_args!("class {class} round {round}"))).collect();
                    for b in &blocks {
                        if row == class {
                            assert_eq!(b.usable, class_size(class));
                        }
                        assert_eq!(b.pattern, config.pattern(row));
                        unsafe { dirty(b.ptr, b.usable, !b.pattern) };
                    }
                    for b in blocks {
                        unsafe { free(a, b) };
                    }
                }
            }
        }
    }
    // Large blocks: the last row.
    for size in [MAX_SMALL_SIZE + 1, 100_000, MIB, 4 * MIB + 7] {
        for align in [8, 64 * KIB, 2 * MIB] {
            let l = layout(size, align);
            assert_eq!(a.pattern_of(l), config.pattern(LARGE_CLASS), "pattern_of({l:?})");
            for _ in 0..2 {
                let b = alloc_checked(a, l, "large");
                unsafe { dirty(b.ptr, b.usable, !b.pattern) };
                unsafe { free(a, b) };
            }
        }
    }
    // Raised alignments pick a class that is a multiple of the alignment.
    for (size, align) in [(1, 32), (100, 64), (100, 4096), (5000, 4096), (1, 16384), (1, 32768), (1, 65536)] {
        let l = layout(size, align);
        let class = expected_class(size, align, config.large_threshold);
        assert_eq!(a.pattern_of(l), config.pattern(class), "pattern_of({l:?}): row {class}");
        let b = alloc_checked(a, l, "aligned");
        unsafe { free(a, b) };
    }
    // All classes interleaved, many rounds: slab pages of different patterns side by side.
    let mut live: Vec<Block> = Vec::new();
    for round in 0..6 {
        for class in (0..SMALL_CLASS_COUNT).rev() {
            let l = layout(class_size(class) - (round % 3), 8);
            let b = alloc_checked(a, l, format_args!("interleaved class {class}"));
            unsafe { dirty(b.ptr, b.usable, !b.pattern) };
            live.push(b);
        }
        let keep = live.split_off(live.len() / 2);
        for b in live {
            unsafe { free(a, b) };
        }
        live = keep;
    }
    for b in live {
        unsafe { free(a, b) };
    }
    // Growth into another class: the new tail reads as the new class's byte.
    for (old, new) in [(100, 3000), (16, 17), (1000, 30000), (1000, 50000), (40000, 1 << 20)] {
        let l = layout(old, 8);
        let b = alloc_checked(a, l, "grow source");
        unsafe { stamp(b.ptr, old, 3) };
        let q = core::hint::black_box(unsafe { a.realloc(b.ptr, l, new) });
        assert!(!q.is_null());
        let nl = layout(new, 8);
        let usable = unsafe { a.usable_size(q) };
        unsafe { check_stamp(q, old, 3) }.unwrap();
        let want = config.pattern(expected_class(new, 8, config.large_threshold));
        unsafe { assert_bytes(q.add(old), usable - old, want, format_args!("realloc {old} -> {new} tail")) };
        unsafe { a.dealloc(q, nl) };
    }
    // Zeroed blocks stay zero whatever the class pattern.
    for size in [16, 3000, 100_000] {
        let l = layout(size, 8);
        let p = core::hint::black_box(unsafe { a.alloc_zeroed(l) });
        assert!(!p.is_null());
        unsafe { assert_bytes(p, a.usable_size(p), 0, format_args!("alloc_zeroed({size})")) };
        unsafe { a.dealloc(p, l) };
    }
    core::array::from_fn(|class| config.pattern(class))
}

/// A command that runs a program built for the target. Under emulation
/// (`PATTERN_ALLOC_TEST_RUNNER="qemu-aarch64 -cpu max"`, set by ci/mte/) the
/// emulator runs it: without binfmt_misc the kernel cannot exec it directly.
pub fn target_command(program: &str) -> Command {
    let runner = std::env::var("PATTERN_ALLOC_TEST_RUNNER").unwrap_or_default();
    let mut words = runner.split_whitespace();
    match words.next() {
        Some(emulator) => {
            let mut cmd = Command::new(emulator);
            cmd.args(words).arg(program);
            cmd
        }
        None => Command::new(program),
    }
}

/// Runs the `probe` binary (path given by the caller, from
/// `env!("CARGO_BIN_EXE_probe")`) with `PATTERN_ALLOC` set to `options`, or
/// removed when `options` is None.
pub fn run_probe(probe: &str, options: Option<&str>, args: &[&str]) -> Run {
    let mut cmd = target_command(probe);
    cmd.args(args);
    match options {
        Some(value) => cmd.env("PATTERN_ALLOC", value),
        None => cmd.env_remove("PATTERN_ALLOC"),
    };
    let run = run_with_limit(cmd, Duration::from_secs(60));
    assert!(!run.timed_out, "probe {args:?} with PATTERN_ALLOC={options:?} hung: {run:#?}");
    run
}

/// Whether `PATTERN_ALLOC` asks for a backend other than `name`. Tests of a
/// backend may skip its backend-specific checks only then: when nothing
/// overrides the backend set in code, a missing backend is a failure.
pub fn backend_overridden_away_from(name: &str) -> bool {
    std::env::var("PATTERN_ALLOC").is_ok_and(|options| {
        options.split([':', ',']).filter_map(|item| item.strip_prefix("backend=")).any(|backend| backend != name)
    })
}
