//! Request metrics in memory shared with the supervisor (`--metrics-bind`):
//! one block per worker of plain 64-bit counters that the worker's threads
//! add to atomically (no lock, no system call) and the supervisor reads,
//! sums over workers and serves in Prometheus' text format.
//!
//! Layout of a block (native-endian u64 words; `python/qiao/metrics.py`
//! reads it with the numbers [`metrics_layout`] gives):
//!
//! | word | counter |
//! |---|---|
//! | 0 | requests in flight (gauge) |
//! | 1 | open connections (gauge) |
//! | 2 | request body bytes received |
//! | 3 | response body bytes sent (no head, no chunk framing) |
//! | 4 .. 4+M×C | requests by method (M = [`METHODS`] + other) and status class (C = 1xx..5xx) |
//! | then B | latency histogram buckets ([`LATENCY_BUCKETS_US`], then +Inf), not cumulative |
//! | then 2 | latency sum (µs), requests measured |

use std::sync::atomic::{AtomicU64, Ordering};

/// Methods counted by name; any other is counted as `OTHER`.
pub const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"];
/// Status classes counted: 1xx to 5xx.
pub const STATUS_CLASSES: usize = 5;
/// Upper bounds (µs) of the latency histogram's buckets, +Inf after them.
pub const LATENCY_BUCKETS_US: [u64; 11] = [
    1_000, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    10_000_000,
];
/// Bytes per worker block.
pub const METRICS_BLOCK: usize = 512;

const IN_FLIGHT: usize = 0;
const OPEN_CONNECTIONS: usize = 1;
const BYTES_IN: usize = 2;
const BYTES_OUT: usize = 3;
const REQUESTS: usize = 4;
const HISTOGRAM: usize = REQUESTS + (METHODS.len() + 1) * STATUS_CLASSES;
const LATENCY_SUM: usize = HISTOGRAM + LATENCY_BUCKETS_US.len() + 1;
const LATENCY_COUNT: usize = LATENCY_SUM + 1;
const WORDS: usize = LATENCY_COUNT + 1;
const _: () = assert!(WORDS * 8 <= METRICS_BLOCK);

/// `(block size, requests word, histogram word, latency sum word, words)`
/// for the supervisor, which reads the blocks without repeating the layout.
pub fn metrics_layout() -> (usize, usize, usize, usize, usize) {
    (METRICS_BLOCK, REQUESTS, HISTOGRAM, LATENCY_SUM, WORDS)
}

/// One worker's block.
#[derive(Debug)]
pub struct Metrics {
    base: *mut u64,
}

// SAFETY: every access is an atomic operation on an aligned word of a
// mapping that outlives the value (see `new`).
unsafe impl Send for Metrics {}
// SAFETY: as for `Send`: shared access is atomic only.
unsafe impl Sync for Metrics {}

impl Metrics {
    /// # Safety
    /// `base` must point to `METRICS_BLOCK` writable, 8-byte aligned bytes
    /// that stay mapped for as long as this value lives.
    pub unsafe fn new(base: *mut u8) -> Metrics {
        Metrics { base: base.cast() }
    }

    fn word(&self, i: usize) -> &AtomicU64 {
        debug_assert!(i < WORDS);
        // SAFETY: in bounds and aligned per `new`'s contract.
        unsafe { &*(self.base.add(i) as *const AtomicU64) }
    }

    fn add(&self, i: usize, n: u64) {
        self.word(i).fetch_add(n, Ordering::Relaxed);
    }

    fn sub(&self, i: usize, n: u64) {
        self.word(i).fetch_sub(n, Ordering::Relaxed);
    }

    pub(crate) fn connection_opened(&self) {
        self.add(OPEN_CONNECTIONS, 1);
    }

    pub(crate) fn connection_closed(&self) {
        self.sub(OPEN_CONNECTIONS, 1);
    }

    pub fn request_started(&self) {
        self.add(IN_FLIGHT, 1);
    }

    /// A request is over: its method, final status, time in µs and bytes.
    pub fn request_done(&self, method: &[u8], status: u16, micros: u64, bytes_in: u64, out: u64) {
        self.sub(IN_FLIGHT, 1);
        let m = METHODS
            .iter()
            .position(|name| name.as_bytes() == method)
            .unwrap_or(METHODS.len());
        let class = usize::from(status / 100).clamp(1, STATUS_CLASSES) - 1;
        self.add(REQUESTS + m * STATUS_CLASSES + class, 1);
        let bucket = LATENCY_BUCKETS_US
            .iter()
            .position(|&le| micros <= le)
            .unwrap_or(LATENCY_BUCKETS_US.len());
        self.add(HISTOGRAM + bucket, 1);
        self.add(LATENCY_SUM, micros);
        self.add(LATENCY_COUNT, 1);
        self.add(BYTES_IN, bytes_in);
        self.add(BYTES_OUT, out);
    }
}
