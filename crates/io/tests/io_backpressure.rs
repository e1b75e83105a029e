//! Output backpressure in the I/O ring, without Python: a client that
//! does not read its responses stalls only its own connection. What the
//! socket does not take is kept in the connection's backlog and written by
//! the loop as the client reads, while the loop reads no more of that
//! connection; the serving thread (one, here) goes on serving others.

mod io_support;

use std::io::{Read, Write};
use std::thread;
use std::time::Duration;

use io_support::*;

/// Long enough that only a stall could make a test wait for it.
const LONG_IO_TIMEOUT: Duration = Duration::from_secs(60);

fn one_thread_server() -> Server {
    Server::with_threads_and(1, |c| c.io_timeout = LONG_IO_TIMEOUT)
}

/// A client with a small receive buffer (64 KiB, small enough that what
/// it does not read stays on the server side, large enough to read fast).
fn slow_client(srv: &Server) -> Client {
    let c = srv.connect();
    let size: libc::c_int = 64 * 1024;
    // SAFETY: plain setsockopt with an int option on a live socket.
    let rc = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&c.stream),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
    c
}

/// Reads `n` responses of `/big` or `/big-whole` from `c`, whole and in
/// order.
fn read_bigs(c: &mut Client, n: usize) {
    for i in 0..n {
        let r = c.response();
        assert_eq!(r.status_line, "HTTP/1.1 200 OK", "response {i}");
        assert!(r.body.len() == BIG && (0..BIG).all(|j| r.body[j] == big_byte(j)));
    }
}

#[test]
fn a_client_that_does_not_read_stalls_only_itself() {
    let srv = one_thread_server();
    let mut slow = slow_client(&srv);
    let requests = [
        get("/big-whole"),
        get("/big"),
        get("/big-whole"),
        get("/after"),
    ]
    .concat();
    slow.send(&requests, Feed::Whole);
    // The one thread is not waiting for `slow` (its first answer, given in
    // one piece, is in the backlog; the rest is not read yet): another
    // client is served.
    let mut other = srv.connect();
    for _ in 0..3 {
        assert_eq!(
            other.roundtrip(&get("/other"), Feed::Whole).text(),
            "/other"
        );
    }
    // Every byte of `slow`'s answers arrives, in order, once it reads.
    read_bigs(&mut slow, 3);
    assert_eq!(slow.response().text(), "/after");
    assert!(slow.silent_for(Duration::from_millis(100)));
}

#[test]
fn pipelining_without_reading_is_not_read_further() {
    let srv = one_thread_server();
    let attacker = slow_client(&srv);
    let mut writer = attacker.stream.try_clone().unwrap();
    writer
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    // Pipelined requests until the server stops reading them: the write
    // times out once our send buffer and its receive buffer are full.
    let flood = thread::spawn(move || {
        let chunk = get("/p").repeat(2000);
        let mut sent = 0usize;
        while writer.write_all(&chunk).is_ok() {
            sent += chunk.len();
            assert!(sent < 256 << 20, "the server read everything it was sent");
        }
        sent
    });
    let sent = flood.join().unwrap();
    assert!(sent > 0);
    let mut other = srv.connect();
    assert_eq!(
        other.roundtrip(&get("/other"), Feed::Whole).text(),
        "/other"
    );
    // The loop's own answers (health probes) are not held up either.
    let probe = other.roundtrip(&get("/healthz"), Feed::Whole);
    assert_eq!(probe.status_line, "HTTP/1.1 200 OK");
    drop(attacker);
}

#[test]
fn a_backlog_is_cut_after_the_io_timeout_without_progress() {
    let srv = Server::with_threads_and(1, |c| c.io_timeout = Duration::from_millis(600));
    let mut slow = slow_client(&srv);
    slow.send(&get("/big-whole"), Feed::Whole);
    // Read nothing for longer than the I/O timeout (and the sweep).
    thread::sleep(Duration::from_millis(1800));
    let mut got = Vec::new();
    let _ = slow.reader.read_to_end(&mut got);
    assert!(got.len() < BIG, "the response must stay visibly cut");
    let mut other = srv.connect();
    assert_eq!(
        other.roundtrip(&get("/other"), Feed::Whole).text(),
        "/other"
    );
}
