//! The state every loop of a process shares ([`Shared`]): the stop and
//! drain flags, the request count for `--max-requests`, the requests given
//! up after `--timeout`, and how a flag reaches each loop at once. It
//! depends on nothing else of the ring, so the heartbeat and the sockets'
//! waits can read it without a cycle.

use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use mio::Waker;

/// State shared by all loops of a process: the stop and drain flags, the
/// request count for `--max-requests`, and the wakers that make a loop
/// notice a flag at once. Setting a flag is all a signal handler does.
#[derive(Default)]
pub struct Shared {
    stop: AtomicBool,
    drain: AtomicBool,
    served: AtomicU64,
    /// Requests given up after `--timeout` (`heartbeat::take_marked`) and
    /// still in flight: a drain does not wait for them. Signed: a request
    /// may end (and be subtracted) just before its count is added.
    abandoned: AtomicIsize,
    /// A loop finished (stopped, or drained): no request will be served.
    finished: AtomicBool,
    /// Drain after this many requests (0: never).
    max_requests: AtomicU64,
    wakers: Mutex<Vec<Arc<Waker>>>,
    /// Called with the wakers: how the protocol front hears of a flag.
    hooks: Mutex<Vec<FlagHook>>,
}

/// A function run whenever the stop or drain flag is set.
pub(crate) type FlagHook = Box<dyn Fn() + Send + Sync>;

impl Shared {
    /// Registers a loop's waker, so a flag change reaches it.
    pub(crate) fn add_waker(&self, waker: Arc<Waker>) {
        self.wakers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(waker);
    }

    /// Runs `hook` whenever a flag is set (it must only signal, not block).
    pub fn add_hook(&self, hook: FlagHook) {
        self.hooks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(hook);
    }

    fn wake_all(&self) {
        for w in self.wakers.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = w.wake();
        }
        for h in self.hooks.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            h();
        }
    }

    /// Stops at once: loops close every connection and return.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.wake_all();
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Stops gracefully: no new connections; each open one gets its next
    /// response with `Connection: close`; idle ones are closed after a
    /// short grace; loops return when no connection is left.
    pub fn drain(&self) {
        self.drain.store(true, Ordering::SeqCst);
        self.wake_all();
    }

    pub fn draining(&self) -> bool {
        self.drain.load(Ordering::Relaxed)
    }

    /// Retire (drain) after `n` requests in all; 0 disables.
    pub fn set_max_requests(&self, n: u64) {
        self.max_requests.store(n, Ordering::Relaxed);
    }

    /// Counts one served request; drains when `--max-requests` is reached.
    pub(crate) fn count_request(&self) {
        let n = self.served.fetch_add(1, Ordering::Relaxed) + 1;
        let max = self.max_requests.load(Ordering::Relaxed);
        if max > 0 && n >= max && !self.draining() {
            self.drain();
        }
    }

    /// Requests served so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// `n` requests in flight were given up (their thread ran over
    /// `--timeout`): a drain finishes without them.
    pub fn abandon(&self, n: usize) {
        self.abandoned.fetch_add(n as isize, Ordering::SeqCst);
        self.wake_all();
    }

    /// A given-up request ended after all.
    pub(crate) fn abandoned_ended(&self) {
        self.abandoned.fetch_sub(1, Ordering::SeqCst);
    }

    /// Requests given up and still in flight (never below 0).
    pub(crate) fn abandoned(&self) -> usize {
        self.abandoned.load(Ordering::SeqCst).max(0) as usize
    }

    /// A loop closed every connection and serves no more.
    pub(crate) fn set_finished(&self) {
        self.finished.store(true, Ordering::SeqCst);
    }

    pub fn finished(&self) -> bool {
        self.finished.load(Ordering::SeqCst)
    }
}
