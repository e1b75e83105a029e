//! `--proxy PREFIX=URL[,URL...]`: a reverse proxy and load balancer in
//! Rust, answering as the portable `qiao.middleware.Proxy` does (its
//! module doc states the rules): the path below the prefix, raw as the
//! client sent it, after the upstream URL's path; end-to-end headers only,
//! plus `X-Forwarded-For/-Proto/-Host`; both bodies streamed as they come;
//! retries on another upstream (a connection that cannot be opened:
//! always; a failure after sending: only idempotent methods without a
//! body; a timeout: never, 504); `502` naming every upstream tried.
//!
//! HTTP to the upstreams is hyper's (`client::conn::http1`); the serving
//! thread drives each exchange itself on its own runtime, with the
//! connection kept between requests (`conns.rs` says why). It reads the
//! client's body (blocking, off the GIL) only when hyper asks for the next
//! piece ([`ProxyBody`]): nothing is read before a connection is open, so
//! a request whose upstream cannot be reached goes to the next one with
//! its body untouched. As in the portable proxy, pooled connections carry
//! only requests without a body, and one that turns out closed by the
//! upstream before any answer is retried once on a new connection.

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use tokio::sync::{mpsc, Notify};

use conns::Conn;

use super::upstream::{Balance, Server, Upstreams};
use super::{method, plain};
use crate::http::Framing;
use crate::io::service::{Exchange, NativeService, Outcome};
use crate::io::sock;

mod body;
mod conns;
mod relay;
mod request;
mod spawned;

pub use body::{Piece, ProxyBody};
pub use request::connection_tokens;

mod status;

pub use status::ProxyStatus;

/// Bytes read per step from the client's body.
pub const CHUNK_SIZE: usize = 64 * 1024;
/// Longest an upstream may stay silent by default: waiting for the
/// response head (then 504) and between two pieces of its body (then the
/// response is cut).
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// Times a request without a body is sent again, on a new connection to
/// the same upstream, when the pooled one turns out closed by it.
pub const STALE_RETRIES: usize = 1;
/// Methods that may be sent twice (RFC 9110 §9.2.2).
const IDEMPOTENT: [&[u8]; 6] = [b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"];
/// Fields that concern one connection, never forwarded (RFC 9110 §7.6.1),
/// plus those `Connection` names; `Expect` is answered by this server.
pub const HOP_BY_HOP: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
];
/// How one proxy route behaves (the portable class's keyword arguments).
#[derive(Clone, Debug)]
pub struct ProxyOptions {
    pub balance: Balance,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub max_fails: u32,
    pub probe_interval: Duration,
    /// Send the client's `Host` rather than the upstream's.
    pub preserve_host: bool,
    /// `X-Forwarded-Proto` (the server's `wsgi.url_scheme`).
    pub url_scheme: String,
    /// Probe a down upstream with a `GET` of this path (`--proxy-health-path`).
    pub health_path: Option<String>,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions {
            balance: Balance::RoundRobin,
            timeout: TIMEOUT,
            connect_timeout: super::upstream::CONNECT_TIMEOUT,
            max_fails: super::upstream::MAX_FAILS,
            probe_interval: super::upstream::PROBE_INTERVAL,
            preserve_host: false,
            url_scheme: "http".into(),
            health_path: None,
        }
    }
}

/// Why one upstream did not answer.
enum Failure {
    /// Nothing was sent (no connection): any request may go elsewhere.
    Connect(String),
    /// Sent, then failed.
    Lost(String),
    /// Sent; no answer within the timeout.
    Timeout,
    /// Reading the client's body failed: the client's fault.
    Client(String),
}

/// One `--proxy` route.
pub struct NativeProxy {
    /// Tells this route's pooled connections from other routes'.
    id: usize,
    prefix: Vec<u8>,
    upstreams: Arc<Upstreams>,
    /// `host:port` of each upstream, to connect to.
    addrs: Vec<String>,
    opts: ProxyOptions,
    /// Pooled connections of the native runtime (`spawned.rs`), per upstream.
    idle: spawned::IdlePool,
    /// Where each request's end is recorded (metrics, access log).
    recorder: crate::io::record::Recorder,
    /// Where requests without a body are served (`spawned.rs`).
    runtime: Arc<crate::native::runtime::NativeRuntime>,
}

