//! Raw system calls of the lazy page sources (file descriptors, fixed file
//! mappings, /proc reads), beside `crate::sys` so that this layer owns its own.
//! Nothing here allocates: paths are built and files read in stack buffers.
//! Failures come back as values; `errno` is read right after the failing call.

use crate::inject::{self, Fault};
use crate::sys;

/// An open file's identity: a descriptor number can be closed by the program
/// and reused for another file, the (device, inode) pair cannot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    pub dev: u64,
    pub ino: u64,
}

/// What `fd` currently names, or None when it is not open.
pub fn identity(fd: i32) -> Option<Identity> {
    if fd < 0 {
        return None;
    }
    let mut stat = core::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `stat` is a valid out buffer.
    if unsafe { libc::fstat(fd, stat.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: fstat succeeded and wrote it.
    let stat = unsafe { stat.assume_init() };
    Some(Identity { dev: stat.st_dev, ino: stat.st_ino })
}

/// Puts `errno` back as it was when the guard was made. The lazy backends
/// meet expected failures on their success paths (a probe refused, an
/// occupied range, a lost descriptor), which must not show through a
/// successful malloc or realloc.
pub struct ErrnoGuard(libc::c_int);

impl ErrnoGuard {
    pub fn new() -> ErrnoGuard {
        ErrnoGuard(sys::errno())
    }
}

impl Drop for ErrnoGuard {
    fn drop(&mut self) {
        // SAFETY: glibc's errno location is valid for the calling thread.
        unsafe { *libc::__errno_location() = self.0 };
    }
}

/// `syscall(nr, a, b, c)`: the raw result (negative errno on failure).
pub fn syscall3(nr: i64, a: usize, b: usize, c: usize) -> i64 {
    // SAFETY: the caller chose a call whose arguments these are.
    let result = unsafe { libc::syscall(nr as libc::c_long, a, b, c) };
    if result < 0 {
        -(sys::errno() as i64)
    } else {
        result
    }
}

/// A new memfd (close-on-exec, sealable, not executable where the kernel knows
/// MFD_NOEXEC_SEAL). `name` ends with NUL.
pub fn memfd_create(name: &[u8]) -> Option<i32> {
    debug_assert_eq!(name.last(), Some(&0));
    if inject::should_fail(Fault::Memfd) {
        sys::set_errno(libc::EMFILE);
        return None;
    }
    let base = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    for flags in [base | libc::MFD_NOEXEC_SEAL, base] {
        // SAFETY: `name` is NUL-terminated.
        let fd = unsafe { libc::syscall(libc::SYS_memfd_create, name.as_ptr(), flags) };
        if fd >= 0 {
            return Some(fd as i32);
        }
        if sys::errno() != libc::EINVAL {
            return None;
        }
    }
    None
}

/// Closes a descriptor this layer created and still owns.
pub fn close(fd: i32) {
    // SAFETY: the caller owns `fd`.
    unsafe { libc::close(fd) };
}

/// Whether `fd` is an open descriptor.
pub fn is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD only reads the descriptor's flags.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// A close-on-exec duplicate of `fd` numbered `min` or above.
pub fn dup_at_least(fd: i32, min: i32) -> Option<i32> {
    // SAFETY: fcntl on a descriptor we own.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) };
    (new >= 0).then_some(new)
}

pub fn truncate(fd: i32, len: usize) -> bool {
    // SAFETY: plain syscall on our descriptor.
    unsafe { libc::ftruncate(fd, len as libc::off_t) == 0 }
}

/// Writes `len` bytes of `byte` at offset 0 of `fd`, 64 KiB per call from one
/// 4 KiB stack buffer repeated through an iovec array.
pub fn fill_fd(fd: i32, len: usize, byte: u8) -> bool {
    const CHUNK: usize = 4096;
    const VECTORS: usize = 16;
    let buffer = [byte; CHUNK];
    let vectors = [libc::iovec { iov_base: buffer.as_ptr() as *mut libc::c_void, iov_len: CHUNK }; VECTORS];
    let mut done = 0;
    while done < len {
        let count = ((len - done) / CHUNK).clamp(1, VECTORS);
        // SAFETY: the vectors point at `buffer`, which outlives the call.
        let written = unsafe { libc::pwritev(fd, vectors.as_ptr(), count as libc::c_int, done as libc::off_t) };
        if written < 0 {
            if sys::errno() == libc::EINTR {
                continue;
            }
            return false;
        }
        if written == 0 {
            return false;
        }
        done += written as usize;
    }
    true
}

pub fn add_seals(fd: i32, seals: libc::c_int) -> bool {
    // SAFETY: fcntl on our descriptor.
    unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, seals) == 0 }
}

/// Maps `fd` at `offset` privately over `[addr, addr + len)`, replacing what
/// was there (MAP_FIXED). Writes copy the page; nothing reaches the file.
///
/// # Safety
/// The range must be address space the caller owns.
pub unsafe fn map_file_fixed(addr: *mut u8, len: usize, fd: i32, offset: usize) -> bool {
    let flags = libc::MAP_PRIVATE | libc::MAP_FIXED | libc::MAP_NORESERVE;
    let prot = libc::PROT_READ | libc::PROT_WRITE;
    if inject::should_fail(Fault::Map) {
        sys::set_errno(libc::ENOMEM);
        return false;
    }
    // SAFETY: the caller owns the range.
    let result = unsafe { libc::mmap(addr as *mut libc::c_void, len, prot, flags, fd, offset as libc::off_t) };
    result == addr as *mut libc::c_void
}

