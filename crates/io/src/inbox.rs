//! The event loop's door to the protocol front (`qiao_front`): how
//! connections that did not come from one of the loop's own listeners get
//! into it, and how a plaintext connection that turns out to speak HTTP/2
//! gets out of it.
//!
//! - In ([`Adopted`]): the loop end of a `socketpair(2)` whose other end
//!   the front holds, with the facts the loop cannot learn from that
//!   socket (the real client address, TLS, HTTP/2). Queued here and
//!   announced through the loop's mio `Waker`. A socket pair is reachable
//!   by no other process (unlike a listening socket, even an abstract
//!   Unix one), so nothing needs authenticating, and the facts travel as
//!   a struct rather than a PROXY header the loop would parse back.
//! - Out ([`Handoff`]): a plaintext connection whose first bytes are the
//!   HTTP/2 preface (h2c with prior knowledge) goes to the front with the
//!   bytes already read.
//! - Requests ([`Inbox::inject`]): a whole request (its head, and its
//!   body when the front took that in first), for an internal connection
//!   the loop already holds, handed over in memory instead of written to
//!   the socket pair. The loop takes it as
//!   if it had read it from that connection; the answer comes back in
//!   memory too ([`crate::answer`]). Why: per HTTP/2 stream, the front's
//!   send and the loop's read of the pair were two of its four system
//!   calls, and the kernel's wake-ups behind them. Several streams handed
//!   over before the loop next looks cost one wake-up between them.
//! - [`Inbox::enter`]/[`Inbox::leave`] count the front's client
//!   connections, so a draining loop waits for the front's in-flight
//!   requests (which may not have reached the loop yet) before it ends;
//!   they are also what the metrics count as open connections.

use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use mio::Waker;
use rustls::ServerConnection;

use super::answer::{Answer, Wakes};
use super::listener::PeerInfo;
use super::metrics::Metrics;

/// What an adopted connection's bytes come over.
pub enum Carrier {
    /// The loop's end of a socket pair whose other end the front serves
    /// (an HTTP/2 stream's requests).
    Pair(UnixStream),
    /// The client's own socket with its TLS session, the handshake done
    /// (HTTP/1.1 over TLS): the loop reads and writes through the session
    /// (`io::wire`).
    Tls(TcpStream, Box<ServerConnection>),
}

/// A front connection entering the loop.
pub struct Adopted {
    /// Its socket (blocking mode is fixed by the loop).
    pub stream: Carrier,
    /// The client as the environ shows it (address, TLS, HTTP/2).
    pub peer: PeerInfo,
    /// Which listener it came in on: the loop's index of its info (see
    /// `EventLoop::attach_inbox`).
    pub listener: usize,
    /// Dropped when the loop closes the connection (what the front counts
    /// it by: its `--max-connections` permit, its open count).
    pub held: Option<Box<dyn Send>>,
    /// The name requests for this (socket pair) connection are injected
    /// under ([`Inbox::inject`]); `None`: they come over the socket.
    pub pair_id: Option<u64>,
    /// Where the loop writes its answers on this (socket pair) connection
    /// instead of the socket ([`crate::answer`]); `None`: to the socket.
    pub answer: Option<Arc<Answer>>,
}

impl Adopted {
    /// The loop's end of a socket pair, nothing held.
    pub fn pair(stream: UnixStream, peer: PeerInfo, listener: usize) -> Adopted {
        Adopted {
            stream: Carrier::Pair(stream),
            peer,
            listener,
            held: None,
            pair_id: None,
            answer: None,
        }
    }
}

/// What the loop takes from the inbox at once: connections to adopt, then
/// requests for connections it holds (a request may be for a connection
/// adopted in the same take, so adoption comes first).
#[derive(Default)]
pub struct Taken {
    pub adopted: Vec<Adopted>,
    pub injected: Vec<(u64, Vec<u8>)>,
}

