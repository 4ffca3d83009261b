//! The lazy backends live on file descriptors that the program owns too
//! (DESIGN.md §4): it may close ours, reuse the number for another file, start
//! with 0-2 closed, or run under a seccomp filter. None of that may make a
//! block show anything but the pattern, and the refpage probe must decide as
//! the kernel is: "absent" on a stock kernel (448 is process_mrelease there),
//! "present" on the test kernel of ci/kernel/ (which has refpage_create at
//! 448), without leaving any other descriptor or touching fds 0-2. Which of
//! the two this kernel is, the test finds out for itself (`kernel_has_refpage`).
//!
//! Each case runs this binary again as a child (`lazy_fds child ACTION`) with
//! a chosen `PATTERN_ALLOC`, stdin and seccomp filter, so that its first
//! allocation (and the probe) happens under exactly those conditions; the
//! child prints `key=value` words and `fd N LINK` lines. `harness = false`.

use core::alloc::GlobalAlloc;
use core::hint::black_box;
use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::process::{Command, Stdio};
use std::time::Duration;

use allocator_tests::*;

#[global_allocator]
static A: PatternAlloc = PatternAlloc::new();

// ---------------------------------------------------------------- the child

/// Our descriptors and where they point, from /proc/self/fd.
fn open_fds() -> Vec<(i32, String)> {
    let mut fds: Vec<(i32, String)> = std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let fd: i32 = entry.file_name().to_str()?.parse().ok()?;
            Some((fd, std::fs::read_link(entry.path()).ok()?.to_string_lossy().into_owned()))
        })
        .collect();
    // The directory stream's own descriptor is gone by now.
    fds.retain(|(fd, _)| unsafe { libc::fcntl(*fd, libc::F_GETFD) } >= 0);
    fds.sort();
    fds
}

fn memfds() -> Vec<i32> {
    open_fds().into_iter().filter(|(_, link)| link.starts_with("/memfd:pattern-alloc")).map(|(fd, _)| fd).collect()
}

/// The allocator's descriptors of either lazy backend.
fn our_sources() -> Vec<i32> {
    open_fds().into_iter().filter(|(_, link)| is_our_source(link)).map(|(fd, _)| fd).collect()
}

const MEMFD_LINK: &str = "/memfd:pattern-alloc";
const REFPAGE_LINK: &str = "anon_inode:[refpage]";

fn is_our_source(link: &str) -> bool {
    link.starts_with(MEMFD_LINK) || link == REFPAGE_LINK
}

fn identity(fd: i32) -> Option<(u64, u64)> {
    let mut stat: libc::stat = unsafe { core::mem::zeroed() };
    (unsafe { libc::fstat(fd, &mut stat) } == 0).then_some((stat.st_dev, stat.st_ino))
}

/// Large blocks, a realloc and fresh slab segments, all checked; returns the
/// blocks still held so the caller can check them again later.
fn allocate_and_check(what: &str) -> Vec<Block> {
    let mut held = Vec::new();
    for (size, align) in [(100_000, 8), (3 * MIB, 8), (5 * MIB, 2 * MIB), (64 * MIB, 8)] {
        held.push(alloc_checked(&A, layout(size, align), format_args!("{what}: large {size}")));
    }
    // Growth of a block that was mapped before whatever the caller did.
    let b = held.remove(1);
    unsafe { stamp(b.ptr, b.usable, 5) };
    let q = black_box(unsafe { A.realloc(b.ptr, b.layout, 40 * MIB) });
    assert!(!q.is_null(), "{what}: realloc");
    unsafe { check_stamp(q, b.usable, 5) }.unwrap();
    unsafe { assert_bytes(q.add(b.usable), 40 * MIB - b.usable, b.pattern, format_args!("{what}: grown tail")) };
    unsafe { A.dealloc(q, layout(40 * MIB, 8)) };
    // 8 MiB of slab blocks: new segments.
    let slab: Vec<Block> =
        (0..4096).map(|_| alloc_checked(&A, layout(2048, 8), format_args!("{what}: slab"))).collect();
    slab.into_iter().for_each(|b| unsafe { free(&A, b) });
    held
}

fn child_close_range() {
    let before = A.stats();
    let held = allocate_and_check("before close_range");
    let rc = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    assert_eq!(rc, 0, "close_range");
    assert!(memfds().is_empty(), "close_range left {:?}", open_fds());
    let again = allocate_and_check("after close_range");
    let after = A.stats();
    assert!(after.lazy_sources_lost > before.lazy_sources_lost, "{after:?}");
    assert!(after.bytes_lazy > before.bytes_lazy + 64 * MIB as u64, "{after:?}");
    assert!(memfds().len() == 1, "{:?}", open_fds());
    for b in held.into_iter().chain(again) {
        unsafe { assert_bytes(b.ptr, b.usable, b.pattern, "held across close_range") };
        unsafe { free(&A, b) };
    }
    println!("backend={} lost={} fallbacks={}", after.backend, after.lazy_sources_lost, after.lazy_fallbacks);
}