/// Reserves exactly `[addr, addr + len)` (PROT_NONE) if nothing is mapped
/// there; false otherwise. Kernels before 4.17 ignore MAP_FIXED_NOREPLACE and
/// may place the mapping elsewhere: that counts as a refusal too.
pub fn reserve_exactly(addr: *mut u8, len: usize) -> bool {
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_FIXED_NOREPLACE;
    // SAFETY: NOREPLACE never replaces an existing mapping.
    let result = unsafe { libc::mmap(addr as *mut libc::c_void, len, libc::PROT_NONE, flags, -1, 0) };
    if result == libc::MAP_FAILED {
        return false;
    }
    if result != addr as *mut libc::c_void {
        // SAFETY: a fresh mapping we just made and nobody has seen.
        unsafe { sys::unmap(result as *mut u8, len) };
        return false;
    }
    true
}

/// Calls `line` with each line of a /proc file (NUL-terminated `path`), read
/// 512 bytes at a time; lines longer than 128 bytes are cut.
pub fn for_each_line(path: &[u8], line: &mut dyn FnMut(&[u8])) -> bool {
    // SAFETY: `path` is NUL-terminated.
    let fd = unsafe { libc::open(path.as_ptr() as *const libc::c_char, libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return false;
    }
    let mut chunk = [0u8; 512];
    let mut current = [0u8; 128];
    let mut len = 0;
    loop {
        // SAFETY: reads into `chunk`.
        let n = unsafe { libc::read(fd, chunk.as_mut_ptr() as *mut libc::c_void, chunk.len()) };
        if n < 0 && sys::errno() == libc::EINTR {
            continue;
        }
        if n <= 0 {
            break;
        }
        for &b in &chunk[..n as usize] {
            if b == b'\n' {
                line(&current[..len]);
                len = 0;
            } else if len < current.len() {
                current[len] = b;
                len += 1;
            }
        }
    }
    if len > 0 {
        line(&current[..len]);
    }
    close(fd);
    true
}

/// Where `/proc/self/fd/<fd>` points, copied into `target`; its length, or
/// None when the link cannot be read.
pub fn fd_link(fd: i32, target: &mut [u8]) -> Option<usize> {
    if fd < 0 {
        return None;
    }
    let mut path = [0u8; 32];
    let prefix = b"/proc/self/fd/";
    path[..prefix.len()].copy_from_slice(prefix);
    let mut digits = [0u8; 10];
    let mut count = 0;
    let mut value = fd as u32;
    loop {
        digits[count] = b'0' + (value % 10) as u8;
        count += 1;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    for i in 0..count {
        path[prefix.len() + i] = digits[count - 1 - i];
    }
    // path[prefix.len() + count] is already NUL.
    // SAFETY: `path` is NUL-terminated, `target` a writable buffer of its length.
    let n = unsafe {
        libc::readlink(path.as_ptr() as *const libc::c_char, target.as_mut_ptr() as *mut libc::c_char, target.len())
    };
    (n >= 0).then_some(n as usize)
}

/// Parses a decimal number at the start of `text` (after blanks).
pub fn parse_decimal(text: &[u8]) -> Option<u64> {
    let mut rest = text;
    while let [b' ' | b'\t', tail @ ..] = rest {
        rest = tail;
    }
    let mut value: u64 = 0;
    let mut any = false;
    for &b in rest {
        if !b.is_ascii_digit() {
            break;
        }
        value = value.checked_mul(10)?.checked_add((b - b'0') as u64)?;
        any = true;
    }
    any.then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_identities_of_our_own_descriptors() {
        let fd = memfd_create(b"sys-lazy-test\0").unwrap();
        let mut target = [0u8; 64];
        let n = fd_link(fd, &mut target).unwrap();
        assert!(target[..n].starts_with(b"/memfd:sys-lazy-test"), "{:?}", core::str::from_utf8(&target[..n]));
        let id = identity(fd).unwrap();
        assert_eq!(identity(fd), Some(id));
        assert!(truncate(fd, 3 * 4096) && fill_fd(fd, 3 * 4096, 0x5A));
        let mut bytes = [0u8; 8];
        assert_eq!(unsafe { libc::pread(fd, bytes.as_mut_ptr().cast(), 8, 3 * 4096 - 8) }, 8);
        assert_eq!(bytes, [0x5A; 8]);
        close(fd);
        assert_eq!(identity(fd), None);
        assert_eq!(fd_link(fd, &mut target), None);
    }

    #[test]
    fn proc_lines_and_numbers() {
        let mut found = None;
        assert!(for_each_line(b"/proc/self/status\0", &mut |line| {
            if let Some(rest) = line.strip_prefix(b"Pid:") {
                found = parse_decimal(rest);
            }
        }));
        assert_eq!(found, Some(std::process::id() as u64));
        assert_eq!(parse_decimal(b"  65530\n"), Some(65530));
        assert_eq!(parse_decimal(b"x"), None);
    }

    #[test]
    fn exact_reservations_refuse_occupied_ranges() {
        let base = sys::reserve(3 * 4096).unwrap();
        unsafe { sys::unmap(base.add(4096), 4096) };
        assert!(!reserve_exactly(base, 4096), "occupied");
        assert!(reserve_exactly(unsafe { base.add(4096) }, 4096), "free");
        unsafe { sys::unmap(base, 3 * 4096) };
    }
}
