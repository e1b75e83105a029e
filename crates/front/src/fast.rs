//! A stream whose whole request is in memory (one without a body: a
//! `GET`, a `HEAD`, most streams; or one whose body `upload` took in)
//! forwarded to the event loop by hand: its HTTP/1.1 head made straight
//! from the HTTP/2 request in one buffer, the body after it, handed to the loop in memory
//! for the internal connection (`Inbox::inject`: no write to the socket
//! pair, no read by the loop), the loop's answer taken in memory too
//! ([`Answered`]: the socket pair carries only its end, and what did not
//! fit) and parsed in place by [`UpConn`] (the native proxy's client
//! connection), the body handed to the stream
//! whole when it came with the head, else streamed through a small channel.
//!
//! Why not hyper's HTTP/1.1 client, which streams with a body keep
//! (`upstream`): per request it builds a request and a response object,
//! runs a connection task and a task to put the connection back; those
//! were a large share of an HTTP/2 request's CPU, beside the socket pair's
//! own system calls (perf, bench/RESULTS.md). With the whole request in
//! memory there is nothing to stream upwards while the answer comes down,
//! which is the part hyper's client does for the others.
//!
//! Reuse follows `upstream`'s guards: a connection idle for half of
//! `--keepalive` is not reused, nor one the loop has written to or closed
//! since (`UpConn::is_quiet`); a reused connection found closed before any
//! answer (the loop closed it idle meanwhile) is retried on a new one when
//! the method is idempotent.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::channel::{Channel, Sender};
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Response, StatusCode, Uri};

use super::answered::Answered;
use super::heads::h2_response_head;
use super::pipe::Idle;
use super::upstream::Failure;
use qiao_http::upstream_head::UpstreamHead;
use qiao_io::inbox::Inbox;
use qiao_native::upconn::{BodyReader, Next, ReadFailure, UpConn};
use qiao_native::upstream::policy::IDEMPOTENT;

/// An internal connection the front drives by hand: its requests go to
/// the loop by [`Inbox::inject`] under `id`, its answers in memory (or,
/// past what memory holds, over the socket pair: [`Answered`]).
pub(crate) struct Internal {
    conn: UpConn<Answered>,
    id: u64,
}

impl Internal {
    /// The loop has neither written to nor closed it (see `UpConn`).
    fn is_quiet(&self) -> bool {
        self.conn.is_quiet()
    }
}

/// Frames a streamed response body may run ahead of its stream: the loop's
/// writes stop (the memory, then the socket pair, fills) when the client
/// stops reading.
pub(crate) const STREAM_FRAMES_AHEAD: usize = 2;

/// A response body: whole, or streamed from the loop as it comes. `G`:
/// what the stream holds until its body is sent (its activity count).
pub(crate) type FastBody<G> = http_body_util::Either<Whole<G>, Channel<Bytes, io::Error>>;

/// A body that came whole with its head, holding the stream's activity
/// count until it is sent (the idle timer must not close a connection
/// whose client is still taking an answer).
pub(crate) struct Whole<G> {
    body: Option<Bytes>,
    _active: Option<G>,
}

impl<G: Unpin> Body for Whole<G> {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let frame = self.body.take().filter(|b| !b.is_empty());
        self._active = None;
        Poll::Ready(frame.map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.body.as_ref().is_none_or(Bytes::is_empty)
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.body.as_ref().map_or(0, |b| b.len() as u64))
    }
}

/// The idle hand-driven connections of one client connection.
pub(crate) type IdleConns = Idle<Internal>;