/// What to do after an upstream failed.
enum Next {
    /// Try another upstream.
    Retry,
    /// Answer 502 with the failures so far.
    Stop,
    /// Answer this instead (504).
    Answer(u16, &'static str, String),
}

/// The 502 body naming every upstream tried.
fn bad_gateway(failures: &str) -> String {
    format!("Bad Gateway: no upstream answered\n{failures}")
}

/// Numbers the routes ([`NativeProxy::id`]).
static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

impl NativeProxy {
    pub fn new(
        prefix: &str,
        urls: &[String],
        opts: ProxyOptions,
        recorder: crate::io::record::Recorder,
        runtime: Arc<crate::native::runtime::NativeRuntime>,
    ) -> Result<Self, String> {
        if urls.is_empty() {
            return Err("a proxy needs at least one upstream".into());
        }
        let servers = urls
            .iter()
            .map(|u| Server::parse(u))
            .collect::<Result<Vec<_>, _>>()?;
        let addrs = servers.iter().map(Server::address).collect();
        Ok(NativeProxy {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            prefix: prefix.trim_end_matches('/').as_bytes().to_vec(),
            upstreams: Arc::new(Upstreams::new(
                servers,
                opts.balance,
                opts.max_fails,
                opts.probe_interval,
                opts.connect_timeout,
                opts.health_path.clone(),
            )),
            idle: Mutex::new(urls.iter().map(|_| Vec::new()).collect()),
            addrs,
            opts,
            recorder,
            runtime,
        })
    }

    /// The upstream states, for `--proxy-status`.
    pub fn upstreams(&self) -> &Upstreams {
        &self.upstreams
    }

    /// Sends the request to server `index`; returns the response once its
    /// head has arrived, with the connection that carries its body.
    fn exchange(
        &self,
        ex: &mut Exchange<'_>,
        index: usize,
    ) -> Result<(hyper::Response<Incoming>, Conn), Failure> {
        let has_body = ex.head.framing != Framing::Empty;
        for attempt in 0..=STALE_RETRIES {
            let pooled = if has_body || attempt > 0 {
                None
            } else {
                conns::take((self.id, index))
            };
            let mut conn = match pooled {
                Some(conn) => conn,
                None => conns::block_on(Conn::open(&self.addrs[index], self.opts.connect_timeout))
                    .map_err(|e| Failure::Connect(format!("cannot connect: {e}")))?,
            };
            match self.send(ex, index, &mut conn, has_body) {
                Ok(resp) => return Ok((resp, conn)),
                // Closed by the upstream while idle: once more, on a new one.
                Err(Failure::Lost(_)) if conn.reused && attempt < STALE_RETRIES => continue,
                Err(e) => return Err(e),
            }
        }
        unreachable!("the last attempt returns")
    }

