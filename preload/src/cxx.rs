//! The C++ operators new and delete (plain, array, nothrow, sized and
//! `align_val_t` variants, by their Itanium names), so C++ blocks come from
//! and go back to pattern-alloc like malloc's.
//!
//! A throwing `operator new` that fails must call the installed new-handler
//! and retry, or throw `std::bad_alloc`. An exception cannot pass through
//! Rust frames (an `extern "C"` function aborts, and so does `C-unwind` under
//! `panic = "abort"`), so on x86_64 the retry loop is a naked function with
//! hand-written unwind info: when it calls the handler or libstdc++'s
//! `std::__throw_bad_alloc`, the only frames between the throw and the C++
//! caller are that loop's. Both C++ functions are looked up with dlsym at the
//! first failure: a C++ program has libstdc++ loaded, and programs that do
//! not use C++ never pay for it.

use core::ffi::{c_char, c_void};

use pattern_alloc::raw;

use crate::{free_impl, MALLOC_ALIGNMENT};

/// One allocation attempt; null when it fails (or the alignment is not a
/// power of two, which the C++ standard leaves undefined).
extern "C" fn try_new(size: usize, align: usize) -> *mut u8 {
    if !align.is_power_of_two() {
        return core::ptr::null_mut();
    }
    raw::allocate(size, align.max(MALLOC_ALIGNMENT), false)
}

fn cxx_symbol(name: &[u8]) -> usize {
    // SAFETY: NUL-terminated name; RTLD_DEFAULT searches the whole process.
    unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr() as *const c_char) as usize }
}

/// What to call after a failed attempt: the installed new-handler (then
/// retry), or libstdc++'s function that throws `std::bad_alloc`.
extern "C" fn failure_action() -> usize {
    let get_handler = cxx_symbol(b"_ZSt15get_new_handlerv\0");
    if get_handler != 0 {
        // SAFETY: std::get_new_handler() takes nothing and returns a function pointer.
        let get_handler: extern "C" fn() -> usize = unsafe { core::mem::transmute(get_handler) };
        let handler = get_handler();
        if handler != 0 {
            return handler;
        }
    }
    let throw_bad_alloc = cxx_symbol(b"_ZSt17__throw_bad_allocv\0");
    if throw_bad_alloc == 0 {
        raw::fatal(format_args!("operator new: out of memory, and no C++ runtime to throw std::bad_alloc"));
    }
    throw_bad_alloc
}

#[cfg(target_arch = "x86_64")]
mod throwing {
    use core::arch::naked_asm;

    /// `(size in rdi, align in rsi)`: loops try_new / failure_action until a
    /// block comes back; the failure action may throw through this frame.
    #[unsafe(naked)]
    extern "C" fn new_loop(size: usize, align: usize) -> *mut u8 {
        naked_asm!(
            ".cfi_startproc",
            "push rbx",
            ".cfi_def_cfa_offset 16",
            ".cfi_offset rbx, -16",
            "push r12",
            ".cfi_def_cfa_offset 24",
            ".cfi_offset r12, -24",
            // Keeps the stack 16-byte aligned at each call.
            "sub rsp, 8",
            ".cfi_def_cfa_offset 32",
            "mov rbx, rdi",
            "mov r12, rsi",
            "2:",
            "mov rdi, rbx",
            "mov rsi, r12",
            "call {try_new}",
            "test rax, rax",
            "jz 3f",
            ".cfi_remember_state",
            "add rsp, 8",
            ".cfi_def_cfa_offset 24",
            "pop r12",
            ".cfi_def_cfa_offset 16",
            "pop rbx",
            ".cfi_def_cfa_offset 8",
            "ret",
            ".cfi_restore_state",
            "3:",
            "call {failure_action}",
            "call rax",
            "jmp 2b",
            ".cfi_endproc",
            try_new = sym super::try_new,
            failure_action = sym super::failure_action,
        )
    }

    /// operator new(size_t)
    #[unsafe(naked)]
    #[no_mangle]
    pub extern "C" fn _Znwm(size: usize) -> *mut u8 {
        naked_asm!("mov esi, 16", "jmp {new_loop}", new_loop = sym new_loop)
    }

    /// operator new[](size_t)
    #[unsafe(naked)]
    #[no_mangle]
    pub extern "C" fn _Znam(size: usize) -> *mut u8 {
        naked_asm!("mov esi, 16", "jmp {new_loop}", new_loop = sym new_loop)
    }

