//! The response byte stream of one connection: a reusable buffer that
//! collects the head and small body pieces, flushed with one vectored
//! write together with the next large piece, and `sendfile` for files.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use super::sock::{self, Waiter};

/// Buffered output beyond this is written out; smaller pieces are
/// coalesced so a head and a short body leave in one `writev`.
pub const OUTPUT_FLUSH_BYTES: usize = 64 * 1024;

/// Where the response of the current request goes.
pub struct Output {
    fd: RawFd,
    buf: Vec<u8>,
    timeout: Duration,
    /// Body and head bytes handed to the kernel so far.
    sent: u64,
    failed: bool,
}

impl Default for Output {
    fn default() -> Self {
        Output {
            fd: -1,
            buf: Vec::new(),
            timeout: Duration::ZERO,
            sent: 0,
            failed: true,
        }
    }
}

impl Output {
    pub fn new(fd: RawFd, buf: Vec<u8>, timeout: Duration) -> Self {
        Output {
            fd,
            buf,
            timeout,
            sent: 0,
            failed: false,
        }
    }

    /// Bytes waiting in the buffer, to append to.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Bytes written to the socket so far (not counting the buffer).
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Whether a write failed (the client went away): stop producing.
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// Takes the (emptied) buffer back for reuse by the next request.
    pub fn into_buffer(mut self) -> Vec<u8> {
        self.buf.clear();
        self.buf
    }

    /// Sends the buffered bytes followed by `tail`, in one `writev` where
    /// the socket takes it.
    pub fn write_with(&mut self, tail: &[u8], waiter: Waiter) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "connection already failed",
            ));
        }
        let total = (self.buf.len() + tail.len()) as u64;
        let result = sock::write_all_vectored(self.fd, &[&self.buf, tail], self.timeout, waiter);
        self.buf.clear();
        match result {
            Ok(()) => {
                self.sent += total;
                Ok(())
            }
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }

    /// Appends `piece`, writing out when the buffer would pass the flush size.
    pub fn push(&mut self, piece: &[u8], waiter: Waiter) -> io::Result<()> {
        if self.buf.len() + piece.len() >= OUTPUT_FLUSH_BYTES {
            self.write_with(piece, waiter)
        } else {
            self.buf.extend_from_slice(piece);
            Ok(())
        }
    }

    /// Writes out whatever is buffered.
    pub fn flush(&mut self, waiter: Waiter) -> io::Result<()> {
        if self.buf.is_empty() || self.failed {
            return if self.failed {
                Err(io::ErrorKind::BrokenPipe.into())
            } else {
                Ok(())
            };
        }
        self.write_with(&[], waiter)
    }

    /// Sends the buffered head, then `count` bytes of `file_fd` from
    /// `offset` with `sendfile(2)`, corked so they share segments.
    pub fn sendfile(
        &mut self,
        file_fd: RawFd,
        offset: u64,
        count: u64,
        waiter: Waiter,
    ) -> io::Result<u64> {
        sock::set_cork(self.fd, true);
        let result = self.flush(waiter).and_then(|()| {
            sock::sendfile_all(self.fd, file_fd, offset, count, self.timeout, waiter)
        });
        sock::set_cork(self.fd, false);
        match result {
            Ok(n) => {
                self.sent += n;
                Ok(n)
            }
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }
}
