//! What an [`UpConn`](crate::upconn::UpConn) drives ([`Link`]): a TCP
//! connection to an upstream (the native proxy), or the front's end of an
//! internal connection to the event loop (`qiao_front`), whose answers
//! come in memory first (`qiao_io::answer`). Apart from `upconn` so that
//! the stream's calls and the connection's logic each stay readable.

use std::future::Future;
use std::io;
use std::os::fd::AsRawFd;
use std::task::{Context, Poll};

use tokio::io::Interest;
use tokio::net::{TcpStream, UnixStream};

/// The stream an [`UpConn`](crate::upconn::UpConn) drives: a TCP connection to an upstream, or
/// the front's end of an internal socket pair. tokio's readiness calls,
/// which both types have under the same names.
pub trait Link: AsRawFd + Send + Sync {
    fn try_write(&self, buf: &[u8]) -> io::Result<usize>;
    fn writable(&self) -> impl Future<Output = io::Result<()>> + Send;
    fn try_io<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R>;
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    /// Moves the bytes handed over in memory to the end of `buf`: how
    /// many (none on a plain socket). They come before any the socket
    /// holds.
    fn take_answer(&self, _buf: &mut Vec<u8>) -> usize {
        0
    }
    /// Ready when bytes wait in memory; else `cx` is woken when some come
    /// (never, on a plain socket).
    fn poll_answer(&self, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
    /// Bytes wait in memory.
    fn has_answer(&self) -> bool {
        false
    }
}

macro_rules! link {
    ($t:ty) => {
        impl Link for $t {
            fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
                <$t>::try_write(self, buf)
            }
            fn writable(&self) -> impl Future<Output = io::Result<()>> + Send {
                <$t>::writable(self)
            }
            fn try_io<R>(
                &self,
                interest: Interest,
                f: impl FnOnce() -> io::Result<R>,
            ) -> io::Result<R> {
                <$t>::try_io(self, interest, f)
            }
            fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                <$t>::poll_read_ready(self, cx)
            }
        }
    };
}
link!(TcpStream);
link!(UnixStream);
