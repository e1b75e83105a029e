//! The internal HTTP/1.1 connections that the streams of one HTTP/2
//! client connection whose request bodies are streamed (`upload`: too
//! large, no declared length, `100-continue`, or slow) are forwarded over
//! (hyper's HTTP/1.1 client on socket pairs, see `pipe::connect`, the
//! loop's answers read in memory first: `answered`), kept for reuse: a
//! stream takes an idle one, or opens one, and gives it back once its
//! response has been read to the end and the connection is ready for the
//! next request.
//!
//! Reuse would race with the loop closing an idle connection (its
//! `--keepalive` timer, or draining). Two guards: a connection idle for
//! half of `--keepalive` is not reused, and a request hyper could not
//! start writing on a connection that closed meanwhile comes back unsent
//! ([`SendRequest::try_send_request`]) and goes out on another. A request
//! already partly written is never retried (its body may be half gone).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use super::pipe::{self, Idle};
use super::upload::Upload;
use qiao_io::inbox::Inbox;
use qiao_io::listener::PeerInfo;

/// The idle hyper client connections of one client connection.
pub(crate) type Pool = Idle<SendRequest<Upload>>;

/// Why a stream got no answer from the loop.
#[derive(Debug)]
pub(crate) enum Failure {
    /// No internal connection could be opened (out of descriptors).
    Connect,
    /// The connection failed before an answer (a stopping worker).
    NoAnswer,
}

/// Sends `req` to the loop over an idle connection of `pool`, or a new
/// one for `peer`, and returns the answer with the connection.
pub(crate) async fn send(
    pool: &Pool,
    inbox: &Inbox,
    peer: &PeerInfo,
    listener: usize,
    mut req: Request<Upload>,
) -> Result<(Response<Incoming>, SendRequest<Upload>), Failure> {
    while let Some(mut sender) = pool.take(|s| !s.is_closed()) {
        match sender.try_send_request(req).await {
            Ok(resp) => return Ok((resp, sender)),
            Err(mut e) => match e.take_message() {
                Some(unsent) => req = unsent,
                None => return Err(Failure::NoAnswer),
            },
        }
    }
    let internal = pipe::connect(inbox, peer.clone(), listener).map_err(|_| Failure::Connect)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(internal))
        .await
        .map_err(|_| Failure::Connect)?;
    tokio::spawn(conn);
    match sender.send_request(req).await {
        Ok(resp) => Ok((resp, sender)),
        Err(_) => Err(Failure::NoAnswer),
    }
}

/// A response body from the loop that gives its connection back to the
/// pool once read to the end (and the connection is ready again).
pub(crate) struct Returning<G> {
    body: Incoming,
    back: Option<(SendRequest<Upload>, Arc<Pool>)>,
    /// Held for the body's life (the stream's activity count).
    _guard: G,
}

impl<G> Returning<G> {
    pub(crate) fn new(
        body: Incoming,
        sender: SendRequest<Upload>,
        pool: Arc<Pool>,
        guard: G,
    ) -> Self {
        let mut r = Returning {
            body,
            back: Some((sender, pool)),
            _guard: guard,
        };
        if r.body.is_end_stream() {
            r.give_back(); // nothing to read: no poll may come
        }
        r
    }

    fn give_back(&mut self) {
        if let Some((mut sender, pool)) = self.back.take() {
            // Ready once hyper has finished the exchange (the request
            // body too, if the app answered before reading it all).
            tokio::spawn(async move {
                if sender.ready().await.is_ok() {
                    pool.put(sender);
                }
            });
        }
    }
}

impl<G: Unpin> Body for Returning<G> {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.body).poll_frame(cx);
        // The end is either a last poll, or (a sized body) a frame after
        // which the body says it is done and is polled no more.
        let done = match &r {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(_))) => this.body.is_end_stream(),
            _ => false,
        };
        if done {
            this.give_back();
        }
        r
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
