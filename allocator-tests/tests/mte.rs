//! C6: arm64 memory tagging with `mte=sync` and the per-class tag table.
//!
//! Each trap is provoked in a forked child whose SIGSEGV handler exits with
//! `100 + si_code`, so the parent sees exactly which fault it was
//! (`SEGV_MTESERR` = 9; `SEGV_MTEAERR` = 8 under `PATTERN_ALLOC=mte=async`). Correct use must not trap, in the test process itself.
//! Where the CPU has no MTE (qemu `-cpu neoverse-n1`) the option must fall back
//! to untagged memory; with `MTE_REQUIRED=1` a missing MTE fails instead.
#![cfg(all(target_arch = "aarch64", target_os = "linux"))]

use core::alloc::GlobalAlloc;
use core::ptr::{read_volatile, write_volatile};

use allocator_tests::mte::*;
use allocator_tests::*;

#[global_allocator]
static A: PatternAlloc = PatternAlloc::new().mte(Mte::Sync);

/// The fault a bad access must end in: `PATTERN_ALLOC=mte=async` overrides
/// the in-code `sync` (ci/mte/test.sh runs both).
fn trap() -> i32 {
    match A.effective_config().mte {
        Mte::Async => TRAPPED_ASYNC,
        _ => TRAPPED_SYNC,
    }
}

/// Tagging is on, or the hardware has none (the fallback) and the test ends here.
fn tagging_or_skip(test: &str) -> bool {
    allocator_tests::mte::tagging_or_skip(A.mte_active(), test)
}

#[test]
fn without_mte_hardware_the_option_falls_back_to_untagged_memory() {
    if hardware_has_mte() {
        return;
    }
    assert!(!mte_required(), "MTE_REQUIRED=1 but HWCAP2_MTE is clear");
    assert!(!A.mte_active());
    let l = layout(48, 16);
    let b = alloc_checked(&A, l, "48 bytes without MTE");
    assert_eq!(tag_of(b.ptr), 0, "an untagged pointer");
    unsafe { free(&A, b) };
}

#[test]
fn blocks_carry_their_class_tag_and_correct_use_does_not_trap() {
    if !tagging_or_skip("correct use") {
        return;
    }
    let tags = DEFAULT_CLASS_TAGS;
    for size in [1, 16, 17, 48, 100, 256, 1000, 4096, 20000, 32768, 40000, 1 << 20] {
        let l = layout(size, 16);
        let class = A.class_of_layout(l);
        let b = alloc_checked(&A, l, format_args!("alloc({size})"));
        assert_eq!(tag_of(b.ptr), tags[class], "alloc({size}), class {class}");
        unsafe {
            assert_eq!(memory_tag(b.ptr), tags[class]);
            assert_eq!(memory_tag(b.ptr.add(b.usable - 1)), tags[class], "last granule of alloc({size})");
            check_bytes(b.ptr, b.usable, b.pattern).unwrap();
            stamp(b.ptr, size, size as u64);
            check_stamp(b.ptr, size, size as u64).unwrap();
            let grown = A.realloc(b.ptr, l, 2 * size);
            assert!(!grown.is_null());
            let class = A.class_of_layout(layout(2 * size, 16));
            assert_eq!(tag_of(grown), tags[class], "realloc to {}", 2 * size);
            check_stamp(grown, size, size as u64).unwrap();
            assert_bytes(
                grown.add(size),
                A.usable_size(grown) - size,
                A.pattern_of(layout(2 * size, 16)),
                "realloc tail",
            );
            A.dealloc(grown, layout(2 * size, 16));
        }
        let z = unsafe { A.alloc_zeroed(l) };
        unsafe {
            assert_eq!(tag_of(z), tags[class]);
            assert_bytes(z, A.usable_size(z), 0, format_args!("alloc_zeroed({size})"));
            A.dealloc(z, l);
        }
    }
}

#[test]
fn recycled_blocks_are_retagged_and_read_as_the_pattern() {
    if !tagging_or_skip("recycled") {
        return;
    }
    let l = layout(64, 16);
    let first: Vec<Block> = (0..64).map(|i| alloc_checked(&A, l, format_args!("fresh #{i}"))).collect();
    let addresses: Vec<usize> = first.iter().map(|b| address(b.ptr) as usize).collect();
    for b in first {
        unsafe {
            dirty(b.ptr, b.usable, 0x5E);
            free(&A, b);
            assert_eq!(memory_tag(address(b.ptr)), 0, "a freed block carries tag 0");
        }
    }
    let second: Vec<Block> = (0..64).map(|i| alloc_checked(&A, l, format_args!("recycled #{i}"))).collect();
    assert!(second.iter().any(|b| addresses.contains(&(address(b.ptr) as usize))), "nothing was recycled");
    for b in second {
        unsafe { free(&A, b) };
    }
}

