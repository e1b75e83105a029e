//! Harness for the io integration tests (`crates/io/tests/io_*.rs`): a
//! real [`EventLoop`] on a loopback listener, run on its own thread with a
//! fake, Python-free application ([`Fake`]) that answers according to the
//! request path, plus a small blocking HTTP client (raw bytes in, parsed
//! responses out) with the three feeding modes the project asks for:
//! whole, byte by byte, random splits.
//!
//! The fake application and its routes are in `fake.rs`, the client in
//! `client.rs`.

// Shared by several test binaries, each using a part: `pub` here is
// the support's interface, not the crate's.
#![allow(unreachable_pub)]
#![allow(dead_code)]

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use qiao_http::Limits;
use qiao_io::inbox::Inbox;
use qiao_io::{pool, EventLoop, Listener, ListenerInfo, LoopConfig, Shared};

/// Size of the `/big` response.
pub const BIG: usize = 4 << 20;
/// Client reads give up after this: a test fails instead of hanging.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `/gather` waits for the others.
pub const GATHER_TIMEOUT: Duration = Duration::from_secs(2);
/// Serving threads a test server may grow to unless a test says otherwise.
pub const TEST_THREADS: usize = 32;

mod client;
mod fake;

pub use client::*;
pub use fake::*;

/// The short timeouts every test server uses unless it changes them.
pub fn test_config() -> LoopConfig {
    LoopConfig {
        limits: Limits::default(),
        keepalive: Duration::from_secs(1),
        header_timeout: Duration::from_secs(1),
        io_timeout: Duration::from_secs(2),
        max_connections: 10_000,
        graceful_timeout: Duration::from_secs(5),
        accept_batch: 64,
        health_path: Some(b"/healthz".to_vec()),
        trusted: Default::default(),
        proxy_protocol: false,
        proxy_allow: Default::default(),
        uwsgi_allow: Default::default(),
        notices: None,
        uwsgi_listeners: Vec::new(),
        metrics: None,
        native: None,
    }
}

/// A running event loop on 127.0.0.1; stopped and joined on drop.
pub struct Server {
    pub addr: SocketAddr,
    pub state: Arc<State>,
    shared: Arc<Shared>,
    /// The loop's result, sent when `run` returns.
    done: mpsc::Receiver<io::Result<()>>,
    /// Set once a test saw the loop return.
    finished: std::cell::Cell<bool>,
    _listener: TcpListener,
}

impl Server {
    pub fn start() -> Server {
        Server::with(|_| {})
    }

    pub fn with(tweak: impl FnOnce(&mut LoopConfig)) -> Server {
        Server::start_after(tweak, |_| ()).0
    }

    /// Binds, runs `before` (e.g. to queue connections in the backlog),
    /// then starts the loop.
    pub fn start_after<T>(
        tweak: impl FnOnce(&mut LoopConfig),
        before: impl FnOnce(SocketAddr) -> T,
    ) -> (Server, T) {
        Server::start_full(TEST_THREADS, tweak, before)
    }

    /// A server whose pool grows to `threads` at most.
    pub fn with_threads(threads: usize) -> Server {
        Server::start_full(threads, |_| {}, |_| ()).0
    }

    /// A server whose loop `attach` prepares before it runs (e.g. to
    /// attach a protocol front's inbox).
    pub fn attached(attach: impl FnOnce(&mut EventLoop)) -> Server {
        Server::start_full_with(TEST_THREADS, |_| {}, |_| (), attach).0
    }

    /// A server with a protocol front's `inbox` attached, the front's
    /// listener described by `info`; with the loop's index of that info
    /// (what an adopted connection names as its listener).
    pub fn with_inbox(inbox: &Arc<Inbox>, info: ListenerInfo) -> (Server, usize) {
        let base = Arc::new(Mutex::new(0));
        let (b, i) = (base.clone(), inbox.clone());
        let srv = Server::attached(move |lp| {
            *b.lock().unwrap() = lp.attach_inbox(i, vec![info]);
        });
        let base = *base.lock().unwrap();
        (srv, base)
    }

    /// A server whose pool grows to `threads` at most, with `tweak`.
    pub fn with_threads_and(threads: usize, tweak: impl FnOnce(&mut LoopConfig)) -> Server {
        Server::start_full(threads, tweak, |_| ()).0
    }

    fn start_full<T>(
        threads: usize,
        tweak: impl FnOnce(&mut LoopConfig),
        before: impl FnOnce(SocketAddr) -> T,
    ) -> (Server, T) {
        Server::start_full_with(threads, tweak, before, |_| {})
    }

    fn start_full_with<T>(
        threads: usize,
        tweak: impl FnOnce(&mut LoopConfig),
        before: impl FnOnce(SocketAddr) -> T,
        attach: impl FnOnce(&mut EventLoop),
    ) -> (Server, T) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().unwrap();
        let pre = before(addr);
        let mut config = test_config();
        tweak(&mut config);
        let shared = Arc::new(Shared::default());
        let l = Listener::from_shared_fd(listener.as_raw_fd(), false).expect("listener");
        let mut lp = EventLoop::new(vec![l], config, shared.clone()).expect("event loop");
        attach(&mut lp);
        let state = Arc::new(State::default());
        let factory = FakeThreads {
            state: state.clone(),
        };
        let (tx, done) = mpsc::channel();
        thread::spawn(move || tx.send(pool::run(lp, &factory, threads, Vec::new(), &mut || true)));
        let server = Server {
            addr,
            state,
            shared,
            done,
            finished: std::cell::Cell::new(false),
            _listener: listener,
        };
        (server, pre)
    }

    /// The loop's shared flags and counters.
    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Asks the loop to drain (graceful stop).
    pub fn drain(&self) {
        self.shared.drain();
    }

    /// Whether the loop returned (successfully) within `timeout`.
    pub fn finished_within(&self, timeout: Duration) -> bool {
        match self.done.recv_timeout(timeout) {
            Ok(result) => {
                result.expect("event loop returned an error");
                self.finished.set(true);
                true
            }
            Err(_) => false,
        }
    }

    /// A client connection with a read timeout.
    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.finished.get() {
            return;
        }
        self.shared.stop();
        let result = self.done.recv_timeout(Duration::from_secs(5));
        if !thread::panicking() {
            let result = result.expect("event loop did not stop within 5 s");
            result.expect("event loop returned an error");
        }
    }
}
