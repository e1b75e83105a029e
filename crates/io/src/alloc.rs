//! How the worker's memory allocator is tuned for serving (glibc only):
//! freed memory at the top of a heap is kept for reuse up to
//! [`TRIM_THRESHOLD`] instead of being handed back to the kernel at once.
//!
//! Why: with many active connections, read and write buffers beyond the
//! loop's pools are allocated and freed per request. glibc gives the freed
//! top of a thread's heap back to the kernel (`madvise`) as soon as it
//! passes 128 KiB, and takes it again at the next allocation, so every
//! burst faulted fresh zeroed pages in: perf at 1,000 connections showed
//! `sysmalloc` → page faults and `madvise` at ~8% of the worker's CPU,
//! gone with this setting. Setting the trim threshold turns off glibc's
//! own adaptation of the mmap threshold, so that one is set too (to what
//! glibc's adaptation would reach for buffers of a few MiB).
//!
//! The cost is memory a worker keeps after a burst: at most
//! [`TRIM_THRESHOLD`] of free heap per heap. A `MALLOC_TRIM_THRESHOLD_` or
//! `MALLOC_MMAP_THRESHOLD_` in the environment wins over these values.
//! Once a burst is over, [`release_free`] hands everything free back (the
//! pool calls it when a thread the burst started ends, idle): measured
//! with `bench/hostile.py`, 140 slow readers of a generator left a worker
//! ~20 MiB larger without it. A burst that starts no thread (HTTP/2
//! streams that hold their answers, TLS connections) ends no thread
//! either, so the pool's monitor also asks [`IdleTrim`] while no request
//! runs: `bench/hostile.py --tls` left a worker 38 MiB larger for good
//! after stalled HTTP/2 streams without it.

/// Free memory at the top of a heap kept for reuse before it is returned.
pub(crate) const TRIM_THRESHOLD: usize = 16 << 20;
/// Allocations this large or larger get their own mapping.
pub(crate) const MMAP_THRESHOLD: usize = 4 << 20;

/// Applies the settings above, once per process, unless the environment
/// sets glibc's own variables.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let set_by_user = ["MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_"]
            .iter()
            .any(|v| std::env::var_os(v).is_some());
        if set_by_user {
            return;
        }
        // SAFETY: mallopt only changes allocator parameters; it is safe to
        // call at any time from any thread.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD as libc::c_int);
        }
    }
}

/// Hands free heap memory back while the worker is quiet, once glibc's
/// count of free heap bytes has grown by [`TRIM_THRESHOLD`] since the last
/// time (a burst's buffers were freed). The count includes free memory
/// already handed back (`malloc_trim` releases pages, not chunks), hence
/// growth since the last trim rather than a level: a level would trim on
/// every look.
#[derive(Default)]
pub(crate) struct IdleTrim {
    /// The free heap when last seen trimmed, or lower since.
    base: usize,
}

impl IdleTrim {
    /// Looks at the free heap (called while no request runs).
    pub(crate) fn check(&mut self) {
        if let Some(free) = free_heap() {
            if self.should_trim(free) {
                release_free();
            }
        }
    }

    /// Whether `free` bytes of free heap call for a trim; follows the
    /// count down when the heap was reused.
    fn should_trim(&mut self, free: usize) -> bool {
        if free >= self.base.saturating_add(TRIM_THRESHOLD) {
            self.base = free;
            return true;
        }
        self.base = self.base.min(free);
        false
    }
}

/// Free bytes in glibc's heaps (`mallinfo`: every arena). Its fields are
/// C ints (`mallinfo2`, with wide ones, is newer than the oldest glibc the
/// wheels support): read as unsigned, right up to 4 GiB.
fn free_heap() -> Option<usize> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo only reads the allocator's statistics.
        let info = unsafe { libc::mallinfo() };
        Some(info.fordblks as u32 as usize)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    None
}

/// Gives the free memory of every heap back to the kernel (`malloc_trim`):
/// for quiet moments after a burst, not for the request path.
pub(crate) fn release_free() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory; callable any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_once_per_burst_freed_not_on_every_look() {
        let mut t = IdleTrim::default();
        assert!(
            !t.should_trim(TRIM_THRESHOLD - 1),
            "a little free heap stays"
        );
        assert!(t.should_trim(40 << 20), "a burst's buffers freed");
        // The count stays high after the trim: no second trim for it.
        assert!(!t.should_trim(40 << 20));
        assert!(!t.should_trim(50 << 20));
        // Another burst freed on top of it.
        assert!(t.should_trim(60 << 20));
        // Reused by the next busy period, then freed again.
        assert!(!t.should_trim(2 << 20));
        assert!(t.should_trim(30 << 20));
    }
}
