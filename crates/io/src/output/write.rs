//! Writing: how buffered bytes and the pieces after them go to the socket
//! (one `writev`), what the socket does not take goes to the backlog, the
//! worker's budget for waiting on slow clients ([`WaitBudget`]), and files
//! with `sendfile`. Separate from `mod.rs` (the output's state and what it
//! tells) because this is where bytes leave and where a thread may wait. A
//! child of `output`, so it works on the output's own state.

use std::io;
use std::os::fd::RawFd;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Keep, Output, COPY_BELOW_BYTES, OUTPUT_FLUSH_BYTES};
use crate::backlog::{Backlog, MAX_BACKLOG_BYTES};
use crate::sock::Waiter;

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

impl Output {
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
    pub(super) fn send(
        &mut self,
        tail: &[u8],
        keep: Option<Keep>,
        waiter: Option<Waiter>,
    ) -> io::Result<()> {
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
