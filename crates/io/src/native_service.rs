//! The I/O ring's own request handlers (no Python, no GIL): what a
//! native service is ([`NativeService`]), the work a loop runs while it
//! waits ([`LoopWaiter`]) and the prefix table that routes requests to
//! services ([`NativeRoutes`]). `qiao_native` implements them.

use std::sync::Arc;
use std::time::Duration;

use crate::handoff::{DoneSink, OpenJob};
use crate::record::Recorder;
use crate::service::{Exchange, Outcome};

/// A request handler of the I/O ring itself (no Python, no GIL): serves
/// one request completely, as [`Serve`](crate::Serve) does, from any serving thread.
pub trait NativeService: Send + Sync {
    /// Serves the request; returns what to do with the connection and the
    /// final status sent (for the metrics).
    fn serve(&self, ex: &mut Exchange<'_>) -> (Outcome, u16);

    /// Takes the request over to serve it asynchronously, elsewhere, and
    /// send the connection back through `sink` when done (the serving
    /// thread goes on at once): None. Or gives it back, to be served by
    /// [`serve`](Self::serve) on this thread: `Some(job)`.
    fn spawn(self: Arc<Self>, job: OpenJob, sink: DoneSink) -> Option<OpenJob> {
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
pub(crate) const WAITER_TICK: Duration = Duration::from_millis(1);

/// The native services by path prefix, matched on whole segments (`/static`
/// matches `/static` and `/static/x`, not `/staticx`); the longest wins.
pub struct NativeRoutes {
    /// Normalized prefixes (no trailing `/`; the root is empty), longest first.
    routes: Vec<(Vec<u8>, Arc<dyn NativeService>)>,
    /// Where each request's end is recorded (metrics, access log).
    recorder: Recorder,
    /// What the loop waits in, if a service needs it driven.
    waiter: Option<Arc<dyn LoopWaiter>>,
}

impl NativeRoutes {
    pub fn new(routes: Vec<(Vec<u8>, Arc<dyn NativeService>)>, recorder: Recorder) -> Self {
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

    /// The waiter, busy or not: what the pool's monitor runs when no
    /// thread can lead (`pool::monitor`).
    pub fn any_waiter(&self) -> Option<Arc<dyn LoopWaiter>> {
        self.waiter.clone()
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
            qiao_http::request::percent_decode(raw_path, &mut out);
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
