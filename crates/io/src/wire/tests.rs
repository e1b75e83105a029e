//! A [`Wire`] under TLS against a real rustls client over a socket pair:
//! what one side writes (in any split, past the socket's buffer, from a
//! file) the other reads whole; ends and bad records are told apart.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, ServerConnection};

use super::*;

#[path = "../../tests/tls_pki/mod.rs"]
mod tls_pki;
use tls_pki::pki;

const TIMEOUT: Duration = Duration::from_secs(10);

/// A handshaken pair: the server's wire (its socket non-blocking, the
/// socket kept alive alongside) and the client as a blocking stream.
fn pair() -> (
    Wire,
    UnixStream,
    rustls::StreamOwned<ClientConnection, UnixStream>,
) {
    let pki = pki();
    let (mut s, c) = UnixStream::pair().unwrap();
    c.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let client = ClientConnection::new(pki.client.clone(), name).unwrap();
    let hs = thread::spawn(move || {
        let mut stream = rustls::StreamOwned::new(client, c);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock).unwrap();
        }
        stream
    });
    let mut server = ServerConnection::new(pki.server).unwrap();
    while server.is_handshaking() {
        server.complete_io(&mut s).unwrap();
    }
    // TLS 1.3 session tickets follow the handshake.
    while server.wants_write() {
        server.write_tls(&mut s).unwrap();
    }
    s.set_nonblocking(true).unwrap();
    let client = hs.join().unwrap();
    (Wire::tls(s.as_raw_fd(), server), s, client)
}

/// Reads until `want` bytes arrived, waiting for the socket between tries.
fn read_exactly(wire: &Wire, want: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    while got.len() < want {
        match wire.read_some(&mut got, 4096) {
            Ok(0) => panic!("ended after {} of {want} bytes", got.len()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                sock::wait(wire.fd(), sock::Interest::Read, deadline).unwrap();
            }
            Err(e) => panic!("{e}"),
        }
    }
    got
}

#[test]
fn bytes_in_any_split_arrive_whole() {
    let (wire, _s, mut client) = pair();
    let data: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
    // Record boundaries fall where the writes do: byte by byte, then odd sizes.
    for b in &data[..50] {
        client.write_all(std::slice::from_ref(b)).unwrap();
    }
    let mut at = 50;
    for size in [1, 2, 3, 517, 1500, 16_385].iter().cycle() {
        if at == data.len() {
            break;
        }
        let end = (at + size).min(data.len());
        client.write_all(&data[at..end]).unwrap();
        at = end;
    }
    assert_eq!(read_exactly(&wire, data.len()), data);
    assert!(
        matches!(wire.read_some(&mut Vec::new(), 10), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    );
}

#[test]
fn writes_past_the_socket_buffer_are_held_then_flushed() {
    let (wire, _s, mut client) = pair();
    let data: Vec<u8> = (0..4_000_000u32).map(|i| (i % 253) as u8).collect();
    let reader = thread::spawn(move || {
        let mut got = vec![0; 4_000_000];
        client.read_exact(&mut got).unwrap();
        got
    });
    let mut at = 0;
    let mut held = false;
    let deadline = Instant::now() + TIMEOUT;
    while at < data.len() {
        let n = wire
            .writev_some(&[&data[at..(at + 100_000).min(data.len())]])
            .unwrap();
        if n == 0 {
            held |= wire.tls_pending();
            sock::wait(wire.fd(), sock::Interest::Write, deadline).unwrap();
        }
        at += n;
    }
    while !wire.flush().unwrap() {
        sock::wait(wire.fd(), sock::Interest::Write, deadline).unwrap();
    }
    assert!(held, "the socket never filled: the test proves nothing");
    assert!(!wire.tls_pending());
    assert_eq!(reader.join().unwrap(), data);
}

#[test]
fn a_file_goes_through_the_session() {
    let (wire, _s, mut client) = pair();
    let path = std::env::temp_dir().join(format!("qiao-wire-{}", std::process::id()));
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 241) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let reader = thread::spawn(move || {
        let mut got = vec![0; 300_000 - 1000];
        client.read_exact(&mut got).unwrap();
        got
    });
    let (mut offset, end) = (1000u64, 300_000u64);
    let deadline = Instant::now() + TIMEOUT;
    while offset < end {
        match wire
            .sendfile_some(file.as_raw_fd(), offset, end - offset)
            .unwrap()
        {
            Some(0) => panic!("the file ended early"),
            Some(n) => offset += n,
            None => sock::wait(wire.fd(), sock::Interest::Write, deadline).unwrap(),
        }
    }
    while !wire.flush().unwrap() {
        sock::wait(wire.fd(), sock::Interest::Write, deadline).unwrap();
    }
    assert_eq!(reader.join().unwrap(), &data[1000..]);
    // Past the end of the file: the end, as sendfile says it.
    assert_eq!(
        wire.sendfile_some(file.as_raw_fd(), end, 10).unwrap(),
        Some(0)
    );
}

#[test]
fn shutdown_sends_close_notify() {
    let (wire, _s, mut client) = pair();
    wire.writev_some(&[b"bye"]).unwrap();
    wire.shutdown_write();
    let mut got = Vec::new();
    // A clean end: rustls reports UnexpectedEof without close_notify.
    client.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"bye");
}

