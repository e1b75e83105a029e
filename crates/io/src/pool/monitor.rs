//! The pool's monitor, run by the thread that called `serve` (the process's
//! main thread, the one Python delivers signals to): it ticks every
//! [`MONITOR_TICK`] while requests run, and when one has been inside the
//! application for a whole tick *off the CPU* (sleeping, waiting for a
//! database: the GIL released) while nobody leads the loop, it gets
//! another thread to lead. A request that keeps its thread on the CPU
//! holds the GIL: another thread could not serve anything sooner, so it
//! causes no hand-off (the thread's CPU clock tells the two apart, read
//! only for requests already a tick long). While every request is
//! shorter than a tick it ticks every [`MONITOR_CALM_TICK`] instead. With
//! nothing running for [`PARK_AFTER_TICKS`]
//! it sleeps until a job starts (or a sweep interval passes), so an idle
//! server costs no wake-ups. Signals interrupt its wait, and it runs the
//! caller's `tick` (the Python signal handlers) at once. When every
//! thread is taken and none leads, it runs the protocol front's ready
//! work itself ([`run_front`]). While it sleeps
//! it also looks, each sweep interval, for memory a burst has freed
//! (`alloc::IdleTrim`).

use std::io;
use std::sync::atomic::Ordering;
use std::thread::Scope;
use std::time::{Duration, Instant};

use mio::{Events, Poll};

use super::{HandlerFactory, Pool, NO_CLOCK};
use crate::alloc::IdleTrim;
use crate::event_loop::SWEEP_INTERVAL;
use crate::shared::Shared;

/// How long a request may keep the loop unled before another thread
/// takes over: about what the Go runtime allows a blocking system call.
/// A request shorter than this never causes a hand-off.
pub const MONITOR_TICK: Duration = Duration::from_millis(1);
/// A request whose thread used less than this share of the time since
/// the last sample counts as blocked (off the CPU).
pub(super) const BLOCKED_CPU_SHARE: f64 = 0.5;
/// Ticks without any request running after which the monitor sleeps.
pub(super) const PARK_AFTER_TICKS: u32 = 100;
/// Ticks that eager hand-off lasts after a request was last seen
/// blocking for a whole tick.
pub(super) const EAGER_HOLD_TICKS: u64 = 50;
/// The tick while every request is short: each tick preempts the serving
/// thread (on a one-CPU worker, the monitor runs on the same CPU), which
/// cost ~3% of the throughput of a quick app at 1 ms (interleaved wrk runs
/// of `environ`, 97k vs 100k req/s). The Go runtime's sysmon backs off
/// the same way.
pub(super) const MONITOR_CALM_TICK: Duration = Duration::from_millis(5);
/// Ticks in a row without a request as long as a tick (nor blocking)
/// after which the monitor ticks at [`MONITOR_CALM_TICK`]; a request
/// seen at a tick after the one it began in brings [`MONITOR_TICK`] back.
pub(super) const CALM_AFTER_TICKS: u32 = 100;

