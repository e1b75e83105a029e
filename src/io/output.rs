//! The response byte stream of one connection: a reusable buffer that
//! collects the head and small body pieces, flushed with one vectored
//! write together with the next large piece, and `sendfile` for files.
//! A response that fits the buffer may be left in it at its end
//! ([`Output::end`]), for the pool to write together with the responses
//! of the next few requests (see `pool::batch`); and a response whose
//! body is complete while the app still runs (its iterator not yet
//! exhausted) may be [parked](Output::park) where the pool's monitor
//! writes it if the app takes long ([`Park`]).

use std::io;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    /// Bytes of the response head (of a native service's response: see
    /// [`Output::note_head`]).
    head: u64,
    failed: bool,
    /// Where [`Output::end`] may leave a whole response buffered and
    /// [`Output::park`] may put it; `None`: write everything at once.
    park: Option<Arc<Park>>,
    /// The buffer's bytes are in `park`.
    parked: bool,
}

/// A serving thread's place for the bytes of a complete response while
/// its app still runs: the thread takes them back at its next write;
/// meanwhile the monitor may write them ([`Park::flush_if_older`]).
#[derive(Default)]
pub struct Park(Mutex<Parked>);

#[derive(Default)]
struct Parked {
    fd: RawFd,
    bytes: Vec<u8>,
    since: Option<Instant>,
    /// Bytes the monitor wrote.
    written: u64,
    failed: bool,
}

impl Park {
    fn lock(&self) -> std::sync::MutexGuard<'_, Parked> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes parked bytes that have waited `age` or longer, as far as
    /// the socket takes them without waiting. Skips a park its thread is
    /// using right now.
    pub fn flush_if_older(&self, age: Duration) {
        let Ok(mut p) = self.0.try_lock() else {
            return;
        };
        if p.bytes.is_empty() || p.failed || p.since.is_none_or(|t| t.elapsed() < age) {
            return;
        }
        let mut done = 0;
        while done < p.bytes.len() {
            match sock::write_some(p.fd, &p.bytes[done..]) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    p.failed = true;
                    break;
                }
            }
        }
        p.bytes.drain(..done);
        p.written += done as u64;
    }
}

impl Default for Output {
    fn default() -> Self {
        Output {
            fd: -1,
            buf: Vec::new(),
            timeout: Duration::ZERO,
            sent: 0,
            head: 0,
            failed: true,
            park: None,
            parked: false,
        }
    }
}

impl Output {
    /// `park`: where a complete response may wait (see [`Output::end`]
    /// and [`Output::park`]); `None` writes every response at once.
    pub fn new(fd: RawFd, buf: Vec<u8>, timeout: Duration, park: Option<Arc<Park>>) -> Self {
        Output {
            fd,
            buf,
            timeout,
            sent: 0,
            head: 0,
            failed: false,
            park,
            parked: false,
        }
    }

    /// The body is complete but the app has not returned yet (its
    /// iterator may do more work before it ends): the bytes wait in the
    /// park, where the monitor writes them if that takes long; without a
    /// park they are written now. PEP 3333 lets a server hold a block
    /// only if it keeps transmitting while the app works: the monitor is
    /// what keeps transmitting.
    pub fn park(&mut self, waiter: Waiter) -> io::Result<()> {
        let Some(park) = self.park.as_ref().filter(|_| !self.failed) else {
            return self.flush(waiter);
        };
        if self.buf.is_empty() || self.parked {
            return Ok(());
        }
        let mut p = park.lock();
        std::mem::swap(&mut p.bytes, &mut self.buf);
        p.fd = self.fd;
        p.since = Some(Instant::now());
        p.written = 0;
        p.failed = false;
        self.parked = true;
        Ok(())
    }

    /// Takes parked bytes back (what the monitor did not write).
    fn unpark(&mut self) {
        if !self.parked {
            return;
        }
        self.parked = false;
        let park = self.park.as_ref().expect("parked without a park");
        let mut p = park.lock();
        debug_assert!(self.buf.is_empty(), "nothing is buffered while parked");
        std::mem::swap(&mut p.bytes, &mut self.buf);
        p.since = None;
        self.sent += p.written;
        self.failed |= p.failed;
    }

    /// Response bytes still to be written.
    pub fn pending(&self) -> bool {
        !self.parked && !self.buf.is_empty() && !self.failed
    }

    /// Ends a response: writes out what is buffered, unless deferring is
    /// allowed and nothing of the response has left yet (it is all in the
    /// buffer, under [`OUTPUT_FLUSH_BYTES`]).
    pub fn end(&mut self, waiter: Waiter) -> io::Result<()> {
        self.unpark();
        if self.park.is_some() && self.sent == 0 && !self.failed {
            return Ok(());
        }
        self.flush(waiter)
    }

    /// Bytes waiting in the buffer, to append to.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        self.unpark();
        &mut self.buf
    }

    /// Bytes written to the socket so far (not counting the buffer).
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Counts `n` bytes just buffered as the response head, so the body's
    /// share of what is sent is known (the access log counts the body).
    pub fn note_head(&mut self, n: usize) {
        self.head += n as u64;
    }

    /// The body's share of `written` bytes of this response: what follows
    /// the head noted by [`note_head`](Self::note_head) (for responses
    /// framed by a length, without chunk framing).
    pub fn body_of(&self, written: u64) -> u64 {
        written.saturating_sub(self.head)
    }

    /// Whether a write failed (the client went away): stop producing.
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// Takes the (emptied) buffer back for reuse by the next request.
    pub fn into_buffer(mut self) -> Vec<u8> {
        self.unpark();
        self.buf.clear();
        self.buf
    }

    /// Sends the buffered bytes followed by `tail`, in one `writev` where
    /// the socket takes it.
    pub fn write_with(&mut self, tail: &[u8], waiter: Waiter) -> io::Result<()> {
        self.unpark();
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
        self.unpark();
        if self.buf.len() + piece.len() >= OUTPUT_FLUSH_BYTES {
            self.write_with(piece, waiter)
        } else {
            self.buf.extend_from_slice(piece);
            Ok(())
        }
    }

    /// Writes out whatever is buffered.
    pub fn flush(&mut self, waiter: Waiter) -> io::Result<()> {
        self.unpark();
        if self.buf.is_empty() || self.failed {
            return if self.failed {
                Err(io::ErrorKind::BrokenPipe.into())
            } else {
                Ok(())
            };
        }
        self.write_with(&[], waiter)
    }

    /// Writes what is buffered as far as the socket takes it now, without
    /// waiting: `Ok(true)` when all of it left, `Ok(false)` when the rest
    /// stays buffered because the socket is full.
    pub fn flush_nowait(&mut self) -> io::Result<bool> {
        self.unpark();
        if self.failed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let mut done = 0;
        let result = loop {
            if done == self.buf.len() {
                break Ok(true);
            }
            match sock::write_some(self.fd, &self.buf[done..]) {
                Ok(0) => break Ok(false),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(false),
                Err(e) => {
                    self.failed = true;
                    break Err(e);
                }
            }
        };
        self.sent += done as u64;
        self.buf.drain(..done);
        result
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
        self.unpark();
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
