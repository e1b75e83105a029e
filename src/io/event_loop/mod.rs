//! The event loop: one `mio::Poll` per serving thread, the connections it
//! owns, and the batch cycle: wait for readiness without the GIL, read and
//! parse without the GIL, then serve every complete request (pipelined ones
//! included) in one [`Handler::session`], i.e. one GIL hold.
//!
//! Timers are coarse on purpose: every [`SWEEP_INTERVAL`] the loop checks
//! each connection's single deadline. That is O(connections) twice a
//! second instead of a timer-heap operation per request.

use std::io;
use std::mem;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token, Waker};

mod lifecycle;

use super::body::BodyReader;
use super::conn::{Conn, Phase};
use super::heartbeat::{self, Heartbeat};
use super::listener::{Listener, ListenerInfo};
use super::output::Output;
pub use super::service::{Exchange, Handler, LoopConfig, Outcome, Serve, Shared};
use super::sock;
use crate::http::date::{DateCache, DATE_LEN};
use crate::http::{parse_head, BodyDecoder, Decoded, Framing, Status};

/// How often deadlines are checked (and, on the main thread, signals).
pub const SWEEP_INTERVAL: Duration = Duration::from_millis(500);
/// How long a closing connection keeps reading (and dropping) what the
/// client still sends, so our final response is not lost to a TCP reset.
pub const LINGER_TIMEOUT: Duration = Duration::from_secs(2);
/// Most bytes of an unread request body dropped to keep the connection;
/// a larger rest closes it instead.
pub const MAX_DRAIN_BYTES: u64 = 1 << 20;
/// Content-Length bodies up to this size are received by the event loop
/// before the app is called, so a slow uploader never blocks the thread.
pub const PREBUFFER_BODY_BYTES: usize = 256 * 1024;
/// While draining, an idle connection is closed after this grace (a
/// client that sends its next request within it gets an answer with
/// `Connection: close` instead of a reset).
pub const DRAIN_IDLE_GRACE: Duration = Duration::from_millis(1000);
/// Bytes asked of the kernel per `read(2)` by the loop.
pub const READ_CHUNK: usize = 64 * 1024;
/// Read buffers kept for reuse; idle connections hold none. With
/// `MAX_POOLED_BUFFER`, the pool holds 8 MiB at most.
pub const BUFFER_POOL_SIZE: usize = 64;
/// Larger buffers (grown by a big prebuffered body) are freed rather than
/// pooled.
pub const MAX_POOLED_BUFFER: usize = 2 * READ_CHUNK;
/// Readiness events taken per wait.
pub const EVENTS_PER_POLL: usize = 1024;
/// Connections accepted per listener readiness before serving others.
pub const ACCEPT_BATCH: usize = 256;

const WAKE_TOKEN: Token = Token(usize::MAX);
const CONN_BASE: usize = 1 << 16;

enum Step {
    Ready,
    Wait,
    Closed,
}

