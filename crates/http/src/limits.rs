//! Every bound the HTTP ring enforces, as named constants with gunicorn's
//! defaults, gathered in [`Limits`] so the CLI can override each one.
//!
//! Why these numbers: they carry gunicorn's option names and (but for the
//! request line, where gunicorn's default is 4094) its defaults, which leave
//! headroom for real browsers, whose heads are ~1-2 KiB.

/// Bytes of a request field value looked at, at most, by the field rules
/// (`fields`, `compress`; the portable middleware's `MAX_FIELD_PARSE`):
/// longer values are treated as absent (or, for `Accept-Encoding`, cut
/// there).
pub const MAX_FIELD_PARSE: usize = 4096;

/// Longest request line (`METHOD SP target SP version`), without CRLF.
/// Longer → 414. Set by `--limit-request-line` (gunicorn's name; its
/// default is 4094, ours is its documented maximum).
pub(crate) const MAX_REQUEST_LINE: usize = 8190;

/// Empty lines (CRLF or LF) accepted before a request line, in bytes.
/// RFC 9112 §2.2 asks to ignore at least one; an endless stream of them is
/// refused instead of buffered.
pub(crate) const MAX_LEADING_EMPTY_BYTES: usize = 16;

/// Most header fields in one request head. More → 431.
/// gunicorn: `--limit-request-fields 100`.
pub const MAX_HEADER_FIELDS: usize = 100;

/// Longest single header field line (`name: value`). Longer → 431.
/// gunicorn: `--limit-request-field_size 8190`.
pub(crate) const MAX_FIELD_SIZE: usize = 8190;

/// Upper bound a user may set for `MAX_HEADER_FIELDS`, as gunicorn's.
pub const MAX_HEADER_FIELDS_CEILING: usize = 32768;

/// The most bytes a request head may take, whatever the limits above are
/// set to. gunicorn's `--limit-request-line 0` and
/// `--limit-request-field_size 0` mean "no limit"; here they mean "no limit
/// of its own": a head still stays below this, so one client cannot make a
/// worker buffer without bound. The default limits fit well within it.
pub const MAX_HEAD_BYTES: usize = 1 << 20;

/// Total bytes of chunk extensions accepted over one chunked body.
/// Extensions carry nothing a WSGI app can see; a client sending more is
/// burning our CPU (cf. the chunk-extension DoS in CVE-2023-39326).
pub const MAX_CHUNK_EXT_BYTES: usize = 4096;

/// Total bytes of trailer fields accepted after the last chunk. Trailers are
/// read and dropped: they never reach the environ.
pub const MAX_TRAILER_BYTES: usize = 8190;

/// Hex digits accepted in one chunk size. 15 digits keep the value below
/// 2^60, far beyond any real body, and make overflow impossible.
pub(crate) const MAX_CHUNK_SIZE_DIGITS: usize = 15;

/// Decimal digits accepted in Content-Length: 18 digits cannot overflow u64.
pub(crate) const MAX_CONTENT_LENGTH_DIGITS: usize = 18;

/// The bounds one parser instance applies. `Default` gives the constants
/// above; `max_body` is off by default as in gunicorn.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub request_line: usize,
    pub header_fields: usize,
    pub field_size: usize,
    /// Largest request body accepted (Content-Length or decoded chunked
    /// total); larger → 413. `None`: no limit.
    pub max_body: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_line: MAX_REQUEST_LINE,
            header_fields: MAX_HEADER_FIELDS,
            field_size: MAX_FIELD_SIZE,
            max_body: None,
        }
    }
}

impl Limits {
    /// The most bytes a complete head may take under these limits: a head
    /// still partial beyond this is rejected without waiting for more.
    pub(crate) fn max_head_bytes(&self) -> usize {
        // request line + CRLF, every field + CRLF, the final CRLF, plus a
        // few leading empty lines that RFC 9112 §2.2 says to skip.
        let sum = (self.request_line + 2)
            .saturating_add(self.header_fields.saturating_mul(self.field_size + 2))
            .saturating_add(2 + MAX_LEADING_EMPTY_BYTES);
        sum.min(MAX_HEAD_BYTES)
    }

    /// The limits as gunicorn's settings give them: 0 for the request line
    /// or a field's size means no limit of its own (the head as a whole
    /// stays below [`MAX_HEAD_BYTES`]), 0 fields means gunicorn's ceiling;
    /// other values are raised to `least` (a limit lower than a short
    /// request line would refuse everything).
    pub fn from_settings(
        request_line: usize,
        header_fields: usize,
        field_size: usize,
        max_body: Option<u64>,
        least: usize,
    ) -> Limits {
        let bound = |value: usize| match value {
            0 => MAX_HEAD_BYTES,
            n => n.max(least),
        };
        Limits {
            request_line: bound(request_line),
            header_fields: match header_fields {
                0 => MAX_HEADER_FIELDS_CEILING,
                n => n.min(MAX_HEADER_FIELDS_CEILING),
            },
            field_size: bound(field_size),
            max_body,
        }
    }
}
