//! Large blocks on each page backend, side by side in one run, with plain
//! anonymous `mmap` (no pattern at all) as the floor (DESIGN.md §4, §10).
//!
//! For 2 MiB, 64 MiB and 1 GiB blocks and each backend (`eager`, `memfd`,
//! `auto`, and `refpage` where the kernel has it) it measures, on fresh blocks:
//! - `alloc`: time until the pointer returns;
//! - `write`: time to write every byte, and `alloc+write` (eager pays its fill
//!   in `alloc`, the lazy backends in page faults during the write);
//! - `read`: time to read one byte of every page;
//! - `rss 1%`: growth of VmRSS after writing one byte in every 100th page.
//!
//! The backend of a PatternAlloc process is chosen once, so every backend
//! runs in a child process of this binary (`PATTERN_ALLOC=backend=...`); the
//! children run in rounds, rotating the order, and the table shows medians.
//! Blocks up to 64 MiB stay allocated until the child ends, so that each
//! sample is a fresh mapping rather than a reuse from the cache of freed
//! blocks. One thread; the load average is printed before and after.
//!
//!   cargo bench -p pattern-alloc-benches --bench lazy_large
//!   cargo bench -p pattern-alloc-benches --bench lazy_large -- --quick      # fewer repetitions
//!   cargo bench -p pattern-alloc-benches --bench lazy_large -- --window-sweep
//!
//! `--window-sweep` measures raw memfd windows of widths 256 KiB..8 MiB: the
//! cost of making the memfd, of mapping 64 MiB and 1 GiB as windows, of
//! unmapping them, and of writing and reading 64 MiB, against anonymous
//! memory. It is how the window width of the memfd backend was chosen.

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::process::Command;
use std::ptr::{read_volatile, write_volatile};
use std::time::Instant;

use pattern_alloc::PatternAlloc;

static PATTERN: PatternAlloc = PatternAlloc::new();

const PAGE: usize = 4096;
const MIB: usize = 1 << 20;
const SIZES: [(usize, &str, usize); 3] = [(2 * MIB, "2 MiB", 31), (64 * MIB, "64 MiB", 11), (1 << 30, "1 GiB", 5)];
const CACHED_MAX: usize = 64 * MIB;

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

fn vm_rss_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A block source: the allocator (whatever backend PATTERN_ALLOC chose) or plain mmap.
trait Source {
    fn get(&self, size: usize) -> *mut u8;
    fn put(&self, p: *mut u8, size: usize);
}

struct Pattern;
struct Plain;

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 16).unwrap()
}

impl Source for Pattern {
    fn get(&self, size: usize) -> *mut u8 {
        let p = unsafe { PATTERN.alloc(layout(size)) };
        assert!(!p.is_null());
        black_box(p)
    }
    fn put(&self, p: *mut u8, size: usize) {
        unsafe { PATTERN.dealloc(p, layout(size)) };
    }
}

impl Source for Plain {
    fn get(&self, size: usize) -> *mut u8 {
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        let p = unsafe { libc::mmap(std::ptr::null_mut(), size, prot, flags, -1, 0) };
        assert_ne!(p, libc::MAP_FAILED);
        black_box(p as *mut u8)
    }
    fn put(&self, p: *mut u8, size: usize) {
        unsafe { libc::munmap(p.cast(), size) };
    }
}

/// One repetition of every measurement on fresh blocks; prints `sample` lines.
fn measure(source: &dyn Source, size: usize, held: &mut Vec<(*mut u8, usize)>) {
    let keep = |p: *mut u8, held: &mut Vec<(*mut u8, usize)>| {
        if size <= CACHED_MAX {
            held.push((p, size));
        } else {
            source.put(p, size);
        }
    };
    // Pointer back, then 1% of the pages written.
    let rss = vm_rss_kib();
    let start = Instant::now();
    let p = source.get(size);
    let alloc = ms(start);
    for page in (0..size / PAGE).step_by(100) {
        unsafe { write_volatile(p.add(page * PAGE), 1) };
    }
    let rss1 = vm_rss_kib().saturating_sub(rss);
    keep(p, held);
    // Every byte written.
    let start = Instant::now();
    let p = source.get(size);
    let got = ms(start);
    let start = Instant::now();
    unsafe { std::ptr::write_bytes(p, 0x11, size) };
    black_box(p);
    let write = ms(start);
    keep(p, held);
    // Every page read.
    let p = source.get(size);
    let start = Instant::now();
    let mut sum = 0u64;
    for page in 0..size / PAGE {
        sum += unsafe { read_volatile(p.add(page * PAGE)) } as u64;
    }
    black_box(sum);
    let read = ms(start);
    keep(p, held);
    println!("sample alloc={alloc} write={write} alloc_write={} read={read} rss1={rss1}", got + write);
}

