//! The proxy's requests as tasks of the native runtime: every request
//! is taken over from the serving thread and served to the end as a task
//! of the worker's current-thread tokio runtime
//! ([`NativeRuntime`](crate::runtime::NativeRuntime)), which
//! multiplexes any number of them, with the upstream connections' and the
//! client's sockets (the client's through `AsyncFd` while the event loop
//! has the connection out). The runtime runs on the thread that leads the
//! loop, while it waits, so a worker proxies like an event-driven server:
//! one thread, no thread per request in flight, no switch between threads
//! per request, a slow client or upstream holding no thread.
//!
//! This module picks the upstream, sends the request (the client's body
//! read without blocking, as it arrives, only once a connection is open,
//! so a request whose upstream cannot be reached goes to the next one with
//! its body untouched) and keeps the idle connections; `relay.rs` sends
//! the response back. Pooled connections carry only requests without a
//! body: one the upstream closed meanwhile is found out when the request
//! fails on it, and such a request is sent again on a new connection.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{method, Failure, NativeProxy, CHUNK_SIZE, STALE_RETRIES};
use crate::runtime::{Client, JobTask};
use crate::upconn::{ReadFailure, UpConn};
use crate::upstream::Verdict;
use crate::{outcome, plain_buffered_with, request_facts};
use qiao_http::path::Escape;
use qiao_http::response::{push_chunk, BodyMode, RequestFacts, CONTINUE, LAST_CHUNK};
use qiao_http::upstream_head::UpstreamHead;
use qiao_http::Framing;
use qiao_io::body::BodyError;
use qiao_io::handoff::{DoneSink, OpenJob};
use qiao_io::service::{Exchange, Outcome};

/// Idle connections kept per upstream.
pub(super) const POOL_MAX_IDLE: usize = 256;
/// An idle connection older than this is closed rather than reused: below
/// the upstream's own keep-alive timeout (Qiao's default is 5 s).
pub(super) const POOL_IDLE: Duration = Duration::from_secs(2);

/// Sends a short plain-text answer (`status`, `reason`, `text`) the proxy
/// makes itself (502, 504, a refused path): what to do with the
/// connection, the status and the body bytes sent.
pub(super) async fn send_plain(
    ex: &mut Exchange<'_>,
    facts: RequestFacts,
    client: &mut Client,
    (status, reason, text): (u16, &str, &str),
) -> (Outcome, u16, u64) {
    let plan = plain_buffered_with(ex, facts, status, reason, text, &[]);
    let mut buf = std::mem::take(ex.out.buffer());
    let ok = client.write_all(&mut buf).await;
    *ex.out.buffer() = buf;
    if !ok {
        return (Outcome::Close, status, 0);
    }
    let body = if plan.mode == BodyMode::None {
        0
    } else {
        text.len() as u64
    };
    (outcome(ex, &plan), status, body)
}

/// Idle connections of each upstream, with when they idled.
pub(super) type IdlePool = Mutex<Vec<Vec<(UpConn, Instant)>>>;

impl NativeProxy {
    /// Takes the request over to the native runtime.
    pub(super) fn spawn_job(self: Arc<Self>, job: OpenJob, sink: DoneSink) -> Option<OpenJob> {
        let runtime = self.runtime.clone();
        runtime.spawn(async move {
            let mut task = JobTask::new(job, sink);
            let outcome = self.serve_job(task.job()).await;
            task.finish(outcome);
        });
        None
    }

    async fn serve_job(&self, job: &mut OpenJob) -> Outcome {
        let mut client = Client::new(job.wire().clone(), job.io_timeout());
        let mut ex = job.exchange();
        // Taken now: reading the body may reuse the head's buffer.
        let facts = request_facts(&ex);
        let started = self.recorder.start(&ex);
        let (outcome, status, body) = self.answer(&mut ex, facts, &mut client).await;
        self.recorder
            .done(started, status, ex.body.received(), body);
        outcome
    }

    /// Answers the request: what to do with the connection, the status and
    /// the body bytes sent (without framing).
    async fn answer(
        &self,
        ex: &mut Exchange<'_>,
        facts: RequestFacts,
        client: &mut Client,
    ) -> (Outcome, u16, u64) {
        let (status, reason, text) = match self.head_of_answer(ex, client).await {
            Ok((index, head, conn)) => {
                return self.relay(ex, facts, client, index, head, conn).await
            }
            Err(Some(answer)) => answer,
            // The client's body could not be read: the client's fault.
            Err(None) => return (Outcome::Close, 400, 0),
        };
        send_plain(ex, facts, client, (status, reason, &text)).await
    }

    /// The upstream's response head; or the plain answer to send instead,
    /// or None if the client's body failed.
    async fn head_of_answer(
        &self,
        ex: &mut Exchange<'_>,
        client: &mut Client,
    ) -> Result<(usize, UpstreamHead, UpConn), Option<(u16, &'static str, String)>> {
        if method(ex) == b"CONNECT" {
            return Err(Some((
                501,
                "Not Implemented",
                "CONNECT is not supported\n".into(),
            )));
        }
        let rest = match self.rest(ex) {
            Ok(rest) => rest,
            Err(Escape::AboveRoot) => {
                let text = "Bad Request: the path climbs above the root\n";
                return Err(Some((400, "Bad Request", text.into())));
            }
            // Not below the route once resolved: as if it had not matched.
            Err(Escape::OutsidePrefix) => {
                return Err(Some((404, "Not Found", "Not Found\n".into())));
            }
        };
        let has_body = ex.head.framing != Framing::Empty;
        let mut tried = Vec::new();
        let mut failures = String::new();
        while let Some(index) = self.upstreams.acquire(&tried) {
            tried.push(index);
            match self.exchange(ex, client, index, &rest).await {
                Ok((head, conn)) => return Ok((index, head, conn)),
                Err(Failure::Client(e)) => {
                    self.upstreams.release(index, Verdict::Neither);
                    log::warn!("proxy: reading the request body failed: {e}");
                    return Err(None);
                }
                Err(f) => match self.failed(index, &f, &mut failures, method(ex), has_body) {
                    super::Next::Retry => {}
                    super::Next::Stop => break,
                    super::Next::Answer(status, reason, text) => {
                        return Err(Some((status, reason, text)))
                    }
                },
            }
        }
        Err(Some((502, "Bad Gateway", super::bad_gateway(&failures))))
    }

