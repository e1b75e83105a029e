//! The request-head parser: [`parse_head`] and the RFC 9112 checks it adds
//! to httparse (sizes decided by position, version, Host count, framing,
//! target forms, keep-alive / 100-continue), with the translation of
//! httparse's errors into our refusals.
//!
//! Separate from the head's types (in `request`) because those are what
//! the rest of the ring reads (`conn`, `uwsgi`, `response`, the WSGI
//! environ), while this is how bytes become a head: nothing here but
//! [`parse_head`] is seen outside, and it is re-exported by `request`.

use std::mem::MaybeUninit;
use std::ops::Range;

use super::grammar::{is_tchar, parse_content_length, trim_ows, valid_host};
use super::{Framing, RequestHead, Status, Version};
use crate::error::ParseError;
use crate::limits::Limits;

/// Headers parsed on the stack when the field limit allows: the common case
/// costs no allocation.
const STACK_HEADERS: usize = 128;

/// Parses one request head from the start of `buf` into `head`.
///
/// Returns `Complete(n)` with the head's length (the body, if any, starts at
/// `buf[n..]`), `Partial` if `buf` holds only a prefix of a head that is
/// still within the limits, or the reason to refuse the request.
pub fn parse_head(
    buf: &[u8],
    limits: &Limits,
    head: &mut RequestHead,
) -> Result<Status<usize>, ParseError> {
    let fields = limits.header_fields.max(1);
    if fields <= STACK_HEADERS {
        // Uninitialised: zeroing 128 headers would cost more than parsing.
        let mut storage = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK_HEADERS];
        parse_with(buf, limits, head, &mut storage[..fields])
    } else {
        let mut storage: Vec<MaybeUninit<httparse::Header<'_>>> = Vec::with_capacity(fields);
        storage.resize_with(fields, MaybeUninit::uninit);
        parse_with(buf, limits, head, &mut storage)
    }
}

fn parse_with<'b>(
    buf: &'b [u8],
    limits: &Limits,
    head: &mut RequestHead,
    storage: &mut [MaybeUninit<httparse::Header<'b>>],
) -> Result<Status<usize>, ParseError> {
    let line_start = skip_empty_lines(buf);
    if line_start > crate::limits::MAX_LEADING_EMPTY_BYTES {
        return Err(ParseError::BadRequestLine);
    }
    let line_end = memchr(b'\n', &buf[line_start..]).map_or(buf.len(), |i| line_start + i);
    // Without its CR: a CR left inside means a bare CR in the line.
    let request_line = &buf[line_start..line_end];
    let request_line = request_line.strip_suffix(b"\r").unwrap_or(request_line);
    if let Some((at, size_error)) = first_overlong(buf, line_start, limits) {
        // Only the bytes before the limit decide, so the answer does not
        // depend on how the head was split into reads: a syntax error there
        // wins, otherwise it is the size.
        let mut req = httparse::Request::new(&mut []);
        return match req.parse_with_uninit_headers(&buf[..at], storage) {
            Err(e) => Err(map_httparse_error(
                e,
                &request_line[..request_line.len().min(at - line_start)],
            )),
            Ok(_) => Err(size_error),
        };
    }
    if line_end == buf.len() {
        // The request line is not complete: its version cannot be judged yet.
        return Ok(Status::Partial);
    }
    let mut req = httparse::Request::new(&mut []);
    let n = match req.parse_with_uninit_headers(buf, storage) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() > limits.max_head_bytes() {
                return Err(ParseError::HeaderTooLarge);
            }
            return Ok(Status::Partial);
        }
        Err(e) => return Err(map_httparse_error(e, request_line)),
    };
    let base = buf.as_ptr() as usize;
    let range = |s: &[u8]| {
        let start = s.as_ptr() as usize - base;
        start..start + s.len()
    };
    let method = req.method.unwrap_or_default().as_bytes();
    let target = req.path.unwrap_or_default().as_bytes();
    head.head_len = n;
    head.method = range(method);
    head.target = range(target);
    head.version = if req.version == Some(0) {
        Version::Http10
    } else {
        Version::Http11
    };
    head.headers.clear();
    head.host = None;
    head.authority = None;
    head.expect_continue = false;
    head.cgi = false;
    split_target(method, target, head, &range)?;

    let mut host_count = 0;
    let mut content_length: Option<u64> = None;
    let mut te = TransferCodings::default();
    let (mut close, mut keep_alive) = (false, false);
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        let value = trim_ows(h.value);
        // httparse already refuses these; kept as a cheap (SIMD) second
        // line of defence against smuggling through header values.
        if memchr::memchr3(b'\r', b'\n', 0, value).is_some() {
            return Err(ParseError::BadHeader);
        }
        head.headers.push((range(name), range(value)));
        if name.eq_ignore_ascii_case(b"host") {
            host_count += 1;
            if !valid_host(value) {
                return Err(ParseError::BadHeader);
            }
            head.host = Some(range(value));
        } else if name.eq_ignore_ascii_case(b"content-length") {
            let n = parse_content_length(value)?;
            if content_length.is_some_and(|prev| prev != n) {
                return Err(ParseError::ConflictingContentLength);
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            te.add(value);
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&b| b == b',').map(trim_ows) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case(b"expect") {
            head.expect_continue = value.eq_ignore_ascii_case(b"100-continue");
        }
    }
    if host_count > 1 {
        return Err(ParseError::DuplicateHost);
    }
    if host_count == 0 && head.version == Version::Http11 {
        return Err(ParseError::MissingHost);
    }
    head.framing = match (te.present, content_length) {
        (false, None | Some(0)) => Framing::Empty,
        (false, Some(n)) => Framing::Length(n),
        (true, Some(_)) => return Err(ParseError::ContentLengthWithTransferEncoding),
        (true, None) if head.version == Version::Http10 => {
            return Err(ParseError::TransferEncodingOnHttp10)
        }
        (true, None) => te.framing()?,
    };
    if let (Framing::Length(n), Some(max)) = (head.framing, limits.max_body) {
        if n > max {
            return Err(ParseError::BodyTooLarge);
        }
    }
    head.expect_continue &= head.version == Version::Http11;
    head.keep_alive = match head.version {
        Version::Http11 => !close,
        Version::Http10 => keep_alive && !close,
    };
    Ok(Status::Complete(n))
}

