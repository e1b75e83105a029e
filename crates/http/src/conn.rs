//! A connection's request side as a pure state machine: where it is
//! between two requests ([`Phase`]) and what the bytes received so far
//! make of it ([`advance`] → [`Step`]). Bytes in, steps out, in the manner
//! of h11's `Connection`: no socket, no clock, no Python.
//!
//! The event loop (`io::event_loop`) owns the buffer and does what a step
//! says (read more, answer, refuse, dispatch, hand over, close), and sets
//! the deadlines the steps imply. The tests' simulated connection
//! (`crates/http/tests/common`) and the `request_stream` fuzz target drive this same
//! machine, so what they check is what the loop runs.
//!
//! What happens *during* a request (reading its body as the app asks,
//! writing the answer) is not here: that is the serving thread's, through
//! `io::body` and `io::output`. [`after_request`] says where the
//! connection goes once it is over.

use super::body::{BodyDecoder, Decoded};
use super::error::ParseError;
use super::limits::Limits;
use super::proxy_protocol::{parse_proxy_header, ProxiedPeer};
use super::request::{match_h2_preface, parse_head, Framing, RequestHead, Status};
use super::uwsgi::parse_uwsgi;

/// Content-Length bodies up to this size (head included) are received
/// before the app is called, so a slow uploader never holds a thread.
pub const PREBUFFER_BODY_BYTES: usize = 256 * 1024;
/// Most bytes of an unread request body dropped to keep the connection;
/// a larger rest closes it instead.
pub const MAX_DRAIN_BYTES: u64 = 1 << 20;

/// Where a connection is between two dispatches to the application.
#[derive(Debug)]
pub enum Phase {
    /// `--proxy-protocol`: waiting for the PROXY header that names the
    /// client, before the first request.
    Proxy,
    /// Waiting for (the rest of) a request head. `started`: some byte of
    /// it arrived, so the head deadline runs instead of the idle one.
    Head { started: bool },
    /// The head is parsed; its body is being received before dispatch
    /// (small Content-Length bodies only). `need`: bytes of head and body.
    Body { need: usize },
    /// The head is parsed and its body buffered as far as wanted: dispatch.
    Ready,
    /// Discarding the rest of a body the app did not read, so it is never
    /// parsed as the next request. `budget`: bytes we still accept to drop.
    Drain { decoder: BodyDecoder, budget: u64 },
    /// Sending side shut after a final response; what the client still
    /// sends is read and dropped until it closes or the deadline.
    Linger,
}

/// What the connection and its listener allow, as the loop knows them.
pub struct Rules<'a> {
    pub limits: &'a Limits,
    /// The listener speaks uwsgi, not HTTP.
    pub uwsgi: bool,
    /// An HTTP/2 preface may be handed over (h2c with prior knowledge): a
    /// plaintext TCP connection's first bytes, with a front to take it.
    pub h2c: bool,
    /// The peer may send a PROXY header (`--proxy-allow-from`).
    pub proxy_allowed: bool,
    /// `--health-path`, answered without the app.
    pub health_path: Option<&'a [u8]>,
}

/// What the bytes received so far make of the connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing more to do with these bytes: read more.
    NeedMore,
    /// The first byte of a head arrived: the head deadline runs from now.
    HeadStarted,
    /// A PROXY header of `len` bytes; `client` is who it names (None:
    /// `UNKNOWN`/`LOCAL`, the peer stays). Consume it.
    Proxy {
        len: usize,
        client: Option<ProxiedPeer>,
    },
    /// A whole head of `len` bytes is in the `RequestHead`; `body`: its
    /// body is received before dispatch (the I/O timeout runs).
    Head { len: usize, body: bool },
    /// The head is a `--health-path` probe: answer it (its `len` bytes).
    Probe { len: usize },
    /// Dispatch the request to the application.
    Ready,
    /// The HTTP/2 preface: hand the connection to the front.
    H2c,
    /// Refuse with the error's status, then close.
    Refuse(ParseError),
    /// `n` bytes of a dropped body or of lingering input: consume them.
    Discard(usize),
    /// A dropped body broke its framing or ran over the budget: close.
    Close,
}

