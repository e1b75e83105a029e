//! The front's end of an internal connection to the loop ([`Answered`]):
//! the loop's answers come in memory first (`qiao_io::answer`), the
//! socket pair carrying the connection's end, the front's writes (a
//! request body) and the answers' bytes once the memory filled.
//!
//! Two readers: the hand-driven `fast` path through `UpConn` ([`Link`]:
//! memory, then the socket, in place in `UpConn`'s buffer), and hyper's
//! HTTP/1.1 client in `upstream` ([`AsyncRead`]). Either way, bytes in
//! memory were written before any on the socket, so memory is always
//! taken first, and taken again after every socket read: bytes appended
//! just before a spill the reader raced with come before the spilled ones.

use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::UnixStream;

use qiao_io::answer::Answer;
use qiao_native::upconn::Link;

/// Bytes read from the socket at a time by [`AsyncRead`] (the socket
/// carries answers only after a spill).
const SOCKET_READ: usize = 16 * 1024;

/// The front's end of an internal connection whose answers come in
/// memory first: the socket still carries its end, and the answers once
/// the memory filled ([`qiao_io::answer`]).
pub(crate) struct Answered {
    sock: UnixStream,
    answer: Arc<Answer>,
    /// Bytes read from the socket (after a spill) that wait behind those
    /// still in memory (see [`AsyncRead`] below).
    held: Vec<u8>,
}

impl Answered {
    pub(crate) fn new(sock: UnixStream, answer: Arc<Answer>) -> Answered {
        Answered {
            sock,
            answer,
            held: Vec::new(),
        }
    }
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

impl AsyncRead for Answered {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if out.remaining() == 0 {
            // Nothing can be handed over (and memory that is not taken
            // would keep this loop turning).
            return Poll::Ready(Ok(()));
        }
        loop {
            let taken = this.answer.take_with(|bytes| {
                let n = bytes.len().min(out.remaining());
                out.put_slice(&bytes[..n]);
                n
            });
            if taken > 0 {
                return Poll::Ready(Ok(()));
            }
            if !this.held.is_empty() {
                let n = this.held.len().min(out.remaining());
                out.put_slice(&this.held[..n]);
                this.held.drain(..n);
                return Poll::Ready(Ok(()));
            }
            if this.answer.poll_bytes(cx).is_ready() {
                continue;
            }
            if let Err(e) = std::task::ready!(this.sock.poll_read_ready(cx)) {
                return Poll::Ready(Err(e));
            }
            let mut piece = [0u8; SOCKET_READ];
            match this.sock.try_read(&mut piece) {
                // The end: after whatever memory still holds.
                Ok(0) if this.answer.has_bytes() => {}
                Ok(0) => return Poll::Ready(Ok(())),
                Ok(n) => this.held.extend_from_slice(&piece[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncWrite for Answered {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.sock).poll_write(cx, data)
    }

    /// Vectored, so hyper's client writes a request's head and body
    /// chunks as they are instead of copying them into one buffer first.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        parts: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.sock).poll_write_vectored(cx, parts)
    }

    fn is_write_vectored(&self) -> bool {
        self.sock.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.sock).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.sock).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[path = "answered/tests.rs"]
mod tests;
