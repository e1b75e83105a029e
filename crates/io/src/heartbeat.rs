//! Heartbeat slots in memory shared with the supervisor process, one per
//! serving thread: when the thread last went round its loop, how much
//! application time its current request has used (with that request's
//! line), and which thread it is. The supervisor reads them to retire a
//! worker whose request ran over `--timeout`, and to log which request it
//! was; it marks that slot so the worker knows which thread is stuck.
//!
//! Only time in the application counts: while the thread waits for its
//! client (reading the body, writing to a full socket: [`sock::wait`]),
//! the slot's clock is paused ([`Paused`]), so a slow client never makes a
//! request look stuck (those waits are bounded by `--io-timeout`). A
//! request costs three stores and a small copy; a wait, two clock reads and
//! two stores; no syscall.
//!
//! Layout (native endian), `SLOT_SIZE` bytes, 8-byte aligned:
//!
//! | offset | field |
//! |---|---|
//! | 0 | `busy`: u64, 0 when idle; else, with [`PAUSED`] clear, the CLOCK_MONOTONIC ms at which the request would have begun had it never waited (application time used = now − busy); with [`PAUSED`] set, the application ms used so far (the thread waits for its client) |
//! | 8 | `alive_ms`: u64, CLOCK_MONOTONIC ms of the last loop iteration |
//! | 16 | `thread`: u64, `pthread_self()` of the thread using the slot (Python's thread ident) |
//! | 24 | `line_len`: u32 |
//! | 28 | `abort`: u32, [`ABORT_MARKED`] by the supervisor when the request ran over `--timeout`, [`ABORT_TAKEN`] once the worker gave it up |
//! | 32 | the request line, `LINE_CAPACITY` bytes at most |
//!
//! [`sock::wait`]: super::sock::wait

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use super::shared::Shared;

/// Bytes per slot.
pub const SLOT_SIZE: usize = 256;
/// Offsets of the fields (see the module's table).
pub const BUSY: usize = 0;
pub const ALIVE: usize = 8;
pub const THREAD: usize = 16;
pub const LINE_LEN: usize = 24;
pub const ABORT: usize = 28;
pub const LINE: usize = 32;
/// Bytes of the request line kept in a slot.
pub const LINE_CAPACITY: usize = SLOT_SIZE - LINE;
/// Set in `busy` while the thread waits for its client.
pub const PAUSED: u64 = 1 << 63;
/// `abort`: the supervisor found the request over `--timeout`.
pub const ABORT_MARKED: u32 = 1;
/// `abort`: the worker gave the request up ([`take_marked`]).
pub(crate) const ABORT_TAKEN: u32 = 2;

/// CLOCK_MONOTONIC in milliseconds: Python's `time.monotonic()` clock.
pub(crate) fn monotonic_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

thread_local! {
    /// The slot of the serving thread running here (null elsewhere).
    static CURRENT: Cell<*mut u8> = const { Cell::new(std::ptr::null_mut()) };
}

/// # Safety
/// `base + offset` must be an aligned word of a live slot.
unsafe fn word<'a>(base: *mut u8, offset: usize) -> &'a AtomicU64 {
    &*(base.add(offset) as *const AtomicU64)
}

/// # Safety
/// As [`word`].
unsafe fn half<'a>(base: *mut u8, offset: usize) -> &'a AtomicU32 {
    &*(base.add(offset) as *const AtomicU32)
}

/// One thread's slot.
pub struct Heartbeat {
    base: *mut u8,
    /// Told when a request given up after `--timeout` ends after all.
    shared: Arc<Shared>,
}

// SAFETY: the slot is written by the one thread that owns this value; the
// supervisor only reads it (atomically for the counters), and writes only
// `abort`, an atomic both sides update.
unsafe impl Send for Heartbeat {}

impl Heartbeat {
    /// # Safety
    /// `base` must point to `SLOT_SIZE` writable, 8-byte aligned bytes that
    /// stay mapped for as long as this value lives.
    pub unsafe fn new(base: *mut u8, shared: Arc<Shared>) -> Self {
        Heartbeat { base, shared }
    }

    fn word(&self, offset: usize) -> &AtomicU64 {
        // SAFETY: in bounds and aligned per `new`'s contract.
        unsafe { word(self.base, offset) }
    }

