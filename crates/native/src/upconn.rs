//! One HTTP/1.1 client connection driven by hand ([`UpConn`]): a tokio
//! stream and its read buffer; the request head goes out with one
//! non-blocking write, the response head is parsed in place by the HTTP
//! ring ([`qiao_http::upstream_head`]) and the body handed
//! out as spans of the same buffer, decoded by the ring's [`BodyDecoder`]
//! when it is `Content-Length` or chunked.
//!
//! Two users: the native proxy, to its upstreams over TCP, and the protocol
//! front, to the event loop over the internal socket pairs its HTTP/2
//! streams cross (`qiao_front`): [`Link`] is what both streams offer. The
//! loop's answers on an internal connection come in memory first
//! (`qiao_io::answer`): [`Link::take_answer`] and [`Link::poll_answer`],
//! which a plain socket does not have.
//!
//! Why by hand and not hyper's client: see `upstream_head`'s module doc
//! (hyper's per-message objects and its connection task were a third of
//! the proxied request's CPU). This module keeps only the connection's
//! bytes; its user decides what to send and what to forward.

use std::io;
use std::ops::Range;
use std::os::fd::RawFd;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::Interest;
use tokio::net::TcpStream;

use qiao_http::upstream_head::{self, BodyFraming, HeadError, UpstreamHead};
use qiao_http::{BodyDecoder, Decoded, Framing};

pub use super::link::Link;

/// Bytes asked of the kernel per read from an upstream.
pub const UPSTREAM_READ_CHUNK: usize = 64 * 1024;

/// Why reading a response failed.
#[derive(Debug)]
pub enum ReadFailure {
    /// The upstream closed or reset the connection; `answered`: after some
    /// bytes of this response had arrived.
    Closed { answered: bool, why: String },
    /// The head is not valid HTTP/1.1.
    Invalid(HeadError),
    /// Nothing within the timeout.
    Timeout,
}

/// One client connection, between requests or carrying one.
pub struct UpConn<S = TcpStream> {
    stream: S,
    buf: Vec<u8>,
    /// First byte of `buf` not consumed yet.
    pos: usize,
    /// It came from the pool (it may have been closed meanwhile).
    pub reused: bool,
}

/// Where the body of the response being read is.
pub struct BodyReader {
    framing: BodyFraming,
    decoder: Option<BodyDecoder>,
    done: bool,
    /// [`UpConn::body_next`] said [`Next::Idle`]: its next call waits.
    idle: bool,
}

/// The next step of a body read by [`UpConn::body_next`].
pub enum Next {
    /// Received bytes, as a range of [`UpConn::bytes`].
    Data(Range<usize>),
    /// Nothing more has arrived: a reader that buffers flushes now; the
    /// next call waits for more.
    Idle,
    /// The whole body has been handed out.
    End,
}

impl UpConn<TcpStream> {
    /// Opens a connection to `addr` (`host:port`) within `timeout`.
    pub async fn open(addr: &str, timeout: Duration) -> Result<UpConn, String> {
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err(format!("timed out after {timeout:?}")),
        };
        let _ = stream.set_nodelay(true);
        Ok(UpConn::new(stream))
    }
}

impl<S: Link> UpConn<S> {
    /// Drives `stream` (already connected).
    pub fn new(stream: S) -> Self {
        UpConn {
            stream,
            buf: Vec::new(),
            pos: 0,
            reused: false,
        }
    }

    /// Whether it can carry another request: the last response was read
    /// to its end and nothing more arrived.
    pub fn is_clean(&self) -> bool {
        self.pos == self.buf.len()
    }

    /// Whether nothing arrived while it was idle (no bytes, no close), as
    /// far as the runtime has seen; without a system call. An upstream may
    /// send a last answer (a 408) before it closes an idle connection:
    /// taken as the next request's response, it would answer the wrong
    /// request.
    pub fn is_quiet(&self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        !self.stream.has_answer() && self.stream.poll_read_ready(&mut cx).is_pending()
    }