fn child(backend: &str, size: usize, reps: usize) {
    let mut held = Vec::new();
    let source: &dyn Source = if backend == "plain" { &Plain } else { &Pattern };
    // Backend choice, probe and memfd creation happen at the first patterned
    // mapping: pay them before measuring.
    let warm = source.get(size);
    held.push((warm, size));
    for _ in 0..reps {
        measure(source, size, &mut held);
    }
    if backend != "plain" {
        let stats = PATTERN.stats();
        println!("backend={} fallbacks={} filled={}", stats.backend, stats.lazy_fallbacks, stats.bytes_patterned);
    }
    for (p, size) in held {
        source.put(p, size);
    }
}

#[derive(Default)]
struct Samples {
    alloc: Vec<f64>,
    write: Vec<f64>,
    alloc_write: Vec<f64>,
    read: Vec<f64>,
    rss1: Vec<f64>,
    backend: String,
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

fn run_child(backend: &str, size: usize, reps: usize, into: &mut Samples) {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new(exe);
    cmd.args(["--child", backend, &size.to_string(), &reps.to_string()]);
    match backend {
        "plain" => cmd.env_remove("PATTERN_ALLOC"),
        b => cmd.env("PATTERN_ALLOC", format!("backend={b}")),
    };
    let out = cmd.output().expect("run a benchmark child");
    assert!(out.status.success(), "child {backend} failed: {}", String::from_utf8_lossy(&out.stderr));
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let value = |key: &str| {
            line.split_whitespace().find_map(|w| w.strip_prefix(key)?.strip_prefix('=')).map(str::to_string)
        };
        if line.starts_with("sample") {
            let num = |key| value(key).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
            into.alloc.push(num("alloc"));
            into.write.push(num("write"));
            into.alloc_write.push(num("alloc_write"));
            into.read.push(num("read"));
            into.rss1.push(num("rss1"));
        } else if let Some(name) = value("backend") {
            into.backend =
                format!("{name} (fallbacks {}, filled {} B)", value("fallbacks").unwrap(), value("filled").unwrap());
        }
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn refpage_available() -> bool {
    let mut samples = Samples::default();
    run_child("refpage", 2 * MIB, 1, &mut samples);
    samples.backend.starts_with("refpage")
}

fn compare(quick: bool) {
    let threads = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!("lazy_large: 1 thread, {threads} CPUs, kernel {}, load average {} at start", kernel.trim(), loadavg());
    let mut backends = vec!["plain", "eager", "memfd", "auto"];
    if refpage_available() {
        backends.push("refpage");
    } else {
        println!("refpage: absent on this kernel (backend=refpage falls back to memfd), not measured");
    }
    println!(
        "\n{:<7} {:<8} {:>11} {:>9} {:>11} {:>11} {:>13} {:>10} {:>9} {:>9}  backend in use",
        "size", "source", "alloc ms", "x eager", "write ms", "+alloc ms", "x plain", "read ms", "rss 1%", "% block"
    );
    for (size, name, reps) in SIZES {
        let reps = if quick { reps.div_ceil(3) } else { reps };
        let rounds = 3.min(reps);
        let mut results: Vec<Samples> = backends.iter().map(|_| Samples::default()).collect();
        for round in 0..rounds {
            let per_round = reps / rounds + usize::from(round < reps % rounds);
            for k in 0..backends.len() {
                let index = (k + round) % backends.len();
                run_child(backends[index], size, per_round, &mut results[index]);
            }
        }
        let eager_alloc = median(&results[1].alloc);
        let plain_total = median(&results[0].alloc_write);
        for (backend, samples) in backends.iter().zip(&results) {
            let rss1 = median(&samples.rss1);
            println!(
                "{:<7} {:<8} {:>11.4} {:>9} {:>11.3} {:>11.3} {:>13.2} {:>10.3} {:>6.0} KiB {:>8.2}%  {}",
                name,
                backend,
                median(&samples.alloc),
                if *backend == "eager" || *backend == "plain" {
                    "-".to_string()
                } else {
                    format!("{:.0}x", eager_alloc / median(&samples.alloc))
                },
                median(&samples.write),
                median(&samples.alloc_write),
                median(&samples.alloc_write) / plain_total,
                median(&samples.read),
                rss1,
                rss1 * 1024.0 * 100.0 / size as f64,
                samples.backend
            );
        }
    }
    println!("\nload average {} at the end", loadavg());
    println!("x eager: eager's alloc time over this one's; x plain: alloc+write over plain mmap's alloc+write");
}

/// Raw windows of width `w` over a PROT_NONE reservation of `len` bytes
/// (file offset = address % w, as the memfd backend lays them out).
fn map_windows(fd: i32, w: usize, len: usize) -> *mut u8 {
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
    let base = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_NONE, flags, -1, 0) };
    assert_ne!(base, libc::MAP_FAILED);
    let (mut at, end) = (base as usize, base as usize + len);
    while at < end {
        let piece = ((at / w + 1) * w).min(end) - at;
        let flags = libc::MAP_PRIVATE | libc::MAP_FIXED | libc::MAP_NORESERVE;
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        let got = unsafe { libc::mmap(at as *mut libc::c_void, piece, prot, flags, fd, (at % w) as libc::off_t) };
        assert_eq!(got as usize, at, "window mapping");
        at += piece;
    }
    base as *mut u8
}

