//! The kernel reference page (DESIGN.md §4, research/refpage-abi.md):
//! `refpage_create(content, size, flags)` returns a descriptor whose private
//! mappings read as `content` repeated, copying a page on its first write.
//! Rules: `size` a power of two up to a page, `content` aligned to `size`,
//! `flags` 0, else EINVAL. We pass the pattern byte itself (size 1, which the
//! kernel fills with a memset).
//!
//! No mainline kernel has it, and the number the patch used (448) is
//! `process_mrelease(pidfd, flags)` since 5.15, so the probe must not trust a
//! plain success or error: it calls 448 only with `size >= 1` (which
//! process_mrelease takes as flags and refuses with EINVAL before anything
//! else), accepts a result only if it is a descriptor whose /proc/self/fd
//! link reads `anon_inode:[refpage]` (numbered above 2, or a number 0-2 that
//! was closed before the call, moved above 2), and never closes a descriptor
//! it did not verify (it may be someone else's). `refpage_nr=`
//! names another number (a test kernel's). A seccomp filter may kill the
//! process for an unexpected syscall, so without `refpage_nr=` the probe is
//! skipped when /proc/self/status shows one (or cannot be read).
//!
//! A block is one private mapping of the descriptor: one VMA whatever its
//! size, resized with mremap like anonymous memory.

use super::sources::{link_is, REFPAGE_LINK};
use super::sys_lazy;
use crate::sys;

/// The number the posted patch (v4, v5) gave refpage_create on x86_64 and
/// the generic table.
pub const PATCH_NR: i64 = 448;

/// The raw call: a descriptor, or a negative errno.
pub fn refpage_create(nr: i64, content: *const u8, size: u32, flags: u64) -> i64 {
    sys_lazy::syscall3(nr, content as usize, size as usize, flags as usize)
}

/// A verified refpage descriptor reading as `pattern`, made through syscall
/// `nr` and numbered above 2; None otherwise (a result that is not verified
/// is left alone).
pub fn create(nr: i64, pattern: u8) -> Option<i32> {
    let content = [pattern];
    // The kernel gives the lowest free number, which is 0-2 in a program that
    // closed them. Such a number is ours only if it was closed before the
    // call (a call that is not refpage_create may return an open one, e.g.
    // sched_yield's 0); then it moves above 2, so the program's 0-2 stay closed.
    let closed_before: [bool; 3] = core::array::from_fn(|fd| !sys_lazy::is_open(fd as i32));
    let result = refpage_create(nr, content.as_ptr(), 1, 0);
    if result < 0 || result > i32::MAX as i64 {
        return None;
    }
    let fd = result as i32;
    if fd > 2 {
        return link_is(fd, REFPAGE_LINK).then_some(fd);
    }
    if !closed_before[fd as usize] || !link_is(fd, REFPAGE_LINK) {
        return None;
    }
    let moved = sys_lazy::dup_at_least(fd, 3);
    sys_lazy::close(fd);
    moved
}

/// Whether a seccomp filter may be watching our syscalls: `Seccomp: 2` in
/// /proc/self/status, or no way to tell.
pub fn seccomp_filtered() -> bool {
    let mut mode = None;
    let readable = sys_lazy::for_each_line(b"/proc/self/status\0", &mut |line| {
        if let Some(rest) = line.strip_prefix(b"Seccomp:") {
            mode = sys_lazy::parse_decimal(rest);
        }
    });
    !readable || mode != Some(0)
}

/// A block of `len` bytes whose `base + offset` is a multiple of `align`: one
/// private mapping of `fd`.
pub fn map(len: usize, align: usize, offset: usize, fd: i32) -> Option<*mut u8> {
    let base = super::reserve_aligned(len, align, offset)?;
    // SAFETY: our fresh reservation.
    if unsafe { sys_lazy::map_file_fixed(base, len, fd, 0) } {
        Some(base)
    } else {
        // SAFETY: as above.
        unsafe { sys::unmap(base, len) };
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_fds() -> Vec<(i32, String)> {
        let mut fds: Vec<(i32, String)> = std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| {
                let e = e.ok()?;
                let fd: i32 = e.file_name().to_str()?.parse().ok()?;
                Some((fd, std::fs::read_link(e.path()).ok()?.to_string_lossy().into_owned()))
            })
            .collect();
        fds.sort();
        fds
    }

    #[test]
    fn the_patch_number_is_refused_on_this_kernel_without_side_effects() {
        // On mainline >= 5.15 number 448 is process_mrelease: size 1 is its
        // flags argument, so it answers EINVAL; older kernels answer ENOSYS.
        let content = [0xAAu8];
        let result = refpage_create(PATCH_NR, content.as_ptr(), 1, 0);
        if result >= 0 {
            // A kernel with refpage: the descriptor must be one.
            assert!(link_is(result as i32, REFPAGE_LINK));
            sys_lazy::close(result as i32);
            return;
        }
        assert!(result == -(libc::EINVAL as i64) || result == -(libc::ENOSYS as i64), "{result}");
        let fds_before = open_fds();
        assert_eq!(create(PATCH_NR, 0xAA), None);
        // Descriptors the test harness opens meanwhile may differ; none may be a refpage.
        assert!(open_fds().iter().all(|(_, link)| link != "anon_inode:[refpage]"), "{fds_before:?}");
    }

    #[test]
    fn results_that_are_not_refpages_are_refused_and_left_open() {
        // getpid: a number that is no descriptor; sched_yield: 0, which is stdin.
        assert_eq!(create(libc::SYS_getpid, 0xAA), None);
        let stdin = sys_lazy::identity(0);
        assert_eq!(create(libc::SYS_sched_yield, 0xAA), None);
        assert_eq!(sys_lazy::identity(0), stdin);
        // eventfd2(initval, EFD_SEMAPHORE): a real descriptor of another anon_inode kind.
        let before = open_fds().len();
        assert_eq!(create(libc::SYS_eventfd2, 0xAA), None);
        let leaked: Vec<(i32, String)> =
            open_fds().into_iter().filter(|(_, link)| link == "anon_inode:[eventfd]").collect();
        assert!(!leaked.is_empty(), "the eventfd must be left open, not closed: {before}");
        leaked.iter().for_each(|(fd, _)| sys_lazy::close(*fd));
    }

    #[test]
    fn this_process_has_no_seccomp_filter() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let filtered = status.lines().any(|l| l.starts_with("Seccomp:") && !l.ends_with('0'));
        assert_eq!(seccomp_filtered(), filtered);
    }
}
