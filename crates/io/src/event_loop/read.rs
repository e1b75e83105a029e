//! Reading a connection and advancing it: the bytes it received go
//! through the HTTP ring's connection state machine (`qiao_http::conn`),
//! and the loop does what each step says (answer a probe, refuse, hand
//! h2c over, close) until a request is ready or the socket is empty. A
//! child of `event_loop`, so it works on the loop's own state.

use std::io;
use std::time::Instant;

use super::{front, trust, EventLoop, Step, FIRST_READ_BUFFER, MIN_READ, READ_CHUNK};
use crate::conn::{Conn, Phase};
use qiao_http::conn::{advance, Rules, Step as Advance};

impl EventLoop {
    /// Advances a connection as far as the received bytes allow, reading
    /// until the socket has nothing more (the registration is edge-triggered).
    pub(super) fn progress(&mut self, idx: usize) -> Step {
        loop {
            let Some(conn) = self.conns.get_mut(idx).and_then(Option::as_mut) else {
                return Step::Closed;
            };
            if conn.output_pending() {
                // Backpressure: nothing more is read or parsed until the
                // client has taken what it was sent.
                if !self.write_backlog(idx) {
                    return match self.conns[idx] {
                        Some(_) => Step::Wait,
                        None => Step::Closed,
                    };
                }
                continue;
            }
            let rules = Rules {
                limits: &self.config.limits,
                uwsgi: self.infos[conn.listener].uwsgi,
                // Asked only where the answer matters (the hot path builds
                // these rules at every step).
                h2c: conn.served == 0
                    && matches!(conn.phase, Phase::Head { started: false })
                    && front::h2c_candidate(
                        &self.inbox,
                        &self.infos,
                        conn.listener,
                        &conn.stream,
                        &conn.wire,
                    ),
                proxy_allowed: matches!(conn.phase, Phase::Proxy)
                    && self.config.proxy_allow.admits(conn.peer.ip),
                health_path: self.config.health_path.as_deref(),
            };
            let first = conn.served == 0;
            let input = &conn.buf[conn.start..];
            match advance(&mut conn.phase, input, first, &rules, &mut conn.head) {
                Advance::NeedMore => {}
                Advance::Ready => return Step::Ready,
                Advance::HeadStarted => {
                    conn.deadline = Instant::now() + self.config.header_timeout;
                    continue;
                }
                Advance::Proxy { len, client } => {
                    if let Some(c) = client {
                        trust::proxied(&mut conn.peer, &c, &self.config.trusted);
                    }
                    conn.consume(len);
                    continue;
                }
                Advance::Head { len, body } => {
                    conn.head_len = len;
                    if body {
                        conn.deadline = Instant::now() + self.config.io_timeout;
                    }
                    continue;
                }
                Advance::Probe { len } => {
                    conn.head_len = len;
                    self.answer_probe(idx);
                    continue;
                }
                Advance::H2c => {
                    self.hand_off_h2c(idx);
                    return Step::Closed;
                }
                Advance::Refuse(e) => {
                    self.refuse(idx, e);
                    continue;
                }
                Advance::Discard(n) => {
                    conn.start += n;
                    conn.consume(0);
                    continue;
                }
                Advance::Close => {
                    self.close(idx);
                    return Step::Closed;
                }
            }
            if self.conns[idx].as_ref().is_some_and(|c| c.drained) {
                self.park(idx);
                return Step::Wait;
            }
            match self.fill(idx) {
                Ok(0) => {
                    if matches!(
                        self.conns[idx].as_ref().map(|c| &c.phase),
                        Some(Phase::Body { .. })
                    ) {
                        // Half-closed before the announced body was complete:
                        // say so (the client may still read) rather than vanish.
                        self.respond_and_close(idx, 400, "incomplete request body");
                    }
                    self.close(idx);
                    return Step::Closed;
                }
                Ok(_) => {
                    let io_timeout = self.config.io_timeout;
                    if let Some(conn) = self.conns[idx].as_mut() {
                        if matches!(conn.phase, Phase::Body { .. } | Phase::Drain { .. }) {
                            // The I/O timeout bounds a stall, not the transfer.
                            conn.deadline = Instant::now() + io_timeout;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.park(idx);
                    return Step::Wait;
                }
                Err(_) => {
                    self.close(idx);
                    return Step::Closed;
                }
            }
        }
    }

    /// Connection `idx` (if in the loop) with a buffer ready for more
    /// bytes: a pooled one if it had none, the consumed part dropped.
    pub(super) fn with_buffer(&mut self, idx: usize) -> Option<&mut Conn> {
        let conn = self.conns[idx].as_mut()?;
        if conn.buf.capacity() == 0 {
            conn.buf = self
                .pool
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(FIRST_READ_BUFFER));
        }
        conn.compact();
        Some(conn)
    }

    /// One non-blocking read into the connection's buffer (taking a pooled
    /// buffer if it has none). `Ok(0)`: the client closed.
    fn fill(&mut self, idx: usize) -> io::Result<usize> {
        let conn = self.with_buffer(idx).expect("live connection");
        // Read into the room there is; a full buffer grows to READ_CHUNK.
        let spare = conn.buf.capacity() - conn.buf.len();
        let want = if spare >= MIN_READ { spare } else { READ_CHUNK };
        let read = conn.wire.read_emptying(&mut conn.buf, want);
        // An emptied socket, as `WouldBlock` says it is, waits for its next
        // readiness edge. Not so an end of stream the same event
        // announced: only a read sees that, and no new event will come for
        // it.
        conn.drained = !conn.read_closed
            && match &read {
                Ok((_, emptied)) => *emptied,
                Err(e) => e.kind() == io::ErrorKind::WouldBlock,
            };
        read.map(|(n, _)| n)
    }
}
