//! Table tests of `qiao_http::parse_head` on a request head's fields:
//! field syntax, Host rules, keep-alive and `Expect: 100-continue`, line
//! endings. Every case is fed whole, as a growing prefix (byte by byte) and
//! in random reads (`common::head_all_ways`), and must give the same head
//! or the same error in every mode. Also covers `trim_ows` and head reuse.

mod common;

use common::{err, run, Case, Parsed, Want, C::*};
use qiao_http::request::trim_ows;
use qiao_http::Version::Http10 as V10;
use qiao_http::{parse_head, Framing, Limits, ParseError::*, RequestHead, Status};

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
fn connection_and_expect() {
    run(CONNECTION, &Limits::default());
}

#[test]
fn fields() {
    run(FIELDS, &Limits::default());
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