fn child_reuse_number(path: &str) {
    let before = A.stats();
    let held = allocate_and_check("before reuse");
    let ours = memfds();
    assert_eq!(ours.len(), 1, "{:?}", open_fds());
    let number = ours[0];
    // The program closes our descriptor and opens a file that takes its number.
    std::fs::write(path, vec![0x5E; 8 * MIB]).unwrap();
    unsafe { libc::close(number) };
    let file = unsafe { libc::open(std::ffi::CString::new(path).unwrap().as_ptr(), libc::O_RDWR) };
    assert!(file >= 0);
    if file != number {
        assert_eq!(unsafe { libc::dup2(file, number) }, number);
        unsafe { libc::close(file) };
    }
    let file_identity = identity(number);
    let again = allocate_and_check("after the number went to a file");
    let after = A.stats();
    assert!(after.lazy_sources_lost > before.lazy_sources_lost, "{after:?}");
    assert_eq!(identity(number), file_identity, "the program's file at fd {number} was replaced or closed");
    for b in held.into_iter().chain(again) {
        unsafe { assert_bytes(b.ptr, b.usable, b.pattern, "held across the reuse") };
        unsafe { free(&A, b) };
    }
    println!("backend={} lost={} fallbacks={}", after.backend, after.lazy_sources_lost, after.lazy_fallbacks);
}

fn child_fds() {
    let held = allocate_and_check("fds");
    held.into_iter().for_each(|b| unsafe { free(&A, b) });
    let stats = A.stats();
    let fd0 = identity(0).map_or("closed".to_string(), |(dev, ino)| format!("{dev}:{ino}"));
    println!("backend={} fd0={fd0} fallbacks={} sources={}", stats.backend, stats.lazy_fallbacks, stats.lazy_sources);
    for (fd, link) in open_fds() {
        println!("fd {fd} {link}");
    }
}

fn child_stdin_closed() {
    unsafe { libc::close(0) };
    our_sources().into_iter().for_each(|fd| unsafe {
        libc::close(fd);
    });
    let b = alloc_checked(&A, layout(3 * MIB, 8), "after closing fd 0 and our descriptor");
    unsafe { free(&A, b) };
    assert!(A.stats().lazy_sources_lost >= 1);
    child_fds();
}

fn child(args: &[String]) {
    match args.get(2).map(String::as_str) {
        Some("close-range") => child_close_range(),
        Some("reuse-number") => child_reuse_number(&args[3]),
        Some("fds") => child_fds(),
        Some("stdin-closed") => child_stdin_closed(),
        other => panic!("unknown child action {other:?}"),
    }
}

// --------------------------------------------------------------- the parent

/// Runs this binary as `child ACTION...` with `PATTERN_ALLOC=options`; only
/// fds 0-2 reach it (descriptors this process inherited are marked
/// close-on-exec first), then `setup` runs just before the exec.
fn spawn(
    action: &[&str],
    options: &str,
    mut setup: impl FnMut() -> std::io::Result<()> + Send + Sync + 'static,
) -> Run {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.arg("child").args(action).env("PATTERN_ALLOC", options).stdin(Stdio::null());
    let clean = move || {
        if unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        setup()
    };
    unsafe { cmd.pre_exec(clean) };
    let run = run_with_limit(cmd, Duration::from_secs(120));
    assert!(!run.timed_out, "child {action:?} with {options} hung: {run:#?}");
    run
}

#[track_caller]
fn spawn_ok(action: &[&str], options: &str, setup: impl FnMut() -> std::io::Result<()> + Send + Sync + 'static) -> Run {
    let run = spawn(action, options, setup);
    assert!(run.status.success(), "child {action:?} with PATTERN_ALLOC={options} failed: {run:#?}");
    run
}

fn nothing() -> std::io::Result<()> {
    Ok(())
}

/// `fd N LINK` lines of a child's output.
fn child_fds_of(run: &Run) -> Vec<(i32, String)> {
    run.stdout
        .lines()
        .filter_map(|line| {
            let mut words = line.splitn(3, ' ');
            (words.next()? == "fd").then_some(())?;
            Some((words.next()?.parse().ok()?, words.next()?.to_string()))
        })
        .collect()
}

