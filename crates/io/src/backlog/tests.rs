//! The backlog against a real socket pair whose reader is slow: order,
//! partial writes, files, and the bound a waiting writer stops at.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use super::*;
use crate::wire::Wire;

fn pair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    (a, b)
}

fn file_of(bytes: &[u8]) -> OwnedFd {
    let mut f = tempfile();
    f.write_all(bytes).unwrap();
    OwnedFd::from(f)
}

fn tempfile() -> std::fs::File {
    let path = std::env::temp_dir().join(format!(
        "qiao-backlog-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    f
}

/// What the reader gets after `backlog` is written out, reading as it goes.
fn drain(backlog: &mut Backlog, writer: &UnixStream, mut reader: UnixStream) -> Vec<u8> {
    let total = backlog.len() as usize;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 7919]; // an odd size: pieces end mid-read
    while got.len() < total {
        backlog
            .write_nowait(&Wire::plain(writer.as_raw_fd()))
            .unwrap();
        let n = reader.read(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    assert!(backlog.is_empty());
    got
}

#[test]
fn empty_costs_nothing() {
    let b = Backlog::default();
    assert!(b.is_empty());
    assert_eq!(b.pieces.capacity(), 0);
}

#[test]
fn pieces_leave_in_order_across_partial_writes() {
    let (w, r) = pair();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut b = Backlog::default();
    b.push_copy(b"head ");
    b.push_copy(b"more ");
    b.push_held(Box::new(big.clone()), 10);
    b.push_file(file_of(b"0123456789file"), 4, 10);
    b.push_copy(b" tail");
    let want = [
        b"head more ".as_slice(),
        &big[10..],
        b"456789file",
        b" tail",
    ]
    .concat();
    assert_eq!(b.len(), want.len() as u64);
    // Nobody reads yet: the socket takes part, the rest stays.
    let first = b.write_nowait(&Wire::plain(w.as_raw_fd())).unwrap();
    assert!(first > 0 && !b.is_empty());
    assert_eq!(b.write_nowait(&Wire::plain(w.as_raw_fd())).unwrap(), 0);
    let mut got = vec![0u8; first as usize];
    let mut r = r;
    r.read_exact(&mut got).unwrap();
    got.extend(drain(&mut b, &w, r));
    assert_eq!(got.len(), want.len());
    assert!(got == want, "bytes out of order");
}

#[test]
fn copies_are_coalesced() {
    let mut b = Backlog::default();
    for _ in 0..100 {
        b.push_copy(b"x");
    }
    b.push_copy(b"");
    assert_eq!(b.pieces.len(), 1);
    assert_eq!(b.len(), 100);
}

#[test]
fn a_file_shorter_than_announced_is_an_error() {
    let (w, _r) = pair();
    let mut b = Backlog::default();
    b.push_file(file_of(b"short"), 0, 100);
    let err = b.write_nowait(&Wire::plain(w.as_raw_fd())).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
}

#[test]
fn write_until_stops_at_the_bound() {
    let (w, mut r) = pair();
    let mut b = Backlog::default();
    b.push_held(Box::new(vec![7u8; 4 << 20]), 0);
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        let mut n = 0;
        while let Ok(k) = r.read(&mut buf) {
            if k == 0 {
                break;
            }
            n += k;
        }
        n
    });
    let bound = MAX_BACKLOG_BYTES;
    let mut wait = |fd, interest, deadline| sock::wait(fd, interest, deadline);
    b.write_until(
        &Wire::plain(w.as_raw_fd()),
        bound,
        Duration::from_secs(10),
        &mut wait,
    )
    .unwrap();
    assert!(b.len() <= bound);
    b.write_until(
        &Wire::plain(w.as_raw_fd()),
        0,
        Duration::from_secs(10),
        &mut wait,
    )
    .unwrap();
    drop(w);
    assert_eq!(reader.join().unwrap(), 4 << 20);
}

#[test]
fn write_until_times_out_on_a_client_that_never_reads() {
    let (w, _r) = pair();
    let mut b = Backlog::default();
    b.push_held(Box::new(vec![0u8; 4 << 20]), 0);
    let mut wait = |fd, interest, deadline| sock::wait(fd, interest, deadline);
    let err = b
        .write_until(
            &Wire::plain(w.as_raw_fd()),
            0,
            Duration::from_millis(50),
            &mut wait,
        )
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert!(!b.is_empty());
}
