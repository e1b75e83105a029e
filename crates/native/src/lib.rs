//! Native services: requests the server answers itself, in Rust, without
//! the GIL (`--static PREFIX=DIR`, `--proxy PREFIX=URL[,URL...]`): as tasks
//! of the native [`runtime`], or (static files, where no runtime runs) on the
//! serving thread that took them out of the loop. They sit in the I/O ring
//! beside the event loop and implement
//! [`NativeService`](qiao_io::native_service::NativeService); the pool runs them
//! outside any [`Handler`](qiao_io::Handler) session.
//!
//! They give the same responses as the portable `qiao.middleware.Static`
//! and `Proxy` (one shared e2e suite runs against both):
//!
//! - [`static_files`]: files under a directory, `sendfile(2)`, validators,
//!   one byte range, precompressed siblings ([`qiao_http::fields`] parses the request
//!   fields involved, [`mime`] names the types);
//! - [`proxy`]: a reverse proxy over pooled HTTP/1.1 connections of its own,
//!   balancing over [`upstream`]'s servers with their health;
//! - [`runtime`]: the tokio runtime both hand requests to, run by the
//!   thread that leads the event loop while it waits;
//! - [`routes`]: the settings turned into the route table.
//!
//! This module owns what they share: looking up request fields and writing
//! a response head or a short plain-text answer through the [`Exchange`].

mod link;
mod mime;
pub mod proxy;
pub mod routes;
pub mod runtime;
pub mod static_files;
pub mod upconn;
pub mod upstream;

use std::borrow::Cow;

use qiao_http::response::{plan, write_head, AppFacts, Plan, RequestFacts};
use qiao_io::service::{Exchange, Outcome};
use qiao_io::sock;

/// The value of the request field `name`, repeated ones joined with `", "`
/// (as the environ's `HTTP_*` keys hold them).
pub fn header<'a>(ex: &'a Exchange<'_>, name: &[u8]) -> Option<Cow<'a, [u8]>> {
    let mut found: Option<Cow<'a, [u8]>> = None;
    for (n, v) in &ex.head.headers {
        if !ex.bytes(n).eq_ignore_ascii_case(name) {
            continue;
        }
        let value = ex.bytes(v);
        found = Some(match found {
            None => Cow::Borrowed(value),
            Some(prev) => {
                let mut joined = prev.into_owned();
                joined.extend_from_slice(b", ");
                joined.extend_from_slice(value);
                Cow::Owned(joined)
            }
        });
    }
    found
}

/// The request's method.
pub fn method<'a>(ex: &'a Exchange<'_>) -> &'a [u8] {
    ex.bytes(&ex.head.method)
}

/// What framing the request allows its response.
pub(crate) fn request_facts(ex: &Exchange<'_>) -> RequestFacts {
    RequestFacts {
        version: ex.head.version,
        is_head: method(ex) == b"HEAD",
        keep_alive: ex.head.keep_alive,
    }
}

/// Writes the status line and head into the output buffer (not sent yet);
/// returns the framing chosen (a HEAD or 304 gets no body).
pub fn start(
    ex: &mut Exchange<'_>,
    status: u16,
    reason: &[u8],
    headers: &[(&[u8], &[u8])],
    content_length: Option<u64>,
) -> Plan {
    start_with(
        ex,
        request_facts(ex),
        status,
        reason,
        headers,
        content_length,
    )
}

/// [`start`] with the request's facts taken earlier: once the body has
/// been read, the head's bytes may be gone from the buffer.
pub(crate) fn start_with(
    ex: &mut Exchange<'_>,
    req: RequestFacts,
    status: u16,
    reason: &[u8],
    headers: &[(&[u8], &[u8])],
    content_length: Option<u64>,
) -> Plan {
    let plan = plan(
        req,
        AppFacts {
            status,
            content_length,
            connection_close: false,
            known_length: None,
        },
    );
    let mut line = Vec::with_capacity(4 + reason.len());
    line.extend_from_slice(itoa::Buffer::new().format(status).as_bytes());
    line.push(b' ');
    line.extend_from_slice(reason);
    let date = ex.date;
    let before = ex.out.buffer().len();
    write_head(
        ex.out.buffer(),
        &line,
        headers.iter().map(|&(n, v)| (n, v)),
        date,
        req,
        &plan,
    );
    let head = ex.out.buffer().len() - before;
    ex.out.note_head(head);
    plan
}

/// The outcome of a response with `plan`, once it was written.
pub fn outcome(ex: &Exchange<'_>, plan: &Plan) -> Outcome {
    if plan.keep_alive && !ex.out.failed() {
        Outcome::KeepAlive
    } else {
        Outcome::Close
    }
}

/// A short `text/plain` answer (the portable middleware's `plain`), sent.
pub fn plain(
    ex: &mut Exchange<'_>,
    status: u16,
    reason: &str,
    text: &str,
    extra: &[(&[u8], &[u8])],
) -> (Outcome, u16) {
    let plan = plain_buffered(ex, status, reason, text, extra);
    let mut wait = sock::wait;
    let outcome = if ex.out.flush(&mut wait).is_ok() {
        outcome(ex, &plan)
    } else {
        Outcome::Close
    };
    (outcome, status)
}

/// [`plain`]'s head and body, left in the output buffer.
pub(crate) fn plain_buffered(
    ex: &mut Exchange<'_>,
    status: u16,
    reason: &str,
    text: &str,
    extra: &[(&[u8], &[u8])],
) -> Plan {
    plain_buffered_with(ex, request_facts(ex), status, reason, text, extra)
}

/// [`plain_buffered`] with the request's facts taken earlier.
pub(crate) fn plain_buffered_with(
    ex: &mut Exchange<'_>,
    req: RequestFacts,
    status: u16,
    reason: &str,
    text: &str,
    extra: &[(&[u8], &[u8])],
) -> Plan {
    let len = itoa::Buffer::new().format(text.len()).to_owned();
    let mut headers: Vec<(&[u8], &[u8])> = vec![
        (b"Content-Type", b"text/plain; charset=utf-8"),
        (b"Content-Length", len.as_bytes()),
    ];
    headers.extend_from_slice(extra);
    let plan = start_with(
        ex,
        req,
        status,
        reason.as_bytes(),
        &headers,
        Some(text.len() as u64),
    );
    if plan.mode != qiao_http::response::BodyMode::None {
        ex.out.buffer().extend_from_slice(text.as_bytes());
    }
    plan
}