/// Splits the request target into path, query and authority (RFC 9112 §3.2).
fn split_target(
    method: &[u8],
    target: &[u8],
    head: &mut RequestHead,
    range: &impl Fn(&[u8]) -> Range<usize>,
) -> Result<(), ParseError> {
    if method == b"CONNECT" {
        return Err(ParseError::MethodNotImplemented);
    }
    // A fragment is not part of a request target; clients that send one
    // anyway get it ignored, as every mainstream server does.
    let target = match memchr(b'#', target) {
        Some(i) => &target[..i],
        None => target,
    };
    let rest = if target.first() == Some(&b'/') {
        target
    } else if target == b"*" {
        if method != b"OPTIONS" {
            return Err(ParseError::BadTarget);
        }
        target
    } else {
        let after_scheme = strip_prefix_ignore_case(target, b"http://")
            .or_else(|| strip_prefix_ignore_case(target, b"https://"))
            .ok_or(ParseError::BadTarget)?;
        let end = after_scheme
            .iter()
            .position(|&b| b == b'/' || b == b'?')
            .unwrap_or(after_scheme.len());
        let authority = &after_scheme[..end];
        if authority.is_empty() || !valid_host(authority) {
            return Err(ParseError::BadTarget);
        }
        head.authority = Some(range(authority));
        &after_scheme[end..]
    };
    match memchr(b'?', rest) {
        Some(i) => {
            head.path = range(&rest[..i]);
            head.query = range(&rest[i + 1..]);
        }
        None => {
            head.path = range(rest);
            head.query = head.path.end..head.path.end;
        }
    }
    Ok(())
}

/// The Transfer-Encoding codings seen over all TE fields of a request.
#[derive(Default)]
struct TransferCodings {
    present: bool,
    chunked_count: usize,
    last_is_chunked: bool,
    other: bool,
    empty: bool,
}

