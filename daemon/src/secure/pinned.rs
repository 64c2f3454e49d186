//! A few pages outside the heap for key material: locked in RAM where
//! RLIMIT_MEMLOCK allows (so never written to swap), left out of core dumps
//! (MADV_DONTDUMP), and wiped before they are unmapped.

#![allow(unsafe_code)]

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::mm::{Advice, MapFlags, ProtFlags};

/// Pages of `len` bytes mapped privately for one owner.
pub struct PinnedPages {
    ptr: *mut u8,
    len: usize,
    locked: bool,
}

// SAFETY: the mapping is owned by this value alone; shared access is
// read-only (`bytes`), mutation needs `&mut self`.
unsafe impl Send for PinnedPages {}
// SAFETY: as above.
unsafe impl Sync for PinnedPages {}

/// Set once the "cannot lock" warning was logged, so it is logged once.
static WARNED: AtomicBool = AtomicBool::new(false);

impl PinnedPages {
    /// Maps `len` bytes (rounded up to whole pages), zero-filled.
    pub fn new(len: usize) -> std::io::Result<PinnedPages> {
        let page = rustix::param::page_size();
        let len = len.max(1).next_multiple_of(page);
        // SAFETY: a fresh anonymous mapping at an address the kernel picks.
        let ptr = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::PRIVATE,
            )?
        };
        // SAFETY: `ptr..ptr+len` is the mapping just made.
        if let Err(e) = unsafe { rustix::mm::madvise(ptr, len, Advice::LinuxDontDump) } {
            tracing::warn!("cannot exclude key pages from core dumps: {e}");
        }
        // SAFETY: as above.
        let locked = match unsafe { rustix::mm::mlock(ptr, len) } {
            Ok(()) => true,
            Err(e) => {
                if !WARNED.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        "cannot lock key pages in memory ({e}); they may be swapped out: raise RLIMIT_MEMLOCK (LimitMEMLOCK= in the unit)"
                    );
                }
                false
            }
        };
        Ok(PinnedPages {
            ptr: ptr.cast(),
            len,
            locked,
        })
    }

    /// Whether mlock succeeded.
    pub fn is_locked(&self) -> bool {
        self.locked
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is valid, initialized (zero-filled or written)
        // and lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as `bytes`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for PinnedPages {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(self.bytes_mut());
        // SAFETY: the mapping made in `new`, unmapped once.
        unsafe {
            if self.locked {
                let _ = rustix::mm::munlock(self.ptr.cast::<c_void>(), self.len);
            }
            let _ = rustix::mm::munmap(self.ptr.cast::<c_void>(), self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_zeroed_writable_and_excluded_from_dumps() {
        let mut p = PinnedPages::new(100).unwrap();
        assert_eq!(p.bytes().len() % rustix::param::page_size(), 0);
        assert!(p.bytes().iter().all(|&b| b == 0));
        p.bytes_mut()[..4].copy_from_slice(b"key!");
        assert_eq!(&p.bytes()[..4], b"key!");
        // The kernel may merge it with a neighbour of the same flags (say,
        // the shielding key's page): find the mapping that contains it.
        let at = p.ptr as usize;
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let contains = |l: &str| {
            let range = l.split_whitespace().next().unwrap_or("");
            let Some((a, b)) = range.split_once('-') else {
                return false;
            };
            match (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) {
                (Ok(a), Ok(b)) => a <= at && at < b,
                _ => false,
            }
        };
        let mut lines = smaps.lines().skip_while(|l| !contains(l));
        assert!(lines.next().is_some(), "mapping not in smaps");
        let flags = lines.find(|l| l.starts_with("VmFlags:")).unwrap();
        assert!(flags.contains(" dd"), "MADV_DONTDUMP not set: {flags}");
        if p.is_locked() {
            assert!(flags.contains(" lo"), "mlock not reflected: {flags}");
        }
    }
}
