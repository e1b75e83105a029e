//! Heartbeat slots in memory shared with the supervisor process, one per
//! serving thread: when the thread last went round its loop, and since when
//! it has been inside one request (with that request's line). The
//! supervisor reads them to kill a worker stuck in a request longer than
//! `--timeout`, and to log which request it was.
//!
//! A slot costs two stores and a small copy per request; no syscall.
//! Layout (native endian), `SLOT_SIZE` bytes, 8-byte aligned:
//!
//! | offset | field |
//! |---|---|
//! | 0 | `busy_since_ms`: u64, CLOCK_MONOTONIC ms when the current request began, 0 when idle |
//! | 8 | `alive_ms`: u64, CLOCK_MONOTONIC ms of the last loop iteration |
//! | 16 | `line_len`: u32 |
//! | 24 | the request line, `LINE_CAPACITY` bytes at most |

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Bytes per slot.
pub const SLOT_SIZE: usize = 256;
/// Bytes of the request line kept in a slot.
pub const LINE_CAPACITY: usize = SLOT_SIZE - 24;

/// CLOCK_MONOTONIC in milliseconds: Python's `time.monotonic()` clock.
pub fn monotonic_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// One thread's slot.
pub struct Heartbeat {
    base: *mut u8,
}

// SAFETY: the slot is written by the one thread that owns this value; the
// supervisor only reads it (atomically for the counters).
unsafe impl Send for Heartbeat {}

impl Heartbeat {
    /// # Safety
    /// `base` must point to `SLOT_SIZE` writable, 8-byte aligned bytes that
    /// stay mapped for as long as this value lives.
    pub unsafe fn new(base: *mut u8) -> Self {
        Heartbeat { base }
    }

    fn word(&self, offset: usize) -> &AtomicU64 {
        // SAFETY: in bounds and aligned per `new`'s contract.
        unsafe { &*(self.base.add(offset) as *const AtomicU64) }
    }

    /// The loop went round: the thread is not stuck outside a request.
    pub fn alive(&self, now_ms: u64) {
        self.word(8).store(now_ms, Ordering::Relaxed);
    }

    /// A request begins; `line` is its request line (truncated).
    pub fn begin(&self, method: &[u8], target: &[u8]) {
        let n1 = method.len().min(LINE_CAPACITY);
        let n2 = target.len().min(LINE_CAPACITY.saturating_sub(n1 + 1));
        // SAFETY: writes stay within the slot's line area.
        unsafe {
            let line = self.base.add(24);
            std::ptr::copy_nonoverlapping(method.as_ptr(), line, n1);
            if n2 > 0 {
                *line.add(n1) = b' ';
                std::ptr::copy_nonoverlapping(target.as_ptr(), line.add(n1 + 1), n2);
            }
            let len = &*(self.base.add(16) as *const AtomicU32);
            len.store((n1 + usize::from(n2 > 0) + n2) as u32, Ordering::Relaxed);
        }
        self.word(0).store(monotonic_ms().max(1), Ordering::Release);
    }

    /// The request is over.
    pub fn end(&self) {
        self.word(0).store(0, Ordering::Release);
    }
}
