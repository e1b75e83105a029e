//! The health probe (`--health-path`): a `GET` or `HEAD` of one exact path
//! answered by the event loop itself, without a thread, the GIL or the
//! application, so a load balancer or Kubernetes probe sees whether the
//! worker's loop is alive even while every thread is busy. It answers
//! `200 ok`, and `503 draining` (with `Connection: close`) once the worker
//! is stopping, so the balancer stops sending new requests before the
//! worker goes. Probes are not counted as requests (`--max-requests`).
//! Which heads are probes is the HTTP ring's rule (`http::conn::is_probe`).

use std::time::Instant;

use super::EventLoop;
use crate::conn::Phase;
use qiao_http::date::DATE_LEN;
use qiao_http::response::simple_response;

/// Bytes of the probe answer buffer reserved up front.
const PROBE_RESPONSE_BYTES: usize = 192;

impl EventLoop {
    /// Answers the probe whose head is complete at the front of the
    /// connection's buffer, then goes on with the connection (or closes
    /// it after `503`, or when the client asked to).
    pub(super) fn answer_probe(&mut self, idx: usize) {
        let mut date = [0u8; DATE_LEN];
        date.copy_from_slice(self.dates.get());
        let draining = self.shared.draining() || self.drain_until.is_some();
        let keepalive = self.config.keepalive;
        let Some(conn) = self.conns[idx].as_mut() else {
            return;
        };
        let method = &conn.head.method;
        let is_head = &conn.buf[conn.start + method.start..conn.start + method.end] == b"HEAD";
        let keep = conn.head.keep_alive && !draining;
        let (status, message) = if draining {
            (503, "draining")
        } else {
            (200, "ok")
        };
        let mut msg = Vec::with_capacity(PROBE_RESPONSE_BYTES);
        simple_response(&mut msg, status, message, &date, keep, is_head);
        let head_len = conn.head_len;
        conn.consume(head_len);
        conn.phase = Phase::Head { started: false };
        conn.deadline = Instant::now() + keepalive;
        // Written as far as the socket takes it now; a client that does
        // not read gets the rest from the backlog, and is not read further.
        let sent = self.send_now(idx, &msg);
        if !sent {
            self.close(idx);
        } else if !keep {
            self.close_after_response(idx);
        }
    }
}
