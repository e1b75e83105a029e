//! One client connection between requests: its socket, its read buffer
//! and where it is in the request cycle ([`Phase`]), with the deadline
//! that applies to that phase.

use std::time::Instant;

use super::backlog::Backlog;
use super::listener::{PeerInfo, Stream};
use super::wire::Wire;
use qiao_http::RequestHead;

pub(crate) use qiao_http::conn::Phase;

/// A connection owned by the event loop.
pub(crate) struct Conn {
    pub stream: Stream,
    /// What the connection's bytes go through: the socket, or its TLS
    /// session (handed over by the front after the handshake).
    pub wire: Wire,
    pub peer: PeerInfo,
    /// Index of the listener it was accepted on.
    pub listener: usize,
    /// Received bytes; the unconsumed part is `buf[start..]`.
    pub buf: Vec<u8>,
    pub start: usize,
    pub phase: Phase,
    /// The parsed head when `phase` is `Body` or `Ready`; ranges index
    /// `buf[start..]`.
    pub head: RequestHead,
    pub head_len: usize,
    pub deadline: Instant,
    /// Requests served on this connection.
    pub served: u64,
    /// The last read found the socket empty and no readiness event came
    /// since: reading now would only return `EAGAIN` (the registration is
    /// edge-triggered, so new bytes bring an event). Saves a system call
    /// per keep-alive request.
    pub drained: bool,
    /// A readiness event said the peer closed its side (or the socket
    /// failed): reads must go on until they return the end.
    pub read_closed: bool,
    /// An internal connection of the protocol front (`io::inbox`): the
    /// front counts its client in the metrics, not the loop.
    pub adopted: bool,
    /// Response bytes the client has not taken yet. While there are any,
    /// the connection is registered for writability and is not read
    /// (backpressure); `deadline` bounds a stall.
    pub backlog: Backlog,
    /// Once the backlog is written: half-close and linger (the response
    /// was the last).
    pub close_after_write: bool,
    /// The registration includes writability.
    pub writable: bool,
    /// Held for the connection's life: what the front counts it by
    /// (`--max-connections`, draining) when it handed the connection over.
    pub held: Option<Box<dyn Send>>,
    /// The name the front injects this connection's requests under
    /// (`io::inbox`), if it does.
    pub pair_id: Option<u64>,
}

impl Conn {
    pub(crate) fn new(stream: Stream, peer: PeerInfo, listener: usize, deadline: Instant) -> Self {
        let wire = Wire::plain(stream.fd());
        Conn {
            stream,
            wire,
            peer,
            listener,
            buf: Vec::new(),
            start: 0,
            phase: Phase::Head { started: false },
            head: RequestHead::default(),
            head_len: 0,
            deadline,
            served: 0,
            drained: false,
            read_closed: false,
            adopted: false,
            backlog: Backlog::default(),
            close_after_write: false,
            writable: false,
            held: None,
            pair_id: None,
        }
    }

    /// Response bytes wait to be written: the backlog's, or encrypted
    /// ones a TLS session holds. Until written, the connection is not read.
    pub(crate) fn output_pending(&self) -> bool {
        !self.backlog.is_empty() || self.wire.tls_pending()
    }

    /// Marks `n` pending bytes consumed; an emptied buffer restarts at 0
    /// (and can go back to the pool).
    pub(crate) fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start >= self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Moves pending bytes to the front when the consumed prefix is large,
    /// so the buffer does not grow with every pipelined request.
    pub(crate) fn compact(&mut self) {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }
}
