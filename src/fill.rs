//! Filling and checking patterns. Callers count the bytes in their own stats.

/// Makes `[ptr, ptr + len)` read as `byte`.
///
/// # Safety
/// The range must be writable memory owned by the caller.
#[inline]
pub unsafe fn fill(ptr: *mut u8, len: usize, byte: u8) {
    unsafe { core::ptr::write_bytes(ptr, byte, len) }
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
