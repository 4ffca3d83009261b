//! Crash decoding (`crash_report=1`): a SIGSEGV/SIGBUS handler that names the
//! fault address and every general register holding a pattern value, then
//! hands the signal back to whatever handled it before, so the process dies
//! exactly as it would have without us.
//!
//! The handler is async-signal-safe: it reads only data written before it was
//! installed (the runtime's pattern table), formats into stack buffers
//! (`report::LineBuffer`) and writes with write(2); it takes no lock and never
//! allocates.
//!
//! The handler may run before the runtime exists (installed by the
//! constructor, a fault before the first allocation): then it only passes the
//! signal on.
//!
//! Alternate stack: sigaltstack is per thread. The thread that installs the
//! handler (the one making the process's first allocation, normally the main
//! thread) gets a 64 KiB mmap'd stack unless it already has one. Threads
//! created later run the handler on their own stack unless they set up an
//! alternate stack themselves (Rust's std does for its threads): that works
//! for every fault except a stack overflow, which then kills the thread's
//! process with SIGSEGV without a report, as it would without the handler.

use core::cell::UnsafeCell;
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use crate::init::Runtime;
use crate::report::LineBuffer;
use crate::size_class::{class_size, CLASS_COUNT, LARGE_CLASS};
use crate::sys;

const ALT_STACK_SIZE: usize = 64 * 1024;

/// Values up to this far above a repeated pattern are reported as
/// "pattern + offset": a field read through a pointer that was the pattern.
const MAX_OFFSET: u64 = 4096;

static RUNTIME: AtomicPtr<Runtime> = AtomicPtr::new(core::ptr::null_mut());

/// The handlers in force before ours, restored when a signal arrives.
struct Previous(UnsafeCell<[libc::sigaction; 2]>);

// SAFETY: written once by `install` before our handlers are set; read only by
// the handler afterwards.
unsafe impl Sync for Previous {}

// SAFETY: sigaction is plain data; all zeros is SIG_DFL with an empty mask.
static PREVIOUS: Previous = Previous(UnsafeCell::new(unsafe { core::mem::zeroed() }));

const SIGNALS: [libc::c_int; 2] = [libc::SIGSEGV, libc::SIGBUS];