    /// operator new(size_t, align_val_t)
    #[unsafe(naked)]
    #[no_mangle]
    pub extern "C" fn _ZnwmSt11align_val_t(size: usize, align: usize) -> *mut u8 {
        naked_asm!("jmp {new_loop}", new_loop = sym new_loop)
    }

    /// operator new[](size_t, align_val_t)
    #[unsafe(naked)]
    #[no_mangle]
    pub extern "C" fn _ZnamSt11align_val_t(size: usize, align: usize) -> *mut u8 {
        naked_asm!("jmp {new_loop}", new_loop = sym new_loop)
    }
}

/// Without the unwind-safe loop, a failed throwing new can only stop the
/// process (it must never return null).
#[cfg(not(target_arch = "x86_64"))]
mod throwing {
    use pattern_alloc::raw;

    fn new_or_die(size: usize, align: usize) -> *mut u8 {
        let ptr = super::try_new(size, align);
        if ptr.is_null() {
            raw::fatal(format_args!("operator new({size}, align {align}): out of memory"));
        }
        ptr
    }

    #[no_mangle]
    pub extern "C" fn _Znwm(size: usize) -> *mut u8 {
        new_or_die(size, super::MALLOC_ALIGNMENT)
    }

    #[no_mangle]
    pub extern "C" fn _Znam(size: usize) -> *mut u8 {
        new_or_die(size, super::MALLOC_ALIGNMENT)
    }

    #[no_mangle]
    pub extern "C" fn _ZnwmSt11align_val_t(size: usize, align: usize) -> *mut u8 {
        new_or_die(size, align)
    }

    #[no_mangle]
    pub extern "C" fn _ZnamSt11align_val_t(size: usize, align: usize) -> *mut u8 {
        new_or_die(size, align)
    }
}

// The nothrow forms make one attempt: calling a new-handler that may throw is
// not possible without catching, so they return null like malloc.

/// operator new(size_t, nothrow_t const&)
#[no_mangle]
pub extern "C" fn _ZnwmRKSt9nothrow_t(size: usize, _nothrow: *const c_void) -> *mut u8 {
    try_new(size, MALLOC_ALIGNMENT)
}

/// operator new[](size_t, nothrow_t const&)
#[no_mangle]
pub extern "C" fn _ZnamRKSt9nothrow_t(size: usize, _nothrow: *const c_void) -> *mut u8 {
    try_new(size, MALLOC_ALIGNMENT)
}

/// operator new(size_t, align_val_t, nothrow_t const&)
#[no_mangle]
pub extern "C" fn _ZnwmSt11align_val_tRKSt9nothrow_t(size: usize, align: usize, _nothrow: *const c_void) -> *mut u8 {
    try_new(size, align)
}

/// operator new[](size_t, align_val_t, nothrow_t const&)
#[no_mangle]
pub extern "C" fn _ZnamSt11align_val_tRKSt9nothrow_t(size: usize, align: usize, _nothrow: *const c_void) -> *mut u8 {
    try_new(size, align)
}

/// Defines delete operators: each frees the block, whatever size, alignment
/// or nothrow tag comes with it.
macro_rules! delete_operators {
    ($($name:ident($($extra:ident: $ty:ty),*);)*) => {
        $(
            /// # Safety
            /// `ptr` is null or a live block from operator new.
            #[no_mangle]
            pub unsafe extern "C" fn $name(ptr: *mut c_void, $($extra: $ty),*) {
                $(let _ = $extra;)*
                // SAFETY: forwarded contract.
                unsafe { free_impl(ptr) }
            }
        )*
    };
}

delete_operators! {
    _ZdlPv();
    _ZdaPv();
    _ZdlPvm(size: usize);
    _ZdaPvm(size: usize);
    _ZdlPvSt11align_val_t(align: usize);
    _ZdaPvSt11align_val_t(align: usize);
    _ZdlPvmSt11align_val_t(size: usize, align: usize);
    _ZdaPvmSt11align_val_t(size: usize, align: usize);
    _ZdlPvRKSt9nothrow_t(nothrow: *const c_void);
    _ZdaPvRKSt9nothrow_t(nothrow: *const c_void);
    _ZdlPvSt11align_val_tRKSt9nothrow_t(align: usize, nothrow: *const c_void);
    _ZdaPvSt11align_val_tRKSt9nothrow_t(align: usize, nothrow: *const c_void);
}
