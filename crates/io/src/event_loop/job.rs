//! One request taken out of the loop to be served on some thread
//! ([`Job`]), and its way back ([`Done`]). A job owns its connection while
//! it is out, so the thread serving it needs no lock: the loop's slot for
//! it stays reserved (`None`, not free) and readiness events for it are
//! ignored until [`EventLoop::finish_job`] puts it back and reads what
//! arrived meanwhile (the registration is edge-triggered, so reading until
//! `WouldBlock` there is what keeps no edge from being lost).

use std::mem;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{EventLoop, Step, WRITE_BUFFER_POOL_SIZE};
use crate::body::BodyReader;
use crate::conn::{Conn, Phase};
use crate::handoff::{Done, DoneSink, OpenJob};
use crate::heartbeat::Heartbeat;
use crate::listener::ListenerInfo;
use crate::native_service::{NativeRoutes, NativeService, WAITER_TICK};
use crate::output::{Output, Park, WaitBudget, OUTPUT_FLUSH_BYTES};
use crate::service::{Exchange, Outcome, Serve};
use qiao_http::date::DATE_LEN;
use qiao_http::BodyDecoder;

/// A request ready to be served, with everything serving needs.
pub struct Job {
    idx: usize,
    conn: Box<Conn>,
    wbuf: Vec<u8>,
    date: [u8; DATE_LEN],
    info: Arc<ListenerInfo>,
    io_timeout: Duration,
    max_body: Option<u64>,
    /// The native service whose prefix the path lies under, if any.
    native: Option<(Arc<NativeRoutes>, Arc<dyn NativeService>)>,
    budget: Option<Arc<WaitBudget>>,
}

/// Serves a job with its native service (see [`Job::run_native`]).
struct NativeServe<'a> {
    routes: &'a NativeRoutes,
    service: &'a dyn NativeService,
}

impl Serve for NativeServe<'_> {
    fn serve(&mut self, ex: &mut Exchange<'_>) -> Outcome {
        self.routes.serve(self.service, ex)
    }
}

impl Job {
    /// Whether the connection is TLS (its writes cost the crypto too).
    pub(crate) fn is_tls(&self) -> bool {
        self.conn.wire.is_tls()
    }

    /// Whether a native service (not the application) serves this request.
    pub(crate) fn is_native(&self) -> bool {
        self.native.is_some()
    }

    /// Serves a native job (see [`is_native`](Self::is_native)) without any
    /// handler: no GIL is taken. A service that works asynchronously takes
    /// the job over ([`NativeService::spawn`]) and sends its [`Done`] to
    /// `sink` later: then this returns None at once. Panics if the job is
    /// not native.
    pub(crate) fn run_native(
        mut self,
        heartbeat: Option<&Heartbeat>,
        sink: &DoneSink,
    ) -> Option<Done> {
        let (routes, service) = self.native.take().expect("a native job");
        let open = service.clone().spawn(self.open(None), sink.clone())?;
        let mut serve = NativeServe {
            routes: &routes,
            service: &*service,
        };
        Some(open.serve(&mut serve, heartbeat))
    }

    /// Serves the request completely, reporting it in the thread's
    /// heartbeat slot. A panic in `serve` costs this connection only.
    /// With a `park`, a short response may be left unwritten in the
    /// returned [`Done`], to be written with others (see `pool::batch`).
    pub fn run(
        self,
        serve: &mut dyn Serve,
        heartbeat: Option<&Heartbeat>,
        park: Option<Arc<Park>>,
    ) -> Done {
        self.open(park).serve(serve, heartbeat)
    }

    /// The job with its body reader and output made, ready to serve;
    /// `park` as in [`Job::run`].
    pub fn open(self, park: Option<Arc<Park>>) -> OpenJob {
        let Job {
            idx,
            mut conn,
            wbuf,
            date,
            info,
            io_timeout,
            max_body,
            native: _,
            budget,
        } = self;
        let base = conn.start;
        let decoder = BodyDecoder::new(conn.head.framing, max_body);
        let body = BodyReader::new(
            conn.wire.clone(),
            mem::take(&mut conn.buf),
            base + conn.head_len,
            decoder,
            conn.head.expect_continue,
            io_timeout,
        );
        let out = Output::new(conn.wire.clone(), wbuf, io_timeout, park).with_budget(budget);
        OpenJob {
            idx,
            conn,
            base,
            body,
            out,
            date,
            info,
            io_timeout,
        }
    }
}

