//! The second half of a proxied exchange: the upstream's response head
//! (status and reason phrase as sent, end-to-end fields only) and its body,
//! written to the client as it arrives — with the upstream's
//! `Content-Length`, else chunked (or until close for HTTP/1.0). What is
//! buffered is flushed whenever the upstream has nothing more ready, so a
//! slow upstream's first bytes reach the client at once.

use std::future::poll_fn;
use std::pin::Pin;

use hyper::body::{Body, Incoming};

use super::conns::{self, Conn};
use super::{connection_tokens, ready_now, NativeProxy, HOP_BY_HOP};
use crate::http::response::{chunk_header, BodyMode, Plan, CHUNK_END, LAST_CHUNK};
use crate::io::output::Output;
use crate::io::service::{Exchange, Outcome};
use crate::io::sock;
use crate::native::{outcome, start};

/// Why relaying the body stopped early.
enum Cut {
    /// The client's socket failed.
    Client,
    /// The upstream failed or went silent.
    Upstream(String),
}

impl NativeProxy {
    /// Sends the upstream's response to the client; releases the upstream.
    pub(super) fn relay(
        &self,
        ex: &mut Exchange<'_>,
        index: usize,
        resp: hyper::Response<Incoming>,
        mut conn: Conn,
    ) -> (Outcome, u16) {
        let (parts, body) = resp.into_parts();
        let status = parts.status.as_u16();
        let (plan, length) = self.response_head(ex, &parts);
        let timeout = self.opts.timeout;
        let out = &mut *ex.out;
        let result = conns::block_on(stream(out, body, &mut conn, plan.mode, length, timeout));
        if result.is_ok() {
            conns::give_back((self.id, index), conn);
        }
        let server = &self.upstreams.servers[index];
        let (ok, done) = match result {
            Ok(()) => (Some(true), outcome(ex, &plan)),
            Err(Cut::Client) => (None, Outcome::Close),
            Err(Cut::Upstream(e)) => {
                eprintln!(
                    "qiao: proxy: upstream {} failed mid-response: {e}",
                    server.url
                );
                (Some(false), Outcome::Close)
            }
        };
        self.upstreams.release(index, ok);
        (done, status)
    }
}

impl NativeProxy {
    /// Writes the response head into the output buffer: the status and
    /// reason phrase as the upstream sent them, its end-to-end fields.
    /// Returns the framing and the upstream's `Content-Length`.
    pub(super) fn response_head(
        &self,
        ex: &mut Exchange<'_>,
        parts: &hyper::http::response::Parts,
    ) -> (Plan, Option<u64>) {
        let status = parts.status.as_u16();
        let reason: Vec<u8> = match parts.extensions.get::<hyper::ext::ReasonPhrase>() {
            Some(r) => r.as_bytes().to_vec(),
            None => parts
                .status
                .canonical_reason()
                .unwrap_or("Unknown")
                .as_bytes()
                .to_vec(),
        };
        let tokens = connection_tokens(
            parts
                .headers
                .iter()
                .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes())),
        );
        let fields: Vec<(&[u8], &[u8])> = parts
            .headers
            .iter()
            .filter(|(n, _)| {
                !HOP_BY_HOP.contains(&n.as_str()) && !tokens.iter().any(|t| t == n.as_str())
            })
            .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes()))
            .collect();
        let length = parts
            .headers
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        (start(ex, status, &reason, &fields, length), length)
    }
}

/// Copies the upstream's body to `out` in the framing `mode`.
async fn stream(
    out: &mut Output,
    mut body: Incoming,
    conn: &mut Conn,
    mode: BodyMode,
    length: Option<u64>,
    timeout: std::time::Duration,
) -> Result<(), Cut> {
    let mut wait = sock::wait;
    let mut sent = 0u64;
    loop {
        // The connection's I/O runs first, then the body gets what it read.
        let mut frame =
            poll_fn(|cx| conn.poll_with(cx, |_, cx| Pin::new(&mut body).poll_frame(cx)));
        let next = match ready_now(&mut frame) {
            Some(next) => next,
            None => {
                out.flush(&mut wait).map_err(|_| Cut::Client)?;
                tokio::time::timeout(timeout, frame)
                    .await
                    .map_err(|_| Cut::Upstream(format!("silent for {timeout:?}")))?
            }
        };
        let data = match next {
            None => break,
            Some(Err(e)) => return Err(Cut::Upstream(e.to_string())),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) if !data.is_empty() => data,
                _ => continue,
            },
        };
        sent += data.len() as u64;
        match mode {
            BodyMode::None => {}
            BodyMode::Length(_) | BodyMode::UntilClose => {
                out.push(&data, &mut wait).map_err(|_| Cut::Client)?;
            }
            BodyMode::Chunked => {
                chunk_header(data.len(), out.buffer());
                out.push(&data, &mut wait).map_err(|_| Cut::Client)?;
                out.buffer().extend_from_slice(CHUNK_END);
            }
        }
    }
    if let (BodyMode::Length(_), Some(n)) = (mode, length) {
        if sent != n {
            return Err(Cut::Upstream(format!("sent {sent} of {n} bytes")));
        }
    }
    if mode == BodyMode::Chunked {
        out.buffer().extend_from_slice(LAST_CHUNK);
    }
    out.flush(&mut wait).map_err(|_| Cut::Client)
}
