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

use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::UnixStream;

use qiao_io::answer::Answer;
use qiao_io::inbox::{Adopted, Inbox};
use qiao_io::listener::PeerInfo;
use qiao_native::upconn::Link;

/// After the answer to plain HTTP on a TLS port, how long the client may
/// still send before the connection is dropped; a close with unread data
/// in flight could reset it, and the answer with it.
pub(crate) const PIPE_LINGER: Duration = Duration::from_secs(2);

/// Opens an internal connection to the loop for a client described by
/// `peer`, which came in on the loop's listener info `listener`.
pub(crate) fn connect(inbox: &Inbox, peer: PeerInfo, listener: usize) -> io::Result<UnixStream> {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
    ours.set_nonblocking(true)?;
    let ours = UnixStream::from_std(ours)?;
    inbox.push(Adopted::pair(theirs, peer, listener));
    Ok(ours)
}

/// [`connect`], for a connection whose requests the front hands the loop
/// in memory ([`Inbox::inject`]) and whose answers come back in memory
/// ([`Answer`]) instead of over the socket: also returns the name to
/// inject its requests under.
pub(crate) fn connect_injected(
    inbox: &Inbox,
    peer: PeerInfo,
    listener: usize,
) -> io::Result<(Answered, u64)> {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
    ours.set_nonblocking(true)?;
    let sock = UnixStream::from_std(ours)?;
    let id = inbox.pair_id();
    let answer = Arc::new(Answer::deferring(inbox.wakes().clone()));
    let mut adopted = Adopted::pair(theirs, peer, listener);
    adopted.pair_id = Some(id);
    adopted.answer = Some(answer.clone());
    inbox.push(adopted);
    Ok((Answered { sock, answer }, id))
}

/// The front's end of an internal connection whose answers come in
/// memory first: the socket still carries its end, and the answers once
/// the memory filled ([`qiao_io::answer`]).
pub(crate) struct Answered {
    sock: UnixStream,
    answer: Arc<Answer>,
}

impl Drop for Answered {
    fn drop(&mut self) {
        self.answer.close();
    }
}

impl AsRawFd for Answered {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

impl Link for Answered {
    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.sock.try_write(buf)
    }
    fn writable(&self) -> impl Future<Output = io::Result<()>> + Send {
        self.sock.writable()
    }
    fn try_io<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        self.sock.try_io(interest, f)
    }
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.sock.poll_read_ready(cx)
    }
    fn take_answer(&self, buf: &mut Vec<u8>) -> usize {
        self.answer.take_into(buf)
    }
    fn poll_answer(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.answer.poll_bytes(cx)
    }
    fn has_answer(&self) -> bool {
        self.answer.has_bytes()
    }
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

    /// The loop's side writes a response larger than the memory (so it
    /// spills mid-body) from another thread while the front's side reads
    /// it: every byte arrives, in order, and then the end.
    #[test]
    fn an_answer_that_spills_arrives_whole_and_in_order() {
        use qiao_io::sock;
        use qiao_native::upconn::{Next, UpConn};
        use std::os::fd::AsRawFd;

        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        theirs.set_nonblocking(true).unwrap();
        let answer = Arc::new(Answer::default());
        let body: Vec<u8> = (0..5 * qiao_io::answer::ANSWER_MEMORY_LIMIT)
            .map(|i| (i % 253) as u8)
            .collect();
        let writer = {
            let (answer, body) = (answer.clone(), body.clone());
            std::thread::spawn(move || {
                let wire = qiao_io::wire::Wire::answered(theirs.as_raw_fd(), answer);
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                let timeout = Duration::from_secs(10);
                let mut wait = |fd, interest, deadline| sock::wait(fd, interest, deadline);
                wire.write_all(head.as_bytes(), timeout, &mut wait).unwrap();
                for piece in body.chunks(7_000) {
                    wire.write_all(piece, timeout, &mut wait).unwrap();
                }
                theirs
            })
        };
        let got = rt.block_on(async {
            let sock = UnixStream::from_std(ours).unwrap();
            let mut conn = UpConn::new(Answered {
                sock,
                answer: answer.clone(),
            });
            let head = conn.read_head(false, None).await.unwrap();
            let mut reader = conn.body(&head);
            let mut got = Vec::new();
            loop {
                match conn.body_next(&mut reader, None).await.unwrap() {
                    Next::Data(span) => got.extend_from_slice(&conn.bytes()[span]),
                    Next::Idle => {}
                    Next::End => break,
                }
            }
            got
        });
        drop(writer.join().unwrap());
        assert!(answer.spilled(), "the test must cross the spill");
        assert_eq!(got.len(), body.len());
        assert!(got == body, "the bytes arrive in the order written");
    }

    /// [`Answered`] that misses the memory's bytes at its first look, as
    /// a reader does when the writer fills the memory and spills right
    /// after that look.
    struct LateLook {
        inner: Answered,
        looked: std::sync::atomic::AtomicBool,
    }

    impl AsRawFd for LateLook {
        fn as_raw_fd(&self) -> RawFd {
            self.inner.as_raw_fd()
        }
    }

    impl Link for LateLook {
        fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
            self.inner.try_write(buf)
        }
        fn writable(&self) -> impl Future<Output = io::Result<()>> + Send {
            self.inner.writable()
        }
        fn try_io<R>(&self, i: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
            self.inner.try_io(i, f)
        }
        fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.inner.poll_read_ready(cx)
        }
        fn take_answer(&self, buf: &mut Vec<u8>) -> usize {
            use std::sync::atomic::Ordering;
            if self.looked.swap(true, Ordering::SeqCst) {
                self.inner.take_answer(buf)
            } else {
                0
            }
        }
        fn poll_answer(&self, _cx: &mut Context<'_>) -> Poll<()> {
            Poll::Pending
        }
    }

    /// The race [`an_answer_that_spills_arrives_whole_and_in_order`] can
    /// only stumble on, made certain: the memory looked empty, then the
    /// writer filled it and spilled; the socket read finds the spilled
    /// bytes, and the memory's still go first.
    #[test]
    fn bytes_in_memory_go_before_those_spilled_while_the_reader_looked_away() {
        use qiao_native::upconn::UpConn;
        use std::os::fd::AsRawFd;

        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        theirs.set_nonblocking(true).unwrap();
        let answer = Arc::new(Answer::default());
        let wire = qiao_io::wire::Wire::answered(theirs.as_raw_fd(), answer.clone());
        let body = vec![b'm'; qiao_io::answer::ANSWER_MEMORY_LIMIT - 42];
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            body.len() + 7
        );
        assert_eq!(head.len(), 42, "the head and body fill the memory exactly");
        assert_eq!(wire.write_some(head.as_bytes()).unwrap(), head.len());
        assert_eq!(wire.write_some(&body).unwrap(), body.len());
        assert_eq!(wire.write_some(b"spilled").unwrap(), 7);
        assert!(answer.spilled());
        rt.block_on(async {
            let sock = UnixStream::from_std(ours).unwrap();
            let inner = Answered { sock, answer };
            let looked = std::sync::atomic::AtomicBool::new(false);
            let mut conn = UpConn::new(LateLook { inner, looked });
            let head = conn.read_head(false, None).await.unwrap();
            assert_eq!(head.status, 200);
            let mut reader = conn.body(&head);
            let mut got = Vec::new();
            while let Some(span) = conn.body_ready(&mut reader).unwrap() {
                got.extend_from_slice(&conn.bytes()[span]);
            }
            assert!(got.starts_with(&body) && got.ends_with(b"spilled"));
        });
        drop(theirs);
    }

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
