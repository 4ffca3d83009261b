//! PatternAlloc against `std::alloc::System`, side by side in one run.
//!
//! Each criterion group holds the same workload for both allocators (functions
//! `PatternAlloc` and `System`), so the report and `ci/bench.sh` can put the
//! two times next to each other. Neither allocator is installed as the global
//! allocator: both are called through `GlobalAlloc` directly (all PatternAlloc
//! instances share one process-wide heap).
//!
//! Groups:
//! - `malloc_free/<size>`: one alloc + one-byte write + free, small sizes.
//! - `cross_thread_free/<size>`: blocks allocated on one thread, freed on another (per block).
//! - `realloc_growth/100k`: `Vec<u32>` pushes 1..=100k via raw realloc (crosses into large blocks).
//! - `large_alloc_free/<size>`: a large block allocated, one byte written, freed.
//! - `large_alloc_touch_free/<size>`: the same with one byte written per page.

use std::alloc::System;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use pattern_alloc::PatternAlloc;
use pattern_alloc_benches::{cross_thread_free, layout, malloc_free, malloc_touch_free, page_size, realloc_growth};

static PATTERN: PatternAlloc = PatternAlloc::new();

const SMALL_SIZES: [usize; 12] = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768];
const CROSS_SIZES: [usize; 3] = [16, 256, 4096];
const LARGE_SIZES: [(usize, &str); 3] = [(64 << 10, "64KiB"), (1 << 20, "1MiB"), (8 << 20, "8MiB")];
const GROWTH_COUNT: u32 = 100_000;

fn small(c: &mut Criterion) {
    for size in SMALL_SIZES {
        let layout = layout(size);
        let mut group = c.benchmark_group(format!("malloc_free/{size}"));
        group.bench_function("PatternAlloc", |b| b.iter(|| malloc_free(&PATTERN, black_box(layout))));
        group.bench_function("System", |b| b.iter(|| malloc_free(&System, black_box(layout))));
        group.finish();
    }
}

fn cross_thread(c: &mut Criterion) {
    for size in CROSS_SIZES {
        let layout = layout(size);
        let mut group = c.benchmark_group(format!("cross_thread_free/{size}"));
        group.bench_function("PatternAlloc", |b| b.iter_custom(|iters| cross_thread_free(&PATTERN, layout, iters)));
        group.bench_function("System", |b| b.iter_custom(|iters| cross_thread_free(&System, layout, iters)));
        group.finish();
    }
}

fn growth(c: &mut Criterion) {
    let mut group = c.benchmark_group("realloc_growth/100k");
    group.sample_size(20);
    group.bench_function("PatternAlloc", |b| b.iter(|| realloc_growth(&PATTERN, black_box(GROWTH_COUNT))));
    group.bench_function("System", |b| b.iter(|| realloc_growth(&System, black_box(GROWTH_COUNT))));
    group.finish();
}

fn large(c: &mut Criterion) {
    let page = page_size();
    for (size, name) in LARGE_SIZES {
        let layout = layout(size);
        let mut group = c.benchmark_group(format!("large_alloc_free/{name}"));
        group.sample_size(20);
        group.bench_function("PatternAlloc", |b| b.iter(|| malloc_free(&PATTERN, black_box(layout))));
        group.bench_function("System", |b| b.iter(|| malloc_free(&System, black_box(layout))));
        group.finish();

        let mut group = c.benchmark_group(format!("large_alloc_touch_free/{name}"));
        group.sample_size(20);
        group.bench_function("PatternAlloc", |b| b.iter(|| malloc_touch_free(&PATTERN, black_box(layout), page)));
        group.bench_function("System", |b| b.iter(|| malloc_touch_free(&System, black_box(layout), page)));
        group.finish();
    }
}

fn config() -> Criterion {
    // Short defaults for a shared 2-core machine; command-line flags
    // (--warm-up-time, --measurement-time, --sample-size) still override them.
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = small, cross_thread, growth, large
}
criterion_main!(benches);
