//! The serving threads of one worker and how they share its one event
//! loop: leader/follower, with a monitor that hands the loop over when the
//! application blocks (the way the Go runtime hands a processor over when
//! a goroutine blocks in a system call).
//!
//! - One thread at a time *leads*: it holds the loop's mutex, waits for
//!   readiness and parses (no GIL). When a request is complete it takes it
//!   out as a [`Job`](crate::event_loop::Job), releases the loop and
//!   serves the job itself (with the GIL): no hand-off between threads per
//!   request.
//! - After serving it `try_lock`s the loop: if it is free (the usual case:
//!   nothing else ran meanwhile), it puts the connection back, takes the
//!   next ready request and serves it in the same GIL hold, or goes back
//!   to waiting. If another thread leads meanwhile, it hands the
//!   connection back through `returns` (waking the leader) and follows.
//! - A request under a native route (`--static`, `--proxy`: see
//!   [`NativeRoutes`](crate::native_service::NativeRoutes)) is served the same
//!   way but outside any session: no GIL. A run of jobs switches between the
//!   two kinds as they come, so an application request never holds the GIL
//!   across a native one.
//! - The monitor (`monitor.rs`, on the thread that called `serve`) ticks
//!   every [`monitor::MONITOR_TICK`] while requests run. When one request
//!   has been in the application for a whole tick off the CPU (blocked,
//!   the GIL released) and nobody leads, it wakes an idle follower, or
//!   starts a thread (up to `max_threads`), to lead. So a fast app runs on one thread and pays two uncontended lock
//!   operations per request, while an app that sleeps or waits on I/O gets
//!   as many threads as it has requests blocked, within a tick or two.
//! - While requests are quick and more are ready, a thread holds short
//!   responses back and writes a few together (`batch.rs`: one wake-up of
//!   the client instead of one per response); the monitor writes any held
//!   longer than `batch::DEFER_MAX_AGE`.
//! - A follower idle for [`FOLLOWER_IDLE_TIMEOUT`] ends; the pool shrinks
//!   back to what the load needs (never below one thread).
//!
//! Lock order: a thread never waits for the loop's mutex while it holds
//! the GIL (it only `try_lock`s then), and never takes the GIL while it
//! holds the loop, so the two locks cannot deadlock.
//!
//! Here: what the threads share and how they come and go (started,
//! promoted, following, ending); a thread's work on the loop and its jobs
//! is in `serving.rs`.

mod batch;
mod monitor;
mod serving;

use std::io;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::Scope;
use std::time::{Duration, Instant};

use mio::{Poll, Token, Waker};

use super::event_loop::EventLoop;
use super::handoff::{Done, DoneSink};
use super::heartbeat::Heartbeat;
use super::native_service::LoopWaiter;
use super::output::{Park, WaitBudget};
use super::service::Handler;
use batch::Batch;
use serving::serve_thread;

pub use monitor::MONITOR_TICK;

/// How long a thread with nothing to do waits before it ends.
pub(crate) const FOLLOWER_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Stack of a serving thread: the application's Python code runs on it,
/// so it gets what a `threading.Thread` gets by default on Linux.
pub(crate) const THREAD_STACK_BYTES: usize = 8 << 20;

/// Makes the per-thread application side.
pub trait HandlerFactory: Sync {
    type Handler: Handler;
    /// Runs one serving thread's whole life: makes its handler and calls
    /// `body` with it, holding whatever the thread needs meanwhile (the
    /// WSGI ring keeps a Python thread state).
    fn run_thread<R: Send>(&self, body: impl FnOnce(&mut Self::Handler) -> R + Send) -> R;
}

/// Threads waiting to be asked to lead.
#[derive(Default)]
struct Followers {
    idle: usize,
    /// Promotions not yet picked up.
    wakeups: usize,
}