#[test]
fn the_clients_end_reads_as_zero_with_or_without_close_notify() {
    let (wire, _s, mut client) = pair();
    client.write_all(b"last").unwrap();
    client.conn.send_close_notify();
    client.flush().unwrap();
    assert_eq!(read_exactly(&wire, 4), b"last");
    assert_eq!(wire.read_some(&mut Vec::new(), 10).unwrap(), 0);

    let (wire, _s, client) = pair();
    // The socket's end, no close_notify (a drop could reset it instead:
    // the session tickets are unread on that side).
    client.sock.shutdown(std::net::Shutdown::Write).unwrap();
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match wire.read_some(&mut Vec::new(), 10) {
            Ok(n) => break assert_eq!(n, 0),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                sock::wait(wire.fd(), sock::Interest::Read, deadline).unwrap()
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn a_forged_record_is_an_error_not_data() {
    let (wire, _s, client) = pair();
    // An application-data record that does not decrypt.
    let mut sock = client.sock;
    sock.write_all(&[0x17, 0x03, 0x03, 0x00, 0x20]).unwrap();
    sock.write_all(&[0x55; 0x20]).unwrap();
    let deadline = Instant::now() + TIMEOUT;
    let err = loop {
        match wire.read_some(&mut Vec::new(), 10) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                sock::wait(wire.fd(), sock::Interest::Read, deadline).unwrap()
            }
            Err(e) => break e,
            Ok(n) => panic!("read {n} bytes of a forged record"),
        }
    };
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
}

#[test]
fn plaintext_is_the_socket_itself() {
    let (a, mut b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let wire = Wire::plain(a.as_raw_fd());
    assert!(!wire.is_tls() && !wire.tls_pending() && wire.flush().unwrap());
    assert_eq!(wire.writev_some(&[b"ab", b"cd"]).unwrap(), 4);
    let mut got = [0; 4];
    b.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"abcd");
    b.write_all(b"xyz").unwrap();
    let mut buf = Vec::new();
    assert_eq!(wire.read_some(&mut buf, 10).unwrap(), 3);
    assert_eq!(buf, b"xyz");
}

/// Waits until the socket has something to read.
fn readable(wire: &Wire) {
    sock::wait(wire.fd(), sock::Interest::Read, Instant::now() + TIMEOUT).unwrap();
}

#[test]
fn a_read_says_whether_it_emptied_the_socket() {
    let (wire, _s, mut client) = pair();
    // One small record, taken whole: the socket is empty.
    client.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    readable(&wire);
    let mut buf = Vec::new();
    assert_eq!(wire.read_emptying(&mut buf, 4096).unwrap(), (18, true));
    // Taken in part (`max` reached): bytes wait in the session, so the
    // socket is not said to be empty, and the rest comes without it.
    client.write_all(b"0123456789").unwrap();
    readable(&wire);
    assert_eq!(wire.read_emptying(&mut buf, 4).unwrap(), (4, false));
    assert_eq!(wire.read_emptying(&mut buf, 100).unwrap(), (6, false));
    assert!(matches!(
        wire.read_emptying(&mut buf, 100),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock
    ));
    // More than one socket read offers: not known to be empty.
    let big = vec![7u8; 40_000];
    client.write_all(&big).unwrap();
    readable(&wire);
    let (n, emptied) = wire.read_emptying(&mut buf, 100_000).unwrap();
    assert!(n > 0 && !emptied, "{n} {emptied}");

    // Plaintext: a short read empties the socket, a full one does not.
    let (a, mut b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let plain = Wire::plain(a.as_raw_fd());
    b.write_all(b"abcdef").unwrap();
    assert_eq!(plain.read_emptying(&mut buf, 4).unwrap(), (4, false));
    assert_eq!(plain.read_emptying(&mut buf, 4).unwrap(), (2, true));
}

/// A vectored write takes the non-empty parts in order, the first
/// `sock::MAX_IOV` of them at most (the rest wait for the next call),
/// in plaintext and under TLS alike.
#[test]
fn a_vectored_write_takes_the_first_non_empty_parts_in_order() {
    let owned: Vec<Vec<u8>> = (0..100u8).map(|i| vec![i; usize::from(i % 3)]).collect();
    let parts: Vec<&[u8]> = owned.iter().map(Vec::as_slice).collect();
    let taken: Vec<u8> = parts
        .iter()
        .filter(|p| !p.is_empty())
        .take(sock::MAX_IOV)
        .flat_map(|p| p.iter().copied())
        .collect();
    assert!(parts.iter().filter(|p| !p.is_empty()).count() > sock::MAX_IOV);

    let (a, mut b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let plain = Wire::plain(a.as_raw_fd());
    assert_eq!(plain.writev_some(&parts).unwrap(), taken.len());
    assert_eq!(plain.writev_some(&[b"", b""]).unwrap(), 0);
    let mut got = vec![0; taken.len()];
    b.read_exact(&mut got).unwrap();
    assert_eq!(got, taken);

    let (wire, _s, mut client) = pair();
    assert_eq!(wire.writev_some(&parts).unwrap(), taken.len());
    assert_eq!(wire.writev_some(&[b""]).unwrap(), 0);
    let mut got = vec![0; taken.len()];
    client.read_exact(&mut got).unwrap();
    assert_eq!(got, taken);
}