impl EventLoop {
    /// Takes the oldest ready request out of the loop, with its connection.
    pub(crate) fn next_job(&mut self) -> Option<Job> {
        if self.closed {
            return None;
        }
        if let Some(waiter) = self.config.native.as_ref().and_then(|n| n.waiter()) {
            // Serving back to back: let the waiter's work (the proxy's
            // tasks) run now and then, not only when the loop waits.
            let now = Instant::now();
            if now.duration_since(self.waited) >= WAITER_TICK {
                self.waited = now;
                waiter.tick();
            }
        }
        while let Some(idx) = self.ready.pop_front() {
            // A connection can be queued twice (two readiness events), or
            // closed since: only a present, ready one makes a job.
            let ready = matches!(
                self.conns.get(idx).and_then(Option::as_deref),
                Some(Conn {
                    phase: Phase::Ready,
                    ..
                })
            );
            if !ready {
                continue;
            }
            let mut conn = self.conns[idx].take().expect("checked above");
            // Counted before serving, so the request that reaches
            // `--max-requests` is itself answered with `Connection: close`.
            self.shared.count_request();
            if self.shared.draining() {
                // The response says `Connection: close`: the client will
                // not send another request here.
                conn.head.keep_alive = false;
            }
            let mut date = [0u8; DATE_LEN];
            date.copy_from_slice(self.dates.get());
            let native = match &self.config.native {
                Some(routes) if !conn.head.cgi => {
                    let path = &conn.buf
                        [conn.start + conn.head.path.start..conn.start + conn.head.path.end];
                    routes.find(path).map(|s| (routes.clone(), s.clone()))
                }
                _ => None,
            };
            let wbuf = self
                .wbufs
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(OUTPUT_FLUSH_BYTES));
            return Some(Job {
                idx,
                info: self.infos[conn.listener].clone(),
                conn,
                wbuf,
                date,
                io_timeout: self.config.io_timeout,
                max_body: self.config.limits.max_body,
                native,
                budget: self.budget.clone(),
            });
        }
        None
    }

    /// Puts a served connection back: closes it, or drops the rest of an
    /// unread body, or waits for its next request, which may already be
    /// here (pipelined): then it is queued first, to keep its turn.
    pub(crate) fn finish_job(&mut self, done: Done) {
        let Done {
            idx,
            mut conn,
            mut out,
            mut keep,
            decoder,
            read_socket,
        } = done;
        // What the client has not taken yet: the loop writes it, and reads
        // the connection again only once it is written.
        let backlog = out.take_backlog();
        keep &= !out.failed();
        let mut wbuf = out.into_buffer();
        if let Some(closed) = self.missed[idx].take() {
            conn.drained = false;
            conn.read_closed |= closed;
        }
        if read_socket {
            conn.drained = false;
        }
        if self.wbufs.len() < WRITE_BUFFER_POOL_SIZE {
            wbuf.clear();
            self.wbufs.push(wbuf);
        }
        let keep = keep && !self.shared.stopping() && !self.closed;
        conn.phase = qiao_http::conn::after_request(decoder);
        let now = Instant::now();
        // Draining may have begun while this request was served.
        conn.deadline = self.idle_deadline(now);
        if !backlog.is_empty() || conn.wire.tls_pending() {
            conn.backlog = backlog;
            conn.deadline = now + self.config.io_timeout;
        }
        let linger = !keep || matches!(conn.phase, Phase::Linger);
        self.conns[idx] = Some(conn);
        if linger {
            self.close_after_response(idx);
        }
        if self.closed {
            self.close(idx);
            return;
        }
        // A request the front injected while this one was served.
        if let Some(request) = self.pairs.held.remove(&idx) {
            self.receive(idx, request);
        }
        if let Step::Ready = self.progress(idx) {
            self.ready.push_front(idx);
        }
    }
}