/// The HTTP/1.1 request head for `method`, `target` and `headers` (already
/// mapped by `heads::h1_request_head`), in one buffer.
pub(crate) fn head_bytes(method: &Method, target: &Uri, headers: &HeaderMap) -> Vec<u8> {
    let target = target.path_and_query().map_or("/", |pq| pq.as_str());
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Sends a whole request (its head, and its body if any) to the loop,
/// over an idle connection of `idle` or one `connect` opens (with the
/// name to inject its requests under), and returns its answer as the
/// stream's response; `active` is held until the body is handed over.
pub(crate) async fn exchange<G: Send + Unpin + 'static>(
    inbox: &Inbox,
    idle: &Arc<IdleConns>,
    connect: impl Fn() -> io::Result<(Answered, u64)>,
    method: &Method,
    mut request: Vec<u8>,
    active: G,
) -> Result<Response<FastBody<G>>, Failure> {
    let to_head = method == Method::HEAD;
    let (mut internal, answer) = loop {
        // Quiet: the loop has neither written nor closed it while idle.
        let (mut internal, reused) = match idle.take(Internal::is_quiet) {
            Some(c) => (c, true),
            None => {
                let (stream, id) = connect().map_err(|_| Failure::Connect)?;
                let conn = UpConn::new(stream);
                (Internal { conn, id }, false)
            }
        };
        // Kept for a retry only when one may come (without one, this
        // attempt is the last).
        let retry = reused && IDEMPOTENT.contains(&method.as_str().as_bytes());
        let sent = if retry {
            request.clone()
        } else {
            std::mem::take(&mut request)
        };
        inbox.inject(internal.id, sent);
        // A connection the loop closed meanwhile drops the request and
        // ends: retried on a new one when that is safe.
        let stale = match internal.conn.read_head(to_head, None).await {
            Ok(answer) => break (internal, answer),
            Err(ReadFailure::Closed {
                answered: false, ..
            }) => retry,
            Err(_) => false,
        };
        if !stale {
            return Err(Failure::NoAnswer);
        }
    };
    let conn = &mut internal.conn;
    let empty = Whole {
        body: None,
        _active: None,
    };
    let mut resp = Response::new(FastBody::Left(empty));
    *resp.status_mut() = StatusCode::from_u16(answer.status).map_err(|_| Failure::NoAnswer)?;
    *resp.headers_mut() = response_headers(conn.bytes(), &answer);
    h2_response_head(resp.headers_mut());
    let mut body = conn.body(&answer);
    let mut whole: Vec<u8> = Vec::new();
    while let Some(span) = conn.body_ready(&mut body).map_err(|_| Failure::NoAnswer)? {
        whole.extend_from_slice(&conn.bytes()[span]);
    }
    if body.is_done() {
        // The usual case: the whole answer came with its head.
        if answer.reusable && conn.is_clean() {
            idle.put(internal);
        }
        *resp.body_mut() = FastBody::Left(Whole {
            body: Some(Bytes::from(whole)),
            _active: Some(active),
        });
        return Ok(resp);
    }
    let (mut tx, rx) = Channel::new(STREAM_FRAMES_AHEAD);
    *resp.body_mut() = FastBody::Right(rx);
    let reusable = answer.reusable;
    let idle = idle.clone();
    tokio::spawn(async move {
        let _active = active;
        if !whole.is_empty() && tx.send_data(Bytes::from(whole)).await.is_err() {
            return; // the stream is gone: so is the connection (not clean)
        }
        let conn = &mut internal.conn;
        if stream_rest(conn, &mut body, tx).await && reusable && conn.is_clean() {
            idle.put(internal);
        }
    });
    Ok(resp)
}

/// Sends the rest of the body to the stream as it arrives; true when all
/// of it went. A body the loop cut is cut on the stream too (reset).
async fn stream_rest(
    conn: &mut UpConn<Answered>,
    body: &mut BodyReader,
    mut tx: Sender<Bytes, io::Error>,
) -> bool {
    loop {
        match conn.body_next(body, None).await {
            Ok(Next::Data(span)) => {
                let data = Bytes::copy_from_slice(&conn.bytes()[span]);
                if tx.send_data(data).await.is_err() {
                    return false;
                }
            }
            Ok(Next::Idle) => {} // every piece went to the stream already
            Ok(Next::End) => return true,
            Err(why) => {
                tx.abort(io::Error::other(why));
                return false;
            }
        }
    }
}

/// The answer's fields as a header map (a field hyper refuses is dropped,
/// as its client would have refused the whole answer).
fn response_headers(buf: &[u8], answer: &UpstreamHead) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(answer.fields.len());
    for (name, value) in &answer.fields {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(&buf[name.clone()]),
            HeaderValue::from_bytes(&buf[value.clone()]),
        ) {
            headers.append(n, v);
        }
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_is_one_buffer_of_http11() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("example.com"));
        headers.append("x-multi", HeaderValue::from_static("a"));
        headers.append("x-multi", HeaderValue::from_static("b"));
        let target = Uri::from_static("/p%20q?x=1&y");
        let head = head_bytes(&Method::GET, &target, &headers);
        assert_eq!(
            head,
            b"GET /p%20q?x=1&y HTTP/1.1\r\nhost: example.com\r\n\
              x-multi: a\r\nx-multi: b\r\n\r\n"
        );
        // What the loop will parse: one whole head, nothing after it.
        let mut parsed = qiao_http::RequestHead::default();
        let limits = qiao_http::Limits::default();
        let status = qiao_http::parse_head(&head, &limits, &mut parsed).unwrap();
        assert!(matches!(status, qiao_http::Status::Complete(n) if n == head.len()));
    }

    #[test]
    fn an_empty_target_is_the_root() {
        let head = head_bytes(&Method::HEAD, &Uri::from_static("*"), &HeaderMap::new());
        assert!(head.starts_with(b"HEAD "));
        assert!(head.ends_with(b" HTTP/1.1\r\n\r\n"));
    }
}
