//! The loop's answers to the front's HTTP/2 streams, handed over in
//! memory: the return path of [`crate::inbox::Inbox::inject`].
//!
//! Every internal connection of the front's (a socket pair, `inbox`: its
//! requests injected, or with a body written to the socket) gets an
//! [`Answer`]: the loop's writes to it (the response head and body,
//! through [`crate::wire::Wire`]) are appended here instead of written to
//! the socket, and the front's task that reads the answer is woken. Why: the socket pair's `writev` on the loop's side
//! and `recv` on the front's were ~20% of an HTTP/2 request's CPU (perf,
//! `bench/RESULTS.md`, 2026-12-05 18:00 entry): a socket buffer allocated,
//! filled, woken for and freed per answer, on the thread that also runs
//! the app.
//!
//! What stays on the socket: its end (the loop closing the connection,
//! or shutting its sending side down, is seen by the front as before;
//! the front letting go is told to the writer by [`Answer::close`]),
//! and every byte once the memory is full. Past [`ANSWER_MEMORY_LIMIT`]
//! unread bytes the answer *spills*: that write and all later ones on this
//! connection go to the socket, whose buffer then bounds the loop's
//! writes as it always did (the loop waits on its readiness; nothing here
//! waits). Spilling is for good, which keeps the order simple: every
//! byte in memory was written before every byte on the socket, so the
//! reader takes memory first ([`Answer::take_into`]), and takes it again
//! after any socket read (bytes may have been appended just before a
//! spill it raced with). A connection that spilled carries its later
//! answers over the socket, as every connection did before.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use super::sock;

/// Unread answer bytes held in memory for one internal connection; a
/// write beyond spills to the socket.
pub const ANSWER_MEMORY_LIMIT: usize = 64 * 1024;
/// Room an emptied answer keeps for the next one; a larger buffer is let
/// go (an idle internal connection would otherwise hold the largest
/// answer it ever carried, and a client keeps up to 16 of them).
pub const ANSWER_KEPT_CAPACITY: usize = 8 * 1024;

/// One internal connection's answer bytes in memory (see the module).
#[derive(Default)]
pub struct Answer {
    state: Mutex<State>,
    /// Where the reader's wake-up goes; `None`: woken at once.
    wakes: Option<Arc<Wakes>>,
}

/// The wake-ups of the front's readers, put off until the front's runtime
/// next runs on the loop's thread ([`Wakes::run`]), unless it is waiting
/// right now ([`Wakes::park`]). Why: woken from outside the runtime, a
/// stream's task is queued behind the HTTP/2 connection's own task, which
/// then runs (and writes to the client) once per answer; woken together
/// from inside, the streams all run first and the connection writes their
/// answers at once. Measured: woken at once, HTTP/2 lost ~20% against
/// the socket pair (one `send` per answer, against one per ~5).
#[derive(Default)]
pub struct Wakes {
    put_off: Mutex<Vec<Waker>>,
    /// A thread waits inside the runtime: a wake-up must reach it now.
    parked: AtomicBool,
}

impl Wakes {
    /// Wakes `reader` when the runtime next runs, or now if it waits.
    fn defer(&self, reader: Waker) {
        if self.parked.load(Ordering::SeqCst) {
            return reader.wake();
        }
        self.put_off
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(reader);
        // The runtime may have parked after this call's look: it looked
        // at the list after saying so, or it did not see this entry.
        if self.parked.load(Ordering::SeqCst) {
            self.run();
        }
    }

    /// Wakes every reader put off (called inside the runtime, so the
    /// tasks are queued there in one go).
    pub fn run(&self) {
        let readers = std::mem::take(&mut *self.put_off.lock().unwrap_or_else(|e| e.into_inner()));
        for reader in readers {
            reader.wake();
        }
    }

    /// A thread is about to wait inside the runtime (`true`; it then
    /// calls [`Wakes::run`]) or is done waiting (`false`).
    pub fn park(&self, parked: bool) {
        self.parked.store(parked, Ordering::SeqCst);
    }
}

