//! The event loop's door to the protocol front (`io::inbox`), on a real
//! loop with the fake application of `io_support`: connections the front
//! queues are adopted and served like accepted ones; a plaintext
//! connection opening with the HTTP/2 preface is handed over (preface
//! whole, byte by byte, or with more bytes behind it), but only as its
//! first bytes; a draining loop waits for the front's open connections.

mod io_support;

use std::io::{BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use io_support::{read_response as response, Feed, Server, CLIENT_TIMEOUT};
use qiao_http::request::H2_PREFACE;
use qiao_io::inbox::{Adopted, Handoff, Inbox};
use qiao_io::{ListenerInfo, PeerInfo};

fn front_info() -> ListenerInfo {
    ListenerInfo {
        server_name: "front".into(),
        server_port: "8443".into(),
        uwsgi: false,
    }
}

#[test]
fn adopted_connections_are_served_with_keep_alive() {
    let inbox = Arc::new(Inbox::default());
    let (_srv, base) = Server::with_inbox(&inbox, front_info());
    let (ours, theirs) = UnixStream::pair().unwrap();
    ours.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    inbox.push(Adopted::pair(
        theirs,
        PeerInfo {
            addr: "203.0.113.9".into(),
            port: "4444".into(),
            ip: Some([203, 0, 113, 9].into()),
            http2: true,
            ..PeerInfo::default()
        },
        base,
    ));
    let mut w = ours.try_clone().unwrap();
    let mut r = BufReader::new(ours);
    for path in ["/a", "/b", "/c"] {
        write!(w, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let (status, body) = response(&mut r);
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(body, path.as_bytes());
    }
}

#[test]
fn bytes_sent_before_adoption_are_not_lost() {
    let inbox = Arc::new(Inbox::default());
    let (_srv, base) = Server::with_inbox(&inbox, front_info());
    let (mut ours, theirs) = UnixStream::pair().unwrap();
    ours.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
    ours.write_all(b"GET /early HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    inbox.push(Adopted::pair(theirs, PeerInfo::default(), base));
    let (status, body) = response(&mut BufReader::new(ours));
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(body, b"/early");
}

fn h2c_server() -> (Server, mpsc::Receiver<Handoff>) {
    let inbox = Arc::new(Inbox::default());
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    inbox.set_h2c(Box::new(move |h| {
        let _ = tx.lock().unwrap().send(h);
    }));
    (Server::with_inbox(&inbox, front_info()).0, rx)
}

#[test]
fn the_h2_preface_hands_the_connection_over() {
    let (srv, rx) = h2c_server();
    let extra = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00";
    for feed in [Feed::Whole, Feed::ByteByByte, Feed::Split(7)] {
        let mut c = srv.connect();
        let mut bytes = H2_PREFACE.to_vec();
        bytes.extend_from_slice(extra);
        c.send(&bytes, feed);
        let mut h = rx.recv_timeout(CLIENT_TIMEOUT).expect("handed over");
        assert!(h.read.starts_with(H2_PREFACE));
        // The rest may still be in the socket: read it from the stream.
        let mut got = h.read.clone();
        h.stream.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
        while got.len() < bytes.len() {
            let mut buf = [0u8; 64];
            let n = h.stream.read(&mut buf).unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, bytes);
        assert_eq!(h.peer.addr, "127.0.0.1");
        // The very connection: what the front writes, the client reads.
        h.stream.write_all(b"frames").unwrap();
        let mut out = [0u8; 6];
        c.stream.read_exact(&mut out).unwrap();
        assert_eq!(&out, b"frames");
    }
}

#[test]
fn the_preface_later_on_a_connection_is_a_505() {
    let (srv, rx) = h2c_server();
    let mut c = srv.connect();
    let r = c.roundtrip(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n", Feed::Whole);
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    let r = c.roundtrip(H2_PREFACE, Feed::Whole);
    assert!(
        r.status_line.starts_with("HTTP/1.1 505"),
        "{}",
        r.status_line
    );
    assert!(rx.try_recv().is_err());
}

#[test]
fn http11_is_untouched_when_h2c_is_served() {
    let (srv, rx) = h2c_server();
    let mut c = srv.connect();
    let r = c.roundtrip(b"PUT /p HTTP/1.1\r\nHost: x\r\n\r\n", Feed::ByteByByte);
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    assert!(rx.try_recv().is_err());
}

#[test]
fn draining_waits_for_the_fronts_connections() {
    let inbox = Arc::new(Inbox::default());
    let (srv, _) = Server::with_inbox(&inbox, front_info());
    inbox.enter();
    srv.drain();
    // No connection in the loop, but one in the front: the loop goes on.
    assert!(!srv.finished_within(Duration::from_millis(600)));
    inbox.leave();
    assert!(srv.finished_within(Duration::from_secs(5)));
}
