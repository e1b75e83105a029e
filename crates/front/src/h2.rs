//! HTTP/2 in the front (hyper's HTTP/2 server, over TLS with ALPN `h2` or
//! cleartext with prior knowledge): each stream is forwarded as one
//! HTTP/1.1 request over an internal connection to the event loop
//! (hyper's HTTP/1.1 client), request and response bodies streamed both
//! ways. Both bodies are pulled only as the other side takes them, so
//! HTTP/2 flow control reaches the application: a client that stops
//! reading stops the loop's writes (the internal connection fills), and a stalled
//! upload stalls `wsgi.input`.
//!
//! The internal connections are reused from stream to stream, up to a
//! few per client connection. A stream whose whole request can be handed
//! over at once is forwarded by hand (`fast`: no hyper client objects or
//! tasks per request): one without a body (most), and one whose declared
//! body (at most 256 KiB) came whole soon enough, taken into memory first
//! (`upload`). The others go through hyper's client (`upstream`), their
//! body streamed: what was taken of it first, then the rest.
//!
//! The heads are mapped by `heads` (sans-IO): pseudo-headers to an
//! origin-form target and `Host`, and the connection-specific fields
//! HTTP/2 forbids dropped.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::{Body as _, Incoming};
use hyper::{Method, Request, Response, StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use super::fast::{self, FastBody, IdleConns};
use super::heads::{h1_request_head, h2_response_head};
use super::pipe;
use super::upload::{self, Budget, Taken, Upload};
use super::upstream::{self, Failure, Pool, Returning};
use qiao_io::inbox::Inbox;
use qiao_io::listener::PeerInfo;

/// Streams one client connection may have open at once.
pub(crate) const H2_MAX_CONCURRENT_STREAMS: u32 = 128;
/// How much of a stream's request body a client may send ahead of what
/// the stream has taken (HTTP/2's per-stream flow-control window): a body
/// the front may take into memory (`upload::BODY_IN_MEMORY`) comes in one
/// flight.
pub(crate) const H2_STREAM_WINDOW: u32 = 256 * 1024;
/// The same for all of a connection's streams together: room for every
/// stream's window, so a stream waiting for a thread (its body unread)
/// never holds window a running one needs. Also the most of its bodies a
/// connection can make a worker hold unread.
pub(crate) const H2_CONNECTION_WINDOW: u32 = H2_STREAM_WINDOW * H2_MAX_CONCURRENT_STREAMS;
/// Largest header list accepted from a client (as `--limit-request-*`
/// bound the HTTP/1.1 head; the loop applies those too, after mapping).
pub(crate) const H2_MAX_HEADER_LIST: u32 = 64 * 1024;

/// Shortest period of the idle check (a tiny `--keepalive` would
/// otherwise spin it).
pub(crate) const H2_MIN_IDLE_CHECK: Duration = Duration::from_millis(100);
/// After an idle connection's GOAWAY, how long the client has to let it
/// close before it is dropped.
pub(crate) const H2_IDLE_CLOSE_GRACE: Duration = Duration::from_secs(5);

/// What every stream of one client connection shares.
pub struct Client {
    pub inbox: Arc<Inbox>,
    /// The client as the loop shows it (`http2` set).
    pub peer: PeerInfo,
    /// The loop's listener info index.
    pub listener: usize,
    /// Streams being served, and a count of all streams so far (the idle
    /// timer's view of activity).
    active: AtomicUsize,
    started: AtomicU64,
    /// Internal connections kept for the next streams (with a request
    /// body: hyper's client).
    pool: Arc<Pool>,
    /// Internal connections kept for the next streams without a request
    /// body (driven by hand: `fast`).
    pub(crate) idle: Arc<IdleConns>,
    /// Request bodies taken into memory, not yet handed over (`upload`).
    bodies: Budget,
}

impl Client {
    pub fn new(
        inbox: Arc<Inbox>,
        mut peer: PeerInfo,
        listener: usize,
        keepalive: Duration,
    ) -> Self {
        peer.http2 = true;
        Client {
            inbox,
            peer,
            listener,
            active: AtomicUsize::new(0),
            started: AtomicU64::new(0),
            pool: Arc::new(Pool::new(keepalive)),
            idle: Arc::new(IdleConns::new(keepalive)),
            bodies: Budget::default(),
        }
    }
}

type Body = Either<Either<Returning<Active>, Full<Bytes>>, FastBody<Active>>;

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut r = Response::new(Either::Left(Either::Right(Full::new(Bytes::from_static(
        text.as_bytes(),
    )))));
    *r.status_mut() = status;
    r
}

