//! The calling thread's heap: one thread-local pointer without a destructor,
//! plus a pthread key whose destructor retires the heap at thread exit
//! (DESIGN.md §2: a Rust TLS destructor would register through glibc's
//! `__cxa_thread_atexit_impl`, which calls calloc).
//!
//! The slot holds null (no heap yet), `SETTING_UP` (a heap is being set up:
//! pthread_setspecific may allocate for high keys), `RETIRED` (the exit
//! destructor ran), or the heap. Only a real heap may serve allocations from
//! its thread; the other states go to the fallback heap.

use core::ptr::null_mut;
use core::sync::atomic::{AtomicUsize, Ordering};

use super::heap::{self, Heap};
use crate::sys;

const SETTING_UP: usize = 1;
const RETIRED: usize = 2;

// The slot uses the initial-exec TLS model on x86_64. Inside the LD_PRELOAD
// library, Rust's `thread_local!` compiles to dynamic TLS: a call to
// `__tls_get_addr` per access (1.4 ns, research/preload-rust.md §2), and on
// glibc >= 2.39 that call may itself malloc after a dlopen, recursing forever.
// Stable Rust cannot pick the TLS model, so the slot is declared in assembly
// and reached through a GOTTPOFF relocation. In an executable the linker
// relaxes it to local-exec.
#[cfg(target_arch = "x86_64")]
mod slot {
    use super::Heap;

    core::arch::global_asm!(
        ".pushsection .tbss,\"awT\",@nobits",
        ".p2align 3",
        ".globl pattern_alloc_tls_current_heap",
        ".hidden pattern_alloc_tls_current_heap",
        ".type pattern_alloc_tls_current_heap,@object",
        ".size pattern_alloc_tls_current_heap,8",
        "pattern_alloc_tls_current_heap:",
        ".zero 8",
        ".popsection",
    );

    #[inline(always)]
    pub fn get() -> *mut Heap {
        let value: *mut Heap;
        // SAFETY: reads the calling thread's own 8-byte TLS slot.
        unsafe {
            core::arch::asm!(
                "mov {value}, qword ptr [rip + pattern_alloc_tls_current_heap@GOTTPOFF]",
                "mov {value}, qword ptr fs:[{value}]",
                value = out(reg) value,
                options(nostack, preserves_flags, readonly),
            );
        }
        value
    }

    #[inline(always)]
    pub fn set(value: *mut Heap) {
        // SAFETY: writes the calling thread's own 8-byte TLS slot.
        unsafe {
            core::arch::asm!(
                "mov {offset}, qword ptr [rip + pattern_alloc_tls_current_heap@GOTTPOFF]",
                "mov qword ptr fs:[{offset}], {value}",
                offset = out(reg) _,
                value = in(reg) value,
                options(nostack, preserves_flags),
            );
        }
    }
}

// Elsewhere a Drop-free const thread-local (dynamic TLS inside a shared
// library; the aarch64 initial-exec slot comes with the MTE work, which can
// test it under emulation).
#[cfg(not(target_arch = "x86_64"))]
mod slot {
    use super::Heap;
    use core::cell::Cell;

    thread_local! {
        static CURRENT: Cell<*mut Heap> = const { Cell::new(core::ptr::null_mut()) };
    }

    #[inline(always)]
    pub fn get() -> *mut Heap {
        CURRENT.with(Cell::get)
    }

    #[inline(always)]
    pub fn set(value: *mut Heap) {
        CURRENT.with(|slot| slot.set(value))
    }
}

static KEY: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Creates the exit key; called once during process initialization.
pub fn init() -> bool {
    match sys::key_create(on_thread_exit) {
        Some(key) => {
            KEY.store(key as usize, Ordering::Release);
            true
        }
        None => false,
    }
}

/// The raw slot: a heap pointer or one of the small sentinel values.
#[inline]
pub fn current_raw() -> *mut Heap {
    slot::get()
}

/// The calling thread's heap, setting one up on first use. None means: use
/// the fallback heap.
#[inline]
pub fn heap() -> Option<&'static Heap> {
    let current = current_raw();
    if current.is_null() {
        return set_up();
    }
    heap_if_set(current)
}

#[cold]
fn set_up() -> Option<&'static Heap> {
    crate::tag::thread_starts();
    slot::set(SETTING_UP as *mut Heap);
    let Some(heap) = heap::acquire_heap() else {
        slot::set(null_mut());
        return None;
    };
    let key = KEY.load(Ordering::Acquire);
    let armed = key != usize::MAX && sys::key_set(key as libc::pthread_key_t, heap as *const Heap as *mut libc::c_void);
    if !armed {
        // Without the exit hook the heap would leak at thread exit.
        heap::retire_heap(heap);
        slot::set(null_mut());
        return None;
    }
    slot::set(heap as *const Heap as *mut Heap);
    Some(heap)
}

unsafe extern "C" fn on_thread_exit(value: *mut libc::c_void) {
    slot::set(RETIRED as *mut Heap);
    // SAFETY: the key's value is the heap this thread set up.
    let heap = unsafe { &*(value as *const Heap) };
    heap::retire_heap(heap);
}

/// The heap behind a raw slot value, if it is a real heap.
#[inline]
pub fn heap_if_set(current: *mut Heap) -> Option<&'static Heap> {
    if current as usize > RETIRED {
        // SAFETY: heaps are never unmapped.
        Some(unsafe { &*current })
    } else {
        None
    }
}
