//! The request body as the application reads it: bytes already in the
//! connection buffer first, then the socket, decoded by the HTTP ring's
//! [`BodyDecoder`] so the app never sees framing or the next pipelined
//! request.
//!
//! Reads block (through a [`Waiter`], which releases the GIL) until the
//! requested amount or the end of the body: `wsgi.input.read(n)` behaves
//! like a buffered file. A client that closes early, sends bad framing or
//! stalls past the I/O timeout makes every later read fail with a
//! [`BodyError`], never a silent short read.

use std::fmt;
use std::io;
use std::ops::Range;
use std::time::Duration;

use super::sock::{self, Interest, Waiter};
use super::wire::Wire;
use qiao_http::response::CONTINUE;
use qiao_http::{BodyDecoder, Decoded, Framing, ParseError};

/// Bytes asked of the kernel per `read(2)` while streaming a body.
pub(crate) const BODY_READ_CHUNK: usize = 64 * 1024;

/// Why the body cannot be read further.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyError {
    /// The client closed its side before the end of the body.
    Truncated { received: u64 },
    /// The framing was invalid (bad chunk, body over the limit).
    Invalid(ParseError),
    /// The socket failed or stayed silent past the I/O timeout.
    Io(io::ErrorKind),
    /// The request is over; the stream is closed.
    Closed,
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::Truncated { received } => {
                write!(f, "client closed the connection after {received} body bytes, before the end of the body")
            }
            BodyError::Invalid(e) => write!(f, "invalid request body: {}", e.message()),
            BodyError::Io(io::ErrorKind::TimedOut) => {
                write!(f, "timed out reading the request body")
            }
            BodyError::Io(kind) => write!(f, "error reading the request body: {kind}"),
            BodyError::Closed => write!(f, "the request is finished; wsgi.input is closed"),
        }
    }
}

/// The body of one request, readable by the application.
pub struct BodyReader {
    wire: Wire,
    buf: Vec<u8>,
    /// Next undecoded byte in `buf`.
    pos: usize,
    /// Decoded body bytes in `buf` not yet handed out.
    ready: Range<usize>,
    decoder: BodyDecoder,
    continue_pending: bool,
    error: Option<BodyError>,
    timeout: Duration,
    /// Whether reading went to the socket (it may hold more than was read).
    read_socket: bool,
}

impl Default for BodyReader {
    fn default() -> Self {
        BodyReader {
            wire: Wire::default(),
            buf: Vec::new(),
            pos: 0,
            ready: 0..0,
            decoder: BodyDecoder::new(Framing::Empty, None),
            continue_pending: false,
            error: Some(BodyError::Closed),
            timeout: Duration::ZERO,
            read_socket: false,
        }
    }
}

impl BodyReader {
    /// `buf[pos..]` holds whatever of the body (and beyond) was received.
    pub fn new(
        wire: Wire,
        buf: Vec<u8>,
        pos: usize,
        decoder: BodyDecoder,
        expect_continue: bool,
        timeout: Duration,
    ) -> Self {
        let continue_pending = expect_continue && !decoder.is_done();
        BodyReader {
            wire,
            buf,
            pos,
            ready: pos..pos,
            decoder,
            continue_pending,
            error: None,
            timeout,
            read_socket: false,
        }
    }

    /// The connection buffer (the request head is at its start).
    pub fn buffer(&self) -> &[u8] {
        &self.buf
    }

    /// True when the body was read to its end.
    pub fn is_done(&self) -> bool {
        self.decoder.is_done() && self.ready.is_empty()
    }

    /// The first error reading met, if any.
    pub fn error(&self) -> Option<&BodyError> {
        self.error.as_ref().filter(|e| **e != BodyError::Closed)
    }

    /// Whether a `100 Continue` is still owed: the client waits for it and
    /// no body byte arrived yet.
    pub fn continue_pending(&self) -> bool {
        self.continue_pending
    }

    /// Body bytes received so far (decoded).
    pub fn received(&self) -> u64 {
        self.decoder.total()
    }

    /// Whether serving read from the socket (so the connection's record
    /// of having drained it is stale).
    pub(crate) fn read_socket(&self) -> bool {
        self.read_socket
    }

    /// Called once the final response has started: a 100 would be late.
    pub fn cancel_continue(&mut self) {
        self.continue_pending = false;
    }

    /// Hands the buffer, the next undecoded position and the decoder back
    /// to the connection when the request is over.
    pub fn into_parts(self) -> (Vec<u8>, usize, BodyDecoder, Option<BodyError>) {
        let error = self.error().cloned();
        (self.buf, self.pos, self.decoder, error)
    }

