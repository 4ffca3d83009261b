//! The probe: a program with pattern-alloc as its global allocator that does
//! one thing chosen by its arguments and prints what it saw on stdout as
//! `key=value` words. The tests in `tests/probe_*.rs` run it with different
//! `PATTERN_ALLOC` strings and read the words (and stderr, and how it died).
//!
//! The in-code configuration is deliberately not the default (fill 0x6b, free
//! pattern 0x5c), so that a test can tell "the in-code value stayed in force"
//! from "the built-in default came back".
//!
//! Actions:
//!   pattern SIZE ALIGN   alloc; byte=, uniform=, usable=, pattern_of=, row= (stats row that counted it)
//!   zeroed SIZE ALIGN    alloc_zeroed; zero=1 when every usable byte is 0
//!   free SIZE            alloc, write 0x3c, free; freed= (bytes 16.. of the freed block), again=
//!   config               the effective configuration
//!   exit                 a few allocations, then a normal exit (stats at exit)
//!   print-stats          a few allocations, then print_stats() (to stderr)
//!   huge                 with RLIMIT_AS at 1 TiB: a 2^46-byte layout and friends; huge=, zeroed=, aligned=, after=
//!   double-free-small | double-free-large | interior-small | interior-large | free-stack | free-libc-malloc
//!                        misuse; the allocator must print one line and abort

use core::alloc::{GlobalAlloc, Layout};
use core::hint::black_box;
use core::ptr::read_volatile;
use std::io::Write;

use allocator_tests::{dirty, first_mismatch, layout, PatternAlloc, CLASS_COUNT};

#[global_allocator]
static A: PatternAlloc = PatternAlloc::new().fill(0x6b).free_fill(0x5c);

fn arg(args: &[String], i: usize) -> usize {
    let s = args.get(i).unwrap_or_else(|| usage());
    let parsed = match s.strip_prefix("0x") {
        Some(hex) => usize::from_str_radix(hex, 16),
        None => s.parse(),
    };
    parsed.unwrap_or_else(|_| usage())
}

fn usage() -> ! {
    eprintln!("usage: probe ACTION [ARGS]; see the source for the actions");
    std::process::exit(2)
}

/// The stats row whose allocation count went up between two snapshots.
fn counted_row(before: &pattern_alloc::Stats, after: &pattern_alloc::Stats) -> String {
    let rows: Vec<String> = (0..CLASS_COUNT)
        .filter(|&c| after.classes[c].allocs > before.classes[c].allocs)
        .map(|c| c.to_string())
        .collect();
    if rows.is_empty() {
        "none".into()
    } else {
        rows.join("+")
    }
}

/// Prints a uniform byte as 0xNN, otherwise `mixed`.
fn describe(p: *const u8, len: usize) -> String {
    if len == 0 {
        return "empty".into();
    }
    let first = unsafe { read_volatile(black_box(p)) };
    match unsafe { first_mismatch(p, len, first) } {
        None => format!("{first:#04x}"),
        Some(_) => "mixed".into(),
    }
}

