//! A serving thread at work: it leads the loop until a request is ready,
//! serves runs of jobs (application ones in one session, native ones
//! outside any), and puts each connection back in the loop or hands it to
//! whoever leads. Separate from `mod.rs` (what the threads share, and how
//! they come and go) because this is the per-request path. A child of
//! `pool`, so it works on the pool's own state.

use std::sync::atomic::Ordering;
use std::sync::{MutexGuard, TryLockError};
use std::thread::Scope;
use std::time::Instant;

use super::{lock, HandlerFactory, Pool};
use crate::event_loop::{EventLoop, Job, Turn};
use crate::handoff::Done;
use crate::heartbeat::{self, Heartbeat};
use crate::service::{Handler, Serve};

/// One thread's life: lead, serve, hand back, follow, until the loop
/// finishes or the thread has been idle too long.
pub(super) fn serve_thread<'scope, F: HandlerFactory>(
    pool: &'scope Pool,
    factory: &'scope F,
    scope: &'scope Scope<'scope, '_>,
    slot: usize,
    hb: Option<&Heartbeat>,
    handler: &mut F::Handler,
) {
    let mut held: Option<MutexGuard<'_, EventLoop>> = None;
    let mut asked = true;
    loop {
        let mut lp = match held.take() {
            Some(lp) => lp,
            None => {
                if !asked {
                    if !pool.follow() {
                        break;
                    }
                    asked = true;
                }
                let lp = lock(&pool.lp);
                if asked {
                    pool.standby.fetch_sub(1, Ordering::SeqCst);
                }
                asked = false;
                lp
            }
        };
        if pool.finished.load(Ordering::SeqCst) {
            break;
        }
        pool.leading.store(true, Ordering::SeqCst);
        pool.absorb(&mut lp);
        if !lp.has_ready() {
            if let Some(hb) = hb {
                hb.alive(heartbeat::monotonic_ms());
            }
            match lp.turn() {
                Ok(Turn::Continue) => pool.absorb(&mut lp),
                Ok(Turn::Finished) => {
                    pool.finish(None);
                    break;
                }
                Err(e) => {
                    pool.finish(Some(e));
                    break;
                }
            }
        }
        let Some(job) = lp.next_job() else {
            held = Some(lp);
            continue;
        };
        pool.leading.store(false, Ordering::SeqCst);
        drop(lp);
        // Serve jobs back to back; a run of application jobs shares one
        // session (one GIL hold), a native job runs outside any session.
        let mut next = Some(job);
        while let Some(job) = next.take() {
            let after = if job.is_native() {
                serve_run(pool, factory, scope, slot, hb, job, None)
            } else {
                handler.session(|serve| serve_run(pool, factory, scope, slot, hb, job, Some(serve)))
            };
            match after {
                After::Lead(lp) => held = Some(lp),
                After::Follow => {}
                After::Switch(job) => next = Some(job),
            }
        }
    }
}

/// Where a thread goes after a run of jobs.
enum After<'a> {
    /// It holds the loop, with nothing ready: it leads.
    Lead(MutexGuard<'a, EventLoop>),
    /// Another thread leads; its connection went back through `returns`.
    Follow,
    /// The next ready job is of the other kind (native or application).
    Switch(Job),
}