impl TransferCodings {
    fn add(&mut self, value: &[u8]) {
        self.present = true;
        for coding in value.split(|&b| b == b',').map(trim_ows) {
            if coding.is_empty() {
                self.empty = true;
            } else if coding.eq_ignore_ascii_case(b"chunked") {
                self.chunked_count += 1;
                self.last_is_chunked = true;
            } else {
                self.other = true;
                self.last_is_chunked = false;
            }
        }
    }

    /// RFC 9112 §6.3: chunked must be the final coding, exactly once, else
    /// the length cannot be known (400); a coding we do not know is 501.
    fn framing(&self) -> Result<Framing, ParseError> {
        if self.empty || self.chunked_count > 1 || !self.last_is_chunked {
            return Err(ParseError::BadTransferEncoding);
        }
        if self.other {
            return Err(ParseError::UnsupportedTransferCoding);
        }
        Ok(Framing::Chunked)
    }
}

/// The first place where the head passes a limit: the request line over
/// `request_line` bytes, a field line over `field_size` (CRLF not counted),
/// or a field line beyond `header_fields`, as `(index of the first byte
/// past the limit, error)`. A line still arriving counts once the
/// violation is certain, so the answer never depends on how the head was
/// split into reads.
fn first_overlong(buf: &[u8], start: usize, limits: &Limits) -> Option<(usize, ParseError)> {
    let mut pos = start;
    let mut fields = 0;
    loop {
        let rest = &buf[pos..];
        let (content, complete) = match memchr(b'\n', rest) {
            Some(i) => (i - usize::from(i > 0 && rest[i - 1] == b'\r'), Some(i)),
            // A final CR may be the start of the line's CRLF.
            None => (rest.len() - usize::from(rest.last() == Some(&b'\r')), None),
        };
        let (limit, error) = if pos == start {
            (limits.request_line, ParseError::RequestLineTooLong)
        } else if content == 0 {
            return None; // the end of the head, or not known yet
        } else {
            fields += 1;
            if fields > limits.header_fields {
                return Some((pos, ParseError::TooManyHeaders));
            }
            (limits.field_size, ParseError::HeaderTooLarge)
        };
        if content > limit {
            return Some((pos + limit, error));
        }
        match complete {
            Some(i) => pos += i + 1,
            None => return None,
        }
    }
}

fn map_httparse_error(e: httparse::Error, request_line: &[u8]) -> ParseError {
    match e {
        httparse::Error::Version => classify_version(request_line),
        httparse::Error::TooManyHeaders => ParseError::TooManyHeaders,
        httparse::Error::HeaderName | httparse::Error::HeaderValue | httparse::Error::NewLine => {
            // A CR or LF inside the request line itself shows up as NewLine.
            if request_line.contains(&b'\r') {
                ParseError::BadRequestLine
            } else {
                ParseError::BadHeader
            }
        }
        httparse::Error::Token => {
            let method_end = memchr(b' ', request_line).unwrap_or(request_line.len());
            if method_end == 0 || !request_line[..method_end].iter().all(|&b| is_tchar(b)) {
                ParseError::BadMethod
            } else {
                ParseError::BadRequestLine
            }
        }
        _ => ParseError::BadRequestLine,
    }
}

/// httparse knows only HTTP/1.0 and 1.1: tell a well-formed other version
/// (505) from garbage (400). The version is what follows the second space:
/// `GET /a b HTTP/1.1` (a space in the target) is a bad request line.
fn classify_version(request_line: &[u8]) -> ParseError {
    let version = request_line
        .splitn(3, |&b| b == b' ')
        .nth(2)
        .unwrap_or_default();
    match version {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            ParseError::VersionNotSupported
        }
        _ if version.contains(&b' ') => ParseError::BadRequestLine,
        _ => ParseError::BadVersion,
    }
}

fn skip_empty_lines(buf: &[u8]) -> usize {
    let mut i = 0;
    while i < buf.len() {
        match buf[i] {
            b'\n' => i += 1,
            b'\r' if buf.get(i + 1) == Some(&b'\n') => i += 2,
            _ => break,
        }
    }
    i
}

fn strip_prefix_ignore_case<'a>(s: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    (s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix))
        .then(|| &s[prefix.len()..])
}

pub(crate) fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    memchr::memchr(needle, haystack)
}