pub(super) fn run<'scope, F: HandlerFactory>(
    pool: &'scope Pool,
    factory: &'scope F,
    scope: &'scope Scope<'scope, '_>,
    poll: &mut Poll,
    tick: &mut dyn FnMut() -> bool,
    stop: &Shared,
) {
    let mut events = Events::with_capacity(4);
    let mut samples = vec![Sample::default(); pool.slots.len()];
    let mut quiet = 0u32;
    let mut calm = 0u32;
    let mut next_signal_check = Instant::now() + SWEEP_INTERVAL;
    let mut idle_trim = IdleTrim::default();
    let debug = std::env::var_os("QIAO_DEBUG_POOL").is_some();
    loop {
        let finished = pool.finished.load(Ordering::SeqCst);
        if finished && pool.threads.load(Ordering::SeqCst) == 0 {
            return;
        }
        let asleep = pool.monitor_asleep.load(Ordering::SeqCst);
        let timeout = if asleep || finished {
            SWEEP_INTERVAL
        } else if calm >= CALM_AFTER_TICKS {
            MONITOR_CALM_TICK
        } else {
            MONITOR_TICK
        };
        match poll.poll(&mut events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                if !tick() {
                    stop.stop();
                }
                continue;
            }
            Err(_) => std::thread::sleep(MONITOR_TICK),
        }
        let now = Instant::now();
        if now >= next_signal_check {
            next_signal_check = now + SWEEP_INTERVAL;
            if asleep {
                // No request for a while: memory a burst freed goes back.
                idle_trim.check();
            }
            if debug {
                let f = super::lock(&pool.followers);
                let busy = pool
                    .slots
                    .iter()
                    .filter(|s| s.started.load(Ordering::Relaxed) != 0)
                    .count();
                log::debug!(
                    "pool: threads={} idle={} wakeups={} standby={} leading={} busy={} tick={} eager_until={} returns={}",
                    pool.threads.load(Ordering::Relaxed), f.idle, f.wakeups,
                    pool.standby.load(Ordering::Relaxed), pool.leading.load(Ordering::Relaxed),
                    busy, pool.tick.load(Ordering::Relaxed), pool.eager_until.load(Ordering::Relaxed),
                    super::lock(&pool.returns).len(),
                );
            }
            if !tick() {
                stop.stop();
            }
        }
        if finished {
            continue;
        }
        let t = pool.tick.fetch_add(1, Ordering::Relaxed) + 1;
        let Scan { busy, long, stuck } = scan(pool, t, Some(&mut samples));
        if busy {
            super::batch::flush_stale(pool);
        }
        calm = if long || stuck || pool.eager() {
            0
        } else {
            calm.saturating_add(1)
        };
        if stuck {
            pool.eager_until
                .store(t + EAGER_HOLD_TICKS, Ordering::Relaxed);
        }
        if stuck
            && !pool.leading.load(Ordering::SeqCst)
            && pool.standby.load(Ordering::SeqCst) == 0
            && !pool.promote(factory, scope)
        {
            run_front(pool);
        }
        if busy {
            quiet = 0;
        } else {
            quiet = quiet.saturating_add(1);
            if quiet >= PARK_AFTER_TICKS && !asleep {
                pool.eager_until.store(0, Ordering::Relaxed);
                pool.monitor_asleep.store(true, Ordering::SeqCst);
                // A job that began before the flag was visible did not
                // wake us: look again (SeqCst on both sides).
                if scan(pool, t, None).busy {
                    pool.monitor_asleep.store(false, Ordering::SeqCst);
                }
            }
        }
    }
}

/// Every thread is taken and none leads: runs what is ready in the
/// protocol front's runtime from here, once a tick. Why: its tasks (an
/// HTTP/2 connection's) run only while a thread leads the loop, and every
/// thread may be waiting on them: an application reading a stream's
/// request body, or writing an answer the front has to send on. Sixteen
/// 1 MiB uploads on one thread stalled until `--io-timeout` without it
/// (`tests/e2e/test_http2_bodies.py`).
fn run_front(pool: &Pool) {
    if let Some(front) = pool.front.as_ref().filter(|f| f.busy()) {
        front.tick();
    }
}

/// The last CPU-time reading of a slot's thread during one request.
#[derive(Clone, Copy, Default)]
struct Sample {
    /// The request's `started` value (0: none).
    job: u64,
    cpu_ns: u64,
    at: Option<Instant>,
}

/// Nanoseconds of CPU time a thread used, by its CPU clock id.
fn cpu_ns(clock: i64) -> Option<u64> {
    if clock == NO_CLOCK {
        return None;
    }
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: reads a clock into a timespec we own; a stale id of an ended
    // thread only makes the call fail.
    let rc = unsafe { libc::clock_gettime(clock as libc::clockid_t, &mut ts) };
    (rc == 0).then(|| ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// What a tick saw of the running requests.
struct Scan {
    /// Some request is running.
    busy: bool,
    /// Some request began before this tick's interval.
    long: bool,
    /// Some request has been blocked off the CPU for a whole tick.
    stuck: bool,
}

/// Looks at the running requests. Without `samples`, only `busy` is
/// computed.
fn scan(pool: &Pool, t: u64, mut samples: Option<&mut Vec<Sample>>) -> Scan {
    let mut busy = false;
    let mut long = false;
    let mut blocked = false;
    for (i, slot) in pool.slots.iter().enumerate() {
        let started = slot.started.load(Ordering::SeqCst);
        if started == 0 {
            continue;
        }
        busy = true;
        let Some(samples) = samples.as_deref_mut() else {
            break;
        };
        if t <= started {
            continue;
        }
        long = true;
        // A whole tick inside the app: on the CPU, or waiting?
        let now = Instant::now();
        let Some(cpu) = cpu_ns(slot.clock.load(Ordering::Relaxed)) else {
            blocked = true;
            continue;
        };
        let s = &mut samples[i];
        if s.job == started {
            if let Some(at) = s.at {
                let wall = now.duration_since(at).as_nanos() as f64;
                let used = cpu.saturating_sub(s.cpu_ns) as f64;
                if used < wall * BLOCKED_CPU_SHARE {
                    blocked = true;
                }
            }
        }
        *s = Sample {
            job: started,
            cpu_ns: cpu,
            at: Some(now),
        };
    }
    Scan {
        busy,
        long,
        stuck: blocked,
    }
}