/// Serves `job`, then the next ready jobs of the same kind while the loop
/// is free: application jobs with `serve` (in the session the caller
/// holds), native ones without (`None`; a native service may take a job
/// over and send its connection back through
/// [`DoneSink`](crate::handoff::DoneSink) later). Short application
/// responses may be held back and written together
/// (`batch.rs`); every return path writes them first.
fn serve_run<'scope, F: HandlerFactory>(
    pool: &'scope Pool,
    factory: &'scope F,
    scope: &'scope Scope<'scope, '_>,
    slot: usize,
    hb: Option<&Heartbeat>,
    mut job: Job,
    mut serve: Option<&mut dyn Serve>,
) -> After<'scope> {
    let native = job.is_native();
    let batch = &pool.slots[slot].held;
    // One clock reading per request: its end is the next's start.
    let mut began = Instant::now();
    loop {
        let eager = pool.eager();
        if eager {
            // Requests block: let another thread lead now rather than
            // after the monitor's next tick.
            pool.promote(factory, scope);
        }
        // TLS responses are written at once, never held for a batch: held,
        // their p99 was 1.8-6.4 ms against 1.1-2.4 ms written at once, for
        // the same rate with `hello` and -15% with `environ`
        // (bench/RESULTS.md, 2026-12-05).
        let park = (!native && !eager && !job.is_tls() && lock(batch).has_room())
            .then(|| pool.slots[slot].park.clone());
        pool.begin(slot);
        let done = match serve.as_deref_mut() {
            Some(s) => Some(job.run(s, hb, park)),
            None => job.run_native(hb, &pool.sink),
        };
        let ended = Instant::now();
        let took = ended.saturating_duration_since(began);
        began = ended;
        let done = done.and_then(|d| lock(batch).hold(d, ended));
        pool.slots[slot].started.store(0, Ordering::Relaxed);
        let Some(mut lp) = pool.try_loop() else {
            let mut b = lock(batch);
            b.flush();
            pool.hand_back(b.take().into_iter().chain(done));
            return After::Follow;
        };
        pool.absorb(&mut lp);
        if let Some(done) = done {
            lp.finish_job(done);
        }
        let mut b = lock(batch);
        // A job of the other kind, taken while deciding about the batch.
        let mut taken = None;
        if !b.is_empty() {
            if b.may_wait(took, ended, pool.eager()) {
                match lp.next_job() {
                    Some(next) if next.is_native() == native => {
                        job = next;
                        continue;
                    }
                    other => taken = other,
                }
            }
            // Written without the loop held: a full socket waits.
            drop(lp);
            b.flush();
            let Some(again) = pool.try_loop() else {
                pool.hand_back(b.take());
                return taken.map_or(After::Follow, After::Switch);
            };
            lp = again;
            b.finish(&mut lp);
        }
        drop(b);
        match taken.or_else(|| lp.next_job()) {
            Some(next) if next.is_native() == native => job = next,
            Some(next) => return After::Switch(next),
            None => return After::Lead(lp),
        }
    }
}

impl Pool {
    /// The loop if no other thread holds it (a serving thread may hold
    /// the GIL, so it must not wait for the loop: see the lock order in
    /// `mod.rs`).
    fn try_loop(&self) -> Option<MutexGuard<'_, EventLoop>> {
        match self.lp.try_lock() {
            Ok(lp) => Some(lp),
            Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// Gives served connections to the thread that leads, and wakes it.
    pub(super) fn hand_back(&self, done: impl IntoIterator<Item = Done>) {
        for d in done {
            self.sink.send(d);
        }
    }

    /// Puts back the connections other threads served meanwhile.
    fn absorb(&self, lp: &mut EventLoop) {
        let done = std::mem::take(&mut *lock(&self.returns));
        for d in done {
            lp.finish_job(d);
        }
    }

    /// A job begins on `slot`: tells the monitor, waking it if it sleeps.
    fn begin(&self, slot: usize) {
        let t = self.tick.load(Ordering::Relaxed);
        self.slots[slot].started.store(t + 1, Ordering::SeqCst);
        if self.monitor_asleep.load(Ordering::SeqCst)
            && self.monitor_asleep.swap(false, Ordering::SeqCst)
        {
            let _ = self.monitor_waker.wake();
        }
    }

    /// Whether requests were seen blocking lately (and nobody waits to
    /// take the loop already).
    pub(super) fn eager(&self) -> bool {
        self.tick.load(Ordering::Relaxed) < self.eager_until.load(Ordering::Relaxed)
            && self.standby.load(Ordering::SeqCst) == 0
    }
}