/// Counts a stream as active while it lives (its response body included).
pub(crate) struct Active(Arc<Client>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Forwards one stream to the loop and maps its answer back.
async fn forward(
    client: Arc<Client>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    client.active.fetch_add(1, Ordering::Relaxed);
    client.started.fetch_add(1, Ordering::Relaxed);
    let active = Active(client.clone());
    let (mut parts, mut body) = req.into_parts();
    let (target, headers) = match h1_request_head(&parts.uri, &parts.headers) {
        Ok(head) => head,
        Err(why) => return Ok(plain(StatusCode::BAD_REQUEST, why)),
    };
    let by_hand = |request: Vec<u8>, method: Method, active: Active| {
        let client = &client;
        async move {
            let connect =
                || pipe::connect_injected(&client.inbox, client.peer.clone(), client.listener);
            let (inbox, idle) = (&client.inbox, &client.idle);
            match fast::exchange(inbox, idle, connect, &method, request, active).await {
                Ok(resp) => resp.map(Either::Right),
                Err(failure) => failed(failure),
            }
        }
    };
    if body.is_end_stream() {
        let head = fast::head_bytes(&parts.method, &target, &headers);
        return Ok(by_hand(head, parts.method, active).await);
    }
    // A body that comes whole soon enough goes with its head, by hand too.
    let mut first = Bytes::new();
    let length = upload::in_memory_length(&headers);
    if let Some((length, held)) = length.and_then(|n| Some((n, client.bodies.reserve(n)?))) {
        let mut request = fast::head_bytes(&parts.method, &target, &headers);
        let head = request.len();
        match upload::take(&mut body, length, upload::BODY_WAIT, &mut request).await {
            Taken::Whole => {
                drop(held); // the loop holds it from here
                return Ok(by_hand(request, parts.method, active).await);
            }
            Taken::Partial => first = Bytes::from(request).slice(head..),
            Taken::Failed => return Ok(plain(StatusCode::BAD_REQUEST, "request body failed\n")),
        }
    }
    parts.uri = target;
    parts.headers = headers;
    parts.version = Version::HTTP_11;
    let req = Request::from_parts(parts, Upload::new(first, body));
    let sent = upstream::send(
        &client.pool,
        &client.inbox,
        &client.peer,
        client.listener,
        req,
    )
    .await;
    Ok(match sent {
        Ok((resp, sender)) => {
            let (mut parts, body) = resp.into_parts();
            h2_response_head(&mut parts.headers);
            parts.version = Version::HTTP_2;
            let body = Returning::new(body, sender, client.pool.clone(), active);
            Response::from_parts(parts, Either::Left(Either::Left(body)))
        }
        Err(failure) => failed(failure),
    })
}

/// The stream's answer when the loop gave none.
fn failed(failure: Failure) -> Response<Body> {
    match failure {
        Failure::Connect => plain(StatusCode::SERVICE_UNAVAILABLE, "cannot reach the worker\n"),
        // The loop refuses bad requests with an answer; no answer means
        // the connection failed (a reset stream, a stopping worker).
        Failure::NoAnswer => plain(StatusCode::BAD_GATEWAY, "the worker did not answer\n"),
    }
}

/// Serves HTTP/2 on `io` until the client goes, the connection has been
/// idle (no stream) for a `keepalive` period, or draining begins (then a
/// GOAWAY lets the open streams finish).
pub async fn serve<S>(io: S, client: Client, keepalive: Duration, mut drain: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let client = Arc::new(client);
    let svc_client = client.clone();
    let svc = hyper::service::service_fn(move |req| forward(svc_client.clone(), req));
    let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .max_concurrent_streams(H2_MAX_CONCURRENT_STREAMS)
        .max_header_list_size(H2_MAX_HEADER_LIST)
        .initial_stream_window_size(H2_STREAM_WINDOW)
        .initial_connection_window_size(H2_CONNECTION_WINDOW)
        .serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let mut idle = tokio::time::interval(keepalive.max(H2_MIN_IDLE_CHECK));
    idle.tick().await;
    let mut seen = 0; // streams begun as of the last tick
    let mut closing = *drain.borrow();
    if closing {
        conn.as_mut().graceful_shutdown();
    }
    // Set when closing for idleness: the client may not answer the
    // GOAWAY's ping, and no stream is left to wait for.
    let mut give_up: Option<tokio::time::Instant> = None;
    let forced = async move |at: Option<tokio::time::Instant>| match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    };
    loop {
        tokio::select! {
            _ = &mut conn => return,
            changed = drain.changed(), if !closing => {
                if changed.is_err() || *drain.borrow() {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
            _ = idle.tick(), if !closing => {
                // Idle a whole period: no stream open, none begun since.
                let started = client.started.load(Ordering::Relaxed);
                if client.active.load(Ordering::Relaxed) == 0 && started == seen {
                    closing = true;
                    give_up = Some(tokio::time::Instant::now() + H2_IDLE_CLOSE_GRACE);
                    conn.as_mut().graceful_shutdown();
                }
                seen = started;
            }
            () = forced(give_up) => return,
        }
    }
}