    /// Sends the request to upstream `index` and reads its response head.
    async fn exchange(
        &self,
        ex: &mut Exchange<'_>,
        client: &mut Client,
        index: usize,
        rest: &[u8],
    ) -> Result<(UpstreamHead, UpConn), Failure> {
        let server = &self.upstreams.servers[index];
        let framing = ex.head.framing;
        let has_body = framing != Framing::Empty;
        // The request head is built in the output buffer, which is free
        // until the response head is written there.
        let mut head = std::mem::take(ex.out.buffer());
        self.write_request(ex, server, rest, framing, &mut head);
        let to_head = method(ex) == b"HEAD";
        let mut result = Err(Failure::Lost("no attempt".into()));
        for attempt in 0..=STALE_RETRIES {
            // A request with a body is not sent twice: a new connection.
            let pooled = if attempt == 0 && !has_body {
                self.take_idle(index)
            } else {
                None
            };
            let mut conn = match pooled {
                Some(c) => c,
                None => match UpConn::open(&self.addrs[index], self.opts.connect_timeout).await {
                    Ok(c) => c,
                    Err(e) => {
                        result = Err(Failure::Connect(format!("cannot connect: {e}")));
                        break;
                    }
                },
            };
            let sent = match conn.send(&head).await {
                Ok(()) if has_body => self.upload(ex, client, &mut conn, framing).await,
                Ok(()) => Ok(()),
                Err(e) => Err(Failure::Lost(format!("connection lost: {e}"))),
            };
            result = match sent {
                Err(f) => Err(f),
                Ok(()) => match conn.read_head(to_head, Some(self.opts.timeout)).await {
                    Ok(resp) => Ok((resp, conn)),
                    // Closed by the upstream while idle: once more, on a new one.
                    Err(ReadFailure::Closed {
                        answered: false, ..
                    }) if conn.reused && attempt < STALE_RETRIES => continue,
                    Err(ReadFailure::Closed { why, .. }) => {
                        Err(Failure::Lost(format!("connection lost: {why}")))
                    }
                    Err(ReadFailure::Invalid(e)) => Err(Failure::Lost(e.to_string())),
                    Err(ReadFailure::Timeout) => Err(Failure::Timeout),
                },
            };
            break;
        }
        head.clear();
        *ex.out.buffer() = head;
        result
    }

    /// Sends the client's body to the upstream as it arrives: as it came
    /// with a `Content-Length`, else in chunks of what each read got.
    async fn upload(
        &self,
        ex: &mut Exchange<'_>,
        client: &mut Client,
        conn: &mut UpConn,
        framing: Framing,
    ) -> Result<(), Failure> {
        if ex.body.continue_pending() {
            // Sent here, not by the body reader, which cannot wait.
            ex.body.cancel_continue();
            if !client.write_all(&mut CONTINUE.to_vec()).await {
                return Err(Failure::Client("cannot send 100 Continue".into()));
            }
        }
        let chunked = framing == Framing::Chunked;
        let mut piece = Vec::with_capacity(CHUNK_SIZE);
        let mut framed = Vec::new();
        let mut nowait = |_, _, _| Err(std::io::ErrorKind::WouldBlock.into());
        loop {
            piece.clear();
            let (ended, wait) = match ex.body.read(&mut piece, CHUNK_SIZE, &mut nowait) {
                Ok(0) => (true, false),
                Ok(_) => (false, false),
                Err(BodyError::Io(std::io::ErrorKind::WouldBlock)) => (false, true),
                Err(e) => return Err(Failure::Client(e.to_string())),
            };
            let mut out: &[u8] = &piece;
            if chunked {
                framed.clear();
                push_chunk(&piece, &mut framed);
                if ended {
                    framed.extend_from_slice(LAST_CHUNK);
                }
                out = &framed;
            }
            if !out.is_empty() {
                match tokio::time::timeout(self.opts.timeout, conn.send(out)).await {
                    Err(_) => return Err(Failure::Timeout),
                    Ok(Err(e)) => return Err(Failure::Lost(format!("connection lost: {e}"))),
                    Ok(Ok(())) => {}
                }
            }
            if ended {
                return Ok(());
            }
            if wait && !client.readable().await {
                let e = "timed out reading the request body";
                return Err(Failure::Client(e.into()));
            }
        }
    }

    fn take_idle(&self, index: usize) -> Option<UpConn> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = &mut idle[index];
        // One clock reading per call, not one per idle connection.
        let now = Instant::now();
        while let Some((mut conn, since)) = list.pop() {
            if now.saturating_duration_since(since) < POOL_IDLE && conn.is_quiet() {
                conn.reused = true;
                return Some(conn);
            }
        }
        None
    }

    pub(super) fn give_back(&self, index: usize, conn: UpConn) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = &mut idle[index];
        let now = Instant::now();
        list.retain(|(_, since)| now.saturating_duration_since(*since) < POOL_IDLE);
        if list.len() < POOL_MAX_IDLE {
            list.push((conn, now));
        }
    }
}
