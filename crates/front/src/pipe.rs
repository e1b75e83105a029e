//! The front's internal connections to the event loop (what HTTP/2
//! streams reach it over), and the small stream helpers of the front.
//!
//! An internal connection is a `socketpair(2)`: the front keeps one end
//! (as a tokio `UnixStream`), the loop adopts the other through the
//! [`Inbox`] with the client's facts. The loop then parses, limits,
//! times out and answers the bytes exactly as on a plaintext connection:
//! no HTTP is interpreted here.
//!
//! Also [`Prefixed`]: a stream that first yields bytes already read (the
//! h2c preface the loop consumed, or what followed a PROXY header) before
//! reading the socket; and [`Open`], a client connection's place in the
//! front's open count.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UnixStream;

use super::answered::Answered;
use qiao_io::answer::Answer;
use qiao_io::inbox::{Adopted, Inbox};
use qiao_io::listener::PeerInfo;

/// After the answer to plain HTTP on a TLS port, how long the client may
/// still send before the connection is dropped; a close with unread data
/// in flight could reset it, and the answer with it.
pub(crate) const PIPE_LINGER: Duration = Duration::from_secs(2);

/// Opens an internal connection to the loop for a client described by
/// `peer`, which came in on the loop's listener info `listener`. The
/// loop's answers on it come back in memory first ([`Answered`]).
pub(crate) fn connect(inbox: &Inbox, peer: PeerInfo, listener: usize) -> io::Result<Answered> {
    open(inbox, peer, listener, None)
}

/// [`connect`], for a connection whose requests the front hands the loop
/// in memory ([`Inbox::inject`]) instead of writing them to the socket:
/// also returns the name to inject them under.
pub(crate) fn connect_injected(
    inbox: &Inbox,
    peer: PeerInfo,
    listener: usize,
) -> io::Result<(Answered, u64)> {
    let id = inbox.pair_id();
    Ok((open(inbox, peer, listener, Some(id))?, id))
}

/// A socket pair with an [`Answer`], its loop end queued for the loop.
fn open(
    inbox: &Inbox,
    peer: PeerInfo,
    listener: usize,
    pair_id: Option<u64>,
) -> io::Result<Answered> {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
    ours.set_nonblocking(true)?;
    let sock = UnixStream::from_std(ours)?;
    let answer = Arc::new(Answer::deferring(inbox.wakes().clone()));
    let mut adopted = Adopted::pair(theirs, peer, listener);
    adopted.pair_id = pair_id;
    adopted.answer = Some(answer.clone());
    inbox.push(adopted);
    Ok(Answered::new(sock, answer))
}

/// Idle internal connections one client connection keeps at most (of each
/// kind: hand-driven, `fast`, and hyper's, `upstream`).
pub(crate) const MAX_IDLE_INTERNAL: usize = 16;

/// The idle internal connections of one client connection, newest last.
/// A connection idle for half of `--keepalive` is not reused: the loop
/// could close it as it is reused.
pub(crate) struct Idle<T> {
    conns: Mutex<Vec<(T, Instant)>>,
    max_idle: Duration,
}

impl<T> Idle<T> {
    pub(crate) fn new(keepalive: Duration) -> Self {
        Idle {
            conns: Mutex::new(Vec::new()),
            max_idle: keepalive / 2,
        }
    }

    /// The newest connection young enough and `usable`; older or unusable
    /// ones on the way are dropped.
    pub(crate) fn take(&self, usable: impl Fn(&T) -> bool) -> Option<T> {
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((c, since)) = conns.pop() {
            if since.elapsed() < self.max_idle && usable(&c) {
                return Some(c);
            }
        }
        None
    }

    pub(crate) fn put(&self, conn: T) {
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        if conns.len() < MAX_IDLE_INTERNAL {
            conns.push((conn, Instant::now()));
        }
    }
}

/// Registers a front client connection with the inbox for its lifetime,
/// so a draining loop waits for it.
pub(crate) struct Open(Arc<Inbox>);

impl Open {
    pub(crate) fn new(inbox: &Arc<Inbox>) -> Open {
        inbox.enter();
        Open(inbox.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.leave();
    }
}

/// A stream that yields `prefix` before the stream's own bytes.
pub(crate) struct Prefixed<S> {
    prefix: Vec<u8>,
    at: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    pub(crate) fn new(prefix: Vec<u8>, inner: S) -> Self {
        Prefixed {
            prefix,
            at: 0,
            inner,
        }
    }

    /// The prefix's bytes not read yet, and the stream.
    pub(crate) fn into_parts(mut self) -> (Vec<u8>, S) {
        self.prefix.drain(..self.at);
        (self.prefix, self.inner)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.at < this.prefix.len() {
            let n = (this.prefix.len() - this.at).min(buf.remaining());
            buf.put_slice(&this.prefix[this.at..this.at + n]);
            this.at += n;
            if this.at == this.prefix.len() {
                this.prefix = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn prefixed_yields_prefix_then_stream() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (mut a, b) = tokio::io::duplex(64);
            a.write_all(b"world").await.unwrap();
            drop(a);
            let mut p = Prefixed::new(b"hello ".to_vec(), b);
            let mut out = Vec::new();
            p.read_to_end(&mut out).await.unwrap();
            assert_eq!(out, b"hello world");
        });
    }
}
