//! The interface between the I/O ring and the application side: what a
//! loop is configured with, what it hands over per request ([`Exchange`]),
//! the traits the WSGI ring implements ([`Handler`], [`Serve`]), and the
//! stop signal shared by every loop of a process.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mio::Waker;

use super::body::BodyReader;
use super::listener::{ListenerInfo, PeerInfo};
use super::output::Output;
use super::sock::Interest;
use crate::http::forwarded::TrustedProxies;
use crate::http::{Limits, RequestHead};

/// The settings of one event loop.
#[derive(Clone, Debug)]
pub struct LoopConfig {
    pub limits: Limits,
    /// Idle time allowed between requests on a keep-alive connection.
    pub keepalive: Duration,
    /// Time allowed to receive a whole request head, from its first byte
    /// (or from accept, for a connection's first request).
    pub header_timeout: Duration,
    /// Longest stall while reading a body or writing a response.
    pub io_timeout: Duration,
    /// Connections one loop holds at most; beyond, accepting pauses.
    pub max_connections: usize,
    /// How long a draining loop keeps serving before it closes what is left.
    pub graceful_timeout: Duration,
    /// Connections accepted per listener wake-up. With several loops on
    /// the same sockets, 1 spreads connections over the threads (the
    /// listener is re-armed so the others see what is left).
    pub accept_batch: usize,
    /// `GET`/`HEAD` of this exact path is answered by the loop itself
    /// (`200 ok`, or `503` while draining), without the application.
    pub health_path: Option<Vec<u8>>,
    /// Peers whose forwarding headers are believed. A Unix-socket peer
    /// counts as trusted whenever the list is not empty (only a local
    /// process with access to the socket file can connect). After a PROXY
    /// header, the peer is the client it names.
    pub trusted: Arc<TrustedProxies>,
    /// Every connection starts with a PROXY v1/v2 header (`--proxy-protocol`),
    /// accepted only from `proxy_allow` peers.
    pub proxy_protocol: bool,
    /// `--proxy-allow-from` (a Unix-socket peer: allowed unless empty).
    pub proxy_allow: Arc<TrustedProxies>,
    /// `--uwsgi-allow-from`: who may connect to a uwsgi listener; others
    /// are closed at once (a Unix-socket peer: allowed unless empty).
    pub uwsgi_allow: Arc<TrustedProxies>,
    /// Where warnings for the operator go (a refused uwsgi peer).
    pub notices: Option<Arc<crate::io::notice::Notices>>,
    /// Indexes of the listeners that speak the uwsgi protocol.
    pub uwsgi_listeners: Vec<usize>,
    /// The worker's metrics block (`--metrics-bind`): open connections.
    pub metrics: Option<Arc<crate::io::metrics::Metrics>>,
    /// Path prefixes served by native services (`--static`, `--proxy`):
    /// a thread serves those requests without [`Handler::session`] (no GIL).
    pub native: Option<Arc<NativeRoutes>>,
}

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
pub type FlagHook = Box<dyn Fn() + Send + Sync>;

impl Shared {
    /// Registers a loop's waker, so a flag change reaches it.
    pub fn add_waker(&self, waker: Arc<Waker>) {
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
    pub fn count_request(&self) {
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
    pub fn abandoned_ended(&self) {
        self.abandoned.fetch_sub(1, Ordering::SeqCst);
    }

    /// Requests given up and still in flight (never below 0).
    pub fn abandoned(&self) -> usize {
        self.abandoned.load(Ordering::SeqCst).max(0) as usize
    }

    /// A loop closed every connection and serves no more.
    pub fn set_finished(&self) {
        self.finished.store(true, Ordering::SeqCst);
    }

    pub fn finished(&self) -> bool {
        self.finished.load(Ordering::SeqCst)
    }
}

/// One request handed to the application side.
pub struct Exchange<'a> {
    pub head: &'a RequestHead,
    /// `head`'s ranges index `body.buffer()[base..]`.
    pub base: usize,
    pub body: &'a mut BodyReader,
    pub out: &'a mut Output,
    pub peer: &'a PeerInfo,
    pub listener: &'a ListenerInfo,
    /// The current IMF-fixdate.
    pub date: &'a [u8],
}

impl Exchange<'_> {
    /// The bytes of a range of the head.
    pub fn bytes(&self, r: &std::ops::Range<usize>) -> &[u8] {
        &self.body.buffer()[self.base + r.start..self.base + r.end]
    }
}

/// What the application side decided about the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    KeepAlive,
    Close,
}

