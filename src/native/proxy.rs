//! `--proxy PREFIX=URL[,URL...]`: a reverse proxy and load balancer in
//! Rust, answering as the portable `qiao.middleware.Proxy` does (its
//! module doc states the rules): the path below the prefix, raw as the
//! client sent it, after the upstream URL's path; end-to-end headers only,
//! plus `X-Forwarded-For/-Proto/-Host`; both bodies streamed as they come;
//! retries on another upstream (a connection that cannot be opened:
//! always; a failure after sending: only idempotent methods without a
//! body; a timeout: never, 504); `502` naming every upstream tried.
//!
//! HTTP to the upstreams is hyper's (the `hyper-util` pooled client, on a
//! small runtime of [`PROXY_RUNTIME_THREADS`] threads started by the first
//! proxy route of the process); the serving thread drives each exchange
//! with `Handle::block_on`, reading the client's body (blocking, off the
//! GIL) only when hyper asks for the next piece ([`ProxyBody`]): nothing is
//! read before a connection is open, so a request whose upstream cannot be
//! reached goes to the next one with its body untouched.

use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{HeaderName, HeaderValue};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::runtime::{Handle, Runtime};
use tokio::sync::{mpsc, Notify};

use super::upstream::{Balance, Server, Upstreams};
use super::{method, plain};
use crate::http::request::percent_decode;
use crate::http::Framing;
use crate::io::service::{Exchange, NativeService, Outcome};
use crate::io::sock;

mod relay;
mod status;

pub use status::ProxyStatus;

/// Threads of the runtime that runs the upstream connections (per worker
/// process): the serving threads do the rest, so two are plenty.
pub const PROXY_RUNTIME_THREADS: usize = 2;
/// Bytes read per step from the client's body.
pub const CHUNK_SIZE: usize = 64 * 1024;
/// Longest an upstream may stay silent by default: waiting for the
/// response head (then 504) and between two pieces of its body (then the
/// response is cut).
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// An idle pooled connection older than this is closed rather than
/// reused: below the upstream's own keep-alive timeout (Qiao's is 5 s).
pub const POOL_IDLE: Duration = Duration::from_secs(2);
/// Idle keep-alive connections kept per upstream.
pub const POOL_MAX_IDLE: usize = 256;
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
/// Bytes kept as they are when a path must be quoted again.
const PATH_SAFE: &[u8] = b"/:@!$&'()*+,;=-._~%";

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
        }
    }
}

/// The process's proxy runtime, started on first use (after the fork).
fn runtime() -> io::Result<&'static Runtime> {
    static RT: OnceLock<Runtime> = OnceLock::new();
    if let Some(rt) = RT.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(PROXY_RUNTIME_THREADS)
        .thread_name("qiao-proxy")
        .enable_all()
        .build()?;
    Ok(RT.get_or_init(|| rt))
}

/// A piece of the client's body on its way to hyper.
pub enum Piece {
    Data(Bytes),
    End,
    Failed(String),
}

/// The request body hyper sends: none, or the client's, handed over piece
/// by piece by the serving thread once hyper first asks (`asked`).
pub enum ProxyBody {
    Empty,
    Pipe {
        rx: mpsc::Receiver<Piece>,
        asked: Arc<Notify>,
        polled: bool,
        ended: bool,
    },
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let ProxyBody::Pipe {
            rx,
            asked,
            polled,
            ended,
        } = self.get_mut()
        else {
            return Poll::Ready(None);
        };
        if *ended {
            return Poll::Ready(None);
        }
        if !*polled {
            *polled = true;
            asked.notify_one();
        }
        match rx.poll_recv(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Piece::Data(b))) => Poll::Ready(Some(Ok(Frame::data(b)))),
            Poll::Ready(Some(Piece::End)) => {
                *ended = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Piece::Failed(e))) => Poll::Ready(Some(Err(io::Error::other(e)))),
            Poll::Ready(None) => Poll::Ready(Some(Err(io::Error::other(
                "the client's body was not forwarded to its end",
            )))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, ProxyBody::Empty)
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Empty => SizeHint::with_exact(0),
            ProxyBody::Pipe { .. } => SizeHint::default(),
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
    prefix: Vec<u8>,
    upstreams: Arc<Upstreams>,
    client: Client<HttpConnector, ProxyBody>,
    rt: Handle,
    opts: ProxyOptions,
}