/// What the monitor sees of one thread; own cache line, as it is written
/// per request by its thread and read every tick by the monitor.
#[repr(align(64))]
struct Slot {
    /// 1 + the monitor's tick count when the current job began; 0 when
    /// not serving.
    started: AtomicU64,
    /// The CPU-time clock of the thread using the slot ([`NO_CLOCK`]
    /// when unknown): a request that keeps its thread on the CPU holds the
    /// GIL, and another thread could not run it any sooner.
    clock: AtomicI64,
    /// Responses the thread holds back to write together (`batch.rs`).
    held: Mutex<Batch>,
    /// Where the thread's current response may wait while its app ends.
    park: Arc<Park>,
}

/// [`Slot::clock`] when the thread's CPU clock is unknown.
const NO_CLOCK: i64 = i64::MIN;

impl Default for Slot {
    fn default() -> Self {
        Slot {
            started: AtomicU64::new(0),
            clock: AtomicI64::new(NO_CLOCK),
            held: Mutex::default(),
            park: Arc::default(),
        }
    }
}

/// The calling thread's CPU-time clock, readable from other threads.
fn own_cpu_clock() -> i64 {
    let mut id: libc::clockid_t = 0;
    // SAFETY: writes the clock id of the calling thread into `id`.
    if unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut id) } == 0 {
        i64::from(id)
    } else {
        NO_CLOCK
    }
}

