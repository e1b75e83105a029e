//! HTTP/1.1 over TLS in the event loop itself (`io::wire`): a connection
//! whose handshake is done elsewhere (here by the test, in the server by
//! the front) is adopted with its rustls session and served like a
//! plaintext one: keep-alive and pipelining in any split, a response far
//! larger than the socket buffer (backpressure with encrypted bytes held),
//! a streamed request body with `100 Continue`, bytes that arrived before
//! the adoption, and at the end a `close_notify` and the front's hold let go.

mod io_support;
mod tls_pki;

use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{mpsc, Arc};
use std::thread;

use io_support::{big_byte, read_response, Server, BIG, CLIENT_TIMEOUT};
use qiao_io::inbox::{Adopted, Carrier, Inbox};
use qiao_io::{ListenerInfo, PeerInfo};
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, ServerConnection};
use tls_pki::pki;

type TlsClient = rustls::StreamOwned<ClientConnection, TcpStream>;

/// A loop with an inbox; the loop's index of the front's listener info.
fn server() -> (Server, Arc<Inbox>, usize) {
    let inbox = Arc::new(Inbox::default());
    let info = ListenerInfo {
        server_name: "tls".into(),
        server_port: "443".into(),
        uwsgi: false,
    };
    let (srv, base) = Server::with_inbox(&inbox, info);
    (srv, inbox, base)
}

/// A handshaken client whose server side is queued for the loop, holding
/// `held`; `early` is sent right after the handshake, before the adoption.
fn adopt(inbox: &Inbox, base: usize, early: &[u8], held: Box<dyn Send>) -> TlsClient {
    let tls = pki();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (client_config, early) = (tls.client.clone(), early.to_vec());
    let client = thread::spawn(move || {
        let sock = TcpStream::connect(addr).unwrap();
        sock.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let conn = ClientConnection::new(client_config, name).unwrap();
        let mut stream = rustls::StreamOwned::new(conn, sock);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock).unwrap();
        }
        stream.write_all(&early).unwrap();
        stream.flush().unwrap();
        stream
    });
    let (mut sock, _) = listener.accept().unwrap();
    // A small send buffer: large responses then keep the socket full, so
    // encrypted bytes wait in the session at the end of a response.
    let size: libc::c_int = 8192;
    // SAFETY: setsockopt with an int option on a socket we own.
    unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&sock),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
    let mut session = ServerConnection::new(tls.server).unwrap();
    while session.is_handshaking() {
        session.complete_io(&mut sock).unwrap();
    }
    let client = client.join().unwrap();
    inbox.push(Adopted {
        stream: Carrier::Tls(sock, Box::new(session)),
        peer: PeerInfo::default(),
        listener: base,
        held: Some(held),
        pair_id: None,
        answer: None,
    });
    client
}

#[test]
fn pipelined_requests_in_any_split_are_answered_in_order() {
    let (_srv, inbox, base) = server();
    let early = b"GET /early HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut c = adopt(&inbox, base, early, Box::new(()));
    let mut pipelined = Vec::new();
    for p in ["/a", "/b", "/c"] {
        pipelined.extend_from_slice(format!("GET {p} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
    }
    // Records end where the writes do: byte by byte, then odd pieces.
    for chunk in pipelined[..20].chunks(1).chain(pipelined[20..].chunks(7)) {
        c.write_all(chunk).unwrap();
    }
    let mut r = BufReader::new(c);
    for p in ["/early", "/a", "/b", "/c"] {
        let (status, body) = read_response(&mut r);
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(body, p.as_bytes());
    }
}

#[test]
fn a_response_far_larger_than_the_socket_arrives_whole() {
    let (_srv, inbox, base) = server();
    let mut c = adopt(&inbox, base, b"", Box::new(()));
    for path in ["/big", "/big-whole", "/big"] {
        c.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .unwrap();
        let mut r = BufReader::new(&mut c);
        let (status, body) = read_response(&mut r);
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert_eq!(body.len(), BIG);
        assert!(body.iter().enumerate().all(|(i, b)| *b == big_byte(i)));
    }
}

#[test]
fn a_streamed_body_after_100_continue_is_echoed() {
    let (_srv, inbox, base) = server();
    let mut c = adopt(&inbox, base, b"", Box::new(()));
    let body: Vec<u8> = (0..1_000_000u32).map(|i| (i % 249) as u8).collect();
    let head = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    c.write_all(head.as_bytes()).unwrap();
    let mut interim = [0u8; 25];
    c.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    // The app reads it all before it answers: no deadlock sending it whole.
    c.write_all(&body).unwrap();
    let (status, echoed) = read_response(&mut BufReader::new(&mut c));
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(echoed, body);
}

#[test]
fn the_end_is_a_close_notify_and_lets_the_front_go() {
    let (_srv, inbox, base) = server();
    let (tx, rx) = mpsc::channel::<()>();
    let mut c = adopt(&inbox, base, b"", Box::new(tx));
    c.write_all(b"GET /close HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut all = Vec::new();
    // A clean TLS end: rustls reports an end without close_notify as an error.
    c.read_to_end(&mut all).unwrap();
    assert!(all.starts_with(b"HTTP/1.1 200 OK\r\n"), "{all:?}");
    assert!(all.ends_with(b"bye"));
    // The loop dropped what the front held (the sender) with the connection.
    assert_eq!(
        rx.recv_timeout(CLIENT_TIMEOUT),
        Err(mpsc::RecvTimeoutError::Disconnected)
    );
}
