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
//! that runs more than [`MAX_BACKLOG_BYTES`](crate::backlog::MAX_BACKLOG_BYTES)
//! ahead of it (a generator producing faster than its client takes): what
//! the socket does not take at once goes to the connection's [`Backlog`],
//! which the event loop writes once the request is over. Such waits are
//! bounded per worker ([`WaitBudget`]): past the budget the connection is
//! cut instead, so slow clients can never hold every serving thread.
//!
//! Here: the output's state and what it tells; parking is in `park.rs`,
//! writing (and the wait budget, and `sendfile`) in `write.rs`.

mod park;
mod write;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::backlog::{Backlog, Held};
use super::wire::Wire;

pub use park::Park;
pub(crate) use write::WaitBudget;

/// Buffered output beyond this is written out; smaller pieces are
/// coalesced so a head and a short body leave in one `writev`.
pub const OUTPUT_FLUSH_BYTES: usize = 64 * 1024;
/// Left-over bytes of a piece shorter than this are copied into the
/// backlog; longer ones are kept by reference when the caller can.
pub(crate) const COPY_BELOW_BYTES: usize = 16 * 1024;

/// A way to keep the bytes of the piece being written without copying
/// them ([`Output::push_kept`]): it returns an owner of exactly that piece.
pub type Keep<'a> = &'a dyn Fn() -> Box<dyn Held>;

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
}
