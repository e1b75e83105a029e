//! Response framing: deciding how a response body is delimited and whether
//! the connection stays open, and writing status lines, heads, chunk frames
//! and canned error responses into a byte buffer.
//!
//! The decisions live here, sans-IO, so the rules (HEAD, 1xx/204/304,
//! HTTP/1.0, `Connection: close` either way) are table-tested once and the
//! WSGI ring only reports what the application said.

use super::request::Version;

/// The `Server` header value sent unless the application sets its own.
pub const SERVER_NAME: &[u8] = b"qiao";

/// How the bytes after the head are delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyMode {
    /// No body may be sent (HEAD, 1xx, 204, 304); body bytes are dropped.
    None,
    /// Exactly this many bytes (Content-Length).
    Length(u64),
    /// `Transfer-Encoding: chunked` (HTTP/1.1 without a known length).
    Chunked,
    /// Delimited by closing the connection (HTTP/1.0 without a length).
    UntilClose,
}

/// What the request said that matters to framing the response.
#[derive(Clone, Copy, Debug)]
pub struct RequestFacts {
    pub version: Version,
    pub is_head: bool,
    pub keep_alive: bool,
}

/// What the application said, once its status and headers are known.
#[derive(Clone, Copy, Debug, Default)]
pub struct AppFacts {
    pub status: u16,
    pub content_length: Option<u64>,
    pub connection_close: bool,
    /// Total body length when the server knows the whole body before
    /// sending the head (a list result): lets us send Content-Length.
    pub known_length: Option<u64>,
}

/// The outcome of [`plan`]: body framing and whether to keep the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    pub mode: BodyMode,
    pub keep_alive: bool,
    /// Add a `Content-Length` header with this value (the app gave none).
    pub add_length: Option<u64>,
}

/// Decides body framing and connection persistence (RFC 9112 §6.3, §9.3).
pub fn plan(req: RequestFacts, app: AppFacts) -> Plan {
    let bodiless = app.status < 200 || app.status == 204 || app.status == 304;
    let (mode, add_length) = if bodiless {
        (BodyMode::None, None)
    } else if let Some(n) = app.content_length {
        (
            if req.is_head {
                BodyMode::None
            } else {
                BodyMode::Length(n)
            },
            None,
        )
    } else if let Some(n) = app.known_length {
        // HEAD gets the length GET would have sent (RFC 9110 §9.3.2).
        (
            if req.is_head {
                BodyMode::None
            } else {
                BodyMode::Length(n)
            },
            Some(n),
        )
    } else if req.is_head {
        (BodyMode::None, None)
    } else if req.version == Version::Http11 {
        (BodyMode::Chunked, None)
    } else {
        (BodyMode::UntilClose, None)
    };
    let keep_alive = req.keep_alive && !app.connection_close && mode != BodyMode::UntilClose;
    Plan {
        mode,
        keep_alive,
        add_length,
    }
}

/// Writes the status line and head. `status_line` is the application's
/// `"200 OK"`; `headers` are already validated; `date` is an IMF-fixdate.
pub fn write_head<'h>(
    out: &mut Vec<u8>,
    status_line: &[u8],
    headers: impl Iterator<Item = (&'h [u8], &'h [u8])>,
    date: &[u8],
    req: RequestFacts,
    plan: &Plan,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status_line);
    out.extend_from_slice(b"\r\n");
    let (mut has_server, mut has_date) = (false, false);
    for (name, value) in headers {
        // Hop-by-hop framing is ours to decide: the app's Transfer-Encoding
        // and Connection are replaced by what `plan` chose.
        if name.eq_ignore_ascii_case(b"transfer-encoding")
            || name.eq_ignore_ascii_case(b"connection")
        {
            continue;
        }
        has_server |= name.eq_ignore_ascii_case(b"server");
        has_date |= name.eq_ignore_ascii_case(b"date");
        push_field(out, name, value);
    }
    if !has_server {
        push_field(out, b"Server", SERVER_NAME);
    }
    if !has_date {
        push_field(out, b"Date", date);
    }
    if let Some(n) = plan.add_length {
        push_field(
            out,
            b"Content-Length",
            itoa::Buffer::new().format(n).as_bytes(),
        );
    }
    if plan.mode == BodyMode::Chunked {
        push_field(out, b"Transfer-Encoding", b"chunked");
    }
    if !plan.keep_alive {
        push_field(out, b"Connection", b"close");
    } else if req.version == Version::Http10 {
        push_field(out, b"Connection", b"keep-alive");
    }
    out.extend_from_slice(b"\r\n");
}

/// One `name: value` line of a head.
pub fn push_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The frame header of one chunk of `len` bytes (`len` > 0).
pub fn chunk_header(len: usize, out: &mut Vec<u8>) {
    let mut buf = [0u8; 18];
    let mut i = buf.len();
    let mut n = len;
    loop {
        i -= 1;
        buf[i] = b"0123456789abcdef"[n & 15];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
    out.extend_from_slice(b"\r\n");
}

/// Appends `data` as one chunk (nothing if it is empty: an empty chunk
/// would end the body).
pub fn push_chunk(data: &[u8], out: &mut Vec<u8>) {
    if data.is_empty() {
        return;
    }
    chunk_header(data.len(), out);
    out.extend_from_slice(data);
    out.extend_from_slice(CHUNK_END);
}

/// Ends the data of one chunk.
pub const CHUNK_END: &[u8] = b"\r\n";
/// The last chunk with an empty trailer section.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";
/// The interim response sent when the app first reads a body announced
/// with `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Standard reason phrase for the codes the server itself produces.
pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        404 => "Not Found",
        502 => "Bad Gateway",
        504 => "Gateway Timeout",
        400 => "Bad Request",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

/// A complete response the server sends on its own (parse errors, app
/// failures): plain text, a length, and `Connection: close` unless asked to
/// keep the connection.
pub fn simple_response(
    out: &mut Vec<u8>,
    status: u16,
    message: &str,
    date: &[u8],
    keep_alive: bool,
    is_head: bool,
) {
    let body_len = message.len() + 1;
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(itoa::Buffer::new().format(status).as_bytes());
    out.push(b' ');
    out.extend_from_slice(reason(status).as_bytes());
    out.extend_from_slice(b"\r\n");
    push_field(out, b"Server", SERVER_NAME);
    push_field(out, b"Date", date);
    push_field(out, b"Content-Type", b"text/plain; charset=utf-8");
    push_field(
        out,
        b"Content-Length",
        itoa::Buffer::new().format(body_len).as_bytes(),
    );
    if !keep_alive {
        push_field(out, b"Connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
    if !is_head {
        out.extend_from_slice(message.as_bytes());
        out.push(b'\n');
    }
}