#[derive(Default)]
struct State {
    bytes: Vec<u8>,
    /// The memory once filled up: every later byte goes to the socket.
    spilled: bool,
    /// The front's reader, waiting for bytes.
    reader: Option<Waker>,
    /// The front let go of the connection: nobody will read.
    closed: bool,
}

impl Answer {
    /// An answer whose reader's wake-ups go through `wakes`.
    pub fn deferring(wakes: Arc<Wakes>) -> Answer {
        Answer {
            state: Mutex::default(),
            wakes: Some(wakes),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The writer's side (the loop, through its `Wire`): appends what
    /// fits of `parts` and wakes the reader, or writes to the socket `fd`
    /// once spilled. The bytes taken; 0 when the socket took none.
    pub(crate) fn writev(&self, fd: RawFd, parts: &[&[u8]]) -> io::Result<usize> {
        let mut s = self.lock();
        if s.closed {
            // As a write to a socket whose reader has gone.
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if !s.spilled {
            let mut room = ANSWER_MEMORY_LIMIT.saturating_sub(s.bytes.len());
            let mut taken = 0;
            for part in parts {
                let n = part.len().min(room);
                s.bytes.extend_from_slice(&part[..n]);
                taken += n;
                room -= n;
                if n < part.len() {
                    break;
                }
            }
            let all = taken == parts.iter().map(|p| p.len()).sum::<usize>();
            // Nothing fits, and there are bytes to write: from now on the
            // socket takes them all. (A write that fits in part returns
            // what it appended first, so those bytes stay ahead.)
            s.spilled = !all && taken == 0;
            // Nothing appended, nothing to wake for: spilled bytes wake
            // the reader through the socket.
            let reader = if taken > 0 { s.reader.take() } else { None };
            let spill = s.spilled;
            drop(s);
            match (reader, &self.wakes) {
                (Some(r), Some(wakes)) => wakes.defer(r),
                (Some(r), None) => r.wake(),
                (None, _) => {}
            }
            if !spill {
                return Ok(taken);
            }
        } else {
            drop(s);
        }
        sock::writev_some(fd, parts)
    }

    /// Whether the writes have gone to the socket since the memory filled.
    pub fn spilled(&self) -> bool {
        self.lock().spilled
    }

    /// The reader's side (the front): moves every byte in memory to the
    /// end of `buf`; how many.
    pub fn take_into(&self, buf: &mut Vec<u8>) -> usize {
        let mut s = self.lock();
        let n = s.bytes.len();
        if buf.is_empty() && buf.capacity() < n {
            std::mem::swap(buf, &mut s.bytes);
        } else {
            buf.extend_from_slice(&s.bytes);
            s.bytes.clear();
        }
        if s.bytes.capacity() > ANSWER_KEPT_CAPACITY {
            s.bytes = Vec::new();
        }
        n
    }

    /// The reader's side, a part at a time: `take` is shown the bytes in
    /// memory and says how many it took (those are dropped); how many.
    pub fn take_with(&self, take: impl FnOnce(&[u8]) -> usize) -> usize {
        let mut s = self.lock();
        if s.bytes.is_empty() {
            return 0;
        }
        let n = take(&s.bytes).min(s.bytes.len());
        s.bytes.drain(..n);
        if s.bytes.is_empty() && s.bytes.capacity() > ANSWER_KEPT_CAPACITY {
            s.bytes = Vec::new();
        }
        n
    }

    /// Whether bytes wait in memory; if none, `cx` is woken when some
    /// are appended.
    pub fn poll_bytes(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.lock();
        if !s.bytes.is_empty() {
            return Poll::Ready(());
        }
        match &mut s.reader {
            Some(w) if w.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Bytes wait in memory (without registering a reader).
    pub fn has_bytes(&self) -> bool {
        !self.lock().bytes.is_empty()
    }

    /// The reader's side lets go: the bytes held are dropped, and later
    /// writes fail as on a socket closed at its other end (so an app
    /// writing to a reset stream stops as it did when the answers crossed
    /// the socket).
    pub fn close(&self) {
        let mut s = self.lock();
        s.closed = true;
        s.bytes = Vec::new();
    }
}

#[cfg(test)]
#[path = "answer/tests.rs"]
mod tests;
