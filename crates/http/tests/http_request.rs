//! Table tests of `qiao_http::parse_head` on raw request heads: request
//! line (methods, target forms, query/fragment, versions), field syntax,
//! Host rules, keep-alive and `Expect: 100-continue`, line endings, and the
//! size limits (414/431/413). Every case is fed whole, as a growing prefix
//! (byte by byte) and in random reads (`common::head_all_ways`), and must
//! give the same head or the same error in every mode. Also covers
//! `percent_decode`, `trim_ows`, `ParseError::status` and head reuse.

mod common;

use common::{check, err, run, Case, Parsed, Want, C::*};
use qiao_http::limits::{MAX_HEADER_FIELDS_CEILING, MAX_HEAD_BYTES};
use qiao_http::request::{match_h2_preface, percent_decode, trim_ows, H2_PREFACE};
use qiao_http::Version::{Http10 as V10, Http11 as V11};
use qiao_http::{parse_head, Framing, Limits, ParseError, ParseError::*, RequestHead, Status};

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

#[rustfmt::skip]
const CONNECTION: &[Case] = &[
    ("1.0 closes by default", b"GET / HTTP/1.0\r\n\r\n", Want::Ok(&[V(V10), Ka(false)])),
    ("1.0 keep-alive", b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", Want::Ok(&[Ka(true)])),
    ("1.0 Keep-Alive", b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", Want::Ok(&[Ka(true)])),
    ("1.0 KEEP-ALIVE", b"GET / HTTP/1.0\r\nConnection: KEEP-ALIVE\r\n\r\n", Want::Ok(&[Ka(true)])),
    ("1.0 keep-alive in list", b"GET / HTTP/1.0\r\nConnection: foo,  keep-alive \r\n\r\n", Want::Ok(&[Ka(true)])),
    ("1.0 keep-alive and close", b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", Want::Ok(&[Ka(false)])),
    ("1.0 close in second field", b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", Want::Ok(&[Ka(false)])),
    ("1.0 keep-alives is not a token match", b"GET / HTTP/1.0\r\nConnection: keep-alives\r\n\r\n", Want::Ok(&[Ka(false)])),
    ("1.0 keep-alive with Host", b"GET / HTTP/1.0\r\nHost: a\r\nconnection: keep-alive\r\n\r\n", Want::Ok(&[Ka(true), Host(Some("a"))])),
    ("1.1 keeps by default", b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", Want::Ok(&[Ka(true)])),
    ("1.1 close", b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", Want::Ok(&[Ka(false)])),
    ("1.1 Close", b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n", Want::Ok(&[Ka(false)])),
    ("1.1 close in list", b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade,close\r\n\r\n", Want::Ok(&[Ka(false)])),
    ("1.1 close with OWS", b"GET / HTTP/1.1\r\nHost: a\r\nConnection: \t close \t\r\n\r\n", Want::Ok(&[Ka(false)])),
    ("1.1 closed is not close", b"GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n", Want::Ok(&[Ka(true)])),
    ("1.1 keep-alive", b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", Want::Ok(&[Ka(true)])),
    ("1.1 close in another field", b"GET / HTTP/1.1\r\nHost: a\r\nConnection: te\r\nCONNECTION: close\r\n\r\n", Want::Ok(&[Ka(false)])),
    ("expect 100-continue", b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n", Want::Ok(&[Ec(true), F(Framing::Length(4))])),
    ("expect case-insensitive", b"PUT / HTTP/1.1\r\nHost: a\r\nexpect: 100-Continue\r\n\r\n", Want::Ok(&[Ec(true)])),
    ("expect on 1.0 ignored", b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n", Want::Ok(&[Ec(false)])),
    ("other expectation", b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", Want::Ok(&[Ec(false)])),
    ("no expectation", b"PUT / HTTP/1.1\r\nHost: a\r\n\r\n", Want::Ok(&[Ec(false)])),
];

#[rustfmt::skip]
const FIELDS: &[Case] = &[
    ("leading CRLFs skipped", b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", Want::Ok(&[M("GET"), Hl(31)])),
    ("leading LFs skipped", b"\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", Want::Ok(&[M("GET"), Hl(29)])),
    ("only empty lines", b"\r\n\r\n\n", Want::Partial),
    ("bare LF everywhere", b"GET / HTTP/1.1\nHost: a\nX: y\n\n", Want::Ok(&[H(&[("Host", "a"), ("X", "y")])])),
    ("mixed line endings", b"GET / HTTP/1.1\r\nHost: a\n\r\n", Want::Ok(&[Host(Some("a"))])),
    ("head then body bytes", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", Want::Ok(&[Hl(47), F(Framing::Length(5))])),
    ("head then next request", b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\n", Want::Ok(&[Hl(28), P("/1")])),
    ("bare CR in value", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", err(BadHeader, 400)),
    ("bare CR ends a field", b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", err(BadHeader, 400)),
    ("CR then garbage at end of head", b"GET / HTTP/1.1\r\nHost: a\r\n\rX", err(BadHeader, 400)),
    ("NUL in value", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", err(BadHeader, 400)),
    ("NUL in name", b"GET /foo HTTP/1.1\r\nba\0z: bar\r\n\r\n", err(BadHeader, 400)),
    ("BEL in value", b"GET / HTTP/1.1\r\nHost: a\r\nX-Value: plain\x07injected\r\n\r\n", err(BadHeader, 400)),
    ("DEL in value", b"GET / HTTP/1.1\r\nHost: a\r\nX-Value: plain\x7finjected\r\n\r\n", err(BadHeader, 400)),
    ("VT in value", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x0bb\r\n\r\n", err(BadHeader, 400)),
    ("obs-fold space", b"GET / HTTP/1.1\r\nLong: one\r\n two\r\nHost: a\r\n\r\n", err(BadHeader, 400)),
    ("obs-fold tab", b"GET / HTTP/1.1\r\nHost: a\r\nLong: one\r\n\ttwo\r\n\r\n", err(BadHeader, 400)),
    ("space before colon", b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 3\r\n\r\nxyz", err(BadHeader, 400)),
    ("tab before colon", b"GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", err(BadHeader, 400)),
    ("space before first field", b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", err(BadHeader, 400)),
    ("empty name", b"GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n", err(BadHeader, 400)),
    ("no colon", b"GET / HTTP/1.1\r\nHost: a\r\nJunk\r\n\r\n", err(BadHeader, 400)),
    ("non-ascii name", "GET / HTTP/1.1\r\nHost: a\r\nContent-Lengthß: 3\r\n\r\n".as_bytes(), err(BadHeader, 400)),
    ("obs-text value", "GET / HTTP/1.1\r\nHost: a\r\nX-Value: café\r\n\r\n".as_bytes(), Want::Ok(&[H(&[("Host", "a"), ("X-Value", "café")])])),
    ("value OWS trimmed", b"GET / HTTP/1.1\r\nHost: a\r\nName: \t value \t \r\n\r\n", Want::Ok(&[H(&[("Host", "a"), ("Name", "value")])])),
    ("inner spaces kept", b"GET / HTTP/1.1\r\nHost: a\r\nX: a  b\tc\r\n\r\n", Want::Ok(&[H(&[("Host", "a"), ("X", "a  b\tc")])])),
    ("empty value", b"GET / HTTP/1.1\r\nHost: a\r\nX:\r\nY:   \r\n\r\n", Want::Ok(&[H(&[("Host", "a"), ("X", ""), ("Y", "")])])),
    ("colon in value", b"GET / HTTP/1.1\r\nHost: a\r\nX: a:b: c\r\n\r\n", Want::Ok(&[H(&[("Host", "a"), ("X", "a:b: c")])])),
    ("tchar name", b"GET / HTTP/1.1\r\nHost: a\r\nX.Custom|Pipe: ok\r\n\r\n", Want::Ok(&[H(&[("Host", "a"), ("X.Custom|Pipe", "ok")])])),
    ("duplicates kept in order", b"GET / HTTP/1.0\r\nIf-Match: bazinga!\r\nB: 1\r\nIf-Match: large-sound\r\n\r\n", Want::Ok(&[H(&[("If-Match", "bazinga!"), ("B", "1"), ("If-Match", "large-sound")])])),
    ("underscore name kept", b"GET / HTTP/1.0\r\nTransfer_Encoding: tricked\r\n\r\n", Want::Ok(&[F(Framing::Empty), H(&[("Transfer_Encoding", "tricked")])])),
    ("host with port", b"GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", Want::Ok(&[Host(Some("example.com:8080"))])),
    ("host ipv6", b"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", Want::Ok(&[Host(Some("[::1]:80"))])),
    ("host empty", b"GET / HTTP/1.1\r\nHost:\r\n\r\n", Want::Ok(&[Host(Some(""))])),
    ("host lowercase name", b"GET / HTTP/1.1\r\nhOST: a\r\n\r\n", Want::Ok(&[Host(Some("a"))])),
    ("host sub-delims", b"GET / HTTP/1.1\r\nHost: 0.0.0.0=5000\r\n\r\n", Want::Ok(&[Host(Some("0.0.0.0=5000"))])),
    ("host with space", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", err(BadHeader, 400)),
    ("host with slash", b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", err(BadHeader, 400)),
    ("host with at", b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", err(BadHeader, 400)),
    ("1.1 missing host", b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", err(MissingHost, 400)),
    ("1.1 no fields", b"GET / HTTP/1.1\r\n\r\n", err(MissingHost, 400)),
    ("two hosts", b"GET / HTTP/1.1\r\nHost: localhost\r\nHost: evil.example.com\r\n\r\n", err(DuplicateHost, 400)),
    ("two identical hosts", b"GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", err(DuplicateHost, 400)),
    ("1.0 two hosts", b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", err(DuplicateHost, 400)),
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
fn connection_and_expect() {
    run(CONNECTION, &Limits::default());
}

#[test]
fn fields() {
    run(FIELDS, &Limits::default());
}

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
fn head_is_reset_when_reused() {
    let mut head = RequestHead::default();
    let first = b"PUT http://h/p?q HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\nConnection: close\r\n\r\n";
    assert_eq!(
        parse_head(first, &Limits::default(), &mut head),
        Ok(Status::Complete(first.len()))
    );
    let second = b"GET /x HTTP/1.0\r\n\r\n";
    assert_eq!(
        parse_head(second, &Limits::default(), &mut head),
        Ok(Status::Complete(second.len()))
    );
    let p = Parsed::of(second, &head);
    assert_eq!(
        (p.authority, p.host, p.expect_continue, p.framing),
        (None, None, false, Framing::Empty)
    );
    assert_eq!(
        (
            p.path.as_str(),
            p.query.as_str(),
            p.headers.len(),
            p.keep_alive
        ),
        ("/x", "", 0, false)
    );
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

#[test]
fn ows_trimming() {
    let cases: &[(&[u8], &[u8])] = &[
        (b"", b""),
        (b" \t ", b""),
        (b"a", b"a"),
        (b" \ta b\t ", b"a b"),
        (b"\x0ba\x0b", b"\x0ba\x0b"),
        (b"\r\na\r\n", b"\r\na\r\n"),
        ("\u{a0}a".as_bytes(), "\u{a0}a".as_bytes()),
    ];
    for (src, want) in cases {
        assert_eq!(trim_ows(src), *want);
    }
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
