//! Request-head parsing: bytes in, a [`RequestHead`] of byte ranges out.
//!
//! `httparse` does the tokenizing (it is SIMD-accelerated, fuzzed and well
//! kept); this module adds what httparse leaves to its caller and RFC 9112
//! makes a MUST: size limits with their 414/431 answers, the 505 for other
//! versions, exactly one Host on HTTP/1.1, strict Content-Length and
//! Transfer-Encoding rules (the request-smuggling surface), request-target
//! forms, and the keep-alive / 100-continue decisions.
//!
//! The head is described by ranges into the caller's buffer instead of
//! copied strings: the WSGI ring turns them straight into Python `str`s, so
//! no byte of the head is copied twice.
//!
//! This file holds what a parsed head *is* (the types every ring reads)
//! and the HTTP/2 preface check that comes before any head; the parser
//! itself is in `head`, and the byte-level field grammar it shares with
//! the rest of the workspace (OWS, tchar, Host, Content-Length,
//! percent-decoding) in `grammar`. Both are private: their public items
//! are re-exported here, so every path stays `qiao_http::request::...`.

use std::ops::Range;

mod grammar;
mod head;

pub(crate) use grammar::{hex_val, parse_content_length, valid_host};
pub use grammar::{is_tchar, percent_decode, trim_ows};
pub use head::parse_head;

/// Result of feeding a buffer to a parser: done, or more bytes needed.
#[derive(Debug, PartialEq, Eq)]
pub enum Status<T> {
    Complete(T),
    Partial,
}

/// The HTTP versions we serve (others get a 505).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// How the request body is delimited (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    Empty,
    /// `Content-Length: n`, n > 0.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A parsed request head: ranges index the buffer given to [`parse_head`].
#[derive(Clone, Debug)]
pub struct RequestHead {
    /// Bytes of the head, including leading empty lines and the final CRLF.
    pub head_len: usize,
    pub method: Range<usize>,
    /// The whole request target as sent.
    pub target: Range<usize>,
    /// The path part, still percent-encoded. Empty for an absolute-form
    /// target without a path (meaning `/`).
    pub path: Range<usize>,
    /// The query without `?`; empty when there is none.
    pub query: Range<usize>,
    /// Authority of an absolute-form target (it overrides Host, RFC 9112 §3.2.2).
    pub authority: Option<Range<usize>>,
    pub version: Version,
    /// (name, value) of every field in order; values trimmed of SP/HTAB.
    pub headers: Vec<(Range<usize>, Range<usize>)>,
    /// Value of the one Host field, if any.
    pub host: Option<Range<usize>>,
    pub framing: Framing,
    /// Whether the connection may carry another request after this one.
    pub keep_alive: bool,
    /// HTTP/1.1 `Expect: 100-continue` was sent.
    pub expect_continue: bool,
    /// The request came by the uwsgi protocol: `headers` are its CGI
    /// variables (name, value), to be used in the environ as they are.
    pub cgi: bool,
}

impl Default for RequestHead {
    fn default() -> Self {
        RequestHead {
            head_len: 0,
            method: 0..0,
            target: 0..0,
            path: 0..0,
            query: 0..0,
            authority: None,
            version: Version::Http11,
            headers: Vec::with_capacity(16),
            host: None,
            framing: Framing::Empty,
            keep_alive: true,
            expect_continue: false,
            cgi: false,
        }
    }
}

/// The client connection preface of HTTP/2 (RFC 9113 §3.4): what a client
/// with prior knowledge (h2c) sends first instead of an HTTP/1.1 request.
pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether `buf` starts with the HTTP/2 preface: `None` if it cannot,
/// `Partial` while it still may, `Complete` once it does.
pub fn match_h2_preface(buf: &[u8]) -> Option<Status<()>> {
    let n = buf.len().min(H2_PREFACE.len());
    if buf[..n] != H2_PREFACE[..n] {
        None
    } else if n < H2_PREFACE.len() {
        Some(Status::Partial)
    } else {
        Some(Status::Complete(()))
    }
}
