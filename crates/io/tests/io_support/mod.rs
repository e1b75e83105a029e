//! Harness for `crates/io/tests/io_loop.rs`: a real [`EventLoop`] on a loopback
//! listener, run on its own thread with a fake, Python-free application
//! ([`Fake`]) that answers according to the request path, plus a small
//! blocking HTTP client (raw bytes in, parsed responses out) with the three
//! feeding modes the project asks for: whole, byte by byte, random splits.
//!
//! Fake application routes:
//! - `/echo`: reads the whole body with `sock::wait` and sends it back;
//!   a body error is recorded in [`State::errors`] and closes the connection.
//!   `/echo-keep-continue`: the same without `cancel_continue`.
//! - `/close`: answers, then returns [`Outcome::Close`].
//! - `/big`: 4 MiB of [`big_byte`] through `Output::push`/`flush`.
//! - `/panic`: panics inside `serve`.
//! - `/count`: the number of requests served so far, as the body.
//! - `/late-return`: answers, then stays 200 ms inside `serve` (the
//!   client's next request arrives while the connection is out).
//! - `/gather?N`: blocks until N requests are inside `/gather` at once (or
//!   [`GATHER_TIMEOUT`] passes); answers `all` or `timeout`. Only a pool
//!   that serves blocked requests concurrently can answer `all`.
//! - `/hold`: blocks until the test calls [`State::release`] (or twice
//!   [`CLIENT_TIMEOUT`] passes: a client gives up first); answers `released`.
//!   `/hold?spin`: the same, waiting on the CPU (a busy loop), as a
//!   request computing something does. `/answer-then-hold`: answers
//!   first, then holds its connection out of the loop the same way.
//! - anything else (`/noread`, `/`...): the request target as the body,
//!   without reading the request body.
//!
//! Like the WSGI ring, every route honours the request's keep-alive and
//! cancels a pending `100 Continue` once its final response starts.

// Shared by several test binaries, each using a part: `pub` here is
// the support's interface, not the crate's.
#![allow(unreachable_pub)]
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use qiao_http::Limits;
use qiao_io::inbox::Inbox;
use qiao_io::{
    pool, sock, BodyError, EventLoop, Exchange, Handler, HandlerFactory, Listener, ListenerInfo,
    LoopConfig, Outcome, Serve, Shared,
};

/// Size of the `/big` response.
pub const BIG: usize = 4 << 20;
/// Client reads give up after this: a test fails instead of hanging.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `/gather` waits for the others.
pub const GATHER_TIMEOUT: Duration = Duration::from_secs(2);
/// Serving threads a test server may grow to unless a test says otherwise.
pub const TEST_THREADS: usize = 32;

/// Byte `i` of the `/big` response.
pub fn big_byte(i: usize) -> u8 {
    (i % 251) as u8
}

/// What the fake application saw, for the tests to check.
#[derive(Default)]
pub struct State {
    /// Requests the fake application was called for.
    pub served: AtomicUsize,
    pub errors: Mutex<Vec<BodyError>>,
    /// Requests inside `/gather` now, and the signal when it changes.
    gathered: Mutex<usize>,
    gather_cv: Condvar,
    /// `/hold`: (requests inside, releases not yet taken).
    holds: Mutex<(usize, usize)>,
    hold_cv: Condvar,
}

impl State {
    /// Waits (up to `within`) for a body error to be recorded; takes them all.
    pub fn wait_error(&self, within: Duration) -> Option<BodyError> {
        let end = Instant::now() + within;
        while self.errors.lock().unwrap().is_empty() && Instant::now() < end {
            thread::sleep(Duration::from_millis(10));
        }
        self.errors.lock().unwrap().drain(..).next()
    }
}

/// The fake application side.
pub struct Fake {
    pub state: Arc<State>,
}

impl Handler for Fake {
    fn session<R>(&mut self, f: impl FnOnce(&mut dyn Serve) -> R) -> R {
        f(self)
    }
}

/// Makes one [`Fake`] per serving thread.
pub struct FakeThreads {
    pub state: Arc<State>,
}

impl HandlerFactory for FakeThreads {
    type Handler = Fake;

    fn run_thread<R: Send>(&self, body: impl FnOnce(&mut Fake) -> R + Send) -> R {
        body(&mut Fake {
            state: self.state.clone(),
        })
    }
}

impl State {
    /// Lets one request blocked in `/hold` go on.
    pub fn release(&self) {
        self.holds.lock().unwrap().1 += 1;
        self.hold_cv.notify_all();
    }

    /// Requests inside `/hold` now.
    pub fn holding(&self) -> usize {
        self.holds.lock().unwrap().0
    }

    /// Waits (up to `within`) until `n` requests are inside `/hold`.
    pub fn wait_holding(&self, n: usize, within: Duration) -> bool {
        let g = self.holds.lock().unwrap();
        let (_guard, t) = self
            .hold_cv
            .wait_timeout_while(g, within, |h| h.0 < n)
            .unwrap();
        !t.timed_out()
    }

