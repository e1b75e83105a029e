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
//! ~20 MiB larger without it.

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

/// Gives the free memory of every heap back to the kernel (`malloc_trim`):
/// for quiet moments after a burst, not for the request path.
pub(crate) fn release_free() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory; callable any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
