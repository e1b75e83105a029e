//! The response byte stream of one connection: a reusable buffer that
//! collects the head and small body pieces, flushed with one vectored
//! write together with the next large piece, and `sendfile` for files.
//! A response that fits the buffer may be left in it at its end
//! ([`Output::end`]), for the pool to write together with the responses
//! of the next few requests (see `pool::batch`); and a response whose
//! body is complete while the app still runs (its iterator not yet
//! exhausted) may be [parked](Output::park) where the pool's monitor
//! writes it if the app takes long ([`Park`]).
//!
//! Nothing here waits for a client that does not read, except a response
//! that runs more than [`MAX_BACKLOG_BYTES`] ahead of it (a generator
//! producing faster than its client takes): what the socket does not take
//! at once goes to the connection's [`Backlog`], which the event loop
//! writes once the request is over. Such waits are bounded per worker
//! ([`WaitBudget`]): past the budget the connection is cut instead, so
//! slow clients can never hold every serving thread.

use std::io;
use std::os::fd::RawFd;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::backlog::{Backlog, Held, MAX_BACKLOG_BYTES};
use super::sock::Waiter;
use super::wire::Wire;

/// Buffered output beyond this is written out; smaller pieces are
/// coalesced so a head and a short body leave in one `writev`.
pub const OUTPUT_FLUSH_BYTES: usize = 64 * 1024;
/// Left-over bytes of a piece shorter than this are copied into the
/// backlog; longer ones are kept by reference when the caller can.
pub(crate) const COPY_BELOW_BYTES: usize = 16 * 1024;

/// A way to keep the bytes of the piece being written without copying
/// them ([`Output::push_kept`]): it returns an owner of exactly that piece.
pub type Keep<'a> = &'a dyn Fn() -> Box<dyn Held>;

/// How many serving threads of a worker may wait at once for clients to
/// take their responses: half of them (at least one). The others are
/// always free for other clients; a response that would wait beyond the
/// budget is cut (its connection closed), as a client too slow to be
/// served.
pub(crate) struct WaitBudget {
    most: usize,
    waiting: AtomicUsize,
}

impl WaitBudget {
    pub(crate) fn new(threads: usize) -> Self {
        WaitBudget {
            most: (threads / 2).max(1),
            waiting: AtomicUsize::new(0),
        }
    }

    /// A turn to wait, given back when dropped; an error when the budget
    /// is spent.
    fn enter(&self) -> io::Result<WaitTurn<'_>> {
        let was = self.waiting.fetch_add(1, Ordering::SeqCst);
        if was >= self.most {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "too many serving threads wait for slow clients",
            ));
        }
        Ok(WaitTurn(self))
    }
}

struct WaitTurn<'a>(&'a WaitBudget);

impl Drop for WaitTurn<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Where the response of the current request goes.
pub struct Output {
    wire: Wire,
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
    /// Bytes accepted that the socket has not taken yet; they go before
    /// `buf`'s.
    backlog: Backlog,
    /// Shared by the worker's threads; `None`: waits are not limited.
    budget: Option<Arc<WaitBudget>>,
    /// The output failed because the budget was spent (see
    /// [`Output::over_budget`]).
    over_budget: bool,
}

/// A serving thread's place for the bytes of a complete response while
/// its app still runs: the thread takes them back at its next write;
/// meanwhile the monitor may write them ([`Park::flush_if_older`]).
#[derive(Default)]
pub struct Park(Mutex<Parked>);

#[derive(Default)]
struct Parked {
    wire: Wire,
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
    pub(crate) fn flush_if_older(&self, age: Duration) {
        let Ok(mut p) = self.0.try_lock() else {
            return;
        };
        if p.bytes.is_empty() || p.failed || p.since.is_none_or(|t| t.elapsed() < age) {
            return;
        }
        let mut done = 0;
        while done < p.bytes.len() {
            match p.wire.write_some(&p.bytes[done..]) {
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
            wire: Wire::default(),
            buf: Vec::new(),
            timeout: Duration::ZERO,
            sent: 0,
            head: 0,
            failed: true,
            park: None,
            parked: false,
            backlog: Backlog::default(),
            budget: None,
            over_budget: false,
        }
    }
}

impl Output {
    /// `park`: where a complete response may wait (see [`Output::end`]
    /// and [`Output::park`]); `None` writes every response at once.
    pub fn new(wire: Wire, buf: Vec<u8>, timeout: Duration, park: Option<Arc<Park>>) -> Self {
        Output {
            wire,
            buf,
            timeout,
            sent: 0,
            head: 0,
            failed: false,
            over_budget: false,
            park,
            parked: false,
            backlog: Backlog::default(),
            budget: None,
        }
    }

