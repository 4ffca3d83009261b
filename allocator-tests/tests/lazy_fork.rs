//! fork() with lazily patterned blocks (`Backend::Memfd`): parent and child
//! share the pattern source but never each other's writes. The parent writes
//! some pages before the fork (the child sees them), then each side writes
//! its own pages after it and checks that the other's writes stay invisible;
//! the child also recycles blocks (MADV_DONTNEED) and allocates new ones from
//! the inherited memfd descriptor. Pipes order the steps; an alarm turns a
//! hang into a failure.

use core::ptr::write_volatile;

use allocator_tests::*;

#[global_allocator]
static A: PatternAlloc = PatternAlloc::new().backend(Backend::Memfd);

const SIZE: usize = 16 * MIB;
const PAGES: usize = SIZE / PAGE;

/// Page ranges: written by the parent before the fork, by the child, by the parent after it.
const BEFORE: core::ops::Range<usize> = 0..8;
const CHILD: core::ops::Range<usize> = 100..140;
const AFTER: core::ops::Range<usize> = 200..240;

fn page_byte(page: usize, salt: u8) -> u8 {
    (page as u8).wrapping_mul(7) ^ salt
}

unsafe fn write_pages(p: *mut u8, pages: core::ops::Range<usize>, salt: u8) {
    for page in pages {
        unsafe { dirty(p.add(page * PAGE), PAGE, page_byte(page, salt)) };
    }
}

/// Every page reads its stamp if `written(page)` names one, else the pattern.
unsafe fn check_pages(p: *const u8, pattern: u8, written: impl Fn(usize) -> Option<u8>) -> Result<(), String> {
    for page in 0..PAGES {
        let want = written(page).unwrap_or(pattern);
        unsafe { check_bytes(p.add(page * PAGE), PAGE, want) }.map_err(|e| format!("page {page}: {e}"))?;
    }
    Ok(())
}

fn pipe() -> [i32; 2] {
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    fds
}

fn send(fd: i32) {
    assert_eq!(unsafe { libc::write(fd, [1u8].as_ptr().cast(), 1) }, 1);
}

fn wait_for(fd: i32) -> bool {
    let mut byte = [0u8];
    unsafe { libc::read(fd, byte.as_mut_ptr().cast(), 1) == 1 }
}

fn child(p: *mut u8, small: *mut u8, pattern: u8, to_parent: i32, from_parent: i32) -> Result<(), String> {
    // The parent's writes from before the fork are here, the rest is the pattern.
    unsafe { check_pages(p, pattern, |page| BEFORE.contains(&page).then(|| page_byte(page, 0x10))) }?;
    unsafe { check_stamp(small, 200, 9) }?;
    unsafe { write_pages(p, CHILD, 0x20) };
    unsafe { write_volatile(small, 0xEE) };
    // Recycling in the child: free, decommit, allocate again from the inherited source.
    for size in [5 * MIB, 64 * KIB, 3000] {
        let b = try_alloc_checked(&A, layout(size, 8))?;
        unsafe { dirty(b.ptr, b.usable, 0x66) };
        unsafe { free(&A, b) };
        let again = try_alloc_checked(&A, layout(size, 8)).map_err(|e| format!("child, again: {e}"))?;
        unsafe { free(&A, again) };
    }
    send(to_parent);
    if !wait_for(from_parent) {
        return Err("parent went away".into());
    }
    // The parent's writes after the fork stay invisible here.
    unsafe {
        check_pages(p, pattern, |page| {
            if BEFORE.contains(&page) {
                Some(page_byte(page, 0x10))
            } else if CHILD.contains(&page) {
                Some(page_byte(page, 0x20))
            } else {
                None
            }
        })
    }
    .map_err(|e| format!("child after the parent's writes: {e}"))?;
    // On a lazy backend, dropping the child's copies (as the allocator does
    // to recycle memory) brings the pattern back, here only.
    if matches!(A.stats().backend, "memfd" | "refpage") {
        unsafe { libc::madvise(p.add(CHILD.start * PAGE).cast(), CHILD.len() * PAGE, libc::MADV_DONTNEED) };
        unsafe { check_pages(p, pattern, |page| BEFORE.contains(&page).then(|| page_byte(page, 0x10))) }
            .map_err(|e| format!("child after its DONTNEED: {e}"))?;
    }
    Ok(())
}

#[test]
fn parent_and_child_never_see_each_others_writes() {
    let l = layout(SIZE, 8);
    let b = alloc_checked(&A, l, "shared before the fork");
    let small = alloc_checked(&A, layout(200, 8), "small block");
    unsafe { stamp(small.ptr, 200, 9) };
    unsafe { write_pages(b.ptr, BEFORE, 0x10) };
    let (to_parent, to_child) = (pipe(), pipe());
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        unsafe { libc::alarm(20) };
        let result = std::panic::catch_unwind(|| child(b.ptr, small.ptr, b.pattern, to_parent[1], to_child[0]));
        let code = match result {
            Ok(Ok(())) => 0,
            Ok(Err(e)) => {
                let msg = format!("lazy_fork child: {e}\n");
                unsafe { libc::write(2, msg.as_ptr().cast(), msg.len()) };
                1
            }
            Err(_) => 2,
        };
        unsafe { libc::_exit(code) };
    }
    let child_ran = wait_for(to_parent[0]);
    // The child's writes do not show here; a fresh block here is the pattern.
    let result = unsafe { check_pages(b.ptr, b.pattern, |page| BEFORE.contains(&page).then(|| page_byte(page, 0x10))) };
    unsafe { check_stamp(small.ptr, 200, 9) }.unwrap();
    let fresh = alloc_checked(&A, layout(3 * MIB, 8), "parent, after the fork");
    unsafe { write_pages(b.ptr, AFTER, 0x30) };
    send(to_child[1]);
    let mut status = 0;
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(child_ran, "the child did not get through its first checks");
    result.unwrap_or_else(|e| panic!("parent sees the child's writes: {e}"));
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "child failed: status {status:#x}");
    unsafe {
        check_pages(b.ptr, b.pattern, |page| {
            if BEFORE.contains(&page) {
                Some(page_byte(page, 0x10))
            } else if AFTER.contains(&page) {
                Some(page_byte(page, 0x30))
            } else {
                None
            }
        })
    }
    .unwrap();
    for fd in to_parent.into_iter().chain(to_child) {
        unsafe { libc::close(fd) };
    }
    unsafe {
        free(&A, fresh);
        free(&A, small);
        free(&A, b);
    }
}