/// Whether this kernel has `refpage_create` at the posted patch's number,
/// found out here without the allocator: the call with valid arguments gives
/// a descriptor named `anon_inode:[refpage]` whose private mapping reads the
/// content and takes a write. On mainline 448 is process_mrelease, which
/// answers this call with EINVAL.
fn kernel_has_refpage() -> bool {
    let content = [0x3Cu8];
    let fd = unsafe { libc::syscall(448, content.as_ptr(), 1u32, 0u64) };
    if fd < 0 {
        let errno = std::io::Error::last_os_error().raw_os_error();
        assert!(matches!(errno, Some(libc::EINVAL | libc::ENOSYS)), "syscall 448: {errno:?}");
        return false;
    }
    let fd = fd as i32;
    let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
    assert_eq!(link.to_str(), Some(REFPAGE_LINK), "syscall 448 made a descriptor of another kind");
    let len = 4 * PAGE;
    let flags = libc::MAP_PRIVATE;
    let p = unsafe { libc::mmap(core::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, flags, fd, 0) };
    assert_ne!(p, libc::MAP_FAILED, "mmap of the refpage descriptor: {}", std::io::Error::last_os_error());
    unsafe { libc::close(fd) };
    let p = p as *mut u8;
    unsafe { assert_bytes(p, len, 0x3C, "a fresh refpage mapping") };
    unsafe { core::ptr::write_volatile(p.add(PAGE + 1), 0x11) };
    assert_eq!(unsafe { core::ptr::read_volatile(p.add(PAGE + 1)) }, 0x11);
    unsafe { assert_bytes(p.add(2 * PAGE), 2 * PAGE, 0x3C, "pages beside a written one") };
    unsafe { libc::munmap(p as *mut libc::c_void, len) };
    true
}

/// The backend `auto` must select on this kernel.
fn lazy_backend_here() -> &'static str {
    static HAS_REFPAGE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *HAS_REFPAGE.get_or_init(kernel_has_refpage) {
        "refpage"
    } else {
        "memfd"
    }
}

/// Every descriptor above 2 is the one source of `backend` (exactly one, and
/// none of the other lazy backend), or `also_allowed`: the probe left nothing.
#[track_caller]
fn only_our_source_above_2(run: &Run, backend: &str, also_allowed: &str) {
    let fds = child_fds_of(run);
    let ours = |link: &str| match backend {
        "memfd" => link.starts_with(MEMFD_LINK),
        "refpage" => link == REFPAGE_LINK,
        other => panic!("no descriptor belongs to backend {other}"),
    };
    for (fd, link) in &fds {
        if *fd > 2 {
            assert!(
                ours(link) || (!also_allowed.is_empty() && link == also_allowed),
                "descriptor {fd} -> {link} left behind (backend {backend}): {run:#?}"
            );
        } else {
            assert!(!is_our_source(link), "our descriptor took number {fd}: {run:#?}");
        }
    }
    assert_eq!(fds.iter().filter(|(_, l)| ours(l)).count(), 1, "{run:#?}");
}

/// Runs a child whose stdin is /dev/null (as `run_with_limit` sets it) and
/// checks that fd 0 is still that file afterwards (nothing closed or
/// replaced it).
fn with_known_stdin(options: &str) -> Run {
    use std::os::unix::fs::MetadataExt as _;
    let null = std::fs::metadata("/dev/null").unwrap();
    let run = spawn_ok(&["fds"], options, nothing);
    assert_eq!(run.expect_value("fd0"), format!("{}:{}", null.dev(), null.ino()), "fd 0 changed: {run:#?}");
    run
}

fn descriptors_closed_by_close_range_are_made_again() {
    let run = spawn_ok(&["close-range"], "backend=memfd", nothing);
    assert_eq!(run.expect_value("backend"), "memfd");
    assert_eq!(run.expect_value("fallbacks"), "0");
    assert!(run.allocator_lines().is_empty(), "{run:#?}");
}

fn a_reused_number_never_shows_the_file() {
    let path = std::env::temp_dir().join(format!("lazy_fds_file_{}", std::process::id()));
    let run = spawn_ok(&["reuse-number", path.to_str().unwrap()], "backend=memfd", nothing);
    let _ = std::fs::remove_file(&path);
    assert_eq!(run.expect_value("backend"), "memfd");
    assert_eq!(run.expect_value("fallbacks"), "0");
}

