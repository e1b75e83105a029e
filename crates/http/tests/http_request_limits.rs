//! The size limits of `qiao_http::parse_head` (414, 431, 413): small
//! limits as a table, each case fed whole, as a growing prefix (byte by
//! byte) and in random reads (`common::head_all_ways`); the default limits
//! at their bounds; gunicorn's 0 as no limit under the head ceiling. Also
//! covers `ParseError::status` for every error.

mod common;

use common::{check, err, run, Case, Want, C::*};
use qiao_http::limits::{MAX_HEADER_FIELDS_CEILING, MAX_HEAD_BYTES};
use qiao_http::Version::Http10 as V10;
use qiao_http::{parse_head, Framing, Limits, ParseError, ParseError::*, RequestHead, Status};

/// Small limits so each bound is easy to reach: request line 32, 4 fields
/// of at most 32 bytes, bodies of at most 10 bytes.
fn small() -> Limits {
    Limits {
        request_line: 32,
        header_fields: 4,
        field_size: 32,
        max_body: Some(10),
    }
}

#[rustfmt::skip]
const LIMITS: &[Case] = &[
    ("line at limit", b"GET /aaaaaaaaaaaaaaaaaa HTTP/1.0\r\n\r\n", Want::Ok(&[P("/aaaaaaaaaaaaaaaaaa")])),
    ("line at limit, LF", b"GET /aaaaaaaaaaaaaaaaaa HTTP/1.0\n\n", Want::Ok(&[V(V10)])),
    ("line over limit", b"GET /aaaaaaaaaaaaaaaaaaa HTTP/1.0\r\n\r\n", err(RequestLineTooLong, 414)),
    ("line over limit, partial", b"GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", err(RequestLineTooLong, 414)),
    ("line over limit after empty lines", b"\r\n\r\nGET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", err(RequestLineTooLong, 414)),
    ("four fields", b"GET / HTTP/1.1\r\nHost: a\r\nB: 1\r\nC: 2\r\nD: 3\r\n\r\n", Want::Ok(&[Host(Some("a"))])),
    ("five fields", b"GET / HTTP/1.1\r\nHost: a\r\nB: 1\r\nC: 2\r\nD: 3\r\nE: 4\r\n\r\n", err(TooManyHeaders, 431)),
    ("five fields, partial", b"GET / HTTP/1.1\r\nHost: a\r\nB: 1\r\nC: 2\r\nD: 3\r\nE: 4\r\nF", err(TooManyHeaders, 431)),
    ("field at limit", b"GET / HTTP/1.0\r\nX: 01234567890123456789012345678\r\n\r\n", Want::Ok(&[V(V10)])),
    ("field over limit", b"GET / HTTP/1.0\r\nX: 012345678901234567890123456789\r\n\r\n", err(HeaderTooLarge, 431)),
    ("field over limit, partial", b"GET / HTTP/1.0\r\nX: 0123456789012345678901234567890123456789", err(HeaderTooLarge, 431)),
    ("name over limit, partial", b"GET / HTTP/1.0\r\nXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", err(HeaderTooLarge, 431)),
    // The whole line counts, trailing OWS included (as gunicorn counts it):
    // a limit that ignored trailing OWS could not be applied to a line still
    // arriving without depending on how it was split.
    ("field at limit, trailing OWS over it", b"GET / HTTP/1.0\r\nX: 01234567890123456789012345678  \r\n\r\n", err(HeaderTooLarge, 431)),
    ("field at limit exactly", b"GET / HTTP/1.0\r\nX: 01234567890123456789012345678\r\n\r\n", Want::Ok(&[H(&[("X", "01234567890123456789012345678")])])),
    ("body at max", b"POST / HTTP/1.0\r\nContent-Length: 10\r\n\r\n", Want::Ok(&[F(Framing::Length(10))])),
    ("body over max", b"POST / HTTP/1.0\r\nContent-Length: 11\r\n\r\n", err(BodyTooLarge, 413)),
    ("chunked with max is checked later", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", Want::Ok(&[F(Framing::Chunked)])),
];

#[test]
fn limits() {
    run(LIMITS, &small());
}

#[test]
fn default_limits() {
    let ok =
        |n: usize| format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(n - 14)).into_bytes();
    check(
        "8190-byte line",
        &ok(8190),
        &Want::Ok(&[]),
        &Limits::default(),
    );
    check(
        "8191-byte line",
        &ok(8191),
        &err(RequestLineTooLong, 414),
        &Limits::default(),
    );
    let field = |n: usize| {
        format!(
            "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
            "v".repeat(n - 3)
        )
        .into_bytes()
    };
    check(
        "8190-byte field",
        &field(8190),
        &Want::Ok(&[]),
        &Limits::default(),
    );
    check(
        "8191-byte field",
        &field(8191),
        &err(HeaderTooLarge, 431),
        &Limits::default(),
    );
    let fields = |n: usize| {
        format!(
            "GET / HTTP/1.1\r\nHost: a\r\n{}\r\n",
            "X: y\r\n".repeat(n - 1)
        )
        .into_bytes()
    };
    check(
        "100 fields",
        &fields(100),
        &Want::Ok(&[]),
        &Limits::default(),
    );
    check(
        "101 fields",
        &fields(101),
        &err(TooManyHeaders, 431),
        &Limits::default(),
    );
    let many = Limits {
        header_fields: 300,
        ..Limits::default()
    };
    check(
        "200 fields on the heap",
        &fields(200),
        &Want::Ok(&[]),
        &many,
    );
}

