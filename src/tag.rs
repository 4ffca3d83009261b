//! Where the front ends meet arm64 memory tagging (DESIGN.md §7, C6): the
//! hooks the small and large paths call. Elsewhere (x86_64, or arm64 without
//! `mte=`) they are no-ops the compiler removes: pointers carry no tag.
//!
//! Under MTE a block of size class `c` carries tag `class_tag(c)` (or a
//! random one with `mte_tags=random`, never a neighbour's), freed small
//! blocks carry tag 0, so a stale pointer or an overflow into a neighbour of
//! another tag traps. The allocator's records (segment map, page offsets,
//! large registry) use addresses without the tag; pointers handed out carry it.

#[cfg(all(target_arch = "aarch64", target_os = "linux"))]
mod imp {
    use crate::pages::mte;
    use crate::report;

    pub use crate::pages::mte::ensure_thread as thread_starts;

    #[inline(always)]
    pub fn enabled() -> bool {
        mte::enabled()
    }

    /// The address without the top byte (which arm64 ignores on access).
    #[inline(always)]
    pub fn address(ptr: *mut u8) -> *mut u8 {
        mte::address(ptr)
    }

    /// A freed block's memory carries tag 0: `ptr` must carry the block's
    /// tag, else it is a double free (tag 0 found) or a forged pointer.
    fn check_free(ptr: *mut u8, size: usize) {
        let address = mte::address(ptr);
        // SAFETY: the caller located the block in our memory.
        let found = unsafe { mte::memory_tag(address) };
        let given = mte::tag_of(ptr);
        if found == given {
            return;
        }
        if found == 0 {
            report::fatal(format_args!(
                "double free of {ptr:p} (size class of {size} bytes; its memory is tagged free)"
            ));
        }
        report::fatal(format_args!(
            "invalid free of {ptr:p}: the pointer carries tag {given:#x}, the block of {size} bytes tag {found:#x}"
        ));
    }

    /// Small free: checks the tag and retags the block 0 (freed). Returns the
    /// untagged address, through which the free list is written.
    #[inline]
    pub fn small_free(ptr: *mut u8, size: usize) -> *mut u8 {
        if !mte::enabled() {
            return ptr;
        }
        check_free(ptr, size);
        let address = mte::address(ptr);
        // SAFETY: the whole block is ours; tag 0 keeps its data.
        unsafe { mte::set_tags(address, size) };
        address
    }

    /// The tag for a small block at `block` of a page holding `capacity`
    /// blocks of `size` bytes from `start`.
    pub fn small_tag(class: usize, block: *mut u8, size: usize, start: *mut u8, capacity: usize) -> u8 {
        if !mte::random_tags() {
            return mte::class_tag(class);
        }
        // Tag 0 is excluded by the include mask already; a neighbour not yet
        // carved, or free, has tag 0.
        let mut exclude = 1u16;
        let (block, start) = (block as usize, start as usize);
        // SAFETY: neighbours inside the same slab page are mapped.
        unsafe {
            if block > start {
                exclude |= 1 << mte::memory_tag((block - size) as *const u8);
            }
            if block + size < start + capacity * size {
                exclude |= 1 << mte::memory_tag((block + size) as *const u8);
            }
        }
        mte::random_tag(exclude)
    }

    /// Fill as the contract needs and tag `[block, block + size)`.
    pub enum SmallFill {
        /// Memory already reads as the pattern: tag only.
        Keep,
        Pattern(u8),
        Zero,
    }

    /// Tags a small block being handed out and writes what `fill` says; returns
    /// the tagged pointer.
    ///
    /// # Safety
    /// `[block, block + size)` is a free block of ours in a `PROT_MTE` mapping.
    #[inline]
    pub unsafe fn small_block(block: *mut u8, size: usize, tag: u8, fill: SmallFill) -> *mut u8 {
        let tagged = mte::with_tag(block, tag);
        // SAFETY: the caller's block.
        unsafe {
            match fill {
                SmallFill::Keep => mte::set_tags(tagged, size),
                SmallFill::Pattern(byte) => mte::fill_and_tag(tagged, size, byte),
                SmallFill::Zero => mte::zero_and_tag(tagged, size),
            }
        }
        tagged
    }

    /// Tags the usable pages of a large block (already holding what the
    /// contract promises; zeroed blocks are zeroed again by `dc gzva`, which
    /// costs no more than tagging alone). Returns the tagged pointer.
    #[inline]
    pub fn large_block(user: *mut u8, usable: usize, zeroed: bool) -> *mut u8 {
        if !mte::enabled() {
            return user;
        }
        mte::ensure_thread();
        let tag = if mte::random_tags() { mte::random_tag(1) } else { mte::class_tag(crate::size_class::LARGE_CLASS) };
        let tagged = mte::with_tag(user, tag);
        // SAFETY: the block's usable pages are ours and PROT_MTE.
        unsafe {
            if zeroed {
                mte::zero_and_tag(tagged, usable);
            } else {
                mte::set_tags(tagged, usable);
            }
        }
        tagged
    }

    /// Splits a large block's pointer into its address and tag.
    #[inline(always)]
    pub fn split(ptr: *mut u8) -> (*mut u8, u8) {
        (mte::address(ptr), mte::tag_of(ptr))
    }

    /// Large free of a registered block: checks the tag; a block that stays
    /// resident in the cache is retagged 0 (a decommitted one gets fresh,
    /// untagged pages from the kernel).
    #[inline]
    pub fn large_free(address: *mut u8, tag: u8, usable: usize, resident: bool) {
        if !mte::enabled() {
            return;
        }
        check_free(mte::with_tag(address, tag), usable);
        if resident {
            // SAFETY: the block is dead and ours.
            unsafe { mte::set_tags(address, usable) };
        }
    }
}

#[cfg(not(all(target_arch = "aarch64", target_os = "linux")))]
mod imp {
    #[inline(always)]
    pub fn enabled() -> bool {
        false
    }

    #[inline(always)]
    pub fn address(ptr: *mut u8) -> *mut u8 {
        ptr
    }

    #[inline(always)]
    pub fn thread_starts() {}

    #[inline(always)]
    pub fn small_free(ptr: *mut u8, _size: usize) -> *mut u8 {
        ptr
    }

    #[inline(always)]
    pub fn large_block(user: *mut u8, _usable: usize, _zeroed: bool) -> *mut u8 {
        user
    }

    #[inline(always)]
    pub fn split(ptr: *mut u8) -> (*mut u8, u8) {
        (ptr, 0)
    }

    #[inline(always)]
    pub fn large_free(_address: *mut u8, _tag: u8, _usable: usize, _resident: bool) {}
}

pub use imp::*;
