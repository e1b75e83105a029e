//! Responses a serving thread holds back for a moment, to write them
//! together: the [`Batch`] of one run of requests served back to back.
//!
//! Why: on loopback and between the cores of one machine, each response
//! written to a client that sleeps in `epoll_wait` wakes it with an
//! inter-processor interrupt, and that wake-up is paid by the writer
//! (perf: `writev` → `sock_def_readable` → `_raw_spin_unlock_irqrestore`,
//! ~11% of a Flask worker's CPU when every response went out alone, 70 µs
//! apart). Written back to back, the responses of a few requests find the
//! client still awake after the first. bjoern gets the same effect by
//! writing all responses of an epoll batch after all its app calls.
//!
//! A response is held back only while it is short (wholly in the output
//! buffer, see `Output::end`), another request is ready to be served right
//! now, the request just served took less than [`DEFER_MAX_SERVICE`] (the
//! next one probably will too), the oldest held response has waited less
//! than [`DEFER_MAX_AGE`], and fewer than [`MAX_DEFERRED`] are held. An
//! idle or lightly loaded server writes every response at once, as before.
//! Should the next request take long after all, the monitor writes the
//! held responses once they are [`DEFER_MAX_AGE`] old ([`flush_stale`]):
//! a response is held that long at most, or until the monitor's next tick
//! when it ticks slowly because all requests were short
//! (`monitor::MONITOR_CALM_TICK`, 5 ms). The same goes for a
//! response whose body is complete while its app still runs (its
//! iterator not yet exhausted, `close()` not yet called): it waits in the
//! thread's `Park`, which the monitor writes once it is as old.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::Pool;
use crate::event_loop::EventLoop;
use crate::handoff::Done;

/// Most responses held back at once.
pub(super) const MAX_DEFERRED: usize = 16;
/// A response is held back only behind requests this quick to serve.
pub(super) const DEFER_MAX_SERVICE: Duration = Duration::from_micros(250);
/// Longest a held response waits before it is written.
pub(super) const DEFER_MAX_AGE: Duration = Duration::from_millis(1);

/// The held-back responses of one serving thread, oldest first. It lives
/// in the thread's slot, behind a mutex only the monitor contends for.
#[derive(Default)]
pub(super) struct Batch {
    held: Vec<Done>,
    oldest: Option<Instant>,
}

impl Batch {
    /// Whether the next response may be held back too.
    pub(super) fn has_room(&self) -> bool {
        self.held.len() < MAX_DEFERRED
    }

    pub(super) fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Keeps `done` (served by `now`) if its response is still to be
    /// written; otherwise gives it back, to be returned to the loop at once.
    pub(super) fn hold(&mut self, done: Done, now: Instant) -> Option<Done> {
        if !done.pending() {
            return Some(done);
        }
        self.oldest.get_or_insert(now);
        self.held.push(done);
        None
    }

    /// Whether the held responses may wait for one more request, given
    /// how long the last one took, the time now and whether requests
    /// block lately.
    pub(super) fn may_wait(&self, last_service: Duration, now: Instant, blocking: bool) -> bool {
        !blocking
            && self.has_room()
            && last_service < DEFER_MAX_SERVICE
            && self
                .oldest
                .is_some_and(|t| now.saturating_duration_since(t) < DEFER_MAX_AGE)
    }

    /// Writes every held response, in the order they were served, as far
    /// as each socket takes it now; what a socket does not take goes back
    /// to the loop with its connection (its backlog): nothing waits here.
    pub(super) fn flush(&mut self) {
        for done in &mut self.held {
            done.flush_nowait();
        }
    }

    /// Gives the (written) connections back to the loop.
    pub(super) fn finish(&mut self, lp: &mut EventLoop) {
        self.oldest = None;
        for done in self.held.drain(..) {
            lp.finish_job(done);
        }
    }

    /// Takes the (written) connections, to hand back another way.
    pub(super) fn take(&mut self) -> Vec<Done> {
        self.oldest = None;
        std::mem::take(&mut self.held)
    }

    /// Writes held responses as far as their sockets take them without
    /// waiting, if the oldest is [`DEFER_MAX_AGE`] old; returns them all,
    /// for the loop (which writes what is left as their clients read).
    fn flush_if_stale(&mut self) -> Vec<Done> {
        if self.oldest.is_none_or(|t| t.elapsed() < DEFER_MAX_AGE) {
            return Vec::new();
        }
        self.flush();
        self.take()
    }
}

/// The monitor's part: writes the responses a serving thread has held
/// too long (its current request turned out slow) and hands their
/// connections back to the loop. A slot its thread is using right now is
/// skipped (`try_lock`): that thread is about to write them itself.
pub(super) fn flush_stale(pool: &Pool) {
    for slot in &pool.slots {
        if slot.started.load(Ordering::Relaxed) == 0 {
            continue;
        }
        slot.park.flush_if_older(DEFER_MAX_AGE);
        let written = match slot.held.try_lock() {
            Ok(mut batch) => batch.flush_if_stale(),
            Err(_) => continue,
        };
        if !written.is_empty() {
            pool.hand_back(written);
        }
    }
}