impl NativeProxy {
    pub fn new(prefix: &str, urls: &[String], opts: ProxyOptions) -> Result<Self, String> {
        if urls.is_empty() {
            return Err("a proxy needs at least one upstream".into());
        }
        let servers = urls
            .iter()
            .map(|u| Server::parse(u))
            .collect::<Result<Vec<_>, _>>()?;
        let rt = runtime().map_err(|e| format!("cannot start the proxy runtime: {e}"))?;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(opts.connect_timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_max_idle_per_host(POOL_MAX_IDLE)
            .pool_timer(TokioTimer::new())
            .set_host(false)
            .build(connector);
        Ok(NativeProxy {
            prefix: prefix.trim_end_matches('/').as_bytes().to_vec(),
            upstreams: Arc::new(Upstreams::new(
                servers,
                opts.balance,
                opts.max_fails,
                opts.probe_interval,
            )),
            client,
            rt: rt.handle().clone(),
            opts,
        })
    }

    /// The upstream states, for `--proxy-status`.
    pub fn upstreams(&self) -> &Upstreams {
        &self.upstreams
    }

    /// The upstream's request target: its base path, then the path below
    /// the prefix as the client sent it, then the query.
    fn target(&self, ex: &Exchange<'_>, server: &Server) -> Vec<u8> {
        let raw = ex.bytes(&ex.head.path);
        let rest = match raw.strip_prefix(&self.prefix[..]) {
            Some(rest) if rest.is_empty() || rest[0] == b'/' => rest.to_vec(),
            // The prefix itself was percent-encoded: decode, quote again.
            _ => {
                let mut decoded = Vec::new();
                percent_decode(raw, &mut decoded);
                let rest = decoded.get(self.prefix.len()..).unwrap_or_default();
                quote(rest)
            }
        };
        let mut target = server.base_path.as_bytes().to_vec();
        target.extend_from_slice(&rest);
        if target.is_empty() {
            target.push(b'/');
        }
        let query = ex.bytes(&ex.head.query);
        if !query.is_empty() {
            target.push(b'?');
            target.extend_from_slice(query);
        }
        target
    }

    /// The upstream request, without its body.
    fn request(
        &self,
        ex: &Exchange<'_>,
        server: &Server,
        body: ProxyBody,
    ) -> Result<hyper::Request<ProxyBody>, String> {
        let mut uri = format!("http://{}", server.netloc).into_bytes();
        uri.extend_from_slice(&quote_invalid(&self.target(ex, server)));
        let uri = hyper::Uri::try_from(uri).map_err(|e| format!("bad target: {e}"))?;
        let method =
            hyper::Method::from_bytes(method(ex)).map_err(|e| format!("bad method: {e}"))?;
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(uri)
            .body(body)
            .map_err(|e| e.to_string())?;
        let headers = req.headers_mut();
        let tokens = connection_tokens(
            ex.head
                .headers
                .iter()
                .map(|(n, v)| (ex.bytes(n), ex.bytes(v))),
        );
        let mut chain: Option<Vec<u8>> = None;
        let mut client_host: Vec<u8> = Vec::new();
        for (n, v) in &ex.head.headers {
            let (name, value) = (ex.bytes(n), ex.bytes(v));
            let lower = name.to_ascii_lowercase();
            let lower_str = String::from_utf8_lossy(&lower);
            match &lower[..] {
                b"host" => client_host = value.to_vec(),
                b"x-forwarded-for" => {
                    let c = chain.get_or_insert_with(Vec::new);
                    if !c.is_empty() {
                        c.extend_from_slice(b", ");
                    }
                    c.extend_from_slice(value);
                }
                b"x-forwarded-proto" | b"x-forwarded-host" => {}
                _ if HOP_BY_HOP.contains(&&*lower_str)
                    || tokens.iter().any(|t| *t == lower_str) => {}
                _ => {
                    if let (Ok(n), Ok(v)) =
                        (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
                    {
                        headers.append(n, v);
                    }
                }
            }
        }
        if client_host.is_empty() {
            client_host = ex.listener.server_name.clone().into_bytes();
        }
        let host = if self.opts.preserve_host {
            client_host.clone()
        } else {
            server.netloc.clone().into_bytes()
        };
        let peer = ex.peer.addr.as_bytes();
        let xff = match chain {
            Some(mut c) => {
                c.extend_from_slice(b", ");
                c.extend_from_slice(peer);
                c
            }
            None => peer.to_vec(),
        };
        let mut set = |name: &'static str, value: &[u8]| {
            if let Ok(v) = HeaderValue::from_bytes(value) {
                headers.insert(name, v);
            }
        };
        set("host", &host);
        set("x-forwarded-for", &xff);
        set("x-forwarded-proto", self.opts.url_scheme.as_bytes());
        set("x-forwarded-host", &client_host);
        Ok(req)
    }

    /// Sends the request to server `index`; returns the response once its
    /// head has arrived.
    fn exchange(
        &self,
        ex: &mut Exchange<'_>,
        index: usize,
    ) -> Result<hyper::Response<Incoming>, Failure> {
        let server = &self.upstreams.servers[index];
        let has_body = ex.head.framing != Framing::Empty;
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
        let client = &self.client;
        let input = &mut *ex.body;
        self.rt.block_on(async move {
            let mut response = pin!(client.request(req));
            let mut pumping = false;
            let mut done = !has_body;
            let deadline = pin!(tokio::time::sleep(timeout));
            let mut deadline = deadline;
            loop {
                tokio::select! {
                    biased;
                    res = &mut response => {
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

/// How a client error reads in the 502 and whether anything was sent.
fn classify(e: &hyper_util::client::legacy::Error) -> Failure {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    if e.is_connect() {
        Failure::Connect(format!("cannot connect: {text}"))
    } else {
        Failure::Lost(format!("connection lost: {text}"))
    }
}

/// The field names listed in `Connection` (lower-cased).
pub fn connection_tokens<'a>(fields: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Vec<String> {
    let mut out = Vec::new();
    for (name, value) in fields {
        if name.eq_ignore_ascii_case(b"connection") {
            for t in String::from_utf8_lossy(value).split(',') {
                out.push(t.trim().to_ascii_lowercase());
            }
        }
    }
    out
}

/// Percent-encodes the bytes of a decoded path that are not path-safe.
fn quote(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    for &b in path {
        if b.is_ascii_alphanumeric() || (PATH_SAFE.contains(&b) && b != b'%') {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
    out
}

/// Percent-encodes the bytes of a raw target a URI cannot hold as they are.
fn quote_invalid(target: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(target.len());
    for &b in target {
        if b.is_ascii_graphic()
            && !matches!(
                b,
                b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}'
            )
        {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
    out
}

/// Polls `fut` once without waiting: `Some` if it is ready now.
fn ready_now<F: Future + Unpin>(fut: &mut F) -> Option<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    match Pin::new(fut).poll(&mut cx) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

impl NativeService for NativeProxy {
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
            let url = &self.upstreams.servers[index].url;
            let failure = match self.exchange(ex, index) {
                Ok(resp) => return self.relay(ex, index, resp),
                Err(Failure::Client(e)) => {
                    self.upstreams.release(index, None, &self.rt);
                    eprintln!("qiao: proxy: reading the request body failed: {e}");
                    return (Outcome::Close, 400);
                }
                Err(f) => f,
            };
            self.upstreams.release(index, Some(false), &self.rt);
            let (reason, sent) = match &failure {
                Failure::Connect(r) => (r.clone(), false),
                Failure::Lost(r) => (r.clone(), true),
                _ => ("timed out".to_string(), true),
            };
            eprintln!("qiao: proxy: upstream {url} failed: {reason}");
            failures.push_str(&format!("  {url}: {reason}\n"));
            if matches!(failure, Failure::Timeout) {
                let text = format!(
                    "Gateway Timeout: {url} did not answer within {:?}s\n",
                    self.opts.timeout.as_secs_f64()
                );
                return plain(ex, 504, "Gateway Timeout", &text, &[]);
            }
            if sent && !retry_sent {
                break;
            }
        }
        let text = format!("Bad Gateway: no upstream answered\n{failures}");
        plain(ex, 502, "Bad Gateway", &text, &[])
    }
}
