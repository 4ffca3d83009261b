//! Interrupting a hunt: each run is in a process group of its own (so a timed
//! out run can be killed with all its children), which also keeps it out of
//! the terminal's reach. Ctrl-C or a SIGTERM to the tool is passed on to the
//! running group before the tool dies of the same signal.

use std::sync::atomic::{AtomicI32, Ordering};

static RUNNING_GROUP: AtomicI32 = AtomicI32::new(0);

const FORWARDED: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

pub fn forward_to_children() {
    for signal in FORWARDED {
        // SAFETY: installing a handler that only calls async-signal-safe functions.
        unsafe { libc::signal(signal, forward as *const () as libc::sighandler_t) };
    }
}

/// The process group now running (0: none).
pub fn set_running(group: i32) {
    RUNNING_GROUP.store(group, Ordering::SeqCst);
}

extern "C" fn forward(signal: libc::c_int) {
    let group = RUNNING_GROUP.load(Ordering::SeqCst);
    // SAFETY: kill, signal and raise are async-signal-safe.
    unsafe {
        if group > 0 {
            libc::kill(-group, signal);
        }
        libc::signal(signal, libc::SIG_DFL);
        libc::raise(signal);
    }
}

/// A signal's name, e.g. "SIGSEGV".
pub fn name(signal: i32) -> String {
    let known = match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGSYS => "SIGSYS",
        _ => return format!("signal {signal}"),
    };
    known.to_string()
}
