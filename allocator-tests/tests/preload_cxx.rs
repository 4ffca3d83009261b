//! C++ under LD_PRELOAD: every exported operator new/delete called directly
//! (plain, array, nothrow, sized, align_val_t up to 2 MiB), std::bad_alloc and
//! nullptr for impossible sizes, objects whose constructors leave bytes
//! unwritten (c/cxx_operators.cc); standard containers, smart pointers,
//! exceptions, and reserved capacity reading as the pattern (c/cxx_containers.cc).

use allocator_tests::preload::*;

#[test]
fn operators() {
    run_checked("cxx_operators", None, "0xaa", &[]);
}

#[test]
fn operators_all_large_chosen_fill() {
    run_checked("cxx_operators", Some("large_threshold=0:fill=0x5c"), "0x5c", &[]);
}

#[test]
fn operators_glibc_control() {
    run_glibc_control("cxx_operators", &[]);
}

#[test]
fn containers() {
    run_checked("cxx_containers", None, "0xaa", &[]);
}

#[test]
fn containers_class_patterns_free_fill() {
    run_checked("cxx_containers", Some("class_patterns=1:free_fill=0x55"), "class", &[]);
}

#[test]
fn containers_glibc_control() {
    run_glibc_control("cxx_containers", &[]);
}
