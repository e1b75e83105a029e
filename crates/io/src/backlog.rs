//! The part of a connection's response its client has not taken yet: a
//! queue of pieces (bytes, or a range of a file for `sendfile`) written as
//! the socket accepts them, first by the thread serving the request, then
//! by the event loop once the request is over.
//!
//! Why: a thread that waits for a client that does not read is a thread
//! no other client gets (hostile-client report, items 1 and 2). A response
//! the socket does not take at once is therefore kept here and the thread
//! moves on; the loop writes it when the socket turns writable, and does
//! not read the connection meanwhile (backpressure: a pipelining client
//! that never reads only fills its own queue, then its own TCP window).
//!
//! What it costs: nothing on the fast path (the queue is empty and holds
//! no allocation); when a client is slow, the bytes an application gave
//! as one immutable object are kept by reference ([`Held`]: the WSGI ring
//! keeps the Python `bytes`, no copy), small remainders are copied, and a
//! file is kept as a duplicated descriptor and an offset. How far a
//! response may run ahead of its client is bounded by the caller
//! (`Output`, [`MAX_BACKLOG_BYTES`]).

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use super::sock::{self, Interest, Waiter};
use super::wire::Wire;

/// How far a response may run ahead of its client: a serving thread with
/// more than this queued for its connection waits (within the worker's
/// budget, `io::output`) before it takes the next piece from the app.
/// The last piece of a response is always taken: the thread then moves on.
pub(crate) const MAX_BACKLOG_BYTES: u64 = 256 * 1024;
/// Largest `sendfile(2)` per call, as in `sock::sendfile_all`.
const SENDFILE_PIECE: u64 = 1 << 21;

/// Bytes someone else owns that stay valid and unchanged while this value
/// lives: how a piece is kept without copying it (the WSGI ring implements
/// it for a Python `bytes` object).
pub trait Held: Send + Sync {
    fn bytes(&self) -> &[u8];
}

impl Held for Vec<u8> {
    fn bytes(&self) -> &[u8] {
        self
    }
}

enum Piece {
    /// Copied bytes; more copied bytes are appended to the last one.
    Copied { data: Vec<u8>, at: usize },
    /// Bytes kept by reference, from `at` on.
    Held { data: Box<dyn Held>, at: usize },
    /// `left` bytes of a file from `offset` on.
    File { fd: OwnedFd, offset: u64, left: u64 },
}

impl Piece {
    fn rest(&self) -> &[u8] {
        match self {
            Piece::Copied { data, at } => &data[*at..],
            Piece::Held { data, at } => &data.bytes()[*at..],
            Piece::File { .. } => &[],
        }
    }
}

/// The queue of one connection (empty: no allocation).
#[derive(Default)]
pub(crate) struct Backlog {
    pieces: VecDeque<Piece>,
    /// Bytes still to write, files included.
    left: u64,
}

impl Backlog {
    pub(crate) fn is_empty(&self) -> bool {
        self.left == 0
    }

    /// Bytes still to write.
    pub(crate) fn len(&self) -> u64 {
        self.left
    }

    /// Queues a copy of `bytes`.
    pub(crate) fn push_copy(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.left += bytes.len() as u64;
        if let Some(Piece::Copied { data, .. }) = self.pieces.back_mut() {
            data.extend_from_slice(bytes);
            return;
        }
        self.pieces.push_back(Piece::Copied {
            data: bytes.to_vec(),
            at: 0,
        });
    }

    /// Queues `data`'s bytes from `at` on, kept by reference.
    pub(crate) fn push_held(&mut self, data: Box<dyn Held>, at: usize) {
        let n = data.bytes().len().saturating_sub(at);
        if n == 0 {
            return;
        }
        self.left += n as u64;
        self.pieces.push_back(Piece::Held { data, at });
    }

    /// Queues `count` bytes of the file `fd` from `offset` on.
    pub(crate) fn push_file(&mut self, fd: OwnedFd, offset: u64, count: u64) {
        if count == 0 {
            return;
        }
        self.left += count;
        self.pieces.push_back(Piece::File {
            fd,
            offset,
            left: count,
        });
    }

    /// Writes as much as the socket takes now, without waiting: the bytes
    /// written. A file that ended before its announced count is an error
    /// (`UnexpectedEof`): the response cannot be completed.
    pub(crate) fn write_nowait(&mut self, wire: &Wire) -> io::Result<u64> {
        let mut written = 0;
        while let Some(front) = self.pieces.front_mut() {
            let n = match front {
                Piece::File {
                    fd: file,
                    offset,
                    left,
                } => {
                    let piece = (*left).min(SENDFILE_PIECE);
                    match wire.sendfile_some(file.as_raw_fd(), *offset, piece)? {
                        None => return Ok(written),
                        Some(0) => {
                            return Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "file shorter than announced",
                            ))
                        }
                        Some(n) => {
                            *offset += n;
                            *left -= n;
                            if *left == 0 {
                                self.pieces.pop_front();
                            }
                            self.left -= n;
                            written += n;
                            continue;
                        }
                    }
                }
                _ => {
                    let parts: Vec<&[u8]> = self
                        .pieces
                        .iter()
                        .take(sock::MAX_IOV)
                        .take_while(|p| !matches!(p, Piece::File { .. }))
                        .map(Piece::rest)
                        .collect();
                    match wire.writev_some(&parts)? {
                        0 => return Ok(written),
                        n => n as u64,
                    }
                }
            };
            written += n;
            self.consume(n);
        }
        Ok(written)
    }

    /// Writes until at most `most` bytes are left, waiting through
    /// `waiter` while the socket is full; `timeout` bounds each stall.
    pub(crate) fn write_until(
        &mut self,
        wire: &Wire,
        most: u64,
        timeout: Duration,
        waiter: Waiter,
    ) -> io::Result<()> {
        loop {
            self.write_nowait(wire)?;
            if self.left <= most {
                return Ok(());
            }
            waiter(wire.fd(), Interest::Write, sock::deadline_in(timeout))?;
        }
    }

    /// Drops `n` written bytes from the front (memory pieces).
    fn consume(&mut self, mut n: u64) {
        self.left -= n;
        while n > 0 {
            let Some(front) = self.pieces.front_mut() else {
                return;
            };
            let len = front.rest().len() as u64;
            if n < len {
                if let Piece::Copied { at, .. } | Piece::Held { at, .. } = front {
                    *at += n as usize;
                }
                return;
            }
            n -= len;
            self.pieces.pop_front();
        }
    }
}

#[cfg(test)]
mod tests;
