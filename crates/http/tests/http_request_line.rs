//! Table tests of `qiao_http::parse_head` on the request line: methods,
//! target forms (origin, absolute, asterisk; query and fragment) and
//! versions. Every case is fed whole, as a growing prefix (byte by byte)
//! and in random reads (`common::head_all_ways`), and must give the same
//! head or the same error in every mode. Also covers `percent_decode`, the
//! HTTP/2 preface check and `is_tchar`.

mod common;

use common::{err, run, Case, Want, C::*};
use qiao_http::request::{match_h2_preface, percent_decode, H2_PREFACE};
use qiao_http::Version::{Http10 as V10, Http11 as V11};
use qiao_http::{Framing, Limits, ParseError::*, Status};

#[rustfmt::skip]
const REQUEST_LINE: &[Case] = &[
    ("get", b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", Want::Ok(&[M("GET"), P("/"), Q(""), T("/"), A(None), Host(Some("a")), V(V11), F(Framing::Empty), Ka(true), Ec(false), H(&[("Host", "a")])])),
    ("post", b"POST /submit HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n", Want::Ok(&[M("POST"), P("/submit"), F(Framing::Length(3))])),
    ("head", b"HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n", Want::Ok(&[M("HEAD"), P("/x")])),
    ("put 1.0", b"PUT /p HTTP/1.0\r\n\r\n", Want::Ok(&[M("PUT"), V(V10), Ka(false), Host(None), H(&[])])),
    ("lowercase method kept", b"get / HTTP/1.1\r\nHost: a\r\n\r\n", Want::Ok(&[M("get")])),
    ("extension method", b"M-SEARCH * HTTP/1.1\r\nHost: a\r\n\r\n", err(BadTarget, 400)),
    ("token method", b"-BLARGH /foo HTTP/1.1\r\nHost: a\r\n\r\n", Want::Ok(&[M("-BLARGH")])),
    ("purge", b"PURGE /c HTTP/1.1\r\nHost: a\r\n\r\n", Want::Ok(&[M("PURGE")])),
    ("options asterisk", b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", Want::Ok(&[M("OPTIONS"), P("*"), Q(""), T("*")])),
    ("options asterisk 1.0", b"OPTIONS * HTTP/1.0\r\n\r\n", Want::Ok(&[P("*"), V(V10)])),
    ("asterisk with GET", b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", err(BadTarget, 400)),
    ("asterisk with DELETE", b"DELETE * HTTP/1.1\r\nHost: a\r\n\r\n", err(BadTarget, 400)),
    ("asterisk with lowercase options", b"options * HTTP/1.1\r\nHost: a\r\n\r\n", err(BadTarget, 400)),
    ("connect", b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", err(MethodNotImplemented, 501)),
    ("connect 1.0", b"CONNECT [::1]:443 HTTP/1.0\r\n\r\n", err(MethodNotImplemented, 501)),
    ("connect origin-form", b"CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", err(MethodNotImplemented, 501)),
    ("authority-form with GET", b"GET example.com:443 HTTP/1.1\r\nHost: a\r\n\r\n", err(BadTarget, 400)),
    ("relative target", b"GET foo/bar HTTP/1.1\r\nHost: a\r\n\r\n", err(BadTarget, 400)),
    ("non-token method paren", b"G(ET / HTTP/1.1\r\nHost: a\r\n\r\n", err(BadMethod, 400)),
    ("method with NUL", b"GET\0 /foo HTTP/1.1\r\n\r\n", err(BadMethod, 400)),
    ("method with colon", b"bla:rgh /foo HTTP/1.1\r\n\r\n", err(BadMethod, 400)),
    ("non-ascii method", "GETß /g HTTP/1.1\r\n\r\n".as_bytes(), err(BadMethod, 400)),
    ("leading space", b" GET / HTTP/1.1\r\n\r\n", err(BadMethod, 400)),
    ("double space", b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", err(BadRequestLine, 400)),
    ("space in target", b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", err(BadRequestLine, 400)),
    ("space in target, other version", b"GET /a b HTTP/2.0\r\nHost: a\r\n\r\n", err(BadRequestLine, 400)),
    ("space after version", b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", err(BadHeader, 400)),
    ("missing target", b"GET HTTP/1.1\r\n\r\n", err(BadRequestLine, 400)),
    ("no version", b"GET /\r\n\r\n", err(BadRequestLine, 400)),
    ("newlines as separators", b"GET\n/\nHTTP/1.1\r\n\r\n", err(BadRequestLine, 400)),
    ("bare CR in request line", b"GET / HTTP/1.1\rHost: a\r\n\r\n", err(BadRequestLine, 400)),
    ("ftp version", b"GET /foo FTP/1.1\r\n\r\n", err(BadVersion, 400)),
    ("version x", b"GET / HTTP/1.x\r\nHost: a\r\n\r\n", err(BadVersion, 400)),
    ("version 111", b"GET /test HTTP/111\r\nHost: localhost\r\n\r\n", err(BadVersion, 400)),
    ("version 0.99", b"GET /foo HTTP/0.99\r\n\r\n", err(BadVersion, 400)),
    ("lowercase http", b"GET / http/1.1\r\nHost: a\r\n\r\n", err(BadVersion, 400)),
    ("http/2.0", b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", err(VersionNotSupported, 505)),
    ("http/1.2", b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", err(VersionNotSupported, 505)),
    ("http/0.9 form", b"GET / HTTP/0.9\r\n\r\n", err(VersionNotSupported, 505)),
    ("h2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", err(VersionNotSupported, 505)),
];

#[rustfmt::skip]
const TARGETS: &[Case] = &[
    ("query", b"GET /p?a=1&b=2 HTTP/1.1\r\nHost: a\r\n\r\n", Want::Ok(&[P("/p"), Q("a=1&b=2"), T("/p?a=1&b=2")])),
    ("empty query", b"GET /p? HTTP/1.1\r\nHost: a\r\n\r\n", Want::Ok(&[P("/p"), Q("")])),
    ("second question mark", b"GET /p?a?b HTTP/1.1\r\nHost: a\r\n\r\n", Want::Ok(&[P("/p"), Q("a?b")])),
    ("fragment dropped", b"GET /p#frag HTTP/1.1\r\nHost: a\r\n\r\n", Want::Ok(&[P("/p"), Q(""), T("/p#frag")])),
    ("query then fragment", b"GET /forums/1?page=1#posts-17408 HTTP/1.1\r\nHost: a\r\n\r\n", Want::Ok(&[P("/forums/1"), Q("page=1")])),
    ("question mark in fragment", b"GET /p#f?x HTTP/1.1\r\nHost: a\r\n\r\n", Want::Ok(&[P("/p"), Q("")])),
    ("slashes kept", b"GET ///keeping_slashes HTTP/1.1\r\nHost: a\r\n\r\n", Want::Ok(&[P("///keeping_slashes")])),
    ("percent kept encoded", b"GET /a%20b%2Fc?x=%41 HTTP/1.1\r\nHost: a\r\n\r\n", Want::Ok(&[P("/a%20b%2Fc"), Q("x=%41")])),
    ("utf-8 in path", "GET /à%20k HTTP/1.0\r\n\r\n".as_bytes(), Want::Ok(&[P("/à%20k")])),
    ("quotes in path", b"GET /with_\"quotes\"?foo=\"bar\" HTTP/1.1\r\nHost: a\r\n\r\n", Want::Ok(&[P("/with_\"quotes\""), Q("foo=\"bar\"")])),
    ("absolute form", b"GET http://host:8/p?q HTTP/1.1\r\nHost: a\r\n\r\n", Want::Ok(&[A(Some("host:8")), P("/p"), Q("q"), T("http://host:8/p?q"), Host(Some("a"))])),
    ("absolute no path", b"GET http://host HTTP/1.1\r\nHost: host\r\n\r\n", Want::Ok(&[A(Some("host")), P(""), Q("")])),
    ("absolute query no path", b"GET http://host?x=1 HTTP/1.1\r\nHost: host\r\n\r\n", Want::Ok(&[A(Some("host")), P(""), Q("x=1")])),
    ("absolute https uppercase", b"GET HTTPS://Example.com/p HTTP/1.1\r\nHost: x\r\n\r\n", Want::Ok(&[A(Some("Example.com")), P("/p")])),
    ("absolute ipv6", b"GET http://[::1]:8080/foo HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", Want::Ok(&[A(Some("[::1]:8080")), P("/foo"), Host(Some("[::1]:8080"))])),
    ("absolute fragment", b"GET http://h/p#f HTTP/1.1\r\nHost: h\r\n\r\n", Want::Ok(&[A(Some("h")), P("/p"), Q("")])),
    ("absolute 1.0 without host", b"GET http://h/p HTTP/1.0\r\n\r\n", Want::Ok(&[A(Some("h")), Host(None)])),
    ("absolute options", b"OPTIONS http://h HTTP/1.1\r\nHost: h\r\n\r\n", Want::Ok(&[A(Some("h")), P("")])),
    ("absolute ftp", b"GET ftp://host/p HTTP/1.1\r\nHost: a\r\n\r\n", err(BadTarget, 400)),
    ("absolute empty authority", b"GET http:///p HTTP/1.1\r\nHost: a\r\n\r\n", err(BadTarget, 400)),
    ("absolute userinfo", b"GET http://u:p@host/ HTTP/1.1\r\nHost: host\r\n\r\n", err(BadTarget, 400)),
    ("scheme without slashes", b"GET http:host/ HTTP/1.1\r\nHost: host\r\n\r\n", err(BadTarget, 400)),
    ("garbage target", b"PUT s://]ufd/: HTTP/1.1\r\n\r\n", err(BadTarget, 400)),
];

#[test]
fn request_line() {
    run(REQUEST_LINE, &Limits::default());
}

#[test]
fn targets() {
    run(TARGETS, &Limits::default());
}

#[test]
fn percent_decoding() {
    let cases: &[(&[u8], &[u8])] = &[
        (b"", b""),
        (b"/plain", b"/plain"),
        (b"/a%20b", b"/a b"),
        (b"%2F%2f", b"//"),
        (b"%aF%Af", b"\xaf\xaf"),
        (b"%00", b"\0"),
        (b"%", b"%"),
        (b"a%4", b"a%4"),
        (b"%zz%4g", b"%zz%4g"),
        (b"%%41", b"%A"),
        (b"%41%", b"A%"),
        (b"caf%C3%A9", "café".as_bytes()),
        (b"+", b"+"),
    ];
    let mut out = b"stale".to_vec();
    for (src, want) in cases {
        percent_decode(src, &mut out);
        assert_eq!(&out, want, "{:?}", String::from_utf8_lossy(src));
    }
}

/// The HTTP/2 preface check that decides an h2c hand-over: every prefix
/// may still be one, a whole preface (with or without frames behind it)
/// is one, and a byte off anywhere is not.
#[test]
fn h2_preface() {
    for n in 1..H2_PREFACE.len() {
        assert_eq!(
            match_h2_preface(&H2_PREFACE[..n]),
            Some(Status::Partial),
            "{n}"
        );
    }
    type PrefaceCase = (&'static str, &'static [u8], Option<Status<()>>);
    let cases: [PrefaceCase; 6] = [
        ("whole", H2_PREFACE, Some(Status::Complete(()))),
        (
            "with a frame",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04",
            Some(Status::Complete(())),
        ),
        ("a GET", b"GET / HTTP/1.1\r\n", None),
        ("PRI as a method of 1.1", b"PRI * HTTP/1.1\r\n\r\n", None),
        ("no SM part", b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", None),
        ("lower case", b"pri * HTTP/2.0\r\n", None),
    ];
    for (name, bytes, want) in cases {
        assert_eq!(match_h2_preface(bytes), want, "{name}");
    }
}

/// `is_tchar` (a table) against RFC 9110 §5.6.2 spelled out, every byte.
#[test]
fn tchar_is_rfc_9110_token_character() {
    let rfc =
        |b: u8| b.is_ascii_digit() || b.is_ascii_alphabetic() || b"!#$%&'*+-.^_`|~".contains(&b);
    for b in 0..=255u8 {
        assert_eq!(qiao_http::request::is_tchar(b), rfc(b), "byte {b:#04x}");
    }
    assert_eq!((0..=255u8).filter(|&b| rfc(b)).count(), 62 + 15);
}
