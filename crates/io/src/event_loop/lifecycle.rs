//! The end of a connection's life and the loop's timers: parking idle
//! connections (their buffer back to the pool), refusing a request,
//! closing with a lingering read, the deadline sweep, graceful draining and
//! shutdown. A child of `event_loop`, so it works on the loop's own state.

use std::mem;
use std::time::Instant;

use mio::{Interest, Token};

use super::{
    EventLoop, BUFFER_POOL_SIZE, CONN_BASE, DRAIN_IDLE_GRACE, LINGER_TIMEOUT, MAX_POOLED_BUFFER,
};
use crate::conn::Phase;
use qiao_http::date::DATE_LEN;
use qiao_http::response::simple_response;
use qiao_http::ParseError;

impl EventLoop {
    /// An idle connection gives its empty buffer back to the pool, so
    /// thousands of keep-alive connections cost no buffer memory.
    pub(super) fn park(&mut self, idx: usize) {
        let Some(conn) = self.conns[idx].as_mut() else {
            return;
        };
        if conn.buf.is_empty() && matches!(conn.phase, Phase::Head { started: false }) {
            let buf = mem::take(&mut conn.buf);
            self.recycle(buf);
        }
    }

    pub(super) fn recycle(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() > 0
            && buf.capacity() <= MAX_POOLED_BUFFER
            && self.pool.len() < BUFFER_POOL_SIZE
        {
            buf.clear();
            self.pool.push(buf);
        }
    }

    /// Answers a request the HTTP ring refused, then closes.
    pub(super) fn refuse(&mut self, idx: usize, e: ParseError) {
        self.respond_and_close(idx, e.status(), e.message());
    }

    pub(super) fn respond_and_close(&mut self, idx: usize, status: u16, message: &str) {
        let mut date = [0u8; DATE_LEN];
        date.copy_from_slice(self.dates.get());
        if self.conns[idx].is_none() {
            return;
        }
        let mut msg = Vec::with_capacity(256);
        simple_response(&mut msg, status, message, &date, false, false);
        if self.send_now(idx, &msg) {
            self.close_after_response(idx);
        } else {
            self.close(idx);
        }
    }

    /// Writes an answer of the loop's own (an error, a health probe) as
    /// far as the socket takes it now; the rest waits in the connection's
    /// backlog, behind what is there already, and the connection waits
    /// for writability. False when the write failed.
    pub(super) fn send_now(&mut self, idx: usize, msg: &[u8]) -> bool {
        let Some(conn) = self.conns[idx].as_mut() else {
            return false;
        };
        let n = if !conn.output_pending() {
            match conn.wire.writev_some(&[msg]) {
                Ok(n) => n,
                Err(_) => return false,
            }
        } else {
            0
        };
        if n < msg.len() {
            conn.backlog.push_copy(&msg[n..]);
            conn.deadline = Instant::now() + self.config.io_timeout;
            self.want_write(idx, true);
        }
        true
    }