/// State shared by the threads of one worker.
struct Pool {
    lp: Mutex<EventLoop>,
    /// Served connections of threads that found the loop led by another,
    /// and of native services that served them asynchronously.
    returns: Arc<Mutex<Vec<Done>>>,
    sink: DoneSink,
    /// A thread holds the loop to wait on it (not just to hand back).
    leading: AtomicBool,
    /// Threads asked to lead that have not taken the loop yet.
    standby: AtomicUsize,
    followers: Mutex<Followers>,
    wake_follower: Condvar,
    slots: Vec<Slot>,
    /// Slot numbers (with their heartbeat) no thread uses.
    free_slots: Mutex<Vec<(usize, Option<Heartbeat>)>>,
    threads: AtomicUsize,
    finished: AtomicBool,
    error: Mutex<Option<io::Error>>,
    /// The monitor's clock, in ticks.
    tick: AtomicU64,
    /// Until this tick, requests are known to block: a thread that takes
    /// a job gets another one to lead at once (classic leader/follower).
    eager_until: AtomicU64,
    /// The monitor waits long (nothing runs); a job start must wake it.
    monitor_asleep: AtomicBool,
    monitor_waker: Waker,
    /// The protocol front's runtime, which runs only while a thread leads
    /// the loop; the monitor runs it when no thread can (see `monitor`).
    front: Option<Arc<dyn LoopWaiter>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Serves `lp` with a pool of up to `max_threads` threads until the loop
/// finishes (stop, or drained) and every thread has ended. The calling
/// thread runs the monitor and calls `tick` when a signal interrupted its
/// wait and every sweep interval; `tick` returning false stops the server.
/// `heartbeats`: one slot per thread number, `None` where not reported.
pub fn run<F: HandlerFactory>(
    lp: EventLoop,
    factory: &F,
    max_threads: usize,
    mut heartbeats: Vec<Option<Heartbeat>>,
    tick: &mut dyn FnMut() -> bool,
) -> io::Result<()> {
    let max_threads = max_threads.max(1);
    let mut monitor_poll = Poll::new()?;
    let monitor_waker = Waker::new(monitor_poll.registry(), Token(0))?;
    heartbeats.resize_with(max_threads, || None);
    heartbeats.truncate(max_threads);
    let mut lp = lp;
    lp.set_wait_budget(Arc::new(WaitBudget::new(max_threads)));
    let stop = lp.shared().clone();
    let returns = Arc::new(Mutex::new(Vec::new()));
    let front = lp.any_waiter();
    let pool = Pool {
        front,
        sink: DoneSink::new(returns.clone(), lp.waker()),
        lp: Mutex::new(lp),
        returns,
        leading: AtomicBool::new(false),
        standby: AtomicUsize::new(0),
        followers: Mutex::new(Followers::default()),
        wake_follower: Condvar::new(),
        slots: (0..max_threads).map(|_| Slot::default()).collect(),
        free_slots: Mutex::new(heartbeats.into_iter().enumerate().rev().collect()),
        threads: AtomicUsize::new(0),
        finished: AtomicBool::new(false),
        error: Mutex::new(None),
        tick: AtomicU64::new(0),
        eager_until: AtomicU64::new(0),
        monitor_asleep: AtomicBool::new(false),
        monitor_waker,
    };
    std::thread::scope(|scope| {
        if let Err(e) = spawn(&pool, factory, scope) {
            pool.finish(Some(e));
            return;
        }
        monitor::run(&pool, factory, scope, &mut monitor_poll, tick, &stop);
    });
    match pool.error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Starts a thread that leads as soon as it gets the loop.
fn spawn<'scope, F: HandlerFactory>(
    pool: &'scope Pool,
    factory: &'scope F,
    scope: &'scope Scope<'scope, '_>,
) -> io::Result<()> {
    let Some((slot, hb)) = lock(&pool.free_slots).pop() else {
        return Err(io::Error::other("thread limit reached"));
    };
    pool.threads.fetch_add(1, Ordering::SeqCst);
    pool.standby.fetch_add(1, Ordering::SeqCst);
    let started = std::thread::Builder::new()
        .name("qiao-serve".into())
        .stack_size(THREAD_STACK_BYTES)
        .spawn_scoped(scope, move || {
            pool.slots[slot]
                .clock
                .store(own_cpu_clock(), Ordering::Relaxed);
            if let Some(hb) = &hb {
                hb.claim();
            }
            let hb = factory.run_thread(move |handler| {
                serve_thread(pool, factory, scope, slot, hb.as_ref(), handler);
                hb
            });
            if let Some(hb) = &hb {
                hb.release();
            }
            pool.exit_thread(slot, hb);
        });
    if let Err(e) = started {
        pool.standby.fetch_sub(1, Ordering::SeqCst);
        pool.threads.fetch_sub(1, Ordering::SeqCst);
        return Err(e);
    }
    Ok(())
}

impl Pool {
    /// Waits to be asked to lead: true when asked, false when the thread
    /// should end (the pool finished, or idle for too long).
    fn follow(&self) -> bool {
        let mut f = lock(&self.followers);
        f.idle += 1;
        let until = Instant::now() + FOLLOWER_IDLE_TIMEOUT;
        loop {
            if self.finished.load(Ordering::SeqCst) {
                f.idle -= 1;
                return false;
            }
            if f.wakeups > 0 {
                f.wakeups -= 1;
                f.idle -= 1;
                return true;
            }
            let now = Instant::now();
            if now >= until {
                f.idle -= 1;
                return false;
            }
            f = self
                .wake_follower
                .wait_timeout(f, until - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Gets a thread to lead: an idle follower, or a new thread. False
    /// when there is none (at `max_threads`, or out of threads): the
    /// request waits for one of the running ones.
    fn promote<'scope, F: HandlerFactory>(
        &'scope self,
        factory: &'scope F,
        scope: &'scope Scope<'scope, '_>,
    ) -> bool {
        {
            let mut f = lock(&self.followers);
            if f.idle > f.wakeups {
                f.wakeups += 1;
                self.standby.fetch_add(1, Ordering::SeqCst);
                self.wake_follower.notify_one();
                return true;
            }
        }
        spawn(self, factory, scope).is_ok()
    }

    /// The loop is over: every thread ends once it is done.
    fn finish(&self, error: Option<io::Error>) {
        if let Some(e) = error {
            lock(&self.error).get_or_insert(e);
        }
        self.finished.store(true, Ordering::SeqCst);
        let _f = lock(&self.followers);
        self.wake_follower.notify_all();
        let _ = self.monitor_waker.wake();
    }

    fn exit_thread(&self, slot: usize, hb: Option<Heartbeat>) {
        lock(&self.free_slots).push((slot, hb));
        let left = self.threads.fetch_sub(1, Ordering::SeqCst) - 1;
        if !self.finished.load(Ordering::SeqCst) && left > 0 {
            // An idle thread ends: the burst that started it is over, and
            // what it allocated is free now.
            super::alloc::release_free();
        }
        let _ = self.monitor_waker.wake();
    }
}
