//! Graceful draining of the event loop (what SIGTERM, a reload and
//! `--max-requests` use): no new connections, the next response on each
//! open connection says `Connection: close`, idle connections are closed
//! after a short grace, and the loop returns once none is left.

mod io_support;

use std::time::{Duration, Instant};

use io_support::{get, Feed, Server};

#[test]
fn draining_closes_each_connection_after_its_next_response_then_returns() {
    let srv = Server::start();
    let mut busy = srv.connect();
    let first = busy.roundtrip(&get("/one"), Feed::Whole);
    assert!(first.status_line.contains("200"), "{}", first.status_line);
    assert_eq!(first.header("connection"), None);
    let mut idle = srv.connect();
    let warm = idle.roundtrip(&get("/warm"), Feed::Whole);
    assert!(warm.status_line.contains("200"));

    srv.drain();
    std::thread::sleep(Duration::from_millis(50));
    // A request on an open connection is still answered, and told to close.
    let last = busy.roundtrip(&get("/two"), Feed::Whole);
    assert!(last.status_line.contains("200"), "{}", last.status_line);
    assert_eq!(last.header("connection"), Some("close"));
    assert_eq!(last.text(), "/two");
    assert!(busy.is_closed());
    // The idle connection is closed after the grace, without a response.
    let t0 = Instant::now();
    assert!(idle.is_closed());
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "idle connection closed late"
    );
    assert!(
        srv.finished_within(Duration::from_secs(3)),
        "loop did not return after draining"
    );
}

#[test]
fn draining_with_no_connection_returns_at_once() {
    let srv = Server::start();
    srv.drain();
    assert!(srv.finished_within(Duration::from_secs(2)));
}

#[test]
fn max_requests_drains_after_that_many_requests() {
    let srv = Server::start();
    srv.shared().set_max_requests(3);
    let mut c = srv.connect();
    for i in 1..=2 {
        let r = c.roundtrip(&get(&format!("/r{i}")), Feed::Whole);
        assert_eq!(r.header("connection"), None, "request {i}");
    }
    // The third request reaches the limit: it is the last this loop serves
    // on the connection, so its response says Connection: close.
    let third = c.roundtrip(&get("/r3"), Feed::Whole);
    assert!(third.status_line.contains("200"));
    assert_eq!(third.header("connection"), Some("close"));
    assert!(c.is_closed());
    assert_eq!(srv.shared().served(), 3);
    assert!(srv.finished_within(Duration::from_secs(3)));
}