fn make_memfd(w: usize) -> i32 {
    let fd = unsafe { libc::memfd_create(c"sweep".as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    assert!(fd >= 0);
    let chunk = vec![0xAAu8; MIB.min(w)];
    unsafe {
        assert_eq!(libc::ftruncate(fd, w as libc::off_t), 0);
        for offset in (0..w).step_by(chunk.len()) {
            assert_eq!(
                libc::pwrite(fd, chunk.as_ptr().cast(), chunk.len(), offset as libc::off_t),
                chunk.len() as isize
            );
        }
        let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
        assert_eq!(libc::fcntl(fd, libc::F_ADD_SEALS, seals), 0);
    }
    fd
}

fn window_sweep() {
    const REPS: usize = 9;
    const LEN: usize = 64 * MIB;
    const GIB: usize = 1 << 30;
    println!("window sweep: 1 thread, load average {} at start, medians of {REPS}", loadavg());
    println!(
        "{:>9} {:>10} {:>11} {:>11} {:>13} {:>13} {:>12} {:>10}",
        "window", "create ms", "map 64M ms", "map 1G ms", "unmap 1G ms", "write 64M ms", "read 64M ms", "VMAs/GiB"
    );
    for w in [0, 256 << 10, 512 << 10, MIB, 2 * MIB, 4 * MIB, 8 * MIB] {
        let mut columns: [Vec<f64>; 6] = Default::default();
        for _ in 0..REPS {
            let anon = || Plain.get(LEN);
            let start = Instant::now();
            let fd = if w == 0 { -1 } else { make_memfd(w) };
            columns[0].push(ms(start));
            let start = Instant::now();
            let p = if w == 0 { anon() } else { map_windows(fd, w, LEN) };
            columns[1].push(ms(start));
            let start = Instant::now();
            unsafe { std::ptr::write_bytes(p, 0x11, LEN) };
            black_box(p);
            columns[4].push(ms(start));
            Plain.put(p, LEN);
            let p = if w == 0 { anon() } else { map_windows(fd, w, LEN) };
            let start = Instant::now();
            let mut sum = 0u64;
            for page in 0..LEN / PAGE {
                sum += unsafe { read_volatile(p.add(page * PAGE)) } as u64;
            }
            black_box(sum);
            columns[5].push(ms(start));
            Plain.put(p, LEN);
            if w != 0 {
                let start = Instant::now();
                let p = map_windows(fd, w, GIB);
                columns[2].push(ms(start));
                let start = Instant::now();
                Plain.put(p, GIB);
                columns[3].push(ms(start));
                unsafe { libc::close(fd) };
            }
        }
        let label = if w == 0 { "anon".to_string() } else { format!("{} KiB", w >> 10) };
        let vmas = GIB.checked_div(w).map_or("1".to_string(), |n| n.to_string());
        println!(
            "{label:>9} {:>10.3} {:>11.3} {:>11.3} {:>13.3} {:>13.3} {:>12.3} {vmas:>10}",
            median(&columns[0]),
            median(&columns[1]),
            median(&columns[2]),
            median(&columns[3]),
            median(&columns[4]),
            median(&columns[5])
        );
    }
    println!("load average {} at the end", loadavg());
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        let size = args[3].parse().unwrap();
        let reps = args[4].parse().unwrap();
        return child(&args[2], size, reps);
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing we use.
    if args.iter().any(|a| a == "--window-sweep") {
        return window_sweep();
    }
    compare(args.iter().any(|a| a == "--quick"));
}
