//! Response framing in `qiao_http::response`: the `plan` truth table
//! (HEAD, 1xx/204/304, HTTP/1.0 vs 1.1, the app's Content-Length, a known
//! total length, `Connection: close` from either side) and the exact bytes
//! of `write_head` (Server/Date added unless set, the app's hop-by-hop
//! framing fields replaced, Connection rules).

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a test's own summary and skip lines, shown with --nocapture"
)]

use qiao_http::response::{plan, write_head, AppFacts, BodyMode, Plan, RequestFacts};
use qiao_http::Version;

const DATE: &[u8] = b"Sun, 06 Nov 1994 08:49:37 GMT";

fn req(version: Version, is_head: bool, keep_alive: bool) -> RequestFacts {
    RequestFacts {
        version,
        is_head,
        keep_alive,
    }
}

fn app(
    status: u16,
    content_length: Option<u64>,
    known_length: Option<u64>,
    close: bool,
) -> AppFacts {
    AppFacts {
        status,
        content_length,
        connection_close: close,
        known_length,
    }
}

use BodyMode::{Chunked, Length, None as NoBody, UntilClose};
use Version::{Http10 as V10, Http11 as V11};

/// (version, HEAD?, request keep-alive, status, app CL, known length, app close)
///   → (mode, keep-alive, add Content-Length)
type Row = (
    (Version, bool, bool, u16, Option<u64>, Option<u64>, bool),
    (BodyMode, bool, Option<u64>),
);

#[rustfmt::skip]
const PLAN: &[Row] = &[
    // HTTP/1.1 GET
    ((V11, false, true, 200, None, None, false), (Chunked, true, None)),
    ((V11, false, true, 200, Some(5), None, false), (Length(5), true, None)),
    ((V11, false, true, 200, Some(0), None, false), (Length(0), true, None)),
    ((V11, false, true, 200, None, Some(10), false), (Length(10), true, Some(10))),
    ((V11, false, true, 200, None, Some(0), false), (Length(0), true, Some(0))),
    ((V11, false, true, 200, Some(5), Some(10), false), (Length(5), true, None)),
    ((V11, false, true, 200, None, None, true), (Chunked, false, None)),
    ((V11, false, true, 200, Some(5), None, true), (Length(5), false, None)),
    ((V11, false, false, 200, None, None, false), (Chunked, false, None)),
    ((V11, false, false, 200, Some(5), None, false), (Length(5), false, None)),
    ((V11, false, true, 404, None, Some(3), false), (Length(3), true, Some(3))),
    ((V11, false, true, 500, None, None, false), (Chunked, true, None)),
    // bodiless statuses
    ((V11, false, true, 100, None, None, false), (NoBody, true, None)),
    ((V11, false, true, 101, None, None, false), (NoBody, true, None)),
    ((V11, false, true, 199, Some(5), None, false), (NoBody, true, None)),
    ((V11, false, true, 204, Some(5), Some(5), false), (NoBody, true, None)),
    ((V11, false, true, 304, Some(5), None, false), (NoBody, true, None)),
    ((V11, false, true, 304, None, None, true), (NoBody, false, None)),
    ((V11, false, true, 205, None, None, false), (Chunked, true, None)),
    ((V11, false, true, 200, None, None, false), (Chunked, true, None)),
    // HEAD
    ((V11, true, true, 200, None, None, false), (NoBody, true, None)),
    ((V11, true, true, 200, Some(5), None, false), (NoBody, true, None)),
    // HEAD carries the length GET would have sent (RFC 9110 §9.3.2).
    ((V11, true, true, 200, None, Some(10), false), (NoBody, true, Some(10))),
    ((V11, true, true, 200, None, None, true), (NoBody, false, None)),
    ((V11, true, false, 200, None, None, false), (NoBody, false, None)),
    ((V10, true, true, 200, None, None, false), (NoBody, true, None)),
    ((V10, true, false, 200, None, None, false), (NoBody, false, None)),
    ((V10, true, true, 204, None, None, false), (NoBody, true, None)),
    // HTTP/1.0
    ((V10, false, false, 200, None, None, false), (UntilClose, false, None)),
    ((V10, false, true, 200, None, None, false), (UntilClose, false, None)),
    ((V10, false, true, 200, Some(5), None, false), (Length(5), true, None)),
    ((V10, false, false, 200, Some(5), None, false), (Length(5), false, None)),
    ((V10, false, true, 200, None, Some(7), false), (Length(7), true, Some(7))),
    ((V10, false, true, 200, Some(5), None, true), (Length(5), false, None)),
    ((V10, false, true, 204, None, None, false), (NoBody, true, None)),
    ((V10, false, true, 304, None, None, false), (NoBody, true, None)),
];

#[test]
fn plan_truth_table() {
    for ((version, is_head, keep, status, cl, known, close), (mode, keep_alive, add_length)) in PLAN
    {
        let got = plan(
            req(*version, *is_head, *keep),
            app(*status, *cl, *known, *close),
        );
        let want = Plan {
            mode: *mode,
            keep_alive: *keep_alive,
            add_length: *add_length,
        };
        assert_eq!(got, want, "{version:?} head={is_head} keep={keep} {status} cl={cl:?} known={known:?} close={close}");
    }
    println!("{} plan rows", PLAN.len());
}

