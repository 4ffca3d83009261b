//! refpage vs memfd windows vs eager for a 64 MiB block, side by side in one
//! boot of the test kernel (ci/kernel/): time until the pointer returns, time
//! to write every byte after that (eager blocks are resident by then, lazy
//! ones fault each page in), their sum, and VmRSS growth after writing one byte in every
//! 100th page of a fresh block. The backend is chosen once per process, so
//! each backend runs in a child of this program (`PATTERN_ALLOC=backend=X`),
//! which first checks that it really got that backend. Under QEMU TCG the
//! absolute times are those of an emulator, so the summary gives ratios.
//! Times are counted in TSC ticks (rdtsc): the test kernel cannot calibrate
//! the TSC under TCG and falls back to the jiffies clock, whose 4 ms steps
//! would round a lazy block's return time to 0.
//!
//!   compare              the table and the ratios (exit 1 if a child failed)
//!   compare backend      one 64 MiB block; prints `backend=NAME` and checks the pattern
//!   compare child NAME   the measurements for one backend

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::process::Command;
use std::ptr::{read_volatile, write_volatile};

use pattern_alloc::PatternAlloc;

#[global_allocator]
static A: PatternAlloc = PatternAlloc::new();

const PAGE: usize = 4096;
const BLOCK: usize = 64 << 20;
const REPS: usize = 5;
const BACKENDS: [&str; 3] = ["refpage", "memfd", "eager"];

fn block_layout() -> Layout {
    Layout::from_size_align(BLOCK, 8).unwrap()
}

fn vm_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// The time-stamp counter: in QEMU TCG it follows the host's clock.
fn ticks() -> u64 {
    // SAFETY: rdtsc has no preconditions on x86_64.
    unsafe { core::arch::x86_64::_rdtsc() }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A fresh 64 MiB block, checked to read as the pattern at one word per page.
fn fresh_block() -> (*mut u8, f64) {
    let start = ticks();
    let p = black_box(unsafe { A.alloc(block_layout()) });
    let took = (ticks() - start) as f64;
    assert!(!p.is_null(), "64 MiB allocation failed");
    (p, took)
}

fn check_pattern(p: *const u8) {
    let pattern = A.pattern_of(block_layout());
    let word = u64::from_ne_bytes([pattern; 8]);
    for offset in (0..BLOCK).step_by(PAGE) {
        let got = unsafe { read_volatile(p.add(offset) as *const u64) };
        assert_eq!(got, word, "fresh block at offset {offset}");
    }
}

fn backend() {
    let (p, _) = fresh_block();
    check_pattern(p);
    unsafe { A.dealloc(p, block_layout()) };
    println!("backend={}", A.stats().backend);
}

fn child(wanted: &str) {
    // Every block stays allocated until the end, so each sample is a fresh
    // mapping, never a reuse from the cache of freed blocks.
    let mut held = Vec::new();
    let (first, _) = fresh_block();
    held.push(first);
    let got = A.stats().backend;
    assert_eq!(got, wanted, "PATTERN_ALLOC=backend={wanted} selected {got}");
    check_pattern(first);
    let (mut returned, mut written, mut rss) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..REPS {
        let (p, took) = fresh_block();
        returned.push(took);
        let start = ticks();
        unsafe { core::ptr::write_bytes(p, 0x11, BLOCK) };
        black_box(p);
        written.push((ticks() - start) as f64);
        held.push(p);

        let before = vm_rss_kib();
        let (p, _) = fresh_block();
        for page in (0..BLOCK / PAGE).step_by(100) {
            unsafe { write_volatile(p.add(page * PAGE), 0x22) };
        }
        rss.push((vm_rss_kib() - before) as f64);
        held.push(p);
    }
    println!(
        "result backend={wanted} return_ticks={:.0} write_ticks={:.0} rss_kib={:.0}",
        median(returned),
        median(written),
        median(rss)
    );
    held.into_iter().for_each(|p| unsafe { A.dealloc(p, block_layout()) });
}

struct Row {
    returned: f64,
    written: f64,
    rss_kib: f64,
}

fn run_child(backend: &str) -> Option<Row> {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["child", backend])
        .env("PATTERN_ALLOC", format!("backend={backend}"))
        .output()
        .expect("run child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        println!("compare: the {backend} child failed: {}", out.status);
        return None;
    }
    let line = stdout.lines().find(|l| l.starts_with("result "))?;
    let value = |key: &str| -> Option<f64> {
        line.split(' ').find_map(|w| w.strip_prefix(key)?.strip_prefix('=')).and_then(|v| v.parse().ok())
    };
    Some(Row { returned: value("return_ticks")?, written: value("write_ticks")?, rss_kib: value("rss_kib")? })
}

fn compare() -> bool {
    let rows: Vec<Option<Row>> = BACKENDS.iter().map(|b| run_child(b)).collect();
    if rows.iter().any(Option::is_none) {
        return false;
    }
    let rows: Vec<Row> = rows.into_iter().flatten().collect();
    println!("compare: 64 MiB block, medians of {REPS}, measured under QEMU TCG (emulated: compare ratios only)");
    println!("compare: {:<8} {:>16} {:>16} {:>16}", "backend", "return Mticks", "write Mticks", "RSS after 1% KiB");
    for (name, row) in BACKENDS.iter().zip(&rows) {
        println!("compare: {name:<8} {:>16.4} {:>16.1} {:>16.0}", row.returned / 1e6, row.written / 1e6, row.rss_kib);
    }
    let (refpage, memfd, eager) = (&rows[0], &rows[1], &rows[2]);
    println!(
        "compare: time to return: eager/refpage {:.0}x, eager/memfd {:.0}x, memfd/refpage {:.1}x",
        eager.returned / refpage.returned,
        eager.returned / memfd.returned,
        memfd.returned / refpage.returned
    );
    println!(
        "compare: time to write all: refpage/eager {:.2}x, memfd/eager {:.2}x, refpage/memfd {:.2}x",
        refpage.written / eager.written,
        memfd.written / eager.written,
        refpage.written / memfd.written
    );
    let total = |row: &Row| row.returned + row.written;
    println!(
        "compare: return + write all: refpage/eager {:.2}x, memfd/eager {:.2}x, refpage/memfd {:.2}x",
        total(refpage) / total(eager),
        total(memfd) / total(eager),
        total(refpage) / total(memfd)
    );
    println!(
        "compare: RSS after 1% writes: refpage/eager {:.3}, memfd/eager {:.3}, refpage/memfd {:.2}",
        refpage.rss_kib / eager.rss_kib,
        memfd.rss_kib / eager.rss_kib,
        refpage.rss_kib / memfd.rss_kib
    );
    true
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("backend") => backend(),
        Some("child") => child(&args[2]),
        None => {
            if !compare() {
                std::process::exit(1);
            }
        }
        Some(other) => {
            eprintln!("compare: unknown mode {other}");
            std::process::exit(2);
        }
    }
}
