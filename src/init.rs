//! Process-wide initialization, done once at the first allocation: the
//! configuration (in code, then `PATTERN_ALLOC`), the page backend, the
//! thread-exit key, fork handlers and the exit-time stats report.
//!
//! Nothing here allocates. Registration calls that might (pthread_atfork,
//! atexit) run after the runtime is marked ready, so an allocation they make
//! is served normally instead of waiting for initialization to finish.

use core::cell::UnsafeCell;
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use crate::config::{apply_options, Config, OptionError};
use crate::report::{self, Escaped};
use crate::size_class::CLASS_COUNT;
use crate::stats::{self, Stats};
use crate::{crash, large, lock, pages, small, sys};

/// The configuration as the allocator uses it.
pub struct Runtime {
    config: Config,
    pub patterns: [u8; CLASS_COUNT],
    pub free_fill: Option<u8>,
    pub large_threshold: usize,
    /// Keys the double-free cookie written into freed blocks.
    pub secret: u64,
}

impl Runtime {
    pub fn config(&self) -> &Config {
        &self.config
    }
}

const UNINITIALIZED: u8 = 0;
const RUNNING: u8 = 1;
const READY: u8 = 2;

static STATE: AtomicU8 = AtomicU8::new(UNINITIALIZED);
static INITIALIZING_THREAD: AtomicUsize = AtomicUsize::new(0);

struct RuntimeCell(UnsafeCell<MaybeUninit<Runtime>>);

// SAFETY: written once before STATE becomes READY (Release), read only after
// observing READY (Acquire).
unsafe impl Sync for RuntimeCell {}

static RUNTIME: RuntimeCell = RuntimeCell(UnsafeCell::new(MaybeUninit::uninit()));

/// The runtime, initializing it from `config` (and the environment) first if
/// this is the process's first allocation.
#[inline]
pub fn runtime(config: &Config) -> &'static Runtime {
    if STATE.load(Ordering::Acquire) == READY {
        // SAFETY: READY means RUNTIME is written.
        return unsafe { (*RUNTIME.0.get()).assume_init_ref() };
    }
    initialize(config)
}

#[cold]
fn initialize(config: &Config) -> &'static Runtime {
    match STATE.compare_exchange(UNINITIALIZED, RUNNING, Ordering::Acquire, Ordering::Acquire) {
        Ok(_) => {
            INITIALIZING_THREAD.store(sys::thread_id(), Ordering::Relaxed);
            let runtime = build_runtime(config);
            // SAFETY: we won the race, so nobody else writes or reads RUNTIME yet.
            unsafe { (*RUNTIME.0.get()).write(runtime) };
            STATE.store(READY, Ordering::Release);
            after_ready();
        }
        Err(_) => {
            if INITIALIZING_THREAD.load(Ordering::Relaxed) == sys::thread_id() && STATE.load(Ordering::Acquire) != READY
            {
                report::fatal(format_args!("internal error: allocation while initializing"));
            }
            while STATE.load(Ordering::Acquire) != READY {
                core::hint::spin_loop();
            }
        }
    }
    // SAFETY: READY.
    unsafe { (*RUNTIME.0.get()).assume_init_ref() }
}

fn build_runtime(in_code: &Config) -> Runtime {
    let mut config = *in_code;
    if let Some(options) = sys::getenv(b"PATTERN_ALLOC\0") {
        apply_options(&mut config, options, &mut warn_option);
    }
    pages::select(&config);
    pages::init_tagging(&config);
    if !small::init() {
        report::line(format_args!("warning: no pthread key left; all threads share one locked heap"));
    }
    let mut patterns = [0; CLASS_COUNT];
    for (class, pattern) in patterns.iter_mut().enumerate() {
        *pattern = config.pattern(class);
    }
    Runtime {
        config,
        patterns,
        free_fill: config.free_fill,
        large_threshold: config.large_threshold,
        secret: sys::random_u64() | 1,
    }
}

fn warn_option(problem: OptionError<'_>) {
    match problem {
        OptionError::UnknownKey(key) => {
            report::line(format_args!("warning: unknown option '{}' in PATTERN_ALLOC, ignored", Escaped(key)))
        }
        OptionError::BadValue { key, value, expected } => report::line(format_args!(
            "warning: bad value '{}' for option '{}' in PATTERN_ALLOC (expected {expected}), ignored",
            Escaped(value),
            Escaped(key)
        )),
    }
}

fn after_ready() {
    sys::register_atfork(fork_prepare, fork_parent, fork_child);
    // SAFETY: READY.
    let runtime = unsafe { (*RUNTIME.0.get()).assume_init_ref() };
    if runtime.config.stats {
        sys::register_atexit(print_stats_at_exit);
    }
    if runtime.config.verbose {
        report::print_config(&runtime.config, pages::backend_name());
    }
    if runtime.config.crash_report {
        crash::install(runtime);
    }
}

extern "C" fn print_stats_at_exit() {
    report::print_stats(&stats_snapshot());
}

pub fn stats_snapshot() -> Stats {
    stats::snapshot(pages::backend_name(), &mut |visit| small::for_each_counters(visit))
}

/// Takes every allocator lock so the child starts with consistent state.
unsafe extern "C" fn fork_prepare() {
    small::lock_for_fork();
    large::lock_for_fork();
    lock::set_fork_owner();
}

unsafe extern "C" fn fork_parent() {
    lock::clear_fork_owner();
    large::unlock_after_fork();
    small::unlock_after_fork();
}

/// The child has only the forking thread, which held every lock.
unsafe extern "C" fn fork_child() {
    lock::clear_fork_owner();
    large::unlock_after_fork();
    small::unlock_after_fork();
}