/// One serving thread's loop.
pub struct EventLoop {
    poll: Poll,
    events: Events,
    tokens: Vec<Token>,
    listeners: Vec<Listener>,
    infos: Vec<ListenerInfo>,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    live: usize,
    pool: Vec<Vec<u8>>,
    wbuf: Vec<u8>,
    dates: DateCache,
    config: LoopConfig,
    shared: Arc<Shared>,
    ready: Vec<usize>,
    accept_paused: bool,
    /// Set when draining began: the time by which the loop gives up.
    drain_until: Option<Instant>,
    heartbeat: Option<Heartbeat>,
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
        shared.add_waker(waker);
        let infos = listeners.iter().map(Listener::info).collect();
        Ok(EventLoop {
            poll,
            events: Events::with_capacity(EVENTS_PER_POLL),
            tokens: Vec::with_capacity(EVENTS_PER_POLL),
            listeners,
            infos,
            conns: Vec::new(),
            free: Vec::new(),
            live: 0,
            pool: Vec::new(),
            wbuf: Vec::with_capacity(crate::io::output::OUTPUT_FLUSH_BYTES),
            dates: DateCache::default(),
            config,
            shared,
            ready: Vec::new(),
            accept_paused: false,
            drain_until: None,
            heartbeat: None,
        })
    }

    /// Reports this loop's progress in a supervisor-visible slot.
    pub fn set_heartbeat(&mut self, heartbeat: Heartbeat) {
        self.heartbeat = Some(heartbeat);
    }

    /// Runs until [`Shared::stop`], or until drained after [`Shared::drain`]. `main`: this is the thread that checks
    /// signals through [`Handler::tick`].
    pub fn run<H: Handler>(&mut self, handler: &mut H, main: bool) -> io::Result<()> {
        let mut next_sweep = Instant::now() + SWEEP_INTERVAL;
        loop {
            if self.shared.stopping() {
                self.shutdown();
                return Ok(());
            }
            if self.shared.draining() {
                let until = *self
                    .drain_until
                    .get_or_insert_with(|| Instant::now() + self.config.graceful_timeout);
                if !self.listeners.is_empty() {
                    self.start_drain();
                }
                if self.live == 0 || Instant::now() >= until {
                    self.shutdown();
                    return Ok(());
                }
            }
            if let Some(hb) = &self.heartbeat {
                hb.alive(heartbeat::monotonic_ms());
            }
            let timeout = next_sweep.saturating_duration_since(Instant::now());
            match self.poll.poll(&mut self.events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    if main && !handler.tick() {
                        self.shared.stop();
                    }
                    continue;
                }
                Err(e) => return Err(e),
            }
            self.tokens.clear();
            self.tokens.extend(self.events.iter().map(|e| e.token()));
            for i in 0..self.tokens.len() {
                match self.tokens[i] {
                    WAKE_TOKEN => {}
                    Token(t) if t < CONN_BASE => self.accept(t),
                    Token(t) => {
                        if let Step::Ready = self.progress(t - CONN_BASE) {
                            self.ready.push(t - CONN_BASE);
                        }
                    }
                }
            }
            if !self.ready.is_empty() {
                let ready = mem::take(&mut self.ready);
                handler.session(|serve| {
                    for &idx in &ready {
                        self.serve_conn(idx, serve);
                    }
                });
                self.ready = ready;
                self.ready.clear();
            }
            let now = Instant::now();
            if now >= next_sweep {
                self.sweep(now);
                next_sweep = now + SWEEP_INTERVAL;
                if main && !handler.tick() {
                    self.shared.stop();
                }
            }
        }
    }

    fn accept(&mut self, li: usize) {
        if self.drain_until.is_some() {
            return;
        }
        let batch = self.config.accept_batch.clamp(1, ACCEPT_BATCH);
        for n in 0..batch {
            if self.live >= self.config.max_connections {
                self.accept_paused = true;
                return;
            }
            let (mut stream, peer) = match self.listeners[li].accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(_) => {
                    // Out of descriptors or memory: no new edge will come
                    // for what is queued, so retry when a connection
                    // closes or at the next sweep.
                    self.accept_paused = true;
                    return;
                }
            };
            let idx = self.free.pop().unwrap_or_else(|| {
                self.conns.push(None);
                self.conns.len() - 1
            });
            if self
                .poll
                .registry()
                .register(stream.source(), Token(CONN_BASE + idx), Interest::READABLE)
                .is_err()
            {
                self.free.push(idx);
                continue;
            }
            let deadline = Instant::now() + self.config.header_timeout;
            self.conns[idx] = Some(Conn::new(stream, peer, li, deadline));
            self.live += 1;
            if n + 1 == batch {
                // Stopping before WouldBlock: the registration is
                // edge-triggered, so re-arm it for what is still queued
                // (any loop watching this socket will be woken).
                let _ = self.poll.registry().reregister(
                    self.listeners[li].source(),
                    Token(li),
                    Interest::READABLE,
                );
            }
        }
    }

    /// Advances a connection as far as the received bytes allow, reading
    /// until the socket has nothing more (the registration is edge-triggered).
    fn progress(&mut self, idx: usize) -> Step {
        loop {
            let Some(conn) = self.conns.get_mut(idx).and_then(Option::as_mut) else {
                return Step::Closed;
            };
            match &mut conn.phase {
                Phase::Ready => return Step::Ready,
                Phase::Body { need } => {
                    if conn.buf.len() - conn.start >= *need {
                        conn.phase = Phase::Ready;
                        continue;
                    }
                }
                Phase::Head { started } => {
                    if conn.start < conn.buf.len() {
                        if !*started {
                            *started = true;
                            conn.deadline = Instant::now() + self.config.header_timeout;
                        }
                        match parse_head(
                            &conn.buf[conn.start..],
                            &self.config.limits,
                            &mut conn.head,
                        ) {
                            Ok(Status::Complete(n)) => {
                                conn.head_len = n;
                                conn.phase = match conn.head.framing {
                                    Framing::Length(len)
                                        if !conn.head.expect_continue
                                            && n as u64 + len <= PREBUFFER_BODY_BYTES as u64 =>
                                    {
                                        conn.deadline = Instant::now() + self.config.io_timeout;
                                        Phase::Body {
                                            need: n + len as usize,
                                        }
                                    }
                                    _ => Phase::Ready,
                                };
                                continue;
                            }
                            Ok(Status::Partial) => {}
                            Err(e) => {
                                self.refuse(idx, e);
                                continue;
                            }
                        }
                    }
                }
                Phase::Drain { decoder, budget } => {
                    let mut done = false;
                    while conn.start < conn.buf.len() {
                        match decoder.decode(&conn.buf[conn.start..]) {
                            Ok((n, Decoded::End)) => {
                                conn.start += n;
                                done = true;
                                break;
                            }
                            Ok((n, _)) if (n as u64) <= *budget => {
                                *budget -= n as u64;
                                conn.start += n;
                            }
                            _ => {
                                self.close(idx);
                                return Step::Closed;
                            }
                        }
                    }
                    let done = done || decoder.is_done();
                    conn.consume(0);
                    if done {
                        conn.phase = Phase::Head { started: false };
                        continue;
                    }
                }
                Phase::Linger => conn.consume(conn.buf.len()),
            }
            match self.fill(idx) {
                Ok(0) => {
                    if matches!(
                        self.conns[idx].as_ref().map(|c| &c.phase),
                        Some(Phase::Body { .. })
                    ) {
                        // Half-closed before the announced body was complete:
                        // say so (the client may still read) rather than vanish.
                        self.respond_and_close(idx, 400, "incomplete request body");
                    }
                    self.close(idx);
                    return Step::Closed;
                }
                Ok(_) => {
                    let io_timeout = self.config.io_timeout;
                    if let Some(conn) = self.conns[idx].as_mut() {
                        if matches!(conn.phase, Phase::Body { .. } | Phase::Drain { .. }) {
                            // The I/O timeout bounds a stall, not the transfer.
                            conn.deadline = Instant::now() + io_timeout;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.park(idx);
                    return Step::Wait;
                }
                Err(_) => {
                    self.close(idx);
                    return Step::Closed;
                }
            }
        }
    }

    /// One non-blocking read into the connection's buffer (taking a pooled
    /// buffer if it has none). `Ok(0)`: the client closed.
    fn fill(&mut self, idx: usize) -> io::Result<usize> {
        let conn = self.conns[idx].as_mut().expect("live connection");
        if conn.buf.capacity() == 0 {
            if let Some(buf) = self.pool.pop() {
                conn.buf = buf;
            }
        }
        conn.compact();
        sock::read_some(conn.fd, &mut conn.buf, READ_CHUNK)
    }

    /// Serves every ready request of a connection, pipelined ones in turn,
    /// inside the caller's session.
    fn serve_conn(&mut self, idx: usize, serve: &mut dyn Serve) {
        loop {
            let mut date = [0u8; DATE_LEN];
            date.copy_from_slice(self.dates.get());
            let io_timeout = self.config.io_timeout;
            let max_body = self.config.limits.max_body;
            let Some(conn) = self.conns.get_mut(idx).and_then(Option::as_mut) else {
                return;
            };
            if !matches!(conn.phase, Phase::Ready) {
                return;
            }
            let base = conn.start;
            // Counted before serving, so the request that reaches
            // `--max-requests` is itself answered with `Connection: close`.
            self.shared.count_request();
            if self.shared.draining() {
                // The response says `Connection: close`: the client will
                // not send another request here.
                conn.head.keep_alive = false;
            }
            if let Some(hb) = &self.heartbeat {
                let h = &conn.head;
                hb.begin(
                    &conn.buf[base + h.method.start..base + h.method.end],
                    &conn.buf[base + h.target.start..base + h.target.end],
                );
            }
            let decoder = BodyDecoder::new(conn.head.framing, max_body);
            let buf = mem::take(&mut conn.buf);
            let mut body = BodyReader::new(
                conn.fd,
                buf,
                base + conn.head_len,
                decoder,
                conn.head.expect_continue,
                io_timeout,
            );
            let mut out = Output::new(conn.fd, mem::take(&mut self.wbuf), io_timeout);
            let mut ex = Exchange {
                head: &conn.head,
                base,
                body: &mut body,
                out: &mut out,
                peer: &conn.peer,
                listener: &self.infos[conn.listener],
                date: &date,
            };
            // A bug must cost one connection, never the whole worker.
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| serve.serve(&mut ex)))
                    .unwrap_or_else(|_| {
                        eprintln!(
                            "qiao: internal error while serving a request; connection closed"
                        );
                        Outcome::Close
                    });
            if let Some(hb) = &self.heartbeat {
                hb.end();
            }
            let keep = outcome == Outcome::KeepAlive && !out.failed() && !body.continue_pending();
            self.wbuf = out.into_buffer();
            let (buf, pos, decoder, body_error) = body.into_parts();
            conn.buf = buf;
            conn.start = 0;
            conn.consume(pos);
            conn.served += 1;
            if !keep || body_error.is_some() || self.shared.stopping() {
                self.close_after_response(idx);
                return;
            }
            conn.phase = match decoder.remaining_hint() {
                Some(0) => Phase::Head { started: false },
                Some(n) if n > MAX_DRAIN_BYTES => {
                    self.close_after_response(idx);
                    return;
                }
                _ => Phase::Drain {
                    decoder,
                    budget: MAX_DRAIN_BYTES,
                },
            };
            conn.deadline = Instant::now() + self.config.keepalive;
            match self.progress(idx) {
                Step::Ready => continue,
                Step::Wait | Step::Closed => return,
            }
        }
    }
}
