//! A request's way out of the loop and back, as the serving side sees it:
//! [`OpenJob`] (what an [`Exchange`] borrows, owned, so a service can keep
//! it across `await`s), [`Done`] (the served connection on its way back)
//! and [`DoneSink`] (how a job served elsewhere is sent back). The loop's
//! own side (taking a job, putting it back) is `event_loop::job`; this
//! module depends on no part of the loop, so the native services
//! (`native_service`) can name these types without a cycle.

use std::sync::Arc;
use std::time::Duration;

use crate::body::BodyReader;
use crate::conn::Conn;
use crate::heartbeat::Heartbeat;
use crate::listener::ListenerInfo;
use crate::output::Output;
use crate::service::{Exchange, Outcome, Serve};
use qiao_http::date::DATE_LEN;
use qiao_http::BodyDecoder;

/// A served request on its way back to the loop. Its response may still
/// be in `out` ([`Done::pending`]): it is written ([`Done::flush_nowait`])
/// before the connection goes back.
pub struct Done {
    pub(crate) idx: usize,
    pub(crate) conn: Box<Conn>,
    pub(crate) out: Output,
    pub(crate) keep: bool,
    pub(crate) decoder: BodyDecoder,
    /// The app's reads went to the socket: it may hold more.
    pub(crate) read_socket: bool,
}

/// A job being served: what an [`Exchange`] borrows, owned, so a service
/// can keep it across `await`s ([`NativeService::spawn`](crate::native_service::NativeService::spawn)).
pub struct OpenJob {
    pub(crate) idx: usize,
    pub(crate) conn: Box<Conn>,
    pub(crate) base: usize,
    pub(crate) body: BodyReader,
    pub(crate) out: Output,
    pub(crate) date: [u8; DATE_LEN],
    pub(crate) info: Arc<ListenerInfo>,
    pub(crate) io_timeout: Duration,
}

impl OpenJob {
    /// The request and its connection as a service sees them.
    pub fn exchange(&mut self) -> Exchange<'_> {
        Exchange {
            head: &self.conn.head,
            base: self.base,
            body: &mut self.body,
            out: &mut self.out,
            peer: &self.conn.peer,
            listener: &self.info,
            date: &self.date,
        }
    }

    /// The client's connection (its socket is non-blocking).
    pub fn wire(&self) -> &crate::wire::Wire {
        &self.conn.wire
    }

    /// Longest stall allowed writing the response.
    pub fn io_timeout(&self) -> Duration {
        self.io_timeout
    }

    pub(crate) fn serve(mut self, serve: &mut dyn Serve, heartbeat: Option<&Heartbeat>) -> Done {
        if let Some(hb) = heartbeat {
            let (b, h) = (self.base, &self.conn.head);
            hb.begin(
                &self.body.buffer()[b + h.method.start..b + h.method.end],
                &self.body.buffer()[b + h.target.start..b + h.target.end],
            );
        }
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            serve.serve(&mut self.exchange())
        }))
        .unwrap_or_else(|_| {
            log::error!("internal error while serving a request; connection closed");
            Outcome::Close
        });
        if let Some(hb) = heartbeat {
            hb.end();
        }
        self.finish(outcome)
    }

    /// The request is over: the connection on its way back to the loop.
    pub fn finish(self, outcome: Outcome) -> Done {
        let OpenJob {
            idx,
            mut conn,
            body,
            out,
            ..
        } = self;
        let keep = outcome == Outcome::KeepAlive && !out.failed() && !body.continue_pending();
        let read_socket = body.read_socket();
        let (buf, pos, decoder, body_error) = body.into_parts();
        conn.buf = buf;
        conn.start = 0;
        conn.consume(pos);
        conn.served += 1;
        Done {
            idx,
            conn,
            out,
            keep: keep && body_error.is_none(),
            decoder,
            read_socket,
        }
    }
}

impl Done {
    /// Whether response bytes still wait to be written.
    pub fn pending(&self) -> bool {
        self.out.pending()
    }

    /// Writes what is pending as far as the socket takes it without
    /// waiting; true when nothing is left to write (sent, or failed).
    pub(crate) fn flush_nowait(&mut self) -> bool {
        match self.out.flush_nowait() {
            Ok(all) => all,
            Err(_) => {
                self.keep = false;
                true
            }
        }
    }
}

/// Where a job served asynchronously sends its [`Done`]: the pool's
/// returned connections, and the loop's waker so the leader takes it back.
#[derive(Clone)]
pub struct DoneSink {
    pub(crate) returns: Arc<std::sync::Mutex<Vec<Done>>>,
    pub(crate) waker: Arc<mio::Waker>,
}

impl DoneSink {
    pub fn new(returns: Arc<std::sync::Mutex<Vec<Done>>>, waker: Arc<mio::Waker>) -> Self {
        DoneSink { returns, waker }
    }

    /// Hands a served connection back to the loop. Only the first of a
    /// batch wakes it: the leader takes the whole batch at once, so while
    /// the list is not empty a wake-up is already on its way.
    pub fn send(&self, done: Done) {
        let first = {
            let mut returns = self.returns.lock().unwrap_or_else(|e| e.into_inner());
            returns.push(done);
            returns.len() == 1
        };
        if first {
            let _ = self.waker.wake();
        }
    }
}
