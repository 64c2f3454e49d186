//! A global allocator that wipes memory as it is freed.
//!
//! Zeroizing our own secret types is not enough: the HTTP stack copies the
//! injected header into its own buffers, the socket layer reads frames into
//! vectors, serializers grow vectors by reallocating, and every one of those
//! copies would otherwise linger in freed heap memory until reused. Wiping
//! at free time covers all of them without having to find each one.
//!
//! Cost: one `explicit_bzero` per freed block (memset speed), and a
//! reallocation is always allocate-copy-wipe-free, never in place.
//! The benchmark measures it.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::c_void;

unsafe extern "C" {
    // glibc >= 2.25 and musl: a memset the compiler may not remove as a
    // dead store before `free`.
    fn explicit_bzero(s: *mut c_void, n: usize);
}

/// Wipes `len` bytes at `ptr`.
///
/// # Safety
/// `ptr..ptr+len` must be writable memory owned by the caller.
unsafe fn wipe(ptr: *mut u8, len: usize) {
    if len != 0 {
        // SAFETY: the caller owns the range.
        unsafe { explicit_bzero(ptr.cast(), len) };
    }
}

/// Wraps another allocator (the system one in vaultd) and wipes every block
/// before handing it back to it.
#[derive(Debug, Default)]
pub struct Wiping<A = System>(pub A);

// SAFETY: every method forwards to the inner allocator with the same layout
// contract; the only addition is writing zeros into memory we still own.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Wiping<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as ours.
        unsafe { self.0.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as ours.
        unsafe { self.0.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated with `layout` and is still ours.
        unsafe {
            wipe(ptr, layout.size());
            self.0.dealloc(ptr, layout);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Never let the inner allocator move the block itself: the old copy
        // would go back unwiped. Allocate, copy, wipe and free instead.
        // SAFETY: `new_size` is non-zero and does not overflow when rounded
        // to the alignment (the caller's contract).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: as `alloc`.
        let new = unsafe { self.0.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are valid for the smaller size and
            // distinct; the old one is ours to wipe and free.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::UnsafeCell;
    use std::sync::Mutex;

    /// A bump allocator that never reuses or unmaps memory, so a test may
    /// read a block after it was freed without undefined behaviour.
    struct Arena {
        buf: Box<UnsafeCell<[u8; 4096]>>,
        next: Mutex<usize>,
    }

    // SAFETY: the arena hands out disjoint ranges under a mutex.
    unsafe impl Sync for Arena {}

    // SAFETY: blocks are disjoint, aligned and within `buf`.
    unsafe impl GlobalAlloc for Arena {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let mut next = self.next.lock().unwrap();
            let start = next.next_multiple_of(layout.align());
            if start + layout.size() > 4096 {
                return std::ptr::null_mut();
            }
            *next = start + layout.size();
            // SAFETY: within the buffer.
            unsafe { self.buf.get().cast::<u8>().add(start) }
        }
        unsafe fn dealloc(&self, _: *mut u8, _: Layout) {}
    }

    impl Arena {
        fn new() -> Arena {
            Arena {
                buf: Box::new(UnsafeCell::new([0xAA; 4096])),
                next: Mutex::new(0),
            }
        }
        fn bytes(&self) -> &[u8] {
            // SAFETY: no block is being written while a test reads.
            unsafe { &*self.buf.get() }
        }
    }

    #[test]
    fn freed_blocks_are_wiped() {
        let a = Wiping(Arena::new());
        let layout = Layout::from_size_align(64, 8).unwrap();
        // SAFETY: a fresh block of 64 bytes, written then freed.
        unsafe {
            let p = a.alloc(layout);
            std::ptr::write_bytes(p, b'S', 64);
            a.dealloc(p, layout);
        }
        assert!(!a.0.bytes().contains(&b'S'));
    }

    #[test]
    fn growing_realloc_wipes_the_old_block_and_keeps_the_data() {
        let a = Wiping(Arena::new());
        let layout = Layout::from_size_align(32, 8).unwrap();
        // SAFETY: as above; the grown block is read before it is freed.
        unsafe {
            let p = a.alloc(layout);
            std::ptr::copy_nonoverlapping(b"secret-secret-secret-secret-0123".as_ptr(), p, 32);
            let q = a.realloc(p, layout, 100);
            assert_ne!(p, q);
            let grown = std::slice::from_raw_parts(q, 32);
            assert_eq!(grown, b"secret-secret-secret-secret-0123");
            // Only the new block holds the data now.
            assert_eq!(harness_count(a.0.bytes(), b"secret-"), 4);
            a.dealloc(q, Layout::from_size_align(100, 8).unwrap());
        }
        assert_eq!(harness_count(a.0.bytes(), b"secret"), 0);
    }

    #[test]
    fn shrinking_realloc_leaves_one_copy() {
        let a = Wiping(Arena::new());
        let layout = Layout::from_size_align(48, 8).unwrap();
        // SAFETY: as above.
        unsafe {
            let p = a.alloc(layout);
            std::ptr::write_bytes(p, b'K', 48);
            let q = a.realloc(p, layout, 16);
            assert_eq!(std::slice::from_raw_parts(q, 16), &[b'K'; 16]);
        }
        assert_eq!(a.0.bytes().iter().filter(|&&b| b == b'K').count(), 16);
    }

    fn harness_count(hay: &[u8], needle: &[u8]) -> usize {
        hay.windows(needle.len()).filter(|w| *w == needle).count()
    }
}
