//! Filling and checking patterns. Slab fills are counted by the heap that
//! does them (owner-only counters); the others go to a shared counter.

use core::sync::atomic::{AtomicU64, Ordering};

/// Makes `[ptr, ptr + len)` read as `byte`.
///
/// # Safety
/// The range must be writable memory owned by the caller.
#[inline]
pub unsafe fn fill(ptr: *mut u8, len: usize, byte: u8) {
    unsafe { core::ptr::write_bytes(ptr, byte, len) }
}

/// `fill`, adding the bytes written to `counter`.
///
/// # Safety
/// As `fill`.
#[inline]
pub unsafe fn fill_counted(ptr: *mut u8, len: usize, byte: u8, counter: &AtomicU64) {
    unsafe { fill(ptr, len, byte) };
    counter.fetch_add(len as u64, Ordering::Relaxed);
}

/// `fill` for slab blocks: a multiple of 16 bytes, 16-aligned. Small blocks
/// are written inline with wide stores; a call to memset costs more than
/// the fill itself below a few hundred bytes.
///
/// # Safety
/// As `fill`, and `ptr`, `len` multiples of 16.
#[inline]
pub unsafe fn fill_block(ptr: *mut u8, len: usize, byte: u8) {
    const INLINE_MAX: usize = 256;
    if len > INLINE_MAX {
        return unsafe { fill(ptr, len, byte) };
    }
    let wide = u128::from_ne_bytes([byte; 16]);
    let mut offset = 0;
    while offset < len {
        // SAFETY: 16-aligned and inside the block.
        unsafe { (ptr.add(offset) as *mut u128).write(wide) };
        offset += 16;
    }
}

#[cfg(test)]
/// The offset of the first byte in the range that differs from `byte`.
///
/// # Safety
/// The range must be readable.
pub unsafe fn first_mismatch(ptr: *const u8, len: usize, byte: u8) -> Option<usize> {
    (0..len).find(|&i| unsafe { core::ptr::read_volatile(ptr.add(i)) } != byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_block_covers_every_size() {
        #[repr(align(16))]
        struct Buffer([u8; 1024]);
        for len in (16..=1008).step_by(16) {
            let mut buffer = Buffer([0x11; 1024]);
            unsafe {
                fill_block(buffer.0.as_mut_ptr(), len, 0xAA);
                assert_eq!(first_mismatch(buffer.0.as_ptr(), len, 0xAA), None);
                assert_eq!(buffer.0[len], 0x11, "wrote past {len} bytes");
            }
        }
    }

    #[test]
    fn fill_then_check() {
        let mut buffer = [0u8; 100];
        unsafe {
            fill(buffer.as_mut_ptr().add(10), 80, 0xAA);
            assert_eq!(first_mismatch(buffer.as_ptr().add(10), 80, 0xAA), None);
            assert_eq!(first_mismatch(buffer.as_ptr(), 100, 0xAA), Some(0));
            assert_eq!(first_mismatch(buffer.as_ptr().add(10), 81, 0xAA), Some(80));
        }
    }
}
