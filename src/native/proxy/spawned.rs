//! The asynchronous path of the proxy: requests without a body (most of
//! them: GET, HEAD, DELETE...) are taken over from the serving thread and
//! served to the end as tasks of one current-thread tokio runtime per
//! worker ([`ProxyRuntime`]), which multiplexes any number of them: the
//! upstream connections are its tasks too, and the client's socket is
//! written through `AsyncFd` while the event loop has the connection out.
//! The runtime ([`NativeRuntime`](crate::native::runtime::NativeRuntime))
//! runs on the thread that leads the loop, while it waits, so a worker
//! proxies like an event-driven server (one thread, no thread per request
//! in flight, no switch between threads per request).
//!
//! Requests with a body keep the blocking path (`proxy.rs`), where the
//! serving thread reads the client's body as hyper sends it. The
//! responses are the same either way; connections here are pooled per
//! route and upstream, shared by all requests (one thread uses them).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::conns::POOL_IDLE;
use super::upconn::{ReadFailure, UpConn};
use super::{method, Failure, NativeProxy, HOP_BY_HOP, STALE_RETRIES};
use crate::http::response::{chunk_header, BodyMode, Plan, CHUNK_END, LAST_CHUNK};
use crate::http::upstream_head::{BodyFraming, UpstreamHead};
use crate::http::Framing;
use crate::io::event_loop::{DoneSink, OpenJob};
use crate::io::output::OUTPUT_FLUSH_BYTES;
use crate::io::service::{Exchange, Outcome};
use crate::native::runtime::{Client, JobTask};
use crate::native::{outcome, plain_buffered, start};

/// Idle connections kept per upstream for the native runtime's requests.
pub const POOL_MAX_IDLE: usize = 256;

/// Idle connections of each upstream, with when they idled.
pub type IdlePool = Mutex<Vec<Vec<(UpConn, Instant)>>>;

impl NativeProxy {
    /// Takes a request without a body over to the native runtime (None), or
    /// gives it back to be served on the calling thread.
    pub(super) fn spawn_job(self: Arc<Self>, job: OpenJob, sink: DoneSink) -> Option<OpenJob> {
        let mut job = job;
        if job.exchange().head.framing != Framing::Empty {
            return Some(job);
        }
        let runtime = self.runtime.clone();
        runtime.spawn(async move {
            let mut task = JobTask::new(job, sink);
            let outcome = self.serve_job(task.job()).await;
            task.finish(outcome);
        });
        None
    }