    fn hold(&self, spin: bool) {
        let mut g = self.holds.lock().unwrap();
        g.0 += 1;
        self.hold_cv.notify_all();
        if spin {
            let end = Instant::now() + CLIENT_TIMEOUT * 2;
            while g.1 == 0 && Instant::now() < end {
                drop(g);
                std::hint::spin_loop();
                g = self.holds.lock().unwrap();
            }
        }
        let (mut g, _) = self
            .hold_cv
            .wait_timeout_while(g, CLIENT_TIMEOUT * 2, |h| h.1 == 0)
            .unwrap();
        g.1 = g.1.saturating_sub(1);
        g.0 -= 1;
        self.hold_cv.notify_all();
    }

    /// `/gather`: true when `n` requests were inside at once.
    fn gather(&self, n: usize) -> bool {
        let mut inside = self.gathered.lock().unwrap();
        *inside += 1;
        self.gather_cv.notify_all();
        let (mut inside, timeout) = self
            .gather_cv
            .wait_timeout_while(inside, GATHER_TIMEOUT, |inside| *inside < n)
            .unwrap();
        // Not reset after a gathering: a test server runs one at most.
        let all = !timeout.timed_out();
        if !all {
            *inside -= 1;
        }
        all
    }
}

/// Sends a 200 with `body`, pushed in 10 000-byte pieces. `cancel`: drop a
/// pending `100 Continue` first, as the WSGI ring does when its head starts.
fn respond(ex: &mut Exchange<'_>, body: &[u8], close: bool, cancel: bool) -> Outcome {
    respond_in(ex, body, close, cancel, 10_000)
}

/// [`respond`] with pieces of `piece` bytes (`usize::MAX`: all in one, as
/// a WSGI app returning a one-item list; the serving thread then never
/// waits for the client).
fn respond_in(
    ex: &mut Exchange<'_>,
    body: &[u8],
    close: bool,
    cancel: bool,
    piece: usize,
) -> Outcome {
    if cancel {
        ex.body.cancel_continue();
    }
    let mut wait = sock::wait;
    let conn = if close { "Connection: close\r\n" } else { "" };
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n{conn}\r\n",
        body.len()
    );
    let mut ok = ex.out.push(head.as_bytes(), &mut wait).is_ok();
    for piece in body.chunks(piece) {
        ok = ok && ex.out.push(piece, &mut wait).is_ok();
    }
    // `end`, as the WSGI ring does: the pool may write it with a batch.
    if ok && ex.out.end().is_ok() && !close {
        Outcome::KeepAlive
    } else {
        Outcome::Close
    }
}

impl Serve for Fake {
    fn serve(&mut self, ex: &mut Exchange<'_>) -> Outcome {
        let n = self.state.served.fetch_add(1, Ordering::SeqCst) + 1;
        // The head's ranges index the connection buffer, which reading the
        // body may reuse: take what we need from the head first.
        let path = ex.bytes(&ex.head.path).to_vec();
        let target = ex.bytes(&ex.head.target).to_vec();
        let close = !ex.head.keep_alive;
        match &path[..] {
            b"/echo" | b"/echo-keep-continue" => {
                let mut body = Vec::new();
                match ex.body.read(&mut body, usize::MAX, &mut sock::wait) {
                    Ok(_) => respond(ex, &body, close, path == b"/echo"),
                    Err(e) => {
                        self.state.errors.lock().unwrap().push(e);
                        Outcome::Close
                    }
                }
            }
            b"/close" => respond(ex, b"bye", true, true),
            b"/count" => respond(ex, n.to_string().as_bytes(), close, true),
            b"/late-return" => {
                let outcome = respond(ex, b"answered", close, true);
                thread::sleep(Duration::from_millis(200));
                outcome
            }
            b"/gather" => {
                let n = std::str::from_utf8(ex.bytes(&ex.head.query))
                    .ok()
                    .and_then(|q| q.parse().ok())
                    .unwrap_or(1);
                let answer: &[u8] = if self.state.gather(n) {
                    b"all"
                } else {
                    b"timeout"
                };
                respond(ex, answer, close, true)
            }
            b"/hold" => {
                self.state.hold(ex.bytes(&ex.head.query) == b"spin");
                respond(ex, b"released", close, true)
            }
            b"/answer-then-hold" => {
                let outcome = respond(ex, b"answered", close, true);
                // Written now, not held back for a batch.
                let mut wait = sock::wait;
                let _ = ex.out.flush(&mut wait);
                self.state.hold(false);
                outcome
            }
            b"/panic" => panic!("fake application panics on purpose"),
            b"/big" => respond(ex, &(0..BIG).map(big_byte).collect::<Vec<_>>(), close, true),
            b"/big-whole" => {
                let body: Vec<u8> = (0..BIG).map(big_byte).collect();
                respond_in(ex, &body, close, true, usize::MAX)
            }
            _ => respond(ex, &target, close, true),
        }
    }
}

