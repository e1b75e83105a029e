//! A stream's request body taken into memory before the stream goes to
//! the loop, so that a stream with a body is handed over like one
//! without (`fast`: the whole request in one buffer, `Inbox::inject`)
//! instead of streamed up the socket pair by hyper's HTTP/1.1 client.
//!
//! Why: with a 64 KiB body, an HTTP/2 `POST` went through hyper's client
//! (a request object, a connection task, a task to put the connection
//! back) and crossed the socket pair: the kernel's copy into the pair and
//! the loop's copy out of it were a fifth of the worker's CPU (perf), and
//! Qiao served 0.76× Granian's rate (bench/RESULTS.md). The loop would
//! receive such a body whole before calling the application anyway (a
//! `Content-Length` body up to `PREBUFFER_BODY_BYTES`), so taking it here
//! first changes nothing the application sees.
//!
//! Only what the loop would prebuffer, and only what cannot change what
//! the loop decides, is taken:
//! - the client declared the body's length (`content-length`), at most
//!   [`BODY_IN_MEMORY`], and asked for no `100-continue` (the client
//!   waits for that before it sends);
//! - the client connection's bodies in memory stay within
//!   [`BODIES_IN_MEMORY_PER_CONNECTION`] (its flow-control window), so
//!   many streams cannot make one connection hold more;
//! - the body comes whole within [`BODY_WAIT`]. A slower one goes on to
//!   the loop as it comes: what was taken first, then the rest
//!   ([`Upload`], through hyper's client), so the loop's own rules for a
//!   slow or cut body (`--io-timeout`, 400, 408) are the only ones.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{HeaderMap, CONTENT_LENGTH, EXPECT};

/// Largest request body taken into memory: what the loop receives whole
/// before it calls the application.
pub(crate) const BODY_IN_MEMORY: usize = qiao_http::conn::PREBUFFER_BODY_BYTES;
/// Most bytes of request bodies one client connection may have in memory
/// at once (hyper's connection window, so a client cannot make more wait).
pub(crate) const BODIES_IN_MEMORY_PER_CONNECTION: usize = 1 << 20;
/// How long a body may take to arrive whole before what came of it goes
/// on to the loop, and the rest after it.
pub(crate) const BODY_WAIT: Duration = Duration::from_millis(100);

/// The bytes of bodies in memory on one client connection.
#[derive(Default)]
pub(crate) struct Budget(AtomicUsize);

/// `n` bytes of a [`Budget`], given back when dropped.
pub(crate) struct Reserved<'a>(&'a Budget, usize);

impl Budget {
    /// Reserves `n` bytes if they fit.
    pub(crate) fn reserve(&self, n: usize) -> Option<Reserved<'_>> {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held + n <= BODIES_IN_MEMORY_PER_CONNECTION).then_some(held + n)
            })
            .ok()
            .map(|_| Reserved(self, n))
    }
}

impl Drop for Reserved<'_> {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(self.1, Ordering::AcqRel);
    }
}

/// The body's declared length when it may be taken into memory (see the
/// module doc); `None`: it is streamed.
pub(crate) fn in_memory_length(headers: &HeaderMap) -> Option<usize> {
    if headers.contains_key(EXPECT) {
        return None;
    }
    let mut lengths = headers.get_all(CONTENT_LENGTH).iter();
    let length = lengths.next()?.to_str().ok()?.parse::<usize>().ok()?;
    // Several (HTTP/2 allows equal ones): the loop's to judge.
    if lengths.next().is_some() || length > BODY_IN_MEMORY {
        return None;
    }
    Some(length)
}

/// What [`take`] made of a body.
#[derive(Debug, PartialEq)]
pub(crate) enum Taken {
    /// All of it (exactly the declared length) is now in the buffer.
    Whole,
    /// It did not come whole within the wait: the buffer holds what came,
    /// the rest is still in the body.
    Partial,
    /// The body failed (the client reset the stream, or sent other than
    /// the declared length).
    Failed,
}

/// Appends `body` to `buf` until its end, as long as `length` bytes
/// (declared) arrive within `wait`.
pub(crate) async fn take<B>(body: &mut B, length: usize, wait: Duration, buf: &mut Vec<u8>) -> Taken
where
    B: Body<Data = Bytes> + Unpin,
{
    let end = buf.len() + length;
    buf.reserve(length);
    let mut timer = None;
    std::future::poll_fn(|cx| loop {
        match Pin::new(&mut *body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                // Trailers: dropped, as a `Content-Length` body has none
                // in HTTP/1.1 (the application could not see them).
                if let Ok(data) = frame.into_data() {
                    if buf.len() + data.len() > end {
                        return Poll::Ready(Taken::Failed);
                    }
                    buf.extend_from_slice(&data);
                }
            }
            Poll::Ready(Some(Err(_))) => return Poll::Ready(Taken::Failed),
            Poll::Ready(None) if buf.len() == end => return Poll::Ready(Taken::Whole),
            Poll::Ready(None) => return Poll::Ready(Taken::Failed),
            Poll::Pending => {
                let timer = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(wait)));
                ready!(timer.as_mut().poll(cx));
                return Poll::Ready(Taken::Partial);
            }
        }
    })
    .await
}

/// A request body for hyper's client: what was taken into memory first
/// (`Taken::Partial`), then the rest of the stream's body.
pub(crate) struct Upload<B = Incoming> {
    first: Option<Bytes>,
    rest: B,
}

impl<B> Upload<B> {
    pub(crate) fn new(first: Bytes, rest: B) -> Self {
        let first = (!first.is_empty()).then_some(first);
        Upload { first, rest }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Upload<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.first.take() {
            Some(first) => Poll::Ready(Some(Ok(Frame::data(first)))),
            None => Pin::new(&mut self.rest).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.rest.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let first = self.first.as_ref().map_or(0, |b| b.len() as u64);
        let rest = self.rest.size_hint();
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower() + first);
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + first);
        }
        hint
    }
}

#[cfg(test)]
#[path = "upload/tests.rs"]
mod tests;