static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Installs the handler for SIGSEGV and SIGBUS (unless the constructor below
/// did) and gives it the runtime's patterns. Called once, at initialization.
pub fn install(runtime: &'static Runtime) {
    // Referenced here so the linker keeps the constructor's object file.
    core::hint::black_box(&EARLY_INSTALL);
    RUNTIME.store(runtime as *const Runtime as *mut Runtime, Ordering::Release);
    install_handlers();
}

/// Rust's std decides at start-up whether to install its stack-overflow
/// handler (it does when SIGSEGV is SIG_DFL), allocates, then installs it,
/// replacing a handler our first allocation put in between. Its handler
/// resets SIGSEGV to the default on any other fault, so ours would never run.
/// A constructor runs before std's start-up: when `PATTERN_ALLOC` asks for
/// crash reports, the handler is in place first and std leaves it alone
/// (its "stack overflow" message is then replaced by our report).
#[used]
#[link_section = ".init_array"]
static EARLY_INSTALL: extern "C" fn() = early_install;

extern "C" fn early_install() {
    let Some(options) = sys::getenv(b"PATTERN_ALLOC\0") else { return };
    let mut config = crate::config::Config::DEFAULT;
    // Problems are reported once, by the initialization proper.
    crate::config::apply_options(&mut config, options, &mut |_| {});
    if config.crash_report {
        install_handlers();
    }
}

fn install_handlers() {
    if INSTALLED.swap(true, Ordering::AcqRel) {
        return;
    }
    ensure_alt_stack();
    for (index, &signal) in SIGNALS.iter().enumerate() {
        // SAFETY: sigaction with valid pointers; PREVIOUS is not read yet
        // for this signal because our handler is not installed until this call returns.
        unsafe {
            let mut action: libc::sigaction = core::mem::zeroed();
            action.sa_sigaction = handle as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            let previous = &mut (*PREVIOUS.0.get())[index];
            if libc::sigaction(signal, &action, previous) != 0 {
                crate::report::line(format_args!(
                    "warning: crash_report: cannot install the handler for signal {signal}"
                ));
            }
        }
    }
}

/// Gives the calling thread an alternate signal stack unless it has one.
fn ensure_alt_stack() {
    // SAFETY: sigaltstack with a null new stack only reads the current one.
    unsafe {
        let mut current: libc::stack_t = core::mem::zeroed();
        if libc::sigaltstack(core::ptr::null(), &mut current) != 0 || current.ss_flags & libc::SS_DISABLE == 0 {
            return;
        }
    }
    // A guard page below the stack turns an overflow of the handler into a
    // fault instead of silent corruption.
    let Some(base) = sys::reserve(ALT_STACK_SIZE + sys::PAGE_SIZE) else { return };
    let stack = base.wrapping_add(sys::PAGE_SIZE);
    // SAFETY: `stack` lies in the fresh reservation; making it writable
    // touches nothing else. The mapping is never unmapped (the kernel may use it at any time).
    unsafe {
        if libc::mprotect(stack.cast(), ALT_STACK_SIZE, libc::PROT_READ | libc::PROT_WRITE) != 0 {
            return;
        }
        let new = libc::stack_t { ss_sp: stack.cast(), ss_flags: 0, ss_size: ALT_STACK_SIZE };
        libc::sigaltstack(&new, core::ptr::null_mut());
    }
}

extern "C" fn handle(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let runtime = RUNTIME.load(Ordering::Acquire);
    // SAFETY: the kernel passes valid siginfo and ucontext pointers to an
    // SA_SIGINFO handler; the runtime is 'static.
    unsafe {
        if !runtime.is_null() {
            report(&*runtime, signal, &*info, context);
        }
        // Hand the signal back: with the previous disposition restored, a
        // fault re-executes the instruction and faults again; a signal sent
        // by kill() is raised again (blocked until we return).
        let index = if signal == libc::SIGBUS { 1 } else { 0 };
        libc::sigaction(signal, &(*PREVIOUS.0.get())[index], core::ptr::null_mut());
        if (*info).si_code <= 0 {
            libc::raise(signal);
        }
    }
}

/// # Safety
/// `context` is the ucontext_t the kernel passed with `info`.
unsafe fn report(runtime: &Runtime, signal: libc::c_int, info: &libc::siginfo_t, context: *mut libc::c_void) {
    let name = if signal == libc::SIGBUS { "SIGBUS" } else { "SIGSEGV" };
    // SAFETY: SIGSEGV and SIGBUS carry si_addr.
    let address = unsafe { info.si_addr() } as u64;
    let registers = unsafe { registers(context) };
    let sent = info.si_code <= 0;
    let mut buffer = LineBuffer::new();
    if sent {
        // SAFETY: a signal sent with kill() or sigqueue() carries the sender's pid.
        let _ = write!(buffer, "pattern-alloc: {name} sent by process {}, not a fault", unsafe { info.si_pid() });
    } else {
        let _ =
            write!(buffer, "pattern-alloc: {name} ({}) at address {address:#x}", code_meaning(signal, info.si_code));
    }
    if let Some(pc) = registers.pc {
        let _ = write!(buffer, ", pc {pc:#x}");
    }
    let _ = writeln!(buffer);
    buffer.flush();

    let mut found = 0;
    // An address of all 0xff bytes is worth naming (registers holding -1 are not).
    if !sent && decode(runtime, address, true).is_some() {
        let _ = write!(buffer, "pattern-alloc:   fault address = {address:#018x}: ");
        describe(&mut buffer, runtime, address, true);
        let _ = writeln!(buffer);
        buffer.flush();
        found += 1;
    }
    for (name, value) in registers.general.iter().take(registers.count) {
        if decode(runtime, *value, false).is_some() {
            let _ = write!(buffer, "pattern-alloc:   {name} = {value:#018x}: ");
            describe(&mut buffer, runtime, *value, false);
            let _ = writeln!(buffer);
            buffer.flush();
            found += 1;
        }
    }
    if found == 0 {
        let _ = writeln!(buffer, "pattern-alloc:   neither the address nor a general register holds a pattern value");
        buffer.flush();
    }
}

fn code_meaning(signal: libc::c_int, code: libc::c_int) -> &'static str {
    match (signal, code) {
        (_, code) if code <= 0 => "sent by a process",
        (libc::SIGSEGV, 1) => "address not mapped",
        (libc::SIGSEGV, 2) => "access not permitted",
        // x86_64 reports a non-canonical address (such as 8 pattern bytes) as a
        // general protection fault with address 0.
        (libc::SIGSEGV, 0x80) => "general protection fault; the kernel reports address 0",
        (libc::SIGBUS, 1) => "misaligned address",
        (libc::SIGBUS, 2) => "address beyond the end of a mapped file",
        (libc::SIGBUS, 3) => "hardware error",
        _ => "fault",
    }
}

