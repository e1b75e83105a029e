//! The I/O ring end to end, without Python, on connections as the loop
//! manages them: a real `EventLoop` on a loopback socket serving the fake
//! application of `io_support` (routes by path). Covers refused requests
//! (400/414/431/505/501 then close), the head (408), keep-alive and idle
//! timeouts, panics contained to one connection, `max_connections`, many
//! idle connections, accept batches, and the health path the loop answers
//! without the application (in order with pipelined requests; 503 and
//! close while draining).
//!
//! Separate from `io_requests.rs`, which covers the request/response cycle
//! on one connection (bodies, pipelining, keep-alive): here the tests are
//! about when the loop answers on its own, closes, or accepts.

mod io_support;

use std::sync::atomic::Ordering::SeqCst;
use std::thread;
use std::time::{Duration, Instant};

use io_support::Feed::ByteByByte;
use io_support::*;

fn assert_waited(t0: Instant, min_ms: u64, max_ms: u64) {
    let waited = t0.elapsed();
    let range = Duration::from_millis(min_ms)..Duration::from_millis(max_ms);
    assert!(range.contains(&waited), "waited {waited:?}");
}

#[rustfmt::skip]
fn malformed() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let long_target = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(9000));
    let long_field = format!("GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n", "b".repeat(9000));
    vec![
        ("no host", b"GET / HTTP/1.1\r\n\r\n".to_vec(), "HTTP/1.1 400 Bad Request"),
        ("cl and te", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(), "HTTP/1.1 400 Bad Request"),
        ("long target", long_target.into_bytes(), "HTTP/1.1 414 URI Too Long"),
        ("long field", long_field.into_bytes(), "HTTP/1.1 431 Request Header Fields Too Large"),
        ("http/2.0", b"GET / HTTP/2.0\r\nHost: t\r\n\r\n".to_vec(), "HTTP/1.1 505 HTTP Version Not Supported"),
        ("gzip te", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n".to_vec(), "HTTP/1.1 501 Not Implemented"),
        ("connect", b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n".to_vec(), "HTTP/1.1 501 Not Implemented"),
    ]
}

#[test]
fn malformed_requests_get_their_status_then_close() {
    let srv = Server::start();
    for (name, req, want) in malformed() {
        // Byte by byte only for the short ones (the long ones are 9 KiB).
        for feed in FEEDS
            .into_iter()
            .filter(|f| req.len() < 200 || !matches!(f, ByteByByte))
        {
            let mut c = srv.connect();
            c.send(&req, feed);
            let r = c.response();
            assert_eq!(r.status_line, want, "{name} {feed:?}");
            assert_eq!(r.header("connection"), Some("close"), "{name}");
            assert!(c.is_closed(), "{name} {feed:?}");
        }
    }
    assert_eq!(ask(&mut srv.connect(), "/ok"), "/ok");
}

#[test]
fn half_sent_head_gets_408_and_idle_connections_are_closed() {
    let srv = Server::start();
    let mut c = srv.connect();
    c.send(&b"GET / HTTP/1.1\r\nHo"[..], Feed::ByteByByte);
    let t0 = Instant::now();
    assert_eq!(c.response().status_line, "HTTP/1.1 408 Request Timeout");
    assert!(c.is_closed());
    assert_waited(t0, 700, 2500);

    // Same after a first request on a keep-alive connection.
    let mut c = srv.connect();
    assert_eq!(ask(&mut c, "/one"), "/one");
    c.send(b"GET /two HTTP/1.1\r\n", Feed::Whole);
    assert_eq!(c.response().status_line, "HTTP/1.1 408 Request Timeout");
    assert!(c.is_closed());

    // Idle (keep-alive after a response, or fresh): closed, no response.
    let mut kept = srv.connect();
    assert_eq!(ask(&mut kept, "/x"), "/x");
    let mut fresh = srv.connect();
    let t0 = Instant::now();
    assert!(kept.is_closed() && fresh.is_closed());
    assert_waited(t0, 700, 2500);
}

#[test]
fn a_panic_closes_only_its_connection() {
    let srv = Server::start();
    let mut other = srv.connect();
    assert_eq!(ask(&mut other, "/a"), "/a");
    let mut c = srv.connect();
    c.send(&[get("/panic"), get("/never")].concat(), Feed::Whole);
    assert!(c.is_closed());
    assert_eq!(ask(&mut other, "/b"), "/b");
    assert_eq!(ask(&mut srv.connect(), "/count"), "4");
}

#[test]
fn max_connections_pauses_accepting_without_losing_connections() {
    let srv = Server::with(|c| {
        c.max_connections = 5;
        c.keepalive = Duration::from_secs(10);
    });
    let mut five: Vec<Client> = (0..5).map(|_| srv.connect()).collect();
    for c in five.iter_mut() {
        assert_eq!(ask(c, "/first"), "/first");
    }
    let mut sixth = srv.connect();
    sixth.send(&get("/sixth"), Feed::Whole);
    assert!(sixth.silent_for(Duration::from_millis(300)));
    drop(five.remove(2));
    assert_eq!(sixth.response().text(), "/sixth");
    for c in five.iter_mut() {
        assert_eq!(ask(c, "/again"), "/again");
    }
}

#[test]
fn many_idle_connections_do_not_block_a_new_request() {
    let srv = Server::with(|c| c.accept_batch = 256);
    let _idle: Vec<Client> = (0..500).map(|_| srv.connect()).collect();
    let t0 = Instant::now();
    assert_eq!(ask(&mut srv.connect(), "/hi"), "/hi");
    assert_waited(t0, 0, 500);
}

#[test]
fn a_backlog_larger_than_the_accept_batch_is_fully_accepted() {
    let (srv, mut queued) = Server::start_after(
        |c| c.accept_batch = 4,
        |addr| (0..10).map(|_| Client::connect(addr)).collect::<Vec<_>>(),
    );
    queued
        .iter_mut()
        .for_each(|c| c.send(&get("/q"), Feed::Whole));
    let quiet = Duration::from_millis(1500);
    let unanswered: Vec<bool> = queued.iter_mut().map(|c| c.silent_for(quiet)).collect();
    assert_eq!(unanswered, [false; 10], "true: never answered");
    drop(srv);
}

#[test]
fn the_health_path_is_answered_by_the_loop_without_the_app() {
    let srv = Server::start();
    for feed in FEEDS {
        let mut c = srv.connect();
        let r = c.roundtrip(&get("/healthz"), feed);
        assert_eq!(r.status_line, "HTTP/1.1 200 OK");
        assert_eq!(r.text(), "ok\n");
        // HEAD: the same head, no body; then the connection goes on.
        c.send(b"HEAD /healthz HTTP/1.1\r\nHost: t\r\n\r\n", feed);
        let head = c.head_only();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert_eq!(c.roundtrip(&get("/app"), feed).text(), "/app");
    }
    // Only `/app` reached the application (once per feed).
    assert_eq!(srv.state.served.load(SeqCst), FEEDS.len());
    // Not the probe: another path, a query, a body, another method.
    let mut c = srv.connect();
    assert_eq!(ask(&mut c, "/healthz/x"), "/healthz/x");
    assert_eq!(ask(&mut c, "/healthz?deep=1"), "/healthz?deep=1");
    assert_eq!(
        c.roundtrip(&post("/healthz", b"x"), Feed::Whole).text(),
        "/healthz"
    );
}

#[test]
fn pipelined_probes_and_requests_keep_their_order() {
    let srv = Server::start();
    let mut c = srv.connect();
    let all = [get("/a"), get("/healthz"), get("/b"), get("/healthz")].concat();
    c.send(&all, Feed::Split(3));
    for expected in ["/a", "ok\n", "/b", "ok\n"] {
        assert_eq!(c.response().text(), expected);
    }
}

#[test]
fn the_health_path_says_503_and_closes_while_draining() {
    let srv = Server::start();
    let mut busy = srv.connect();
    // Keep the loop draining (not finished) with a request in flight.
    let waiter = thread::spawn(move || busy.roundtrip(&get("/gather?2"), Feed::Whole).text());
    thread::sleep(Duration::from_millis(100));
    let mut probe = srv.connect();
    srv.drain();
    thread::sleep(Duration::from_millis(100));
    let r = probe.roundtrip(&get("/healthz"), Feed::Whole);
    assert_eq!(r.status_line, "HTTP/1.1 503 Service Unavailable");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(probe.is_closed());
    assert_eq!(waiter.join().unwrap(), "timeout");
}
