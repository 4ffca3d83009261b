//! pattern-alloc for C and C++ programs: `LD_PRELOAD=libpattern_alloc.so program`.
//!
//! Exports the glibc malloc family, its `__libc_*` aliases (so nothing in the
//! process frees our blocks with glibc) and, in `cxx`, the C++ operators.
//! Results follow glibc: NULL with errno ENOMEM for impossible sizes, EINVAL
//! for bad alignments, `free` keeps errno, `realloc(p, 0)` frees.
//!
//! Nothing here allocates or unwinds. Initialization happens inside the core
//! crate at the first call of any export (`pattern_alloc::raw`).

#![deny(unsafe_op_in_unsafe_fn)]

mod cxx;
mod foreign;

use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicUsize, Ordering};

use pattern_alloc::raw::{self, Owner};

/// What glibc's malloc guarantees on 64-bit targets (`MALLOC_ALIGNMENT`).
const MALLOC_ALIGNMENT: usize = 16;

#[inline(always)]
fn errno() -> c_int {
    // SAFETY: glibc's errno location is valid for the calling thread.
    unsafe { *libc::__errno_location() }
}

#[inline(always)]
fn set_errno(value: c_int) {
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = value };
}

/// The result of an allocation that must set errno when it failed.
#[inline(always)]
fn or_enomem(ptr: *mut u8) -> *mut c_void {
    if ptr.is_null() {
        set_errno(libc::ENOMEM);
    }
    ptr.cast()
}

fn page_size() -> usize {
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    let cached = PAGE.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    // SAFETY: sysconf has no preconditions.
    let size = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        size if size > 0 => size as usize,
        _ => 4096,
    };
    PAGE.store(size, Ordering::Relaxed);
    size
}

#[inline(always)]
fn malloc_impl(size: usize) -> *mut c_void {
    or_enomem(raw::allocate(size, MALLOC_ALIGNMENT, false))
}

#[inline(always)]
unsafe fn free_impl(ptr: *mut c_void) {
    if ptr.is_null() {
        return;
    }
    // A failing munmap or madvise inside would overwrite errno. The location
    // is looked up once: free is a hot path.
    // SAFETY: glibc's errno location is valid for the calling thread.
    let errno_location = unsafe { libc::__errno_location() };
    // SAFETY: as above.
    let saved = unsafe { *errno_location };
    // SAFETY: the caller hands us a block it got from malloc and friends.
    if unsafe { raw::deallocate(ptr.cast()) } == Owner::Foreign {
        // SAFETY: glibc made it (RTLD_DEEPBIND); glibc frees it.
        unsafe { foreign::free(ptr) }
    }
    // SAFETY: as above.
    unsafe { *errno_location = saved };
}

fn calloc_impl(count: usize, size: usize) -> *mut c_void {
    match count.checked_mul(size) {
        Some(total) => or_enomem(raw::allocate(total, MALLOC_ALIGNMENT, true)),
        None => or_enomem(core::ptr::null_mut()),
    }
}

unsafe fn realloc_impl(ptr: *mut c_void, size: usize) -> *mut c_void {
    if ptr.is_null() {
        return malloc_impl(size);
    }
    if size == 0 {
        // glibc (REALLOC_ZERO_BYTES_FREES): free and return NULL.
        // SAFETY: forwarded contract.
        unsafe { free_impl(ptr) };
        return core::ptr::null_mut();
    }
    match raw::owner_of(ptr as *const u8) {
        // SAFETY: a live block of ours.
        Owner::Us => or_enomem(unsafe { raw::reallocate(ptr.cast(), size) }),
        // SAFETY: glibc's block; glibc resizes it and sets errno itself.
        Owner::Foreign => unsafe { foreign::realloc(ptr, size) },
    }
}

/// malloc with an alignment that must be a power of two (C11 aligned_alloc
/// and glibc >= 2.38 reject the rest; older memalign rounded them up).
fn aligned_impl(align: usize, size: usize) -> *mut c_void {
    if !align.is_power_of_two() {
        set_errno(libc::EINVAL);
        return core::ptr::null_mut();
    }
    or_enomem(raw::allocate(size, align.max(MALLOC_ALIGNMENT), false))
}

fn pvalloc_impl(size: usize) -> *mut c_void {
    let page = page_size();
    match size.checked_add(page - 1) {
        Some(padded) => aligned_impl(page, (padded & !(page - 1)).max(page)),
        None => or_enomem(core::ptr::null_mut()),
    }
}

