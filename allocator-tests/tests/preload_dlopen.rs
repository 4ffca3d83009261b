//! dlopen under LD_PRELOAD (c/dlopen.c with c/dl_lib.c): a library allocating
//! in its constructor and through calls, blocks and strdup'd strings freed on
//! the other side of the boundary, three load/unload cycles, and a fourth
//! with RTLD_DEEPBIND, whose glibc blocks the program frees and reallocates.

use allocator_tests::preload::*;

#[test]
fn allocations_cross_the_boundary() {
    let lib = c_library("dl_lib");
    let lib = lib.to_str().expect("UTF-8 path");
    run_checked("dlopen", None, "0xaa", &[lib]);
    run_checked("dlopen", Some("large_threshold=0"), "0xaa", &[lib]);
}

#[test]
fn glibc_control() {
    let lib = c_library("dl_lib");
    run_glibc_control("dlopen", &[lib.to_str().expect("UTF-8 path")]);
}