/// A plaintext connection leaving the loop for the front (h2c).
pub struct Handoff {
    pub stream: TcpStream,
    /// What the loop had already read (the preface, maybe more).
    pub read: Vec<u8>,
    pub peer: PeerInfo,
    /// The listener's info index in the loop (for `SERVER_NAME`/`PORT`).
    pub listener: usize,
}

/// Where the front sends h2c connections.
pub(crate) type HandoffSink = Box<dyn Fn(Handoff) + Send + Sync>;

/// Shared by one event loop and its front.
#[derive(Default)]
pub struct Inbox {
    queue: Mutex<Taken>,
    /// Something is queued: the loop looks at the queue only then.
    pending: AtomicBool,
    /// The last [`Adopted::pair_id`] given.
    pair_ids: AtomicU64,
    waker: OnceLock<Arc<Waker>>,
    /// Client connections the front holds open.
    open: AtomicUsize,
    h2c: OnceLock<HandoffSink>,
    /// The worker's metrics: the front's client connections are the open
    /// connections it counts (not the internal ones the loop adopts).
    metrics: Option<Arc<Metrics>>,
    /// The front's readers of answers in memory, woken by the front's
    /// runtime ([`crate::answer::Wakes`]).
    wakes: Arc<Wakes>,
}

impl Inbox {
    /// An inbox whose front's connections count in `metrics`.
    pub fn new(metrics: Option<Arc<Metrics>>) -> Self {
        Inbox {
            metrics,
            ..Inbox::default()
        }
    }

    /// Where the wake-ups of the answers' readers wait for the front's
    /// runtime.
    pub fn wakes(&self) -> &Arc<Wakes> {
        &self.wakes
    }

    /// Called once by the loop the inbox feeds.
    pub(crate) fn set_waker(&self, waker: Arc<Waker>) {
        let _ = self.waker.set(waker);
    }

    /// Called once by the front if it serves h2c.
    pub fn set_h2c(&self, sink: HandoffSink) {
        let _ = self.h2c.set(sink);
    }

    /// Whether plaintext HTTP/2 connections have somewhere to go.
    pub(crate) fn serves_h2c(&self) -> bool {
        self.h2c.get().is_some()
    }

    /// Hands an h2c connection to the front.
    pub(crate) fn hand_off(&self, h: Handoff) {
        if let Some(sink) = self.h2c.get() {
            sink(h);
        }
    }

    /// Queues a connection for the loop and wakes it.
    pub fn push(&self, a: Adopted) {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .adopted
            .push(a);
        self.pending.store(true, Ordering::Release);
        self.wake();
    }

    /// A new [`Adopted::pair_id`]: never given before in this worker, so
    /// a request injected for a connection the loop has closed meanwhile
    /// can reach no other.
    pub fn pair_id(&self) -> u64 {
        self.pair_ids.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Hands the loop `request` (whole: a head, and the body it announces)
    /// for the adopted connection named `pair_id`, as if it had come over
    /// its socket. The loop is woken only if nothing else is pending: one
    /// wake-up for all the requests queued before it looks. A connection
    /// the loop has closed drops the request; the front sees the socket's
    /// end.
    pub fn inject(&self, pair_id: u64, request: Vec<u8>) {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .injected
            .push((pair_id, request));
        if !self.pending.swap(true, Ordering::AcqRel) {
            self.wake();
        }
    }

    /// What was queued since the last call (the loop's side).
    pub fn take(&self) -> Taken {
        if !self.pending.swap(false, Ordering::Acquire) {
            return Taken::default();
        }
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The front opened a client connection.
    pub fn enter(&self) {
        self.open.fetch_add(1, Ordering::SeqCst);
        if let Some(m) = &self.metrics {
            m.connection_opened();
        }
    }

    /// The front closed one; a draining loop may now be done.
    pub fn leave(&self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
        if let Some(m) = &self.metrics {
            m.connection_closed();
        }
        self.wake();
    }

    /// Client connections the front holds open.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    fn wake(&self) {
        if let Some(w) = self.waker.get() {
            let _ = w.wake();
        }
    }
}