unsafe fn usable_size_impl(ptr: *mut c_void) -> usize {
    if ptr.is_null() {
        return 0;
    }
    match raw::owner_of(ptr as *const u8) {
        // SAFETY: a live block of ours.
        Owner::Us => unsafe { raw::usable_size(ptr.cast()) },
        // SAFETY: glibc's block.
        Owner::Foreign => unsafe { foreign::usable_size(ptr) },
    }
}

#[no_mangle]
pub extern "C" fn malloc(size: usize) -> *mut c_void {
    malloc_impl(size)
}

/// # Safety
/// `ptr` is null or a live block from this family.
#[no_mangle]
pub unsafe extern "C" fn free(ptr: *mut c_void) {
    // SAFETY: forwarded contract.
    unsafe { free_impl(ptr) }
}

/// # Safety
/// As `free`.
#[no_mangle]
pub unsafe extern "C" fn cfree(ptr: *mut c_void) {
    // SAFETY: forwarded contract.
    unsafe { free_impl(ptr) }
}

#[no_mangle]
pub extern "C" fn calloc(count: usize, size: usize) -> *mut c_void {
    calloc_impl(count, size)
}

/// # Safety
/// `ptr` is null or a live block from this family.
#[no_mangle]
pub unsafe extern "C" fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: forwarded contract.
    unsafe { realloc_impl(ptr, size) }
}

/// # Safety
/// As `realloc`.
#[no_mangle]
pub unsafe extern "C" fn reallocarray(ptr: *mut c_void, count: usize, size: usize) -> *mut c_void {
    match count.checked_mul(size) {
        // SAFETY: forwarded contract.
        Some(total) => unsafe { realloc_impl(ptr, total) },
        None => or_enomem(core::ptr::null_mut()),
    }
}

/// # Safety
/// `out` is valid for a pointer-sized write.
#[no_mangle]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    if !align.is_power_of_two() || align < core::mem::size_of::<*mut c_void>() {
        return libc::EINVAL;
    }
    // posix_memalign reports through its result and leaves errno alone.
    let saved = errno();
    let ptr = raw::allocate(size, align.max(MALLOC_ALIGNMENT), false);
    set_errno(saved);
    if ptr.is_null() {
        return libc::ENOMEM;
    }
    // SAFETY: the caller's out pointer.
    unsafe { *out = ptr.cast() };
    0
}

#[no_mangle]
pub extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    aligned_impl(align, size)
}

#[no_mangle]
pub extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    aligned_impl(align, size)
}

#[no_mangle]
pub extern "C" fn valloc(size: usize) -> *mut c_void {
    aligned_impl(page_size(), size)
}

#[no_mangle]
pub extern "C" fn pvalloc(size: usize) -> *mut c_void {
    pvalloc_impl(size)
}

/// # Safety
/// `ptr` is null or a live block from this family.
#[no_mangle]
pub unsafe extern "C" fn malloc_usable_size(ptr: *mut c_void) -> usize {
    // SAFETY: forwarded contract.
    unsafe { usable_size_impl(ptr) }
}

// The glibc-internal names: libc itself and some programs call these directly.

#[no_mangle]
pub extern "C" fn __libc_malloc(size: usize) -> *mut c_void {
    malloc_impl(size)
}

/// # Safety
/// As `free`.
#[no_mangle]
pub unsafe extern "C" fn __libc_free(ptr: *mut c_void) {
    // SAFETY: forwarded contract.
    unsafe { free_impl(ptr) }
}

#[no_mangle]
pub extern "C" fn __libc_calloc(count: usize, size: usize) -> *mut c_void {
    calloc_impl(count, size)
}

/// # Safety
/// As `realloc`.
#[no_mangle]
pub unsafe extern "C" fn __libc_realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: forwarded contract.
    unsafe { realloc_impl(ptr, size) }
}

#[no_mangle]
pub extern "C" fn __libc_memalign(align: usize, size: usize) -> *mut c_void {
    aligned_impl(align, size)
}

#[no_mangle]
pub extern "C" fn __libc_valloc(size: usize) -> *mut c_void {
    aligned_impl(page_size(), size)
}

#[no_mangle]
pub extern "C" fn __libc_pvalloc(size: usize) -> *mut c_void {
    pvalloc_impl(size)
}

/// # Safety
/// As `posix_memalign`.
#[no_mangle]
pub unsafe extern "C" fn __posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    // SAFETY: forwarded contract.
    unsafe { posix_memalign(out, align, size) }
}