    /// Appends up to `max` body bytes to `out`, blocking until `max` bytes or
    /// the end of the body. Returns how many were appended (0 at the end).
    /// A `waiter` that answers `WouldBlock` makes reads non-blocking: the
    /// error comes back as `BodyError::Io(WouldBlock)` once the socket is
    /// empty, with what was read so far appended to `out`, and the body
    /// stays readable (every other error is final).
    pub fn read(
        &mut self,
        out: &mut Vec<u8>,
        max: usize,
        waiter: Waiter,
    ) -> Result<usize, BodyError> {
        self.read_until(out, max, None, waiter)
    }

    /// Like [`read`](Self::read) but stops after the first `\n`.
    pub fn read_line(
        &mut self,
        out: &mut Vec<u8>,
        max: usize,
        waiter: Waiter,
    ) -> Result<usize, BodyError> {
        self.read_until(out, max, Some(b'\n'), waiter)
    }

    /// The next run of body bytes in place, at most `max` long (`None` at
    /// the end): what [`read`](Self::read) would append first, without
    /// the copy. A run as long as asked is the whole of such a read.
    pub fn read_run(&mut self, max: usize, waiter: Waiter) -> Result<Option<&[u8]>, BodyError> {
        Ok(self.take(max, waiter)?.map(|span| &self.buf[span]))
    }

    fn read_until(
        &mut self,
        out: &mut Vec<u8>,
        max: usize,
        stop: Option<u8>,
        waiter: Waiter,
    ) -> Result<usize, BodyError> {
        let mut got = 0;
        while got < max {
            let Some(span) = self.take(max - got, waiter)? else {
                break;
            };
            let slice = &self.buf[span.clone()];
            if let Some(i) = stop.and_then(|c| slice.iter().position(|&b| b == c)) {
                out.extend_from_slice(&slice[..=i]);
                got += i + 1;
                // Give back what follows the stop byte.
                self.ready.start = span.start + i + 1;
                break;
            }
            out.extend_from_slice(slice);
            got += span.len();
        }
        Ok(got)
    }

    /// The next run of decoded body bytes, at most `max` long; `None` at
    /// the end of the body.
    fn take(&mut self, max: usize, waiter: Waiter) -> Result<Option<Range<usize>>, BodyError> {
        loop {
            if !self.ready.is_empty() {
                let end = self.ready.end.min(self.ready.start.saturating_add(max));
                let span = self.ready.start..end;
                self.ready.start = end;
                return Ok(Some(span));
            }
            if let Some(e) = &self.error {
                return Err(e.clone());
            }
            if self.decoder.is_done() {
                return Ok(None);
            }
            if self.pos < self.buf.len() {
                match self.decoder.decode(&self.buf[self.pos..]) {
                    Ok((n, Decoded::Data(r))) => {
                        // Body bytes already arrived: no 100 is owed any
                        // more (RFC 9110 §10.1.1 lets us omit it).
                        self.continue_pending = false;
                        self.ready = self.pos + r.start..self.pos + r.end;
                        self.pos += n;
                    }
                    Ok((n, _)) => self.pos += n,
                    Err(e) => self.error = Some(BodyError::Invalid(e)),
                }
                continue;
            }
            match self.fill(waiter) {
                Ok(()) => {}
                // A waiter that does not wait (the native runtime's
                // tasks): nothing more for now, and nothing wrong.
                Err(BodyError::Io(io::ErrorKind::WouldBlock)) => {
                    return Err(BodyError::Io(io::ErrorKind::WouldBlock))
                }
                Err(e) => self.error = Some(e),
            }
        }
    }

    /// Reads more from the socket, sending the owed `100 Continue` first.
    fn fill(&mut self, waiter: Waiter) -> Result<(), BodyError> {
        if self.continue_pending {
            self.continue_pending = false;
            self.wire
                .write_all(CONTINUE, self.timeout, waiter)
                .map_err(|e| BodyError::Io(e.kind()))?;
        }
        if self.pos == self.buf.len() {
            // Everything buffered was consumed (the head included: the
            // environ was built before the app could read).
            self.buf.clear();
            self.pos = 0;
            self.ready = 0..0;
        }
        let want = match self.decoder.remaining_hint() {
            Some(n) => (n as usize).clamp(1, BODY_READ_CHUNK),
            None => BODY_READ_CHUNK,
        };
        self.read_socket = true;
        loop {
            match self.wire.read_some(&mut self.buf, want) {
                Ok(0) => {
                    return Err(BodyError::Truncated {
                        received: self.decoder.total(),
                    })
                }
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let deadline = sock::deadline_in(self.timeout);
                    waiter(self.wire.fd(), Interest::Read, deadline)
                        .map_err(|e| BodyError::Io(e.kind()))?;
                }
                Err(e) => return Err(BodyError::Io(e.kind())),
            }
        }
    }
}