/// No core dump for the misuse actions (they end in abort() on purpose).
fn no_core_dump() {
    unsafe {
        let zero = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        libc::setrlimit(libc::RLIMIT_CORE, &zero);
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

/// Says on stdout that the misuse is next, so the test can tell it was reached.
fn about_to(what: &str) {
    println!("misuse={what}");
    std::io::stdout().flush().unwrap();
}

fn survived() -> ! {
    println!("survived=1");
    std::process::exit(3)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let action = args.get(1).map(String::as_str).unwrap_or_else(|| usage());
    match action {
        "pattern" => unsafe {
            let l = layout(arg(&args, 2), arg(&args, 3));
            let before = A.stats();
            let p = black_box(A.alloc(l));
            let after = A.stats();
            assert!(!p.is_null(), "alloc returned null");
            let usable = A.usable_size(p);
            let first = read_volatile(p);
            let uniform = first_mismatch(p, usable, first).is_none();
            println!(
                "byte={first:#04x} uniform={} usable={usable} pattern_of={:#04x} row={} aligned={}",
                uniform as u8,
                A.pattern_of(l),
                counted_row(&before, &after),
                (p as usize).is_multiple_of(l.align()) as u8
            );
            A.dealloc(p, l);
        },
        "zeroed" => unsafe {
            let l = layout(arg(&args, 2), arg(&args, 3));
            let p = black_box(A.alloc_zeroed(l));
            assert!(!p.is_null(), "alloc_zeroed returned null");
            let usable = A.usable_size(p);
            println!("zero={} usable={usable}", first_mismatch(p, usable, 0).is_none() as u8);
            A.dealloc(p, l);
        },
        "free" => unsafe {
            let l = layout(arg(&args, 2), 8);
            let p = black_box(A.alloc(l));
            assert!(!p.is_null(), "alloc returned null");
            let usable = A.usable_size(p);
            dirty(p, usable, 0x3c);
            A.dealloc(p, l);
            // Nothing allocates between the free and these reads (single thread).
            let freed = describe(p.add(16), usable.saturating_sub(16));
            let q = black_box(A.alloc(l));
            let again = describe(q, A.usable_size(q));
            println!("freed={freed} again={again} same_block={}", (p == q) as u8);
            A.dealloc(q, l);
        },
        "config" => {
            let c = A.effective_config();
            let free_fill = c.free_fill.map_or("off".to_string(), |b| format!("{b:#04x}"));
            let classes = match c.class_patterns {
                pattern_alloc::ClassPatterns::Uniform => "uniform",
                pattern_alloc::ClassPatterns::Distinct => "distinct",
                pattern_alloc::ClassPatterns::Table(_) => "table",
            };
            println!(
                "fill={:#04x} free_fill={free_fill} class_patterns={classes} backend={} large_threshold={} stats={} verbose={} stats_backend={}",
                c.fill,
                c.backend.name(),
                c.large_threshold,
                c.stats as u8,
                c.verbose as u8,
                A.stats().backend
            );
        }
        "exit" => {
            let v: Vec<Vec<u8>> = (0..100).map(|i| vec![i as u8; i * 37]).collect();
            let big = vec![7u8; 100_000];
            println!("sum={}", v.iter().map(|x| x.len()).sum::<usize>() + big.len());
        }
        "print-stats" => {
            let v: Vec<Vec<u8>> = (0..100).map(|i| vec![i as u8; 3000]).collect();
            let big = vec![7u8; 100_000];
            A.print_stats();
            println!("printed=1 sum={}", v.len() + big.len());
        }
        "huge" => unsafe {
            let tib = libc::rlimit { rlim_cur: 1 << 40, rlim_max: 1 << 40 };
            assert_eq!(libc::setrlimit(libc::RLIMIT_AS, &tib), 0);
            let null_or_not = |p: *mut u8, l: Layout| {
                if p.is_null() {
                    "null".to_string()
                } else {
                    A.dealloc(p, l);
                    format!("{p:p}")
                }
            };
            let l = layout(1 << 46, 8);
            let huge = null_or_not(black_box(A.alloc(l)), l);
            let zeroed = null_or_not(black_box(A.alloc_zeroed(l)), l);
            let la = layout(1 << 45, 2 << 20);
            let aligned = null_or_not(black_box(A.alloc(la)), la);
            // A live block must survive a realloc that cannot be satisfied.
            let small = layout(100, 8);
            let p = black_box(A.alloc(small));
            allocator_tests::stamp(p, 100, 7);
            let q = A.realloc(p, small, 1 << 46);
            let realloc = if q.is_null() {
                let kept = allocator_tests::check_stamp(p, 100, 7).is_ok();
                A.dealloc(p, small);
                if kept {
                    "null"
                } else {
                    "null-but-data-lost"
                }
            } else {
                A.dealloc(q, layout(1 << 46, 8));
                "not-null"
            };
            let after = allocator_tests::try_alloc_checked(&A, layout(1 << 20, 8))
                .map(|b| {
                    allocator_tests::free(&A, b);
                    "ok".to_string()
                })
                .unwrap_or_else(|e| e.replace(' ', "_"));
            println!("huge={huge} zeroed={zeroed} aligned={aligned} realloc={realloc} after={after}");
        },
        "double-free-small" | "double-free-large" => unsafe {
            no_core_dump();
            let size = if action.ends_with("small") { 64 } else { 100_000 };
            let l = layout(size, 8);
            let p = black_box(A.alloc(l));
            A.dealloc(p, l);
            about_to(action);
            A.dealloc(black_box(p), l);
            survived();
        },
        "realloc-freed-small" | "realloc-freed-large" => unsafe {
            no_core_dump();
            let size = if action.ends_with("small") { 64 } else { 100_000 };
            let l = layout(size, 8);
            let p = black_box(A.alloc(l));
            A.dealloc(p, l);
            about_to(action);
            let q = A.realloc(black_box(p), l, size * 2);
            black_box(q);
            survived();
        },
        "free-never-handed-out" => unsafe {
            no_core_dump();
            // The last 64-byte slot of the slab page (64 KiB, aligned) holding
            // a fresh block: this probe never carves that far.
            let l = layout(64, 8);
            let p = black_box(A.alloc(l));
            let last = ((p as usize | 0xFFFF) + 1 - 64) as *mut u8;
            about_to(action);
            A.dealloc(black_box(last), l);
            survived();
        },
        "interior-small" | "interior-large" => unsafe {
            no_core_dump();
            let (size, offset) = if action.ends_with("small") { (64, 16) } else { (100_000, 8192) };
            let l = layout(size, 8);
            let p = black_box(A.alloc(l));
            about_to(action);
            A.dealloc(black_box(p.add(offset)), layout(size - offset, 8));
            survived();
        },
        "free-stack" => unsafe {
            no_core_dump();
            let mut local = [0u64; 64];
            let p = black_box(local.as_mut_ptr() as *mut u8).add(64);
            about_to(action);
            A.dealloc(p, layout(64, 8));
            survived();
        },
        "free-libc-malloc" => unsafe {
            no_core_dump();
            let p = black_box(libc::malloc(64) as *mut u8);
            about_to(action);
            A.dealloc(p, layout(64, 8));
            survived();
        },
        _ => usage(),
    }
}
