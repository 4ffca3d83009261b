//! Thin wrappers over the system calls the allocator issues. Nothing here
//! allocates; every function reports failure as a value, never by panicking.

use core::ptr::null_mut;

use crate::inject::{self, Fault};

pub const PAGE_SIZE: usize = 4096;

/// Reserves and commits `len` bytes of fresh, zero-filled, read-write memory.
pub fn map_anonymous(len: usize) -> Option<*mut u8> {
    map(len, libc::PROT_READ | libc::PROT_WRITE)
}

/// Reserves `len` bytes of address space that cannot be touched.
pub fn reserve(len: usize) -> Option<*mut u8> {
    map(len, libc::PROT_NONE)
}

fn map(len: usize, prot: libc::c_int) -> Option<*mut u8> {
    if inject::should_fail(Fault::Map) {
        set_errno(libc::ENOMEM);
        return None;
    }
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
    // SAFETY: a fresh anonymous mapping touches no existing memory.
    let ptr = unsafe { libc::mmap(null_mut(), len, prot, flags, -1, 0) };
    if ptr == libc::MAP_FAILED {
        None
    } else {
        Some(ptr as *mut u8)
    }
}

/// # Safety
/// The range must be a page-aligned part of a mapping nothing refers to any more.
pub unsafe fn unmap(ptr: *mut u8, len: usize) -> bool {
    len == 0 || unsafe { libc::munmap(ptr as *mut libc::c_void, len) == 0 }
}

/// Drops the pages of a range: anonymous private memory reads as zeros after
/// this, private file mappings read the file again.
///
/// # Safety
/// The range must be page-aligned and hold nothing anyone still needs.
pub unsafe fn dont_need(ptr: *mut u8, len: usize) -> bool {
    if inject::should_fail(Fault::Madvise) {
        set_errno(libc::EAGAIN);
        return false;
    }
    unsafe { libc::madvise(ptr as *mut libc::c_void, len, libc::MADV_DONTNEED) == 0 }
}

/// Grows or shrinks a mapping, moving it if needed (`MREMAP_MAYMOVE`), or
/// moving it to `target` exactly when given.
///
/// # Safety
/// `old` must be a whole mapping of `old_len` bytes owned by the caller; a
/// `target` must be a range the caller owns (it is replaced).
pub unsafe fn remap(old: *mut u8, old_len: usize, new_len: usize, target: Option<*mut u8>) -> Option<*mut u8> {
    if inject::should_fail(Fault::Remap) {
        set_errno(libc::ENOMEM);
        return None;
    }
    let result = unsafe {
        match target {
            None => libc::mremap(old as *mut libc::c_void, old_len, new_len, libc::MREMAP_MAYMOVE),
            Some(to) => libc::mremap(
                old as *mut libc::c_void,
                old_len,
                new_len,
                libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
                to as *mut libc::c_void,
            ),
        }
    };
    if result == libc::MAP_FAILED {
        None
    } else {
        Some(result as *mut u8)
    }
}

/// Writes all of `bytes` to a file descriptor, retrying on EINTR and short writes.
pub fn write_all(fd: libc::c_int, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: the buffer is valid for its length.
        let written = unsafe { libc::write(fd, bytes.as_ptr() as *const libc::c_void, bytes.len()) };
        if written < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return;
        }
        bytes = &bytes[written as usize..];
    }
}

pub fn set_errno(value: libc::c_int) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = value };
}

pub fn errno() -> libc::c_int {
    // SAFETY: glibc's errno location is valid for the calling thread.
    unsafe { *libc::__errno_location() }
}

/// 64 random bits from the kernel, or a mix of addresses and the clock when
/// getrandom is unavailable (the value hardens a check; it is not a key).
pub fn random_u64() -> u64 {
    let mut value: u64 = 0;
    // SAFETY: writes at most 8 bytes into `value`.
    let got = unsafe { libc::getrandom(&mut value as *mut u64 as *mut libc::c_void, 8, libc::GRND_NONBLOCK) };
    if got == 8 {
        return value;
    }
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    let stack_address = &now as *const _ as u64;
    (now.tv_nsec as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ stack_address.rotate_left(29) ^ (now.tv_sec as u64)
}

/// An identifier of the calling thread, cheap to read (glibc: the TCB address).
#[inline]
pub fn thread_id() -> usize {
    // SAFETY: pthread_self has no preconditions.
    unsafe { libc::pthread_self() as usize }
}

pub fn abort() -> ! {
    // SAFETY: abort has no preconditions and does not return.
    unsafe { libc::abort() }
}

/// Creates a pthread key whose destructor runs at thread exit.
pub fn key_create(destructor: unsafe extern "C" fn(*mut libc::c_void)) -> Option<libc::pthread_key_t> {
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: `key` is a valid out pointer.
    let rc = unsafe { libc::pthread_key_create(&mut key, Some(destructor)) };
    (rc == 0).then_some(key)
}

/// Arms the key's destructor for the calling thread (non-null value).
pub fn key_set(key: libc::pthread_key_t, value: *mut libc::c_void) -> bool {
    // SAFETY: the key was created by key_create.
    unsafe { libc::pthread_setspecific(key, value) == 0 }
}

pub fn register_atfork(prepare: unsafe extern "C" fn(), parent: unsafe extern "C" fn(), child: unsafe extern "C" fn()) {
    // SAFETY: the handlers are plain functions that live for the whole process.
    unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
}

pub fn register_atexit(handler: extern "C" fn()) {
    // SAFETY: the handler lives for the whole process.
    unsafe { libc::atexit(handler) };
}

/// The value of an environment variable as bytes, read with libc::getenv
/// (std::env allocates). `name` must end with a NUL byte.
pub fn getenv(name: &'static [u8]) -> Option<&'static [u8]> {
    debug_assert_eq!(name.last(), Some(&0));
    // SAFETY: name is NUL-terminated; getenv returns a pointer into environ,
    // which lives as long as nobody calls setenv on the same name.
    unsafe {
        let value = libc::getenv(name.as_ptr() as *const libc::c_char);
        if value.is_null() {
            None
        } else {
            Some(core::ffi::CStr::from_ptr(value).to_bytes())
        }
    }
}