    /// One attempt of [`exchange`](Self::exchange) on `conn`.
    fn send(
        &self,
        ex: &mut Exchange<'_>,
        index: usize,
        conn: &mut Conn,
        has_body: bool,
    ) -> Result<hyper::Response<Incoming>, Failure> {
        let server = &self.upstreams.servers[index];
        let (tx, rx) = mpsc::channel::<Piece>(1);
        let asked = Arc::new(Notify::new());
        let body = if has_body {
            ProxyBody::Pipe {
                rx,
                asked: asked.clone(),
                polled: false,
                ended: false,
            }
        } else {
            ProxyBody::Empty
        };
        let req = self.request(ex, server, body).map_err(Failure::Lost)?;
        let timeout = self.opts.timeout;
        let input = &mut *ex.body;
        conns::block_on(async move {
            poll_fn(|cx| conn.poll_with(cx, |s, cx| s.poll_ready(cx)))
                .await
                .map_err(|e| Failure::Lost(format!("connection lost: {e}")))?;
            let mut response = pin!(conn.sender.send_request(req));
            let mut pumping = false;
            let mut done = !has_body;
            let mut deadline = pin!(tokio::time::sleep(timeout));
            loop {
                tokio::select! {
                    biased;
                    res = poll_fn(|cx| conn.poll_with(cx, |_, cx| response.as_mut().poll(cx))) => {
                        return res.map_err(|e| classify(&e));
                    }
                    _ = asked.notified(), if !pumping && !done => pumping = true,
                    permit = tx.reserve(), if pumping && !done => {
                        let Ok(permit) = permit else {
                            done = true;
                            continue;
                        };
                        let mut piece = Vec::with_capacity(CHUNK_SIZE);
                        let mut wait = sock::wait;
                        match input.read(&mut piece, CHUNK_SIZE, &mut wait) {
                            Ok(0) => {
                                permit.send(Piece::End);
                                done = true;
                            }
                            Ok(_) => permit.send(Piece::Data(Bytes::from(piece))),
                            Err(e) => {
                                permit.send(Piece::Failed(e.to_string()));
                                return Err(Failure::Client(e.to_string()));
                            }
                        }
                        deadline.as_mut().reset(tokio::time::Instant::now() + timeout);
                    }
                    _ = &mut deadline => return Err(Failure::Timeout),
                }
            }
        })
    }
}

/// How an error after connecting reads in the 502.
fn classify(e: &hyper::Error) -> Failure {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    Failure::Lost(format!("connection lost: {text}"))
}

/// Polls `fut` once without waiting: `Some` if it is ready now.
fn ready_now<F: Future + Unpin>(fut: &mut F) -> Option<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    match Pin::new(fut).poll(&mut cx) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

impl NativeProxy {
    /// Records that upstream `index` failed; says what to do next.
    fn failed(
        &self,
        index: usize,
        failure: &Failure,
        failures: &mut String,
        retry_sent: bool,
    ) -> Next {
        self.upstreams.release(index, Some(false));
        let url = &self.upstreams.servers[index].url;
        let (reason, sent) = match failure {
            Failure::Connect(r) => (r.as_str(), false),
            Failure::Lost(r) | Failure::Client(r) => (r.as_str(), true),
            Failure::Timeout => ("timed out", true),
        };
        eprintln!("qiao: proxy: upstream {url} failed: {reason}");
        failures.push_str(&format!("  {url}: {reason}\n"));
        if matches!(failure, Failure::Timeout) {
            let text = format!(
                "Gateway Timeout: {url} did not answer within {:?}s\n",
                self.opts.timeout.as_secs_f64()
            );
            return Next::Answer(504, "Gateway Timeout", text);
        }
        if sent && !retry_sent {
            Next::Stop
        } else {
            Next::Retry
        }
    }
}

impl NativeService for NativeProxy {
    fn spawn(
        self: Arc<Self>,
        job: crate::io::event_loop::OpenJob,
        sink: crate::io::event_loop::DoneSink,
    ) -> Option<crate::io::event_loop::OpenJob> {
        self.spawn_job(job, sink)
    }

    fn serve(&self, ex: &mut Exchange<'_>) -> (Outcome, u16) {
        let m = method(ex);
        if m == b"CONNECT" {
            return plain(
                ex,
                501,
                "Not Implemented",
                "CONNECT is not supported\n",
                &[],
            );
        }
        let retry_sent = IDEMPOTENT.contains(&m) && ex.head.framing == Framing::Empty;
        let mut tried = Vec::new();
        let mut failures = String::new();
        while let Some(index) = self.upstreams.acquire(&tried) {
            tried.push(index);
            let failure = match self.exchange(ex, index) {
                Ok((resp, conn)) => return self.relay(ex, index, resp, conn),
                Err(Failure::Client(e)) => {
                    self.upstreams.release(index, None);
                    eprintln!("qiao: proxy: reading the request body failed: {e}");
                    return (Outcome::Close, 400);
                }
                Err(f) => f,
            };
            match self.failed(index, &failure, &mut failures, retry_sent) {
                Next::Retry => {}
                Next::Stop => break,
                Next::Answer(status, reason, text) => return plain(ex, status, reason, &text, &[]),
            }
        }
        plain(ex, 502, "Bad Gateway", &bad_gateway(&failures), &[])
    }
}
