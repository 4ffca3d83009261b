//! Helpers for the arm64 memory-tagging tests (`tests/mte*.rs`): pointer tags,
//! the `ldg` instruction, and running code that should trap in a forked child.

/// Whether the CPU (or qemu-user's model of it) has MTE.
pub fn hardware_has_mte() -> bool {
    const AT_HWCAP2: libc::c_ulong = 26;
    const HWCAP2_MTE: libc::c_ulong = 1 << 18;
    // SAFETY: getauxval has no preconditions.
    unsafe { libc::getauxval(AT_HWCAP2) & HWCAP2_MTE != 0 }
}

/// `MTE_REQUIRED=1`: a missing MTE fails the tests instead of skipping them,
/// so a CI run that lost `-cpu max` cannot pass vacuously.
pub fn mte_required() -> bool {
    std::env::var("MTE_REQUIRED").is_ok_and(|v| v == "1")
}

/// Whether a tagging test should run: true when tagging is on; on a CPU
/// without MTE the test is skipped (false), unless `MTE_REQUIRED=1`.
/// `active` is the allocator's `mte_active()`.
pub fn tagging_or_skip(active: bool, test: &str) -> bool {
    if hardware_has_mte() {
        assert!(active, "the CPU has MTE and mte=sync is set, but tagging is off");
        return true;
    }
    assert!(!mte_required(), "{test}: MTE_REQUIRED=1 but HWCAP2_MTE is clear (qemu without -cpu max?)");
    eprintln!("{test}: skipped, no MTE on this CPU (HWCAP2_MTE clear)");
    false
}

/// The logical tag of a pointer (bits 59:56).
pub fn tag_of(ptr: *const u8) -> u8 {
    ((ptr as usize >> 56) & 0xf) as u8
}

/// The pointer without its top byte.
pub fn address(ptr: *mut u8) -> *mut u8 {
    (ptr as usize & !(0xff << 56)) as *mut u8
}

/// The allocation tag stored for the granule holding `ptr` (`ldg`: no check).
///
/// # Safety
/// `ptr` must point into a mapping.
pub unsafe fn memory_tag(ptr: *const u8) -> u8 {
    let mut p = address(ptr as *mut u8);
    unsafe {
        core::arch::asm!(".arch_extension memtag", "ldg {p}, [{p}]", p = inout(reg) p,
                         options(readonly, nostack, preserves_flags))
    };
    tag_of(p)
}

/// `in_child`'s result for a synchronous tag-check fault (SIGSEGV, si_code SEGV_MTESERR).
pub const TRAPPED_SYNC: i32 = 100 + 9;
/// `in_child`'s result for an asynchronous one (SEGV_MTEAERR).
pub const TRAPPED_ASYNC: i32 = 100 + 8;
/// `in_child`'s result for a child killed by SIGABRT (the allocator's fatal reports).
pub const ABORTED: i32 = 200 + libc::SIGABRT;
/// `in_child`'s result when the closure panicked.
pub const PANICKED: i32 = 99;

extern "C" fn exit_with_si_code(_signal: libc::c_int, info: *mut libc::siginfo_t, _context: *mut libc::c_void) {
    // SAFETY: the kernel hands a valid siginfo; _exit is async-signal-safe.
    unsafe { libc::_exit(100 + (*info).si_code) }
}

/// Runs `work` in a forked child and says how it ended: 0 when it returned,
/// `100 + si_code` when it took a SIGSEGV, `200 + signal` when another
/// signal killed it, `PANICKED` when it panicked.
pub fn in_child(work: impl FnOnce()) -> i32 {
    // SAFETY: the child only runs `work` and exits; the allocator supports
    // allocation in a child of a multi-threaded parent.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        unsafe {
            let mut action: libc::sigaction = core::mem::zeroed();
            action.sa_sigaction = exit_with_si_code as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGSEGV, &action, core::ptr::null_mut());
        }
        let ended = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
        // An asynchronous tag-check fault is delivered on the way back from
        // the next system call; exit_group never returns.
        unsafe { libc::syscall(libc::SYS_getpid) };
        // SAFETY: leaves the child without running the parent's exit handlers.
        unsafe { libc::_exit(if ended.is_ok() { 0 } else { PANICKED }) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        200 + libc::WTERMSIG(status)
    }
}

/// `in_child`'s result in words, for assertion messages.
pub fn describe(code: i32) -> String {
    match code {
        0 => "the child ran to the end without a fault".into(),
        TRAPPED_SYNC => "SIGSEGV with SEGV_MTESERR".into(),
        TRAPPED_ASYNC => "SIGSEGV with SEGV_MTEAERR".into(),
        PANICKED => "the child panicked".into(),
        100..=199 => format!("SIGSEGV with si_code {}", code - 100),
        _ => format!("killed by signal {}", code - 200),
    }
}