/// The pattern byte `value` is made of, and the offset above the repeated
/// pattern: 8 repeated bytes, or 4 repeated bytes zero-extended (a 32-bit
/// load), plus at most `MAX_OFFSET`. 0x00 is left out (zeros are everywhere),
/// and 0xff unless `allow_ff` (so is minus one).
fn decode(runtime: &Runtime, value: u64, allow_ff: bool) -> Option<(u8, u64, bool)> {
    let byte = (value >> 56) as u8;
    let (byte, base, narrow) = if byte == 0 {
        let byte = (value >> 24) as u8;
        (byte, u64::from(u32::from_ne_bytes([byte; 4])), true)
    } else {
        (byte, u64::from_ne_bytes([byte; 8]), false)
    };
    let offset = value.wrapping_sub(base);
    if byte == 0 || (byte == 0xff && !allow_ff) || offset >= MAX_OFFSET || !is_pattern(runtime, byte) {
        return None;
    }
    Some((byte, offset, narrow))
}

fn is_pattern(runtime: &Runtime, byte: u8) -> bool {
    runtime.patterns.contains(&byte) || runtime.free_fill == Some(byte)
}

/// "alloc pattern of size class 7 (up to 128 bytes)" and the like.
fn describe(buffer: &mut LineBuffer, runtime: &Runtime, value: u64, allow_ff: bool) {
    let Some((byte, offset, narrow)) = decode(runtime, value, allow_ff) else { return };
    let classes = runtime.patterns.iter().filter(|&&p| p == byte).count();
    let mut first = true;
    if classes == CLASS_COUNT {
        let _ = write!(buffer, "alloc pattern");
        first = false;
    } else if classes > 0 {
        let class = runtime.patterns.iter().position(|&p| p == byte).unwrap_or(0);
        let _ = write!(buffer, "alloc pattern of ");
        if class == LARGE_CLASS {
            let _ = write!(buffer, "large blocks (over {} bytes)", runtime.large_threshold);
        } else {
            let _ = write!(buffer, "size class {class} (up to {} bytes)", class_size(class));
        }
        if classes > 1 {
            let _ = write!(buffer, " and {} more classes", classes - 1);
        }
        first = false;
    }
    if runtime.free_fill == Some(byte) {
        let _ = write!(buffer, "{}free pattern", if first { "" } else { " / " });
    }
    if narrow {
        let _ = write!(buffer, ", 32-bit");
    }
    if offset != 0 {
        let _ = write!(buffer, ", + {offset:#x}");
    }
}

/// The general registers of the interrupted context, by name.
struct Registers {
    general: [(&'static str, u64); 31],
    count: usize,
    pc: Option<u64>,
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
unsafe fn registers(context: *mut libc::c_void) -> Registers {
    // The order of glibc's REG_* indices: r8..r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip.
    const NAMES: [&str; 16] =
        ["r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rdi", "rsi", "rbp", "rbx", "rdx", "rax", "rcx", "rsp"];
    // SAFETY: the caller passes the kernel's ucontext_t.
    let gregs = unsafe { &(*(context as *const libc::ucontext_t)).uc_mcontext.gregs };
    let mut general = [("", 0u64); 31];
    for (index, name) in NAMES.iter().enumerate() {
        general[index] = (name, gregs[index] as u64);
    }
    Registers { general, count: NAMES.len(), pc: Some(gregs[libc::REG_RIP as usize] as u64) }
}

#[cfg(all(target_arch = "aarch64", target_os = "linux"))]
unsafe fn registers(context: *mut libc::c_void) -> Registers {
    const NAMES: [&str; 31] = [
        "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14", "x15", "x16",
        "x17", "x18", "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28", "x29", "x30",
    ];
    // SAFETY: the caller passes the kernel's ucontext_t.
    let mcontext = unsafe { &(*(context as *const libc::ucontext_t)).uc_mcontext };
    let mut general = [("", 0u64); 31];
    for (index, name) in NAMES.iter().enumerate() {
        general[index] = (name, mcontext.regs[index]);
    }
    Registers { general, count: NAMES.len(), pc: Some(mcontext.pc) }
}

/// Elsewhere only the fault address is decoded.
#[cfg(not(any(all(target_arch = "x86_64", target_os = "linux"), all(target_arch = "aarch64", target_os = "linux"))))]
unsafe fn registers(_context: *mut libc::c_void) -> Registers {
    Registers { general: [("", 0); 31], count: 0, pc: None }
}