    /// Registers the connection for writability too (`on`), or for
    /// reading only, when that changes.
    pub(super) fn want_write(&mut self, idx: usize, on: bool) {
        let Some(conn) = self.conns[idx].as_mut() else {
            return;
        };
        if conn.writable == on {
            return;
        }
        let interest = if on {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        // Re-registering re-arms the edge: writable now means an event now.
        if self
            .poll
            .registry()
            .reregister(conn.stream.source(), Token(CONN_BASE + idx), interest)
            .is_ok()
        {
            conn.writable = on;
        }
    }

    /// Writes what the connection's backlog holds, as far as the socket
    /// takes it. True when it is empty (written, or there was none); the
    /// connection is closed when a write fails.
    pub(super) fn write_backlog(&mut self, idx: usize) -> bool {
        let Some(conn) = self.conns[idx].as_mut() else {
            return false;
        };
        if !conn.output_pending() {
            return true;
        }
        let before = conn.backlog.len();
        let written = conn
            .backlog
            .write_nowait(&conn.wire)
            .and_then(|_| conn.wire.flush());
        match written {
            Err(_) => {
                self.close(idx);
                return false;
            }
            // Progress (under TLS, an emptied session counts too).
            Ok(flushed) if conn.backlog.len() < before || flushed => {
                conn.deadline = Instant::now() + self.config.io_timeout
            }
            Ok(_) => {}
        }
        if conn.output_pending() {
            self.want_write(idx, true);
            return false;
        }
        // Written: reading resumes where it stopped (the readable edges
        // that came meanwhile were not acted on).
        conn.drained = false;
        let last = std::mem::take(&mut conn.close_after_write);
        let deadline = self.idle_deadline(Instant::now());
        if let Some(conn) = self.conns[idx].as_mut() {
            conn.deadline = deadline;
        }
        self.want_write(idx, false);
        if last {
            self.close_after_response(idx);
        }
        true
    }

    /// When a connection idle from now on is closed.
    pub(super) fn idle_deadline(&self, now: Instant) -> Instant {
        let deadline = now + self.config.keepalive;
        if self.drain_until.is_some() {
            // Draining: an idle connection gets only the grace.
            deadline.min(now + DRAIN_IDLE_GRACE)
        } else {
            deadline
        }
    }

    /// Half-closes and lingers: the client gets our last response before
    /// the connection ends, even if it is still sending. With response
    /// bytes still to write, that happens once they are written.
    pub(super) fn close_after_response(&mut self, idx: usize) {
        let Some(conn) = self.conns[idx].as_mut() else {
            return;
        };
        if conn.output_pending() {
            conn.close_after_write = true;
            return;
        }
        conn.wire.shutdown_write();
        conn.phase = Phase::Linger;
        conn.deadline = Instant::now() + LINGER_TIMEOUT;
        conn.consume(conn.buf.len());
    }

    pub(super) fn close(&mut self, idx: usize) {
        let Some(mut conn) = self.conns.get_mut(idx).and_then(Option::take) else {
            return;
        };
        let _ = self.poll.registry().deregister(conn.stream.source());
        self.pairs.forget(idx, conn.pair_id);
        let buf = mem::take(&mut conn.buf);
        let adopted = conn.adopted;
        drop(conn);
        self.recycle(buf);
        self.free.push(idx);
        self.live -= 1;
        if let Some(m) = self.config.metrics.as_ref().filter(|_| !adopted) {
            m.connection_closed();
        }
        if self.accept_paused && !self.shared.stopping() {
            self.accept_paused = false;
            for li in 0..self.listeners.len() {
                self.accept(li);
            }
        }
    }

    /// Closes connections whose deadline passed; a half-received head is
    /// answered with 408 first.
    pub(super) fn sweep(&mut self, now: Instant) {
        if self.accept_paused && self.live < self.config.max_connections {
            self.accept_paused = false;
            for li in 0..self.listeners.len() {
                self.accept(li);
            }
        }
        for idx in 0..self.conns.len() {
            let Some(conn) = self.conns[idx].as_ref() else {
                continue;
            };
            if conn.deadline > now {
                continue;
            }
            if conn.output_pending() {
                // The client took nothing for --io-timeout: the response
                // stays visibly cut.
                self.close(idx);
                continue;
            }
            match conn.phase {
                Phase::Head { started: true } => {
                    self.respond_and_close(idx, 408, "timed out reading the request head")
                }
                Phase::Body { .. } => {
                    self.respond_and_close(idx, 408, "timed out reading the request body")
                }
                Phase::Linger => self.close(idx),
                // Complete and waiting for a thread: the wait is ours.
                Phase::Ready => {}
                _ => {
                    conn.wire.shutdown_write();
                    self.close(idx);
                }
            }
        }
    }

    /// Stops listening; idle connections get `DRAIN_IDLE_GRACE` to send
    /// a last request, the others are answered with `Connection: close`.
    pub(super) fn start_drain(&mut self) {
        for l in self.listeners.iter_mut() {
            let _ = self.poll.registry().deregister(l.source());
        }
        self.listeners.clear();
        let grace = Instant::now() + DRAIN_IDLE_GRACE;
        for conn in self.conns.iter_mut().flatten() {
            if matches!(conn.phase, Phase::Head { started: false })
                && !conn.output_pending()
                && conn.deadline > grace
            {
                conn.deadline = grace;
            }
        }
    }

    /// Stops listening and closes every connection in the loop; those out
    /// in a job are closed when they come back.
    pub(super) fn shutdown(&mut self) {
        self.closed = true;
        self.ready.clear();
        for l in self.listeners.iter_mut() {
            let _ = self.poll.registry().deregister(l.source());
        }
        self.listeners.clear();
        for idx in 0..self.conns.len() {
            self.close(idx);
        }
        self.shared.set_finished();
    }
}