    /// Limits this output's waits for its client with the worker's budget.
    pub(crate) fn with_budget(mut self, budget: Option<Arc<WaitBudget>>) -> Self {
        self.budget = budget;
        self
    }

    /// The body is complete but the app has not returned yet (its
    /// iterator may do more work before it ends): the bytes wait in the
    /// park, where the monitor writes them if that takes long; without a
    /// park they are written now. PEP 3333 lets a server hold a block
    /// only if it keeps transmitting while the app works: the monitor is
    /// what keeps transmitting.
    pub fn park(&mut self, waiter: Waiter) -> io::Result<()> {
        let Some(park) = self
            .park
            .as_ref()
            .filter(|_| !self.failed && self.backlog.is_empty())
        else {
            return self.flush(waiter);
        };
        if self.buf.is_empty() || self.parked {
            return Ok(());
        }
        let mut p = park.lock();
        std::mem::swap(&mut p.bytes, &mut self.buf);
        p.wire = self.wire.clone();
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
        !self.failed && (!self.backlog.is_empty() || (!self.parked && !self.buf.is_empty()))
    }

    /// Ends a response: writes what the socket takes now and keeps the
    /// rest for the event loop (never waits), unless deferring is allowed
    /// and nothing of the response has left yet (it is all in the buffer,
    /// under [`OUTPUT_FLUSH_BYTES`]): then it is all kept.
    pub fn end(&mut self) -> io::Result<()> {
        self.unpark();
        if self.park.is_some() && self.sent == 0 && !self.failed {
            return Ok(());
        }
        self.send(&[], None, None)
    }

    /// What is left to write, taken out for the event loop (empty after a
    /// failure: the connection is closed).
    pub(crate) fn take_backlog(&mut self) -> Backlog {
        self.unpark();
        if self.failed {
            self.buf.clear();
            return Backlog::default();
        }
        self.backlog.push_copy(&self.buf);
        self.buf.clear();
        std::mem::take(&mut self.backlog)
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

    /// Whether the output was cut because the worker's [`WaitBudget`] was
    /// spent (a slow client, and no thread to spare to wait for it): the
    /// operator's business, unlike a client that went away.
    pub fn over_budget(&self) -> bool {
        self.over_budget
    }

    /// Takes the (emptied) buffer back for reuse by the next request.
    pub(crate) fn into_buffer(mut self) -> Vec<u8> {
        self.unpark();
        self.buf.clear();
        self.buf
    }

    /// Sends the buffered bytes followed by `tail`, in one `writev` where
    /// the socket takes it (see [`Output::send`]).
    pub fn write_with(&mut self, tail: &[u8], waiter: Waiter) -> io::Result<()> {
        self.send(tail, None, Some(waiter))
    }

    /// Appends `piece`, writing out when the buffer would pass the flush size.
    pub fn push(&mut self, piece: &[u8], waiter: Waiter) -> io::Result<()> {
        self.push_kept(piece, None, waiter)
    }

    /// [`push`](Self::push), with `keep` to hold on to `piece` instead of
    /// copying what the socket does not take at once.
    pub fn push_kept(
        &mut self,
        piece: &[u8],
        keep: Option<Keep>,
        waiter: Waiter,
    ) -> io::Result<()> {
        self.unpark();
        if self.buf.len() + piece.len() >= OUTPUT_FLUSH_BYTES {
            self.send(piece, keep, Some(waiter))
        } else {
            self.buf.extend_from_slice(piece);
            Ok(())
        }
    }

    /// Writes out whatever is buffered, as far as the socket takes it;
    /// the rest waits in the backlog (see [`Output::send`]).
    pub fn flush(&mut self, waiter: Waiter) -> io::Result<()> {
        self.unpark();
        if self.failed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if self.buf.is_empty() && self.backlog.len() <= MAX_BACKLOG_BYTES {
            return Ok(());
        }
        self.send(&[], None, Some(waiter))
    }

    /// Writes what is buffered as far as the socket takes it now, without
    /// waiting: `Ok(true)` when all of it left, `Ok(false)` when the rest
    /// is kept (for the event loop) because the socket is full.
    pub(crate) fn flush_nowait(&mut self) -> io::Result<bool> {
        self.send(&[], None, None)?;
        Ok(self.backlog.is_empty())
    }

    /// Hands the buffered bytes, then `tail`, to the connection: written
    /// now as far as the socket takes them (one `writev`), the rest kept in
    /// the backlog (`tail`'s by `keep` when given, else copied). With a
    /// `waiter`, first waits until the backlog is down to
    /// [`MAX_BACKLOG_BYTES`], within the worker's [`WaitBudget`]: a
    /// response runs that far ahead of its client and no further. Every
    /// byte accepted counts as sent. A failure fails the output.
    fn send(&mut self, tail: &[u8], keep: Option<Keep>, waiter: Option<Waiter>) -> io::Result<()> {
        self.unpark();
        if self.failed {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "connection already failed",
            ));
        }
        let result = self.send_inner(tail, keep, waiter);
        if result.is_err() {
            self.failed = true;
            self.buf.clear();
            self.backlog = Backlog::default();
        }
        result
    }