/// Reads one Content-Length-framed response: (status line, body).
pub fn read_response(r: &mut impl BufRead) -> (String, Vec<u8>) {
    let mut status = String::new();
    r.read_line(&mut status).unwrap();
    let mut len = 0;
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    (status.trim_end().to_string(), body)
}

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

/// How a request's bytes are written.
#[derive(Clone, Copy, Debug)]
pub enum Feed {
    Whole,
    /// One byte per write, with a short sleep between writes.
    ByteByByte,
    /// Pieces cut at random points drawn from this seed.
    Split(u64),
}

/// The feeding modes most tests run through.
pub const FEEDS: [Feed; 5] = [
    Feed::Whole,
    Feed::ByteByByte,
    Feed::Split(1),
    Feed::Split(42),
    Feed::Split(0xDEAD_BEEF),
];

#[path = "../../../http/tests/common/cuts.rs"]
mod cuts;
pub use cuts::random_cuts;

/// A parsed response.
#[derive(Debug)]
pub struct Response {
    pub status_line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One client connection.
pub struct Client {
    pub stream: TcpStream,
    pub reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(CLIENT_TIMEOUT)).unwrap();
        s.set_nodelay(true).unwrap();
        Client {
            reader: BufReader::new(s.try_clone().unwrap()),
            stream: s,
        }
    }

    pub fn send(&mut self, bytes: &[u8], feed: Feed) {
        match feed {
            Feed::Whole => self.stream.write_all(bytes).unwrap(),
            Feed::ByteByByte => {
                for b in bytes {
                    self.stream.write_all(std::slice::from_ref(b)).unwrap();
                    self.stream.flush().unwrap();
                    thread::sleep(Duration::from_micros(300));
                }
            }
            Feed::Split(seed) => {
                let mut at = 0;
                for cut in random_cuts(bytes.len(), seed)
                    .into_iter()
                    .chain([bytes.len()])
                {
                    self.stream.write_all(&bytes[at..cut]).unwrap();
                    self.stream.flush().unwrap();
                    thread::sleep(Duration::from_millis(2));
                    at = cut;
                }
            }
        }
    }

    fn line(&mut self) -> String {
        let mut line = Vec::new();
        self.reader.read_until(b'\n', &mut line).expect("read line");
        assert!(line.ends_with(b"\r\n"), "truncated line {line:?}");
        line.truncate(line.len() - 2);
        String::from_utf8(line).expect("utf-8 head")
    }

    /// Reads one response (Content-Length framed or none at all).
    pub fn response(&mut self) -> Response {
        let status_line = self.line();
        let mut headers = Vec::new();
        loop {
            let line = self.line();
            if line.is_empty() {
                break;
            }
            let (n, v) = line.split_once(':').expect("header colon");
            headers.push((n.to_string(), v.trim().to_string()));
        }
        let mut r = Response {
            status_line,
            headers,
            body: Vec::new(),
        };
        let len = r.header("content-length").map_or(0, |n| n.parse().unwrap());
        r.body.resize(len, 0);
        self.reader.read_exact(&mut r.body).expect("response body");
        r
    }

    /// Reads the head of a response to HEAD (no body follows), as text.
    pub fn head_only(&mut self) -> String {
        let mut head = String::new();
        loop {
            let line = self.line();
            head.push_str(&line);
            head.push_str("\r\n");
            if line.is_empty() {
                return head;
            }
        }
    }

    /// Sends a request and reads its response.
    pub fn roundtrip(&mut self, bytes: &[u8], feed: Feed) -> Response {
        self.send(bytes, feed);
        self.response()
    }

    /// True when the server closed the connection (EOF or reset) with
    /// nothing more to read; panics on extra bytes or on the timeout.
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        match self.reader.read(&mut b) {
            Ok(0) => true,
            Ok(_) => panic!("unexpected byte {:?} instead of EOF", b[0] as char),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => true,
            Err(e) => panic!("no EOF: {e}"),
        }
    }

    /// True when nothing arrives within `d` (the connection stays open).
    pub fn silent_for(&mut self, d: Duration) -> bool {
        self.stream.set_read_timeout(Some(d)).unwrap();
        let silent = matches!(self.reader.read(&mut [0u8; 1]), Err(e)
            if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut));
        self.stream.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
        silent
    }
}

/// A GET request for `target`.
pub fn get(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes()
}

/// A POST with a Content-Length body.
pub fn post(target: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST {target} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// A POST with a chunked body cut into `pieces` (extensions and a trailer
/// included, which the decoder must drop).
pub fn post_chunked(target: &str, pieces: &[&[u8]]) -> Vec<u8> {
    let mut r = format!("POST {target} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        .into_bytes();
    for (i, p) in pieces.iter().enumerate() {
        let ext = if i % 2 == 1 { ";name=value" } else { "" };
        r.extend_from_slice(format!("{:x}{ext}\r\n", p.len()).as_bytes());
        r.extend_from_slice(p);
        r.extend_from_slice(b"\r\n");
    }
    r.extend_from_slice(b"0\r\nX-Trailer: t\r\n\r\n");
    r
}

/// Deterministic body bytes.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i % 26) as u8).collect()
}
