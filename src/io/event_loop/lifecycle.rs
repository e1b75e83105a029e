//! The end of a connection's life and the loop's timers: parking idle
//! connections (their buffer back to the pool), refusing a request,
//! closing with a lingering read, the deadline sweep, graceful draining and
//! shutdown. A child of `event_loop`, so it works on the loop's own state.

use std::mem;
use std::time::Instant;

use super::{EventLoop, BUFFER_POOL_SIZE, DRAIN_IDLE_GRACE, LINGER_TIMEOUT, MAX_POOLED_BUFFER};
use crate::http::date::DATE_LEN;
use crate::http::response::simple_response;
use crate::http::ParseError;
use crate::io::conn::Phase;
use crate::io::sock;

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
        let Some(conn) = self.conns[idx].as_mut() else {
            return;
        };
        let mut msg = Vec::with_capacity(256);
        simple_response(&mut msg, status, message, &date, false, false);
        let mut wait = |fd, interest, deadline| sock::wait(fd, interest, deadline);
        // A few hundred bytes into an empty socket buffer: this does not block.
        let _ = sock::write_all_vectored(conn.fd, &[&msg], self.config.io_timeout, &mut wait);
        self.close_after_response(idx);
    }

    /// Half-closes and lingers: the client gets our last response before
    /// the connection ends, even if it is still sending.
    pub(super) fn close_after_response(&mut self, idx: usize) {
        let Some(conn) = self.conns[idx].as_mut() else {
            return;
        };
        sock::shutdown_write(conn.fd);
        conn.phase = Phase::Linger;
        conn.deadline = Instant::now() + LINGER_TIMEOUT;
        conn.consume(conn.buf.len());
    }

    pub(super) fn close(&mut self, idx: usize) {
        let Some(mut conn) = self.conns.get_mut(idx).and_then(Option::take) else {
            return;
        };
        let _ = self.poll.registry().deregister(conn.stream.source());
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
                    sock::shutdown_write(conn.fd);
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
            if matches!(conn.phase, Phase::Head { started: false }) && conn.deadline > grace {
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