    fn send_inner(
        &mut self,
        tail: &[u8],
        keep: Option<Keep>,
        waiter: Option<Waiter>,
    ) -> io::Result<()> {
        match waiter {
            Some(waiter) if self.backlog.len() > MAX_BACKLOG_BYTES => {
                let budget = self.budget.as_deref().map(WaitBudget::enter).transpose();
                self.over_budget = budget.is_err();
                let _turn = budget?;
                self.backlog
                    .write_until(&self.wire, MAX_BACKLOG_BYTES, self.timeout, waiter)?;
            }
            _ if !self.backlog.is_empty() => {
                self.backlog.write_nowait(&self.wire)?;
            }
            _ => {}
        }
        let total = self.buf.len() + tail.len();
        if total == 0 {
            return Ok(());
        }
        let n = if self.backlog.is_empty() {
            self.wire.writev_some(&[&self.buf, tail])?
        } else {
            0
        };
        self.sent += total as u64;
        let into_tail = if n < self.buf.len() {
            self.backlog.push_copy(&self.buf[n..]);
            0
        } else {
            n - self.buf.len()
        };
        self.buf.clear();
        match keep {
            Some(keep) if tail.len() - into_tail >= COPY_BELOW_BYTES => {
                self.backlog.push_held(keep(), into_tail);
            }
            _ => self.backlog.push_copy(&tail[into_tail..]),
        }
        Ok(())
    }

    /// Sends the buffered head, then `count` bytes of `file_fd` from
    /// `offset` with `sendfile(2)`, corked so they share segments. What
    /// the socket does not take at once is kept (a duplicate of the
    /// descriptor and the offset) for the event loop: the file is never
    /// read into memory and no thread waits. Returns the bytes accepted,
    /// fewer than `count` only if the file was found shorter.
    pub fn sendfile(&mut self, file_fd: RawFd, offset: u64, count: u64) -> io::Result<u64> {
        self.unpark();
        self.wire.set_cork(true);
        let result = self
            .send(&[], None, None)
            .and_then(|()| self.sendfile_inner(file_fd, offset, count));
        self.wire.set_cork(false);
        match result {
            Ok(n) => {
                self.sent += n;
                Ok(n)
            }
            Err(e) => {
                self.failed = true;
                self.backlog = Backlog::default();
                Err(e)
            }
        }
    }

    fn sendfile_inner(&mut self, file_fd: RawFd, offset: u64, count: u64) -> io::Result<u64> {
        let mut done = 0;
        while done < count && self.backlog.is_empty() {
            match self
                .wire
                .sendfile_some(file_fd, offset + done, count - done)?
            {
                Some(0) => return Ok(done), // the file is shorter
                Some(n) => done += n,
                None => break,
            }
        }
        if done < count {
            // SAFETY: F_DUPFD_CLOEXEC on a descriptor the caller keeps open.
            let dup = unsafe { libc::fcntl(file_fd, libc::F_DUPFD_CLOEXEC, 0) };
            if dup < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `dup` is a new descriptor nobody else owns.
            let dup = unsafe { OwnedFd::from_raw_fd(dup) };
            self.backlog.push_file(dup, offset + done, count - done);
        }
        Ok(count)
    }
}