    /// Writes all of `bytes` (waiting while the socket is full).
    pub async fn send(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match self.stream.try_write(bytes) {
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.stream.writable().await?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reads what the upstream has sent; `Ok(0)` at its end.
    async fn fill(&mut self) -> io::Result<usize> {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        loop {
            let n = self.stream.take_answer(&mut self.buf);
            if n > 0 {
                return Ok(n);
            }
            let in_memory = std::future::poll_fn(|cx| match self.stream.poll_answer(cx) {
                Poll::Ready(()) => Poll::Ready(Ok(true)),
                Poll::Pending => self.stream.poll_read_ready(cx).map_ok(|()| false),
            })
            .await?;
            if in_memory {
                continue;
            }
            self.buf.reserve(UPSTREAM_READ_CHUNK);
            let start = self.buf.len();
            let (fd, buf) = (self.stream.as_raw_fd(), &mut self.buf);
            let mut got = None;
            let result = self.stream.try_io(Interest::READABLE, || {
                let n = read_into(fd, buf)?;
                got = Some(n);
                if n > 0 && buf.capacity() > buf.len() {
                    // A short read drained the socket: more data will
                    // come with a new edge, so the readiness is cleared
                    // now rather than by a read that finds nothing (one
                    // system call per response saved, as nginx does).
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(())
            });
            match (got, result) {
                (Some(n), _) => return Ok(n + self.answer_first(start)),
                (None, Err(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
                (None, Err(e)) => return Err(e),
                (None, Ok(())) => unreachable!("a successful read sets `got`"),
            }
        }
    }

    /// After a socket read appended at `start`: bytes the writer put in
    /// memory before it spilled to the socket (it may have, between our
    /// look at the memory and the read) go before them. How many.
    fn answer_first(&mut self, start: usize) -> usize {
        let mut early = Vec::new();
        let n = self.stream.take_answer(&mut early);
        if n > 0 {
            self.buf.splice(start..start, early);
        }
        n
    }

    /// Reads the final response head (interim 1xx ones are skipped);
    /// ranges in it index [`bytes`](Self::bytes). The head is consumed.
    /// No `timeout`: as long as the peer takes (the event loop, which
    /// has its own).
    pub async fn read_head(
        &mut self,
        to_head: bool,
        timeout: Option<Duration>,
    ) -> Result<UpstreamHead, ReadFailure> {
        let read = async {
            let mut answered = false;
            loop {
                if self.pos > 0 {
                    // Heads are parsed from the start of the buffer.
                    self.buf.drain(..self.pos);
                    self.pos = 0;
                }
                if let Some(head) =
                    upstream_head::parse(&self.buf, to_head).map_err(ReadFailure::Invalid)?
                {
                    self.pos = head.len;
                    if head.is_interim() {
                        continue;
                    }
                    return Ok(head);
                }
                match self.fill().await {
                    Ok(0) => {
                        let why = "closed by the upstream".to_string();
                        return Err(ReadFailure::Closed { answered, why });
                    }
                    Ok(_) => answered = true,
                    Err(e) => {
                        let why = e.to_string();
                        return Err(ReadFailure::Closed { answered, why });
                    }
                }
            }
        };
        match timeout {
            Some(t) => tokio::time::timeout(t, read)
                .await
                .unwrap_or(Err(ReadFailure::Timeout)),
            None => read.await,
        }
    }

    /// The buffer the head's ranges index (valid until the body is read).
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// A reader of the body after `head`.
    pub fn body(&self, head: &UpstreamHead) -> BodyReader {
        let decoder = match head.framing {
            BodyFraming::Length(n) => Some(BodyDecoder::new(Framing::Length(n), None)),
            BodyFraming::Chunked => Some(BodyDecoder::new(Framing::Chunked, None)),
            BodyFraming::None | BodyFraming::UntilClose => None,
        };
        BodyReader {
            framing: head.framing,
            decoder,
            done: head.framing == BodyFraming::None,
            idle: false,
        }
    }

    /// The next body bytes already received, as a range of
    /// [`bytes`](Self::bytes); `Ok(None)` when none are (see
    /// [`BodyReader::is_done`]).
    pub fn body_ready(&mut self, body: &mut BodyReader) -> Result<Option<Range<usize>>, String> {
        loop {
            if body.decoder.as_ref().is_some_and(BodyDecoder::is_done) {
                // The last data span may end the body without an `End`.
                body.done = true;
            }
            if body.done || self.pos == self.buf.len() {
                return Ok(None);
            }
            let Some(decoder) = &mut body.decoder else {
                let span = self.pos..self.buf.len();
                self.pos = self.buf.len();
                return Ok(Some(span));
            };
            let (n, found) = decoder
                .decode(&self.buf[self.pos..])
                .map_err(|e| format!("invalid body: {}", e.message()))?;
            let at = self.pos;
            self.pos += n;
            match found {
                Decoded::Data(r) => return Ok(Some(at + r.start..at + r.end)),
                Decoded::NeedMore => {}
                Decoded::End => body.done = true,
            }
        }
    }

    /// Waits for more of the body (after [`body_ready`](Self::body_ready)
    /// gave `None` and the body is not done).
    pub async fn body_more(
        &mut self,
        body: &mut BodyReader,
        timeout: Option<Duration>,
    ) -> Result<(), String> {
        let filled = match timeout {
            Some(t) => tokio::time::timeout(t, self.fill())
                .await
                .map_err(|_| format!("silent for {t:?}"))?,
            None => self.fill().await,
        };
        match filled {
            Err(e) => Err(e.to_string()),
            Ok(0) if body.framing == BodyFraming::UntilClose => {
                body.done = true;
                Ok(())
            }
            Ok(0) => Err("closed by the upstream before the end of the body".into()),
            Ok(_) => Ok(()),
        }
    }

    /// The body's next step: bytes already received, else [`Next::Idle`]
    /// once before each wait for more (within `timeout`), or the end.
    /// Both users drive a body with it (the proxy's relay to its client,
    /// the front's stream of an answer to HTTP/2), so the order of those
    /// steps lives here once; only what they do with the bytes differs.
    pub async fn body_next(
        &mut self,
        body: &mut BodyReader,
        timeout: Option<Duration>,
    ) -> Result<Next, String> {
        loop {
            if let Some(span) = self.body_ready(body)? {
                body.idle = false;
                return Ok(Next::Data(span));
            }
            if body.is_done() {
                return Ok(Next::End);
            }
            if !body.idle {
                body.idle = true;
                return Ok(Next::Idle);
            }
            body.idle = false;
            self.body_more(body, timeout).await?;
        }
    }
}

/// One `recv(2)` into the spare capacity of `buf`.
fn read_into(fd: RawFd, buf: &mut Vec<u8>) -> io::Result<usize> {
    let spare = buf.spare_capacity_mut();
    // SAFETY: writes at most `spare.len()` bytes into the spare capacity,
    // which the length then covers only as far as the kernel wrote.
    let rc = unsafe { libc::recv(fd, spare.as_mut_ptr().cast(), spare.len(), 0) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = rc as usize;
    // SAFETY: the kernel initialised `n` bytes past the old length.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

impl BodyReader {
    /// The whole body has been handed out.
    pub fn is_done(&self) -> bool {
        self.done
    }
}
