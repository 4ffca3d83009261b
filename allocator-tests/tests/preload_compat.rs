//! glibc-compatible results at the edges under LD_PRELOAD (c/compat.c):
//! malloc(0), realloc(NULL, n) and realloc(p, 0), NULL + ENOMEM for
//! impossible sizes and overflowing products, EINVAL for bad alignments
//! (posix_memalign returns it and keeps errno), errno kept by free, pvalloc
//! rounding to pages.

use allocator_tests::preload::*;

#[test]
fn default_options() {
    run_checked("compat", None, "0xaa", &[]);
}

#[test]
fn all_blocks_large() {
    run_checked("compat", Some("large_threshold=0"), "0xaa", &[]);
}

#[test]
fn glibc_control() {
    run_glibc_control("compat", &[]);
}