fn head(status: &[u8], headers: &[(&[u8], &[u8])], r: RequestFacts, a: AppFacts) -> String {
    let p = plan(r, a);
    let mut out = b"leftover|".to_vec();
    write_head(&mut out, status, headers.iter().copied(), DATE, r, &p);
    let s = String::from_utf8(out).unwrap();
    s.strip_prefix("leftover|")
        .expect("write_head appends")
        .to_owned()
}

const D: &str = "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n";

#[test]
fn write_head_output() {
    let ct: (&[u8], &[u8]) = (b"Content-Type", b"text/plain");
    // HTTP/1.1 keep-alive, unknown length: chunked, no Connection field.
    let got = head(
        b"200 OK",
        &[ct],
        req(V11, false, true),
        app(200, None, None, false),
    );
    assert_eq!(got, format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nServer: qiao\r\n{D}Transfer-Encoding: chunked\r\n\r\n"));
    // App's Content-Length is passed through.
    let got = head(
        b"200 OK",
        &[(b"Content-Length", b"5")],
        req(V11, false, true),
        app(200, Some(5), None, false),
    );
    assert_eq!(
        got,
        format!("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: qiao\r\n{D}\r\n")
    );
    // Known length: Content-Length added.
    let got = head(
        b"404 Not Found",
        &[],
        req(V11, false, true),
        app(404, None, Some(12), false),
    );
    assert_eq!(
        got,
        format!("HTTP/1.1 404 Not Found\r\nServer: qiao\r\n{D}Content-Length: 12\r\n\r\n")
    );
    // App sets Server and Date (any case): kept, not duplicated.
    let got = head(
        b"200 OK",
        &[(b"SERVER", b"mine"), (b"date", b"then")],
        req(V11, false, true),
        app(200, None, Some(0), false),
    );
    assert_eq!(
        got,
        "HTTP/1.1 200 OK\r\nSERVER: mine\r\ndate: then\r\nContent-Length: 0\r\n\r\n"
    );
    // App's Transfer-Encoding and Connection are replaced by the plan.
    let hop: &[(&[u8], &[u8])] = &[
        (b"Transfer-Encoding", b"gzip"),
        (b"connection", b"keep-alive"),
        (b"X", b"1"),
    ];
    let got = head(
        b"200 OK",
        hop,
        req(V11, false, true),
        app(200, None, None, false),
    );
    assert_eq!(
        got,
        format!("HTTP/1.1 200 OK\r\nX: 1\r\nServer: qiao\r\n{D}Transfer-Encoding: chunked\r\n\r\n")
    );
    // Client asked to close: Connection: close.
    let got = head(
        b"200 OK",
        &[],
        req(V11, false, false),
        app(200, Some(0), None, false),
    );
    assert_eq!(
        got,
        format!("HTTP/1.1 200 OK\r\nServer: qiao\r\n{D}Connection: close\r\n\r\n")
    );
    // App said close (its own Connection field is dropped, ours written).
    let got = head(
        b"200 OK",
        &[(b"Connection", b"close")],
        req(V11, false, true),
        app(200, Some(0), None, true),
    );
    assert_eq!(
        got,
        format!("HTTP/1.1 200 OK\r\nServer: qiao\r\n{D}Connection: close\r\n\r\n")
    );
    // HTTP/1.0 keep-alive with a length: Connection: keep-alive.
    let got = head(
        b"200 OK",
        &[],
        req(V10, false, true),
        app(200, None, Some(3), false),
    );
    assert_eq!(got, format!("HTTP/1.1 200 OK\r\nServer: qiao\r\n{D}Content-Length: 3\r\nConnection: keep-alive\r\n\r\n"));
    // HTTP/1.0 without a length: delimited by close.
    let got = head(
        b"200 OK",
        &[],
        req(V10, false, true),
        app(200, None, None, false),
    );
    assert_eq!(
        got,
        format!("HTTP/1.1 200 OK\r\nServer: qiao\r\n{D}Connection: close\r\n\r\n")
    );
    // HTTP/1.0 client without keep-alive.
    let got = head(
        b"200 OK",
        &[(b"Content-Length", b"3")],
        req(V10, false, false),
        app(200, Some(3), None, false),
    );
    assert_eq!(
        got,
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nServer: qiao\r\n{D}Connection: close\r\n\r\n"
        )
    );
    // HEAD: the app's Content-Length is kept, nothing added, no chunked.
    let got = head(
        b"200 OK",
        &[(b"Content-Length", b"99")],
        req(V11, true, true),
        app(200, Some(99), None, false),
    );
    assert_eq!(
        got,
        format!("HTTP/1.1 200 OK\r\nContent-Length: 99\r\nServer: qiao\r\n{D}\r\n")
    );
    let got = head(
        b"200 OK",
        &[],
        req(V11, true, true),
        app(200, None, Some(10), false),
    );
    assert_eq!(
        got,
        format!("HTTP/1.1 200 OK\r\nServer: qiao\r\n{D}Content-Length: 10\r\n\r\n")
    );
    // 204 and 304: no framing fields at all.
    let got = head(
        b"204 No Content",
        &[],
        req(V11, false, true),
        app(204, None, Some(0), false),
    );
    assert_eq!(
        got,
        format!("HTTP/1.1 204 No Content\r\nServer: qiao\r\n{D}\r\n")
    );
    let got = head(
        b"304 Not Modified",
        &[(b"ETag", b"\"x\"")],
        req(V10, false, true),
        app(304, None, None, false),
    );
    assert_eq!(got, format!("HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nServer: qiao\r\n{D}Connection: keep-alive\r\n\r\n"));
}