fn the_refpage_probe_decides_as_the_kernel_is_and_leaves_nothing_else() {
    let lazy = lazy_backend_here();
    // Named explicitly: refpage where the kernel has it, else one warning,
    // then the emulation.
    let run = with_known_stdin("backend=refpage");
    assert_eq!(run.expect_value("backend"), lazy, "{run:#?}");
    let lines = run.allocator_lines();
    if lazy == "refpage" {
        assert!(lines.is_empty(), "{run:#?}");
    } else {
        assert_eq!(lines.len(), 1, "{run:#?}");
        assert!(lines[0].contains("backend=refpage") && lines[0].contains("memfd"), "{run:#?}");
    }
    only_our_source_above_2(&run, lazy, "");
    // auto: silently the same.
    let run = with_known_stdin("backend=auto");
    assert_eq!(run.expect_value("backend"), lazy);
    assert!(run.allocator_lines().is_empty(), "{run:#?}");
    only_our_source_above_2(&run, lazy, "");
    // The patch's number given explicitly: the same decision.
    let run = with_known_stdin("refpage_nr=448");
    assert_eq!(run.expect_value("backend"), lazy);
    assert!(run.allocator_lines().is_empty(), "{run:#?}");
    only_our_source_above_2(&run, lazy, "");
    // A number whose call returns 0 (sched_yield): not a refpage, and fd 0 is
    // left alone (with_known_stdin checks it).
    let run = with_known_stdin(&format!("refpage_nr={}", libc::SYS_sched_yield));
    assert_eq!(run.expect_value("backend"), "memfd");
    assert!(run.allocator_lines().is_empty(), "{run:#?}");
    only_our_source_above_2(&run, "memfd", "");
    // A number that returns another kind of descriptor (eventfd2): refused
    // and, not being ours to judge, left open rather than closed.
    let run = with_known_stdin(&format!("refpage_nr={}", libc::SYS_eventfd2));
    assert_eq!(run.expect_value("backend"), "memfd");
    only_our_source_above_2(&run, "memfd", "anon_inode:[eventfd]");
}

/// Rust's runtime reopens a closed fd 0 before main, so the child closes it
/// itself and then makes us create our descriptor (memfd or refpage) again:
/// the new one must not take the lowest free number, 0.
fn a_program_without_stdin_keeps_it_closed() {
    let lazy = lazy_backend_here();
    let run = spawn_ok(&["stdin-closed"], "backend=auto", nothing);
    assert_eq!(run.expect_value("fd0"), "closed", "our descriptor took fd 0: {run:#?}");
    assert_eq!(run.expect_value("backend"), lazy);
    assert_eq!(run.expect_value("fallbacks"), "0", "{run:#?}");
    only_our_source_above_2(&run, lazy, "");
}

/// A filter that kills the process on syscall `nr` and allows everything else.
fn kill_on(nr: u32) -> impl FnMut() -> std::io::Result<()> + Send + Sync + 'static {
    const LD_W_ABS: u16 = 0x20;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    const RET_ALLOW: u32 = 0x7fff_0000;
    let program = [
        libc::sock_filter { code: LD_W_ABS, jt: 0, jf: 0, k: 0 }, // seccomp_data.nr
        libc::sock_filter { code: JEQ_K, jt: 0, jf: 1, k: nr },
        libc::sock_filter { code: RET_K, jt: 0, jf: 0, k: libc::SECCOMP_RET_KILL_PROCESS },
        libc::sock_filter { code: RET_K, jt: 0, jf: 0, k: RET_ALLOW },
    ];
    move || {
        let fprog = libc::sock_fprog { len: program.len() as u16, filter: program.as_ptr() as *mut libc::sock_filter };
        unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &fprog as *const _) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

fn under_seccomp_the_probe_is_skipped_unless_asked_for() {
    // A sandbox that kills on 448: auto must not probe it.
    let run = spawn_ok(&["fds"], "backend=auto", kill_on(448));
    assert_eq!(run.expect_value("backend"), "memfd");
    assert!(run.allocator_lines().is_empty(), "{run:#?}");
    // refpage_nr= asks for the call all the same: the filter kills the child,
    // which shows the skip above came from the seccomp check.
    let run = spawn(&["fds"], "refpage_nr=448", kill_on(448));
    assert_eq!(run.status.signal(), Some(libc::SIGSYS), "{run:#?}");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        return child(&args);
    }
    descriptors_closed_by_close_range_are_made_again();
    a_reused_number_never_shows_the_file();
    the_refpage_probe_decides_as_the_kernel_is_and_leaves_nothing_else();
    a_program_without_stdin_keeps_it_closed();
    under_seccomp_the_probe_is_skipped_unless_asked_for();
    println!("lazy_fds: 5 passed, 0 failed (the lazy backend here: {})", lazy_backend_here());
}
