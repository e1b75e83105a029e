//! The event loop of one worker: its `mio::Poll`, the connections it owns
//! and the work of the thread that leads it: wait for readiness without
//! the GIL, accept, read and parse without the GIL, and queue every
//! complete request (pipelined ones included) as a [`Job`]. Which thread
//! leads and which serves is the pool's business (`io::pool`); this module
//! only guarantees that a connection is either in the slab or out in one
//! job, never both.
//!
//! Timers are coarse on purpose: every [`SWEEP_INTERVAL`] the loop checks
//! each connection's single deadline. That is O(connections) twice a
//! second instead of a timer-heap operation per request.

use std::collections::VecDeque;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token, Waker};

mod accept;
mod config;
mod front;
mod health;
mod job;
mod lifecycle;
mod read;
mod trust;

pub use config::LoopConfig;
pub use job::Job;

use super::conn::Conn;
use super::listener::{Listener, ListenerInfo};
use super::output::WaitBudget;
pub use super::service::{Exchange, Handler, Outcome, Serve};
pub use super::shared::Shared;
use qiao_http::date::DateCache;

/// How often deadlines are checked (and, on the main thread, signals).
pub(crate) const SWEEP_INTERVAL: Duration = Duration::from_millis(500);
/// How long a closing connection keeps reading (and dropping) what the
/// client still sends, so our final response is not lost to a TCP reset.
pub(crate) const LINGER_TIMEOUT: Duration = Duration::from_secs(2);
pub use qiao_http::conn::{MAX_DRAIN_BYTES, PREBUFFER_BODY_BYTES};
/// While draining, an idle connection is closed after this grace (a
/// client that sends its next request within it gets an answer with
/// `Connection: close` instead of a reset).
pub(crate) const DRAIN_IDLE_GRACE: Duration = Duration::from_millis(1000);
/// Bytes asked of the kernel per `read(2)` by the loop once a connection
/// sends more than its first buffer holds.
pub(crate) const READ_CHUNK: usize = 64 * 1024;
/// A connection's first read buffer when the pool is empty. Most requests
/// fit; thousands of active connections then cost small allocations that
/// the allocator recycles, not 64 KiB ones that fault pages in and out
/// (seen with perf at 1,000 connections).
pub(crate) const FIRST_READ_BUFFER: usize = 8 * 1024;
/// Below this much room, a read first grows the buffer by `READ_CHUNK`.
pub(crate) const MIN_READ: usize = 1024;
/// Read buffers kept for reuse; idle connections hold none. With
/// `MAX_POOLED_BUFFER`, the pool holds 8 MiB at most.
pub(crate) const BUFFER_POOL_SIZE: usize = 64;
/// Larger buffers (grown by a big prebuffered body) are freed rather than
/// pooled.
pub(crate) const MAX_POOLED_BUFFER: usize = 2 * READ_CHUNK;
/// Readiness events taken per wait.
pub(crate) const EVENTS_PER_POLL: usize = 1024;
/// Connections accepted per listener readiness before serving others.
pub const ACCEPT_BATCH: usize = 256;
/// Response buffers kept for reuse (one is out per request in flight).
pub(crate) const WRITE_BUFFER_POOL_SIZE: usize = 16;

const WAKE_TOKEN: Token = Token(usize::MAX);
pub(super) const CONN_BASE: usize = 1 << 16;

enum Step {
    Ready,
    Wait,
    Closed,
}

/// What a turn of the loop found.
#[derive(Debug, PartialEq, Eq)]
pub enum Turn {
    /// Go on: serve what is ready, or take another turn.
    Continue,
    /// Stopped, or drained: every connection is closed; the pool ends.
    Finished,
}

/// One worker's loop. Only the leading thread touches it (the pool keeps
/// it behind a mutex); connections being served are out of `conns` (their
/// slot is `None` but not free) until [`EventLoop::finish_job`].
pub struct EventLoop {
    poll: Poll,
    events: Events,
    /// The last poll filled `events`: more may be waiting.
    events_left: bool,
    /// When the loop last waited in the native [`LoopWaiter`](crate::native_service::LoopWaiter).
    waited: Instant,
    /// This wait's events: token, and whether the peer's side closed.
    tokens: Vec<(Token, bool)>,
    listeners: Vec<Listener>,
    infos: Vec<Arc<ListenerInfo>>,
    /// Boxed: a job moves its connection out and back per request.
    conns: Vec<Option<Box<Conn>>>,
    /// Per slot: a readiness event came while its connection was out in a
    /// job (the edge is consumed: the job's return must read), and whether
    /// it said the peer closed.
    missed: Vec<Option<bool>>,
    free: Vec<usize>,
    /// Connections open, those out in a job included.
    live: usize,
    pool: Vec<Vec<u8>>,
    wbufs: Vec<Vec<u8>>,
    dates: DateCache,
    config: LoopConfig,
    shared: Arc<Shared>,
    waker: Arc<Waker>,
    /// Connections with a complete request, oldest first.
    ready: VecDeque<usize>,
    accept_paused: bool,
    /// Set when draining began: the time by which the loop gives up.
    drain_until: Option<Instant>,
    next_sweep: Instant,
    /// Shut down: no more jobs; connections handed back are closed.
    closed: bool,
    /// The protocol front's door, when one is attached (`front.rs`).
    inbox: Option<Arc<super::inbox::Inbox>>,
    /// The connections the front injects requests for (`front.rs`).
    pairs: front::Pairs,
    /// How many serving threads may wait for slow clients at once (set by
    /// the pool, which knows how many threads there are).
    budget: Option<Arc<WaitBudget>>,
}

