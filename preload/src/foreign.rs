//! Blocks this allocator did not make go back to the allocator that did:
//! glibc's, which a library opened with RTLD_DEEPBIND binds to
//! (research/preload-rust.md §5). glibc's functions are found with
//! `dlsym(RTLD_NEXT)`, once, when the first foreign block shows up; our own
//! `__libc_*` exports shadow the direct names.

use core::ffi::{c_char, c_void};
use core::sync::atomic::{AtomicUsize, Ordering};

use pattern_alloc::raw;

struct NextSymbol {
    name: &'static [u8],
    address: AtomicUsize,
}

impl NextSymbol {
    const fn new(name: &'static [u8]) -> Self {
        NextSymbol { name, address: AtomicUsize::new(0) }
    }

    fn resolve(&self) -> usize {
        let cached = self.address.load(Ordering::Acquire);
        if cached != 0 {
            return cached;
        }
        // SAFETY: the name is NUL-terminated. dlsym may allocate; that
        // reaches our malloc, which is initialized and holds no lock here.
        let found = unsafe { libc::dlsym(libc::RTLD_NEXT, self.name.as_ptr() as *const c_char) } as usize;
        if found == 0 {
            let name = core::str::from_utf8(&self.name[..self.name.len() - 1]).unwrap_or("?");
            raw::fatal(format_args!(
                "a block from another allocator reached us, and {name} of the next one is missing"
            ));
        }
        self.address.store(found, Ordering::Release);
        found
    }
}

static FREE: NextSymbol = NextSymbol::new(b"free\0");
static REALLOC: NextSymbol = NextSymbol::new(b"realloc\0");
static USABLE_SIZE: NextSymbol = NextSymbol::new(b"malloc_usable_size\0");

/// # Safety
/// `ptr` is a live block of the next allocator.
pub unsafe fn free(ptr: *mut c_void) {
    // SAFETY: FREE resolves to a function with free's signature.
    let next: unsafe extern "C" fn(*mut c_void) = unsafe { core::mem::transmute(FREE.resolve()) };
    // SAFETY: forwarded contract.
    unsafe { next(ptr) }
}

/// # Safety
/// `ptr` is a live block of the next allocator.
pub unsafe fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: REALLOC resolves to a function with realloc's signature.
    let next: unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void =
        unsafe { core::mem::transmute(REALLOC.resolve()) };
    // SAFETY: forwarded contract.
    unsafe { next(ptr, size) }
}

/// # Safety
/// `ptr` is a live block of the next allocator.
pub unsafe fn usable_size(ptr: *mut c_void) -> usize {
    // SAFETY: USABLE_SIZE resolves to malloc_usable_size.
    let next: unsafe extern "C" fn(*mut c_void) -> usize = unsafe { core::mem::transmute(USABLE_SIZE.resolve()) };
    // SAFETY: forwarded contract.
    unsafe { next(ptr) }
}