    fn abort(&self) -> &AtomicU32 {
        // SAFETY: in bounds and aligned per `new`'s contract.
        unsafe { half(self.base, ABORT) }
    }

    /// The calling thread takes the slot for its life: the slot names it,
    /// and its waits for the client pause the slot's clock ([`Paused`]).
    pub fn claim(&self) {
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() } as u64;
        self.word(THREAD).store(me, Ordering::Relaxed);
        CURRENT.with(|c| c.set(self.base));
    }

    /// The calling thread leaves the slot.
    pub fn release(&self) {
        CURRENT.with(|c| c.set(std::ptr::null_mut()));
    }

    /// The loop went round: the thread is not stuck outside a request.
    pub fn alive(&self, now_ms: u64) {
        self.word(ALIVE).store(now_ms, Ordering::Relaxed);
    }

    /// A request begins; `line` is its request line (truncated).
    pub(crate) fn begin(&self, method: &[u8], target: &[u8]) {
        let n1 = method.len().min(LINE_CAPACITY);
        let n2 = target.len().min(LINE_CAPACITY.saturating_sub(n1 + 1));
        // SAFETY: writes stay within the slot's line area.
        unsafe {
            let line = self.base.add(LINE);
            std::ptr::copy_nonoverlapping(method.as_ptr(), line, n1);
            if n2 > 0 {
                *line.add(n1) = b' ';
                std::ptr::copy_nonoverlapping(target.as_ptr(), line.add(n1 + 1), n2);
            }
            let len = (n1 + usize::from(n2 > 0) + n2) as u32;
            half(self.base, LINE_LEN).store(len, Ordering::Relaxed);
        }
        // A mark the supervisor left as the previous request ended is stale.
        self.abort().store(0, Ordering::Relaxed);
        self.word(BUSY)
            .store(monotonic_ms().max(1) & !PAUSED, Ordering::Release);
    }

    /// The request is over.
    pub fn end(&self) {
        self.word(BUSY).store(0, Ordering::Release);
        let abort = self.abort();
        if abort.load(Ordering::Relaxed) != 0 && abort.swap(0, Ordering::AcqRel) == ABORT_TAKEN {
            self.shared.abandoned_ended();
        }
    }
}

/// The calling thread's request clock, paused while this value lives:
/// made by [`Paused::now`] around a wait for the client.
pub(crate) struct Paused {
    /// The slot paused, null when nothing was (no request, or not a
    /// serving thread).
    base: *mut u8,
}

impl Paused {
    /// Pauses the calling thread's request clock, if it is in a request.
    pub(crate) fn now() -> Paused {
        let base = CURRENT.with(Cell::get);
        if base.is_null() {
            return Paused { base };
        }
        // SAFETY: a claimed slot stays mapped while its thread serves.
        let busy = unsafe { word(base, BUSY) };
        let since = busy.load(Ordering::Relaxed);
        if since == 0 || since & PAUSED != 0 {
            return Paused {
                base: std::ptr::null_mut(),
            };
        }
        let used = monotonic_ms().saturating_sub(since);
        busy.store(PAUSED | used, Ordering::Release);
        Paused { base }
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        if self.base.is_null() {
            return;
        }
        // SAFETY: as in `now`.
        let busy = unsafe { word(self.base, BUSY) };
        let v = busy.load(Ordering::Relaxed);
        if v & PAUSED != 0 {
            let used = v & !PAUSED;
            busy.store(
                monotonic_ms().saturating_sub(used).max(1),
                Ordering::Release,
            );
        }
    }
}