/// gunicorn's 0 for a limit: no limit of its own, under the head ceiling.
/// (Parsed whole: fed byte by byte, a megabyte head is quadratic work.)
#[test]
fn zero_limits_are_gunicorns_unlimited() {
    let unlimited = Limits::from_settings(0, 0, 0, None, 16);
    assert_eq!(unlimited.header_fields, MAX_HEADER_FIELDS_CEILING);
    let parse = |raw: String| parse_head(raw.as_bytes(), &unlimited, &mut RequestHead::default());
    let line = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(100_000));
    assert!(matches!(parse(line), Ok(Status::Complete(_))));
    let field = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
        "v".repeat(100_000)
    );
    assert!(matches!(parse(field), Ok(Status::Complete(_))));
    // The head as a whole stays bounded: still partial beyond the ceiling.
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX: {}",
        "v".repeat(MAX_HEAD_BYTES)
    );
    assert_eq!(parse(huge), Err(HeaderTooLarge));
    // Other values are raised to the least a limit may be.
    assert_eq!(Limits::from_settings(3, 5, 4, None, 16).request_line, 16);
    let many = Limits::from_settings(3, 99_999, 4, None, 16);
    assert_eq!(many.header_fields, MAX_HEADER_FIELDS_CEILING);
}

#[test]
fn error_statuses() {
    let statuses: &[(ParseError, u16)] = &[
        (BadRequestLine, 400),
        (BadMethod, 400),
        (BadTarget, 400),
        (BadVersion, 400),
        (VersionNotSupported, 505),
        (RequestLineTooLong, 414),
        (BadHeader, 400),
        (TooManyHeaders, 431),
        (HeaderTooLarge, 431),
        (MissingHost, 400),
        (DuplicateHost, 400),
        (BadContentLength, 400),
        (ConflictingContentLength, 400),
        (ContentLengthWithTransferEncoding, 400),
        (TransferEncodingOnHttp10, 400),
        (BadTransferEncoding, 400),
        (UnsupportedTransferCoding, 501),
        (MethodNotImplemented, 501),
        (BodyTooLarge, 413),
        (BadChunkSize, 400),
        (BadChunkData, 400),
        (BadChunkExtension, 400),
        (BadTrailer, 400),
    ];
    for (e, status) in statuses {
        assert_eq!(e.status(), *status, "{e:?}");
        assert!(!e.message().is_empty());
        assert_eq!(e.to_string(), format!("{} ({status})", e.message()));
    }
    assert_eq!(BodyTooLarge.to_string(), "request body too large (413)");
}
