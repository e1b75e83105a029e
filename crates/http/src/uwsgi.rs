//! The uwsgi binary protocol (`--bind uwsgi://...`), as nginx's
//! `uwsgi_pass` speaks it: a 4-byte header (`modifier1`, the size of what
//! follows as u16 little-endian, `modifier2`), then the request's CGI
//! variables as length-prefixed key/value pairs (u16 LE lengths), then the
//! body (`CONTENT_LENGTH` bytes). The response is plain HTTP.
//!
//! Sans-IO and `Complete | Partial` like the HTTP head parser, and into
//! the same [`RequestHead`], so the I/O and WSGI rings serve both alike:
//! the variables land in `head.headers` (with `head.cgi` set, telling the
//! environ builder to use them as they are), and the ranges the loop and
//! the heartbeat need (method, target, path, query) point at their values.
//! Responses are framed as for HTTP/1.0 with keep-alive (`Content-Length`
//! when the app gives one, else the connection closes after the body): no
//! chunked coding, which a uwsgi peer does not expect.
//!
//! Control characters (CR, LF, NUL... any byte below 0x20 but tab, and
//! DEL) in a variable's name or value are refused (400), as the HTTP
//! parser refuses them in a field: nginx never sends them (it refuses them
//! in the request line and fields), so only a forged packet has them, and
//! refusing it here keeps every consumer safe at once (the access log, the
//! application's own logs, response headers built from REMOTE_USER...)
//! where escaping would have to be repeated at each. The variables nginx
//! fills with the percent-decoded path ([`DECODED_PATH_VARS`]) are the
//! exception: `%0A` in a URL legitimately decodes to LF there, as in the
//! `PATH_INFO` of an HTTP request.

use std::ops::Range;

use super::error::ParseError;
use super::request::{Framing, RequestHead, Status, Version};
use super::Limits;

/// `modifier1` of a WSGI request (the only kind served).
pub(crate) const MODIFIER_WSGI: u8 = 0;
/// Bytes of the packet header.
pub(crate) const UWSGI_HEADER: usize = 4;
/// Variables beyond the header limit allowed for the CGI ones nginx adds
/// (REQUEST_METHOD, PATH_INFO, SERVER_NAME, ...).
pub(crate) const EXTRA_CGI_VARS: usize = 32;

/// Variables that hold a percent-decoded path (nginx's `$document_uri`,
/// `$fastcgi_script_name`...), where control characters may be the
/// client's legitimate (encoded) bytes.
pub(crate) const DECODED_PATH_VARS: [&[u8]; 4] = [
    b"PATH_INFO",
    b"SCRIPT_NAME",
    b"DOCUMENT_URI",
    b"PATH_TRANSLATED",
];

/// A control character a variable may not hold (tab is allowed, as in an
/// HTTP field value).
fn is_control(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

/// Parses one uwsgi request packet (header and variables) at the start of
/// `buf` into `head`; `Complete(n)`: the body starts at `buf[n..]`.
pub fn parse_uwsgi(
    buf: &[u8],
    limits: &Limits,
    head: &mut RequestHead,
) -> Result<Status<usize>, ParseError> {
    if buf.len() < UWSGI_HEADER {
        return Ok(Status::Partial);
    }
    if buf[0] != MODIFIER_WSGI {
        return Err(ParseError::BadRequestLine);
    }
    let size = usize::from(u16::from_le_bytes([buf[1], buf[2]]));
    if size > limits.max_head_bytes() {
        return Err(ParseError::HeaderTooLarge);
    }
    let end = UWSGI_HEADER + size;
    if buf.len() < end {
        return Ok(Status::Partial);
    }
    head.headers.clear();
    head.host = None;
    head.authority = None;
    head.expect_continue = false;
    head.method = 0..0;
    head.target = 0..0;
    head.path = 0..0;
    head.query = 0..0;
    let mut uri = None;
    let mut content_length = None;
    let mut pos = UWSGI_HEADER;
    while pos < end {
        let key = field(buf, &mut pos, end)?;
        let value = field(buf, &mut pos, end)?;
        let (name, text) = (&buf[key.clone()], &buf[value.clone()]);
        if key.is_empty()
            || name.iter().any(|&b| is_control(b))
            || (text.iter().any(|&b| is_control(b)) && !DECODED_PATH_VARS.contains(&name))
        {
            return Err(ParseError::BadHeader);
        }
        if head.headers.len() >= limits.header_fields + EXTRA_CGI_VARS {
            return Err(ParseError::TooManyHeaders);
        }
        match &buf[key.clone()] {
            b"REQUEST_METHOD" => head.method = value.clone(),
            b"REQUEST_URI" => uri = Some(value.clone()),
            b"PATH_INFO" => head.path = value.clone(),
            b"QUERY_STRING" => head.query = value.clone(),
            b"HTTP_HOST" => head.host = Some(value.clone()),
            b"CONTENT_LENGTH" if !value.is_empty() => {
                content_length = Some(parse_length(&buf[value.clone()])?)
            }
            _ => {}
        }
        head.headers.push((key, value));
    }
    if head.method.is_empty() {
        return Err(ParseError::BadRequestLine);
    }
    head.target = uri.unwrap_or_else(|| head.path.clone());
    head.head_len = end;
    head.version = Version::Http10;
    head.keep_alive = true;
    head.cgi = true;
    head.framing = match content_length {
        None | Some(0) => Framing::Empty,
        Some(n) => {
            if limits.max_body.is_some_and(|max| n > max) {
                return Err(ParseError::BodyTooLarge);
            }
            Framing::Length(n)
        }
    };
    Ok(Status::Complete(end))
}

/// One u16-LE-length-prefixed field of the variable block.
fn field(buf: &[u8], pos: &mut usize, end: usize) -> Result<Range<usize>, ParseError> {
    if *pos + 2 > end {
        return Err(ParseError::BadHeader);
    }
    let len = usize::from(u16::from_le_bytes([buf[*pos], buf[*pos + 1]]));
    let start = *pos + 2;
    if start + len > end {
        return Err(ParseError::BadHeader);
    }
    *pos = start + len;
    Ok(start..start + len)
}

fn parse_length(v: &[u8]) -> Result<u64, ParseError> {
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return Err(ParseError::BadContentLength);
    }
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(ParseError::BadContentLength)
}
