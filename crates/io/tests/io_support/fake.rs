//! The fake, Python-free application of the io test harness (`io_support`):
//! it answers according to the request path.
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

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use qiao_io::{sock, BodyError, Exchange, Handler, HandlerFactory, Outcome, Serve};

use super::{BIG, CLIENT_TIMEOUT, GATHER_TIMEOUT};

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