impl EventLoop {
    pub fn new(
        mut listeners: Vec<Listener>,
        config: LoopConfig,
        shared: Arc<Shared>,
    ) -> io::Result<Self> {
        let poll = Poll::new()?;
        for (i, l) in listeners.iter_mut().enumerate() {
            poll.registry()
                .register(l.source(), Token(i), Interest::READABLE)?;
        }
        let waker = Arc::new(Waker::new(poll.registry(), WAKE_TOKEN)?);
        shared.add_waker(waker.clone());
        let infos = listeners
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let mut info = l.info();
                info.uwsgi = config.uwsgi_listeners.contains(&i);
                Arc::new(info)
            })
            .collect();
        Ok(EventLoop {
            poll,
            events: Events::with_capacity(EVENTS_PER_POLL),
            events_left: false,
            waited: Instant::now(),
            tokens: Vec::with_capacity(EVENTS_PER_POLL),
            listeners,
            infos,
            conns: Vec::new(),
            missed: Vec::new(),
            free: Vec::new(),
            live: 0,
            pool: Vec::new(),
            wbufs: Vec::new(),
            dates: DateCache::default(),
            config,
            shared,
            waker,
            ready: VecDeque::new(),
            accept_paused: false,
            drain_until: None,
            next_sweep: Instant::now() + SWEEP_INTERVAL,
            closed: false,
            inbox: None,
            pairs: front::Pairs::default(),
            budget: None,
        })
    }

    /// Limits how many of the serving threads may wait for slow clients.
    pub(crate) fn set_wait_budget(&mut self, budget: Arc<WaitBudget>) {
        self.budget = Some(budget);
    }

    /// What the loop waits in when it has a waiter (the protocol front's
    /// runtime), busy or not.
    pub(crate) fn any_waiter(&self) -> Option<Arc<dyn crate::native_service::LoopWaiter>> {
        self.config.native.as_ref().and_then(|n| n.any_waiter())
    }

    /// The waker that interrupts this loop's wait (for connections handed
    /// back by a thread that finished serving while another one leads).
    pub(crate) fn waker(&self) -> Arc<Waker> {
        self.waker.clone()
    }

    /// The flags and counters shared with the other loops of the process.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Whether a request is waiting for a thread.
    pub(crate) fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// One turn of the leading thread: checks the stop and drain flags,
    /// waits for readiness (no GIL: the caller holds only the loop; inside
    /// the native routes' [`LoopWaiter`](crate::native_service::LoopWaiter)
    /// when they have one, so the proxy's tasks run meanwhile), then
    /// accepts, reads and parses what arrived and runs the deadline sweep
    /// when due. Complete requests queue up for [`EventLoop::next_job`].
    pub fn turn(&mut self) -> io::Result<Turn> {
        if self.closed {
            return Ok(Turn::Finished);
        }
        if self.shared.stopping() {
            self.shutdown();
            return Ok(Turn::Finished);
        }
        if self.shared.draining() {
            let first = self.drain_until.is_none();
            let until = *self
                .drain_until
                .get_or_insert_with(|| Instant::now() + self.config.graceful_timeout);
            if first {
                self.start_drain();
            }
            // A request given up after --timeout never ends: its connection
            // is not waited for (the process's exit closes it).
            let open = self.live + self.front_open();
            if open <= self.shared.abandoned() || Instant::now() >= until {
                self.shutdown();
                return Ok(Turn::Finished);
            }
        }
        let mut timeout = self.next_sweep.saturating_duration_since(Instant::now());
        let mut waited_in_waiter = false;
        if let Some(waiter) = self.config.native.as_ref().and_then(|n| n.waiter()) {
            waited_in_waiter = true;
            // The native proxy's tasks run while the loop waits; its poll fd
            // (readable when events wait) is one of the things they wait on.
            if !self.events_left {
                waiter.wait(self.poll.as_raw_fd(), timeout);
            }
            self.waited = Instant::now();
            timeout = Duration::ZERO;
        }
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            // Serving threads block signals; a stray one only ends the wait.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(Turn::Continue),
            Err(e) => return Err(e),
        }
        // A full batch may leave events in the kernel: the next turn
        // collects them before waiting again (the waiter only sees edges).
        self.events_left = waited_in_waiter && self.events.iter().count() >= EVENTS_PER_POLL;
        self.adopt();
        self.tokens.clear();
        self.tokens.extend(
            self.events
                .iter()
                .map(|e| (e.token(), e.is_read_closed() || e.is_error())),
        );
        for i in 0..self.tokens.len() {
            let (token, closed) = self.tokens[i];
            match token {
                WAKE_TOKEN => {}
                Token(t) if t < CONN_BASE => self.accept(t),
                Token(t) => {
                    match self.conns.get_mut(t - CONN_BASE) {
                        Some(Some(conn)) => {
                            conn.drained = false;
                            conn.read_closed |= closed;
                        }
                        Some(None) => {
                            let m = &mut self.missed[t - CONN_BASE];
                            *m = Some(m.unwrap_or(false) || closed);
                        }
                        None => {}
                    }
                    if let Step::Ready = self.progress(t - CONN_BASE) {
                        self.ready.push_back(t - CONN_BASE);
                    }
                }
            }
        }
        let now = Instant::now();
        if now >= self.next_sweep {
            self.sweep(now);
            self.next_sweep = now + SWEEP_INTERVAL;
        }
        Ok(Turn::Continue)
    }
}