    async fn serve_job(&self, job: &mut OpenJob) -> Outcome {
        let mut client = Client::new(job.fd(), job.io_timeout());
        let t0 = self.metrics.as_ref().map(|m| {
            m.request_started();
            Instant::now()
        });
        let mut ex = job.exchange();
        let (outcome, status) = self.answer(&mut ex, &mut client).await;
        if let (Some(m), Some(t0)) = (&self.metrics, t0) {
            let micros = u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX);
            m.request_done(method(&ex), status, micros, 0, client.sent());
        }
        outcome
    }

    async fn answer(&self, ex: &mut Exchange<'_>, client: &mut Client) -> (Outcome, u16) {
        let (status, reason, text) = match self.head_of_answer(ex).await {
            Ok((index, head, conn)) => {
                return self.relay_async(ex, client, index, head, conn).await
            }
            Err(answer) => answer,
        };
        let plan = plain_buffered(ex, status, reason, &text, &[]);
        let mut buf = std::mem::take(ex.out.buffer());
        let ok = client.write_all(&mut buf).await;
        *ex.out.buffer() = buf;
        let done = if ok {
            outcome(ex, &plan)
        } else {
            Outcome::Close
        };
        (done, status)
    }

    /// The upstream's response head, or the plain answer to send instead.
    async fn head_of_answer(
        &self,
        ex: &mut Exchange<'_>,
    ) -> Result<(usize, UpstreamHead, UpConn), (u16, &'static str, String)> {
        if method(ex) == b"CONNECT" {
            return Err((501, "Not Implemented", "CONNECT is not supported\n".into()));
        }
        let retry_sent = super::IDEMPOTENT.contains(&method(ex));
        let mut tried = Vec::new();
        let mut failures = String::new();
        while let Some(index) = self.upstreams.acquire(&tried) {
            tried.push(index);
            match self.exchange_async(ex, index).await {
                Ok((head, conn)) => return Ok((index, head, conn)),
                Err(f) => match self.failed(index, &f, &mut failures, retry_sent) {
                    super::Next::Retry => {}
                    super::Next::Stop => break,
                    super::Next::Answer(status, reason, text) => {
                        return Err((status, reason, text))
                    }
                },
            }
        }
        Err((502, "Bad Gateway", super::bad_gateway(&failures)))
    }

    /// Sends the request to upstream `index` and reads its response head.
    async fn exchange_async(
        &self,
        ex: &mut Exchange<'_>,
        index: usize,
    ) -> Result<(UpstreamHead, UpConn), Failure> {
        let server = &self.upstreams.servers[index];
        // The request head is built in the output buffer, which is free
        // until the response head is written there.
        let mut head = std::mem::take(ex.out.buffer());
        self.write_request(ex, server, None, &mut head);
        let to_head = method(ex) == b"HEAD";
        let mut result = Err(Failure::Lost("no attempt".into()));
        for attempt in 0..=STALE_RETRIES {
            let pooled = if attempt == 0 {
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
            let sent = conn.send(&head).await;
            let got = match sent {
                Ok(()) => conn.read_head(to_head, self.opts.timeout).await,
                Err(e) => Err(ReadFailure::Closed {
                    answered: false,
                    why: e.to_string(),
                }),
            };
            result = match got {
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
            };
            break;
        }
        head.clear();
        *ex.out.buffer() = head;
        result
    }

    fn take_idle(&self, index: usize) -> Option<UpConn> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = &mut idle[index];
        // One clock reading per call, not one per idle connection.
        let now = Instant::now();
        while let Some((mut conn, since)) = list.pop() {
            if now.saturating_duration_since(since) < POOL_IDLE {
                conn.reused = true;
                return Some(conn);
            }
        }
        None
    }

    fn give_back(&self, index: usize, conn: UpConn) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = &mut idle[index];
        let now = Instant::now();
        list.retain(|(_, since)| now.saturating_duration_since(*since) < POOL_IDLE);
        if list.len() < POOL_MAX_IDLE {
            list.push((conn, now));
        }
    }

    /// Writes the client's response head: the status and reason phrase as
    /// the upstream sent them, its end-to-end fields (a `Content-Length`
    /// only if it frames the body). Returns the framing chosen.
    fn forward_head(&self, ex: &mut Exchange<'_>, raw: &[u8], head: &UpstreamHead) -> Plan {
        let field = |r: &std::ops::Range<usize>| &raw[r.clone()];
        let named_by_connection = |name: &[u8]| {
            head.fields.iter().any(|(n, v)| {
                field(n).eq_ignore_ascii_case(b"connection")
                    && field(v)
                        .split(|&b| b == b',')
                        .any(|t| t.trim_ascii().eq_ignore_ascii_case(name))
            })
        };
        let length_frames = matches!(head.framing, BodyFraming::Length(_) | BodyFraming::None);
        let fields: Vec<(&[u8], &[u8])> = head
            .fields
            .iter()
            .map(|(n, v)| (field(n), field(v)))
            .filter(|(n, _)| {
                !HOP_BY_HOP
                    .iter()
                    .any(|h| h.as_bytes().eq_ignore_ascii_case(n))
                    && (length_frames || !n.eq_ignore_ascii_case(b"content-length"))
                    && !named_by_connection(n)
            })
            .collect();
        let length = if length_frames {
            head.content_length
        } else {
            None
        };
        start(ex, head.status, field(&head.reason), &fields, length)
    }

    /// Sends the upstream's response to the client as it arrives.
    async fn relay_async(
        &self,
        ex: &mut Exchange<'_>,
        client: &mut Client,
        index: usize,
        head: UpstreamHead,
        mut conn: UpConn,
    ) -> (Outcome, u16) {
        let plan = self.forward_head(ex, conn.bytes(), &head);
        let mode = plan.mode;
        let mut body = conn.body(&head);
        let mut buf = std::mem::take(ex.out.buffer());
        let upstream_timeout = self.opts.timeout;
        // Ok(true): complete; Ok(false): the client went away; Err: upstream.
        let result: Result<bool, String> = async {
            loop {
                let Some(span) = conn.body_ready(&mut body)? else {
                    if body.is_done() {
                        break;
                    }
                    if !client.write_all(&mut buf).await {
                        return Ok(false);
                    }
                    conn.body_more(&mut body, upstream_timeout).await?;
                    continue;
                };
                let data = &conn.bytes()[span];
                match mode {
                    BodyMode::None => {}
                    BodyMode::Length(_) | BodyMode::UntilClose => buf.extend_from_slice(data),
                    BodyMode::Chunked => {
                        chunk_header(data.len(), &mut buf);
                        buf.extend_from_slice(data);
                        buf.extend_from_slice(CHUNK_END);
                    }
                }
                if buf.len() >= OUTPUT_FLUSH_BYTES && !client.write_all(&mut buf).await {
                    return Ok(false);
                }
            }
            if mode == BodyMode::Chunked {
                buf.extend_from_slice(LAST_CHUNK);
            }
            Ok(client.write_all(&mut buf).await)
        }
        .await;
        buf.clear();
        *ex.out.buffer() = buf;
        let status = head.status;
        let (ok, done) = match result {
            Ok(true) => {
                if head.reusable && conn.is_clean() {
                    self.give_back(index, conn);
                }
                (Some(true), outcome(ex, &plan))
            }
            Ok(false) => (None, Outcome::Close),
            Err(e) => {
                let url = &self.upstreams.servers[index].url;
                eprintln!("qiao: proxy: upstream {url} failed mid-response: {e}");
                (Some(false), Outcome::Close)
            }
        };
        self.upstreams.release(index, ok);
        (done, status)
    }
}