/// Gives up the requests the supervisor marked in the `slots` slots at
/// `base` that are still running: returns their slot numbers, and counts
/// them in `shared` (a drain finishes without them).
///
/// # Safety
/// `base` must point to `slots` live slots (`SLOT_SIZE` bytes each, 8-byte
/// aligned).
pub unsafe fn take_marked(base: *mut u8, slots: usize, shared: &Shared) -> Vec<usize> {
    let taken: Vec<usize> = (0..slots)
        .filter(|&t| {
            let slot = base.add(t * SLOT_SIZE);
            word(slot, BUSY).load(Ordering::Acquire) != 0
                && half(slot, ABORT)
                    .compare_exchange(
                        ABORT_MARKED,
                        ABORT_TAKEN,
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    )
                    .is_ok()
        })
        .collect();
    shared.abandon(taken.len());
    taken
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two zeroed, aligned slots.
    fn slots() -> Box<[u64; 2 * SLOT_SIZE / 8]> {
        Box::new([0; 2 * SLOT_SIZE / 8])
    }

    fn busy(block: &[u64]) -> u64 {
        block[BUSY / 8]
    }

    #[test]
    fn a_request_marks_the_slot_busy_with_its_line() {
        let mut block = slots();
        let shared = Arc::new(Shared::default());
        // SAFETY: the slots are this test's own block, alive and aligned.
        let hb = unsafe { Heartbeat::new(block.as_mut_ptr().cast(), shared) };
        hb.begin(b"GET", b"/x");
        assert!(busy(&block[..]) > 0 && busy(&block[..]) & PAUSED == 0);
        // SAFETY: the slots are this test's own block, alive and aligned.
        let bytes: &[u8] = unsafe { std::slice::from_raw_parts(block.as_ptr().cast(), SLOT_SIZE) };
        assert_eq!(bytes[LINE_LEN], 6);
        assert_eq!(&bytes[LINE..LINE + 6], b"GET /x");
        hb.end();
        assert_eq!(busy(&block[..]), 0);
    }

    #[test]
    fn a_wait_pauses_only_the_claimed_slot_of_a_busy_thread() {
        let mut block = slots();
        let shared = Arc::new(Shared::default());
        // SAFETY: the slots are this test's own block, alive and aligned.
        let hb = unsafe { Heartbeat::new(block.as_mut_ptr().cast(), shared) };
        drop(Paused::now()); // not claimed: nothing
        hb.claim();
        {
            let _idle = Paused::now();
            assert_eq!(busy(&block[..]), 0, "an idle slot stays idle");
        }
        hb.begin(b"GET", b"/");
        let began = busy(&block[..]);
        {
            let _p = Paused::now();
            let v = busy(&block[..]);
            assert!(v & PAUSED != 0 && v & !PAUSED < 1000, "{v:x}");
            std::thread::sleep(std::time::Duration::from_millis(30));
        }
        let resumed = busy(&block[..]);
        assert!(
            resumed & PAUSED == 0 && resumed >= began + 25,
            "{began} {resumed}"
        );
        // SAFETY: the slots are this test's own block, alive and aligned.
        assert!(unsafe { libc::pthread_self() } as u64 == block[THREAD / 8]);
        hb.release();
        hb.end();
    }

    #[test]
    fn a_marked_request_is_taken_once_and_counted_until_it_ends() {
        let mut block = slots();
        let shared = Arc::new(Shared::default());
        let base: *mut u8 = block.as_mut_ptr().cast();
        // SAFETY: the slots are this test's own block, alive and aligned.
        let first = unsafe { Heartbeat::new(base, shared.clone()) };
        // SAFETY: the slots are this test's own block, alive and aligned.
        let second = unsafe { Heartbeat::new(base.add(SLOT_SIZE), shared.clone()) };
        first.begin(b"GET", b"/stuck");
        second.begin(b"GET", b"/fine");
        for t in 0..2 {
            // SAFETY: the slots are this test's own block, alive and aligned.
            unsafe { half(base.add(t * SLOT_SIZE), ABORT) }.store(ABORT_MARKED, Ordering::SeqCst);
        }
        second.end(); // ended before the worker looked: not given up
                      // SAFETY: the slots are this test's own block, alive and aligned.
        assert_eq!(unsafe { take_marked(base, 2, &shared) }, vec![0]);
        assert_eq!(
            // SAFETY: the slots are this test's own block, alive and aligned.
            unsafe { take_marked(base, 2, &shared) },
            Vec::<usize>::new()
        );
        assert_eq!(shared.abandoned(), 1);
        first.end();
        assert_eq!(shared.abandoned(), 0);
        first.begin(b"GET", b"/next");
        first.end();
        assert_eq!(shared.abandoned(), 0);
    }
}