#[test]
fn use_after_free_of_a_small_block_traps() {
    if !tagging_or_skip("small use after free") {
        return;
    }
    let code = in_child(|| unsafe {
        let l = layout(32, 16);
        let p = A.alloc(l);
        write_volatile(p, 1);
        A.dealloc(p, l);
        read_volatile(p);
    });
    assert_eq!(code, trap(), "reading a freed 32-byte block: {}", describe(code));
}

#[test]
fn use_after_free_of_a_large_block_traps() {
    if !tagging_or_skip("large use after free") {
        return;
    }
    let code = in_child(|| unsafe {
        let l = layout(64 * KIB, 16);
        let p = A.alloc(l);
        write_volatile(p.add(1000), 1);
        A.dealloc(p, l);
        write_volatile(p.add(1000), 2);
    });
    assert_eq!(code, trap(), "writing a freed 64 KiB block: {}", describe(code));
}

#[test]
fn overflow_into_a_block_of_another_class_traps() {
    if !tagging_or_skip("overflow") {
        return;
    }
    let code = in_child(|| unsafe {
        let (small, other) = (layout(48, 16), layout(1024, 16));
        let p = A.alloc(small);
        let q = A.alloc(other);
        // What a loop running off the end of p reaches: q's memory through p's tag.
        let reach = address(q) as usize - address(p) as usize;
        read_volatile(p.wrapping_add(reach));
    });
    assert_eq!(code, trap(), "reading another class's block through a 48-byte block's pointer: {}", describe(code));
    // The same access through q's own pointer is fine.
    assert_eq!(
        in_child(|| unsafe {
            let q = A.alloc(layout(1024, 16));
            write_volatile(q.add(1000), 3);
            read_volatile(q.add(1000));
        }),
        0
    );
}

#[test]
fn double_free_is_reported_not_trapped() {
    if !tagging_or_skip("double free") {
        return;
    }
    let code = in_child(|| unsafe {
        let l = layout(80, 16);
        let p = A.alloc(l);
        A.dealloc(p, l);
        A.dealloc(p, l);
    });
    assert_eq!(code, ABORTED, "a double free must end in the allocator's report and abort: {}", describe(code));
}

#[test]
fn threads_created_before_the_first_allocation_are_tagged_too() {
    if !tagging_or_skip("threads") {
        return;
    }
    // The child turns tagging off on its only thread (as if it had been
    // created before the allocator started); the thread it creates inherits
    // that, so its first allocation must turn tagging on for itself.
    let code = in_child(|| unsafe {
        let zero: libc::c_ulong = 0;
        assert_eq!(libc::prctl(55 /* PR_SET_TAGGED_ADDR_CTRL */, zero, zero, zero, zero), 0);
        extern "C" fn work(_: *mut libc::c_void) -> *mut libc::c_void {
            unsafe {
                let l = layout(96, 16);
                let p = A.alloc(l);
                assert_ne!(tag_of(p), 0);
                A.dealloc(p, l);
                read_volatile(p);
            }
            core::ptr::null_mut()
        }
        let mut thread: libc::pthread_t = 0;
        assert_eq!(libc::pthread_create(&mut thread, core::ptr::null(), work, core::ptr::null_mut()), 0);
        libc::pthread_join(thread, core::ptr::null_mut());
    });
    assert_eq!(code, trap(), "use after free on a second thread: {}", describe(code));
}

#[test]
fn the_c_abi_returns_and_accepts_tagged_pointers() {
    use pattern_alloc::raw;
    if !tagging_or_skip("C ABI") {
        return;
    }
    for size in [24, 3000, 100_000] {
        let p = raw::allocate(size, 16, false);
        assert!(!p.is_null());
        let class = A.class_of_layout(layout(size, 16));
        assert_eq!(tag_of(p), DEFAULT_CLASS_TAGS[class], "malloc({size})");
        assert_eq!(raw::owner_of(p), raw::Owner::Us);
        unsafe {
            let usable = raw::usable_size(p);
            assert_eq!(usable, A.usable_size(p));
            assert_bytes(p, usable, A.pattern_of(layout(size, 16)), format_args!("malloc({size})"));
            stamp(p, usable, 7);
            // C realloc keeps the whole old usable size.
            let q = raw::reallocate(p, 3 * size);
            assert!(!q.is_null());
            assert_ne!(tag_of(q), 0);
            check_stamp(q, usable, 7).unwrap();
            assert_eq!(raw::deallocate(q), raw::Owner::Us);
        }
        let z = raw::allocate(size, 16, true);
        unsafe {
            assert_bytes(z, raw::usable_size(z), 0, format_args!("calloc({size})"));
            raw::deallocate(z);
        }
    }
}
