//! The calling thread's heap: one thread-local pointer without a destructor,
//! plus a pthread key whose destructor retires the heap at thread exit
//! (DESIGN.md §2: a Rust TLS destructor would register through glibc's
//! `__cxa_thread_atexit_impl`, which calls calloc).
//!
//! The slot holds null (no heap yet), `SETTING_UP` (a heap is being set up:
//! pthread_setspecific may allocate for high keys), `RETIRED` (the exit
//! destructor ran), or the heap. Only a real heap may serve allocations from
//! its thread; the other states go to the fallback heap.

use core::cell::Cell;
use core::ptr::null_mut;
use core::sync::atomic::{AtomicUsize, Ordering};

use super::heap::{self, Heap};
use crate::sys;

const SETTING_UP: usize = 1;
const RETIRED: usize = 2;

thread_local! {
    static CURRENT: Cell<*mut Heap> = const { Cell::new(null_mut()) };
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
    CURRENT.with(Cell::get)
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
    CURRENT.with(|slot| slot.set(SETTING_UP as *mut Heap));
    let Some(heap) = heap::acquire_heap() else {
        CURRENT.with(|slot| slot.set(null_mut()));
        return None;
    };
    let key = KEY.load(Ordering::Acquire);
    let armed = key != usize::MAX && sys::key_set(key as libc::pthread_key_t, heap as *const Heap as *mut libc::c_void);
    if !armed {
        // Without the exit hook the heap would leak at thread exit.
        heap::retire_heap(heap);
        CURRENT.with(|slot| slot.set(null_mut()));
        return None;
    }
    CURRENT.with(|slot| slot.set(heap as *const Heap as *mut Heap));
    Some(heap)
}

unsafe extern "C" fn on_thread_exit(value: *mut libc::c_void) {
    CURRENT.with(|slot| slot.set(RETIRED as *mut Heap));
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