/// Advances `phase` over `input` (the unconsumed bytes, which the caller
/// consumes as the step says). `first`: no request was served on the
/// connection yet. Call again after every step but `NeedMore`.
pub fn advance(
    phase: &mut Phase,
    input: &[u8],
    first: bool,
    rules: &Rules<'_>,
    head: &mut RequestHead,
) -> Step {
    match phase {
        Phase::Ready => Step::Ready,
        Phase::Proxy if input.is_empty() => Step::NeedMore,
        Phase::Proxy if !rules.proxy_allowed => Step::Refuse(ParseError::BadProxyHeader),
        Phase::Proxy => match parse_proxy_header(input) {
            Ok(Status::Complete((len, client))) => {
                *phase = Phase::Head { started: false };
                Step::Proxy { len, client }
            }
            Ok(Status::Partial) => Step::NeedMore,
            Err(e) => Step::Refuse(e),
        },
        Phase::Body { need } => {
            if input.len() >= *need {
                *phase = Phase::Ready;
                Step::Ready
            } else {
                Step::NeedMore
            }
        }
        Phase::Head { .. } if input.is_empty() => Step::NeedMore,
        Phase::Head { started } => {
            // h2c with prior knowledge: until the preface is whole or ruled
            // out, nothing is parsed.
            if !*started && first && rules.h2c {
                match match_h2_preface(input) {
                    Some(Status::Complete(())) => return Step::H2c,
                    Some(Status::Partial) => return Step::NeedMore,
                    None => {}
                }
            }
            if !*started {
                *started = true;
                return Step::HeadStarted;
            }
            let parse = if rules.uwsgi { parse_uwsgi } else { parse_head };
            match parse(input, rules.limits, head) {
                Ok(Status::Complete(len)) => {
                    if rules.health_path.is_some_and(|p| is_probe(head, input, p)) {
                        return Step::Probe { len };
                    }
                    let body = matches!(head.framing, Framing::Length(n)
                        if !head.expect_continue
                            && len as u64 + n <= PREBUFFER_BODY_BYTES as u64);
                    *phase = match head.framing {
                        Framing::Length(n) if body => Phase::Body {
                            need: len + n as usize,
                        },
                        _ => Phase::Ready,
                    };
                    Step::Head { len, body }
                }
                Ok(Status::Partial) => Step::NeedMore,
                Err(e) => Step::Refuse(e),
            }
        }
        Phase::Drain { decoder, budget } => {
            if decoder.is_done() {
                *phase = Phase::Head { started: false };
                return Step::Discard(0);
            }
            if input.is_empty() {
                return Step::NeedMore;
            }
            match decoder.decode(input) {
                Ok((n, Decoded::End)) => {
                    *phase = Phase::Head { started: false };
                    Step::Discard(n)
                }
                Ok((n, _)) if (n as u64) <= *budget => {
                    *budget -= n as u64;
                    if n == 0 {
                        Step::NeedMore
                    } else {
                        Step::Discard(n)
                    }
                }
                _ => Step::Close,
            }
        }
        Phase::Linger if input.is_empty() => Step::NeedMore,
        Phase::Linger => Step::Discard(input.len()),
    }
}

/// Where a connection goes once its request is over: to the next head,
/// to dropping the rest of a body the app left unread, or (too much of
/// it left) to lingering before it closes.
pub fn after_request(decoder: BodyDecoder) -> Phase {
    match decoder.remaining_hint() {
        Some(0) => Phase::Head { started: false },
        Some(n) if n > MAX_DRAIN_BYTES => Phase::Linger,
        _ => Phase::Drain {
            decoder,
            budget: MAX_DRAIN_BYTES,
        },
    }
}

/// Whether a parsed head is a `--health-path` probe: `GET` or `HEAD` of
/// exactly that path, no query, no body.
pub fn is_probe(head: &RequestHead, input: &[u8], path: &[u8]) -> bool {
    let method = &input[head.method.clone()];
    (method == b"GET" || method == b"HEAD")
        && head.framing == Framing::Empty
        && &input[head.path.clone()] == path
        && head.query.is_empty()
}

#[cfg(test)]
#[path = "conn/tests.rs"]
mod tests;