/// Serves one request completely (response written, or left whole in
/// `ex.out` by [`Output::end`] for the caller to write).
pub trait Serve {
    fn serve(&mut self, ex: &mut Exchange<'_>) -> Outcome;

    /// Waits for `fd`'s readiness on behalf of the caller, the way serving
    /// does (the WSGI ring releases the GIL meanwhile).
    fn wait(&mut self, fd: RawFd, interest: Interest, deadline: Instant) -> std::io::Result<()> {
        super::sock::wait(fd, interest, deadline)
    }
}

/// The application side as the loop sees it.
pub trait Handler {
    /// Runs `f` with whatever serving needs held (the GIL, for WSGI);
    /// called once per run of requests a thread serves back to back.
    fn session<R>(&mut self, f: impl FnOnce(&mut dyn Serve) -> R) -> R;
}

/// A request handler of the I/O ring itself (no Python, no GIL): serves
/// one request completely, as [`Serve`] does, from any serving thread.
pub trait NativeService: Send + Sync {
    /// Serves the request; returns what to do with the connection and the
    /// final status sent (for the metrics).
    fn serve(&self, ex: &mut Exchange<'_>) -> (Outcome, u16);

    /// Takes the request over to serve it asynchronously, elsewhere, and
    /// send the connection back through `sink` when done (the serving
    /// thread goes on at once): None. Or gives it back, to be served by
    /// [`serve`](Self::serve) on this thread: `Some(job)`.
    fn spawn(
        self: Arc<Self>,
        job: crate::io::event_loop::OpenJob,
        sink: crate::io::event_loop::DoneSink,
    ) -> Option<crate::io::event_loop::OpenJob> {
        let _ = sink;
        Some(job)
    }
}

/// Work that runs on whichever thread leads the loop, while it waits:
/// the native proxy's tasks. `wait` returns once the loop's poll fd is
/// readable (events are waiting) or `timeout` passed, having run that work
/// meanwhile; the loop then collects its events without waiting.
pub trait LoopWaiter: Send + Sync {
    fn wait(&self, poll_fd: std::os::fd::RawFd, timeout: Duration);

    /// Runs what is ready now, without waiting: called by a leader that
    /// has been serving jobs back to back for [`WAITER_TICK`], so that
    /// work does not wait for the loop's next wait.
    fn tick(&self);

    /// Whether it has work at all: a loop whose waiter is idle waits on
    /// its own epoll alone (cheaper per turn). Asked at every turn, by
    /// the leading thread; work can only appear from that thread or from
    /// inside the waiter, so the answer cannot go stale meanwhile.
    fn busy(&self) -> bool {
        true
    }
}

/// Longest a leader serves jobs back to back before it lets the
/// [`LoopWaiter`]'s work run ([`LoopWaiter::tick`]).
pub const WAITER_TICK: Duration = Duration::from_millis(1);

/// The native services by path prefix, matched on whole segments (`/static`
/// matches `/static` and `/static/x`, not `/staticx`); the longest wins.
pub struct NativeRoutes {
    /// Normalized prefixes (no trailing `/`; the root is empty), longest first.
    routes: Vec<(Vec<u8>, Arc<dyn NativeService>)>,
    /// Where each request's end is recorded (metrics, access log).
    recorder: crate::io::record::Recorder,
    /// What the loop waits in, if a service needs it driven.
    waiter: Option<Arc<dyn LoopWaiter>>,
}

impl NativeRoutes {
    pub fn new(
        routes: Vec<(Vec<u8>, Arc<dyn NativeService>)>,
        recorder: crate::io::record::Recorder,
    ) -> Self {
        let mut routes: Vec<_> = routes
            .into_iter()
            .map(|(mut p, s)| {
                while p.last() == Some(&b'/') {
                    p.pop();
                }
                (p, s)
            })
            .collect();
        routes.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        NativeRoutes {
            routes,
            recorder,
            waiter: None,
        }
    }

    /// The loop waits in `waiter` rather than in its own poll.
    pub fn set_waiter(&mut self, waiter: Arc<dyn LoopWaiter>) {
        self.waiter = Some(waiter);
    }

    /// What the loop waits in this turn: the waiter, when a route may
    /// need it or it has work (the protocol front's tasks).
    pub fn waiter(&self) -> Option<&Arc<dyn LoopWaiter>> {
        self.waiter
            .as_ref()
            .filter(|w| !self.routes.is_empty() || w.busy())
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The service for a request path (percent-decoded first when it holds
    /// an escape, so `/st%61tic` is `/static`, as the WSGI side would see it).
    pub fn find(&self, raw_path: &[u8]) -> Option<&Arc<dyn NativeService>> {
        let decoded;
        let path = if raw_path.contains(&b'%') {
            let mut out = Vec::new();
            crate::http::request::percent_decode(raw_path, &mut out);
            decoded = out;
            &decoded[..]
        } else {
            raw_path
        };
        let path = if path.is_empty() { &b"/"[..] } else { path };
        self.routes
            .iter()
            .find(|(prefix, _)| {
                path.starts_with(prefix)
                    && (path.len() == prefix.len() || path[prefix.len()] == b'/')
            })
            .map(|(_, s)| s)
    }

    /// Serves `ex` with `service`, counted in the metrics and the access
    /// log like any request.
    pub fn serve(&self, service: &dyn NativeService, ex: &mut Exchange<'_>) -> Outcome {
        let started = self.recorder.start(ex);
        let (outcome, status) = service.serve(ex);
        // These answers carry a length, no chunk framing.
        let body = ex.out.body_of(ex.out.sent());
        self.recorder
            .done(started, status, ex.body.received(), body);
        outcome
    }
}

impl std::fmt::Debug for NativeRoutes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let prefixes: Vec<_> = self
            .routes
            .iter()
            .map(|(p, _)| String::from_utf8_lossy(p).into_owned())
            .collect();
        f.debug_struct("NativeRoutes")
            .field("prefixes", &prefixes)
            .finish()
    }
}
