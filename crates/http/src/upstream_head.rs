//! The client side of HTTP/1.1, for the native proxy: an upstream's
//! response head parsed from bytes (`httparse` tokenizes; this module adds
//! the RFC 9112 §6.3 rules for how long the body is and whether the
//! connection may carry another request), and nothing else: no sockets.
//!
//! Hand-written on top of httparse rather than taken from hyper's client
//! because the proxy forwards the head as it came (status, reason phrase,
//! fields in order) straight from the read buffer: hyper's client builds a
//! `HeaderMap` and a response object per message and runs the connection as
//! a task of its own, which was a third of the proxy's CPU per request
//! (perf, `bench/run.py --native proxy`).
//!
//! Strict where a bad answer could desynchronise the connection: several
//! `Content-Length`s that differ, a malformed one, obs-fold or control
//! characters (httparse) are errors (the proxy answers 502), never guessed
//! at; a body framed only by the end of the connection, or by
//! `Transfer-Encoding` and `Content-Length` both, leaves the connection
//! unfit for another request. A status below 100 is refused, and so is a
//! `101`: the proxy never forwards `Upgrade` (hop-by-hop), and RFC 9110
//! §15.2.2 allows a switch only to a protocol the request asked for; nginx
//! answers 502 to both.

use std::ops::Range;

use super::request::{parse_content_length, trim_ows};

/// Lowest status code an upstream may answer (RFC 9110 §15: three digits,
/// the first 1 to 5; nginx's proxy answers 502 to less).
pub(crate) const MIN_STATUS: u16 = 100;
/// Most fields an upstream's response head may carry (more: 502).
pub const MAX_UPSTREAM_FIELDS: usize = 128;
/// Largest upstream response head, interim (1xx) heads included (larger:
/// 502): as the request side's field limit, with room for many cookies.
pub const MAX_UPSTREAM_HEAD_BYTES: usize = 64 * 1024;

/// How the body after an upstream's response head is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body: a response to HEAD, a 1xx, 204 or 304, or `Content-Length: 0`.
    None,
    /// Exactly this many bytes (> 0).
    Length(u64),
    /// `Transfer-Encoding` with `chunked` last.
    Chunked,
    /// Everything until the upstream closes the connection.
    UntilClose,
}

/// A parsed response head; ranges index the buffer given to [`parse`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamHead {
    /// Bytes of the head, final empty line included.
    pub len: usize,
    pub status: u16,
    /// The reason phrase as sent (may be empty).
    pub reason: Range<usize>,
    /// Every field, in order, value without surrounding whitespace.
    pub fields: Vec<(Range<usize>, Range<usize>)>,
    pub framing: BodyFraming,
    /// The `Content-Length` the upstream sent (even when `framing` ignores it).
    pub content_length: Option<u64>,
    /// The connection may carry another request after this response.
    pub reusable: bool,
}

impl UpstreamHead {
    /// An interim response (1xx), to be skipped (`101` is refused by [`parse`]).
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }
}

/// Why an upstream's response head is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadError {
    /// Not a valid HTTP/1.x status line and fields (httparse's reason).
    Invalid(&'static str),
    /// Over [`MAX_UPSTREAM_FIELDS`] or [`MAX_UPSTREAM_HEAD_BYTES`].
    TooLarge,
    /// `Content-Length` malformed, or several that differ.
    BadContentLength,
}

impl std::fmt::Display for HeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeadError::Invalid(why) => write!(f, "invalid response head: {why}"),
            HeadError::TooLarge => write!(f, "response head too large"),
            HeadError::BadContentLength => write!(f, "invalid Content-Length in the response"),
        }
    }
}

/// Parses the response head at the start of `buf`, sent in answer to a
/// request whose method was HEAD if `to_head`. `Ok(None)`: incomplete,
/// read more (unless `buf` is already over the limit: then an error).
pub fn parse(buf: &[u8], to_head: bool) -> Result<Option<UpstreamHead>, HeadError> {
    let mut storage = [httparse::EMPTY_HEADER; MAX_UPSTREAM_FIELDS];
    let mut resp = httparse::Response::new(&mut storage);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_UPSTREAM_HEAD_BYTES => {
            return Err(HeadError::TooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(e) => return Err(HeadError::Invalid(invalid(e))),
    };
    if len > MAX_UPSTREAM_HEAD_BYTES {
        return Err(HeadError::TooLarge);
    }
    let base = buf.as_ptr() as usize;
    let range = |s: &[u8]| {
        let start = s.as_ptr() as usize - base;
        start..start + s.len()
    };
    let status = resp.code.unwrap_or(0);
    if status < MIN_STATUS {
        return Err(HeadError::Invalid("status code below 100"));
    }
    if status == 101 {
        return Err(HeadError::Invalid(
            "101 to a request that asked for no upgrade",
        ));
    }
    let http10 = resp.version == Some(0);
    let reason = reason_range(&buf[..len]);
    let mut fields = Vec::with_capacity(resp.headers.len());
    let mut content_length: Option<u64> = None;
    let (mut chunked_last, mut te) = (false, false);
    let (mut close, mut keep_alive) = (false, false);
    for h in resp.headers.iter() {
        let (name, value) = (h.name.as_bytes(), trim_ows(h.value));
        fields.push((range(name), range(value)));
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = parse_content_length(value).map_err(|_| HeadError::BadContentLength)?;
            if content_length.is_some_and(|prev| prev != n) {
                return Err(HeadError::BadContentLength);
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            te = true;
            // Only the final coding of the final field decides.
            if let Some(last) = value.rsplit(|&b| b == b',').map(trim_ows).next() {
                chunked_last = last.eq_ignore_ascii_case(b"chunked");
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&b| b == b',').map(trim_ows) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    let mut reusable = if http10 { keep_alive && !close } else { !close };
    // RFC 9112 §6.3, in its order.
    let framing = if to_head || (100..200).contains(&status) || status == 204 || status == 304 {
        BodyFraming::None
    } else if te {
        // Content-Length too: TE wins, and the connection must not be reused.
        reusable &= content_length.is_none() && chunked_last;
        if chunked_last {
            BodyFraming::Chunked
        } else {
            BodyFraming::UntilClose
        }
    } else {
        match content_length {
            Some(0) => BodyFraming::None,
            Some(n) => BodyFraming::Length(n),
            None => {
                reusable = false;
                BodyFraming::UntilClose
            }
        }
    };
    Ok(Some(UpstreamHead {
        len,
        status,
        reason,
        fields,
        framing,
        content_length,
        reusable,
    }))
}

/// Where the reason phrase is: after `HTTP/1.x SP 3DIGIT SP` on the status
/// line httparse has validated, up to its line end. Taken from the bytes,
/// not from httparse's `reason`, which is a `&str`: a phrase with obs-text
/// that is not UTF-8 comes back as an empty string from elsewhere, not as a
/// slice of the buffer (found by the `upstream_head` fuzz target).
fn reason_range(head: &[u8]) -> Range<usize> {
    const START: usize = b"HTTP/1.1 200 ".len();
    let line_end = memchr::memchr(b'\n', head).unwrap_or(head.len());
    let end = if line_end > 0 && head[line_end - 1] == b'\r' {
        line_end - 1
    } else {
        line_end
    };
    START.min(end)..end
}

/// httparse's reason, as a static text.
fn invalid(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid field name",
        httparse::Error::HeaderValue => "invalid field value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status code",
        httparse::Error::Token => "invalid token",
        httparse::Error::Version => "invalid HTTP version",
        _ => "malformed",
    }
}
