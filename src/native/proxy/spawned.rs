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

use hyper::body::{Body, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::conns::POOL_IDLE;
use super::{classify, method, ready_now, Failure, NativeProxy, ProxyBody, STALE_RETRIES};
use crate::http::response::{chunk_header, BodyMode, CHUNK_END, LAST_CHUNK};
use crate::http::Framing;
use crate::io::event_loop::{DoneSink, OpenJob};
use crate::io::output::OUTPUT_FLUSH_BYTES;
use crate::io::service::{Exchange, Outcome};
use crate::native::runtime::{Client, JobTask};
use crate::native::{outcome, plain_buffered};

/// Idle connections kept per upstream for the native runtime's requests.
pub const POOL_MAX_IDLE: usize = 256;

/// Idle senders of each upstream, with when they idled.
pub type IdlePool = Mutex<Vec<Vec<(SendRequest<ProxyBody>, Instant)>>>;

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
        let t0 = self.recorder.start();
        let mut ex = job.exchange();
        let (outcome, status) = self.answer(&mut ex, &mut client).await;
        self.recorder.done(&ex, status, t0, 0, client.sent());
        outcome
    }

    async fn answer(&self, ex: &mut Exchange<'_>, client: &mut Client) -> (Outcome, u16) {
        let (status, reason, text) = match self.head_of_answer(ex).await {
            Ok((index, resp, sender)) => {
                return self.relay_async(ex, client, index, resp, sender).await
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
    ) -> Result<
        (usize, hyper::Response<Incoming>, SendRequest<ProxyBody>),
        (u16, &'static str, String),
    > {
        if method(ex) == b"CONNECT" {
            return Err((501, "Not Implemented", "CONNECT is not supported\n".into()));
        }
        let retry_sent = super::IDEMPOTENT.contains(&method(ex));
        let mut tried = Vec::new();
        let mut failures = String::new();
        while let Some(index) = self.upstreams.acquire(&tried) {
            tried.push(index);
            match self.exchange_async(ex, index).await {
                Ok((resp, sender)) => return Ok((index, resp, sender)),
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

    async fn exchange_async(
        &self,
        ex: &Exchange<'_>,
        index: usize,
    ) -> Result<(hyper::Response<Incoming>, SendRequest<ProxyBody>), Failure> {
        let server = &self.upstreams.servers[index];
        for attempt in 0..=STALE_RETRIES {
            let pooled = if attempt == 0 {
                self.take_idle(index)
            } else {
                None
            };
            let reused = pooled.is_some();
            let mut sender = match pooled {
                Some(s) => s,
                None => self.connect(index).await?,
            };
            let req = self
                .request(ex, server, ProxyBody::Empty)
                .map_err(Failure::Lost)?;
            let sent = tokio::time::timeout(self.opts.timeout, async {
                sender.ready().await?;
                sender.send_request(req).await
            })
            .await;
            match sent {
                Err(_) => return Err(Failure::Timeout),
                Ok(Ok(resp)) => return Ok((resp, sender)),
                // Closed by the upstream while idle: once more, on a new one.
                Ok(Err(_)) if reused && attempt < STALE_RETRIES => continue,
                Ok(Err(e)) => return Err(classify(&e)),
            }
        }
        unreachable!("the last attempt returns")
    }

    async fn connect(&self, index: usize) -> Result<SendRequest<ProxyBody>, Failure> {
        let fail = |e: String| Failure::Connect(format!("cannot connect: {e}"));
        let addr = &self.addrs[index];
        let stream =
            match tokio::time::timeout(self.opts.connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err(fail(e.to_string())),
                Err(_) => {
                    return Err(fail(format!(
                        "timed out after {:?}",
                        self.opts.connect_timeout
                    )))
                }
            };
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| fail(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    fn take_idle(&self, index: usize) -> Option<SendRequest<ProxyBody>> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = &mut idle[index];
        // One clock reading per call, not one per idle connection.
        let now = Instant::now();
        while let Some((sender, since)) = list.pop() {
            if now.saturating_duration_since(since) < POOL_IDLE && !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    fn give_back(&self, index: usize, sender: SendRequest<ProxyBody>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = &mut idle[index];
        let now = Instant::now();
        list.retain(|(s, since)| {
            now.saturating_duration_since(*since) < POOL_IDLE && !s.is_closed()
        });
        if list.len() < POOL_MAX_IDLE {
            list.push((sender, now));
        }
    }

    /// Sends the upstream's response to the client as it arrives.
    async fn relay_async(
        &self,
        ex: &mut Exchange<'_>,
        client: &mut Client,
        index: usize,
        resp: hyper::Response<Incoming>,
        sender: SendRequest<ProxyBody>,
    ) -> (Outcome, u16) {
        let (parts, mut body) = resp.into_parts();
        let status = parts.status.as_u16();
        let (plan, length) = self.response_head(ex, &parts);
        let mode = plan.mode;
        let mut buf = std::mem::take(ex.out.buffer());
        let upstream_timeout = self.opts.timeout;
        let mut sent = 0u64;
        // Ok(true): complete; Ok(false): the client went away; Err: upstream.
        let result: Result<bool, String> = async {
            loop {
                let mut frame =
                    std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx));
                let next = match ready_now(&mut frame) {
                    Some(next) => next,
                    None => {
                        if !client.write_all(&mut buf).await {
                            return Ok(false);
                        }
                        match tokio::time::timeout(upstream_timeout, frame).await {
                            Ok(next) => next,
                            Err(_) => return Err(format!("silent for {upstream_timeout:?}")),
                        }
                    }
                };
                let data = match next {
                    None => break,
                    Some(Err(e)) => return Err(e.to_string()),
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(data) if !data.is_empty() => data,
                        _ => continue,
                    },
                };
                sent += data.len() as u64;
                match mode {
                    BodyMode::None => {}
                    BodyMode::Length(_) | BodyMode::UntilClose => buf.extend_from_slice(&data),
                    BodyMode::Chunked => {
                        chunk_header(data.len(), &mut buf);
                        buf.extend_from_slice(&data);
                        buf.extend_from_slice(CHUNK_END);
                    }
                }
                if buf.len() >= OUTPUT_FLUSH_BYTES && !client.write_all(&mut buf).await {
                    return Ok(false);
                }
            }
            if let (BodyMode::Length(_), Some(n)) = (mode, length) {
                if sent != n {
                    return Err(format!("sent {sent} of {n} bytes"));
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
        let (ok, done) = match result {
            Ok(true) => {
                self.give_back(index, sender);
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
