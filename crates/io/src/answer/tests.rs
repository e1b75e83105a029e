//! An [`Answer`] and a [`Wire`] writing to it over a real socket pair:
//! what fits stays in memory and wakes the reader, what does not spills
//! to the socket for good, and memory's bytes always come first.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Wake;
use std::time::Duration;

use super::*;
use crate::wire::Wire;

/// Counts its wake-ups.
#[derive(Default)]
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// An answered wire on one end of a pair; the other end, to read what
/// spilled (with a timeout, so a missing byte fails instead of hanging).
fn answered() -> (Wire, Arc<Answer>, UnixStream, UnixStream) {
    let (ours, theirs) = UnixStream::pair().unwrap();
    ours.set_nonblocking(true).unwrap();
    theirs
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let answer = Arc::new(Answer::default());
    (
        Wire::answered(ours.as_raw_fd(), answer.clone()),
        answer,
        ours,
        theirs,
    )
}

/// Nothing is waiting on the socket now.
fn socket_empty(s: &UnixStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let empty =
        matches!((&*s).read(&mut [0u8; 1]), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
    s.set_nonblocking(false).unwrap();
    empty
}

#[test]
fn what_fits_stays_in_memory_and_wakes_the_reader() {
    let (wire, answer, _ours, theirs) = answered();
    let count = Arc::new(Count::default());
    let waker = Waker::from(count.clone());
    let mut cx = Context::from_waker(&waker);
    assert!(answer.poll_bytes(&mut cx).is_pending());
    assert_eq!(
        wire.writev_some(&[b"HTTP/1.1 200 OK\r\n", b"\r\n"])
            .unwrap(),
        19
    );
    assert_eq!(wire.write_some(b"body").unwrap(), 4);
    assert_eq!(
        count.0.load(Ordering::SeqCst),
        1,
        "woken once, as it waited once"
    );
    assert!(answer.poll_bytes(&mut cx).is_ready());
    let mut got = Vec::new();
    assert_eq!(answer.take_into(&mut got), 23);
    assert_eq!(got, b"HTTP/1.1 200 OK\r\n\r\nbody");
    assert!(!answer.has_bytes() && !answer.spilled());
    assert!(wire.flush().unwrap() && !wire.tls_pending());
    assert!(socket_empty(&theirs), "nothing went to the socket");
}

#[test]
fn past_the_limit_it_spills_to_the_socket_for_good_memory_first() {
    let (wire, answer, _ours, mut theirs) = answered();
    let first = vec![b'a'; ANSWER_MEMORY_LIMIT - 10];
    assert_eq!(wire.write_some(&first).unwrap(), first.len());
    // Only ten bytes fit: taken, the rest refused from memory.
    assert_eq!(wire.writev_some(&[b"0123456789", b"XYZ"]).unwrap(), 10);
    assert!(!answer.spilled());
    // Full: this write spills.
    assert_eq!(wire.write_some(b"XYZ").unwrap(), 3);
    assert!(answer.spilled());
    // Drained memory takes nothing any more: the socket's bytes would
    // otherwise come after later ones.
    let mut got = Vec::new();
    answer.take_into(&mut got);
    assert_eq!(got.len(), ANSWER_MEMORY_LIMIT);
    assert!(got.ends_with(b"0123456789"));
    assert_eq!(wire.write_some(b"more").unwrap(), 4);
    assert!(!answer.has_bytes());
    let mut spilled = [0u8; 7];
    theirs.read_exact(&mut spilled).unwrap();
    assert_eq!(&spilled, b"XYZmore");
}

#[test]
fn a_file_goes_to_memory_by_copy_until_it_spills() {
    let (wire, answer, _ours, mut theirs) = answered();
    let path = std::env::temp_dir().join(format!("qiao-answer-{}", std::process::id()));
    let content: Vec<u8> = (0..ANSWER_MEMORY_LIMIT + 5000)
        .map(|i| (i % 251) as u8)
        .collect();
    std::fs::write(&path, &content).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let (fd, total) = (file.as_raw_fd(), content.len() as u64);
    let mut at = 0u64;
    while at < total {
        match wire.sendfile_some(fd, at, total - at).unwrap() {
            Some(0) => panic!("the file ended early"),
            Some(n) => at += n,
            None => panic!("an empty socket refused the spill"),
        }
    }
    assert_eq!(wire.sendfile_some(fd, total, 1).unwrap(), Some(0));
    assert!(answer.spilled());
    let mut got = Vec::new();
    answer.take_into(&mut got);
    let mut rest = vec![0u8; content.len() - got.len()];
    theirs.read_exact(&mut rest).unwrap();
    got.extend_from_slice(&rest);
    assert!(
        got == content,
        "memory's bytes, then the socket's, are the file"
    );
}

#[test]
fn the_end_still_travels_on_the_socket() {
    let (wire, answer, ours, mut theirs) = answered();
    wire.write_some(b"last answer").unwrap();
    wire.shutdown_write();
    drop(ours);
    let mut rest = Vec::new();
    theirs.read_to_end(&mut rest).unwrap();
    assert!(
        rest.is_empty(),
        "the bytes are in memory, only the end is on the socket"
    );
    let mut got = Vec::new();
    answer.take_into(&mut got);
    assert_eq!(got, b"last answer");
}

#[test]
fn writes_after_the_reader_let_go_fail_as_on_a_closed_socket() {
    let (wire, answer, _ours, _theirs) = answered();
    assert_eq!(wire.write_some(b"partial").unwrap(), 7);
    answer.close();
    assert!(!answer.has_bytes(), "the held bytes are dropped");
    let err = wire.write_some(b"more").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    assert_eq!(
        wire.writev_some(&[b"x"]).unwrap_err().kind(),
        io::ErrorKind::BrokenPipe
    );
}

#[test]
fn a_deferred_wake_waits_for_the_runtime_unless_it_is_parked() {
    let wakes = Arc::new(Wakes::default());
    let answer = Answer::deferring(wakes.clone());
    let (_ours, theirs) = UnixStream::pair().unwrap();
    let fd = theirs.as_raw_fd();
    let count = Arc::new(Count::default());
    let waker = Waker::from(count.clone());
    let woken = || count.0.load(Ordering::SeqCst);

    // The runtime is busy elsewhere: the wake-up waits for its next run.
    assert!(answer
        .poll_bytes(&mut Context::from_waker(&waker))
        .is_pending());
    answer.writev(fd, &[b"one"]).unwrap();
    assert_eq!(woken(), 0, "put off");
    wakes.run();
    assert_eq!(woken(), 1, "given when the runtime runs");
    wakes.run();
    assert_eq!(woken(), 1, "given once");

    // A thread waits inside the runtime: nothing would run the list.
    let mut got = Vec::new();
    answer.take_into(&mut got);
    assert!(answer
        .poll_bytes(&mut Context::from_waker(&waker))
        .is_pending());
    wakes.park(true);
    answer.writev(fd, &[b"two"]).unwrap();
    assert_eq!(woken(), 2, "woken at once while parked");
    wakes.park(false);
}

#[test]
fn a_wake_deferred_while_the_runtime_parks_is_not_lost() {
    // Writers defer from other threads while the runtime says it parks
    // and then runs its list, as `NativeRuntime::enter` does: every
    // reader is woken, by the list or at once.
    for _ in 0..1000 {
        let wakes = Arc::new(Wakes::default());
        let count = Arc::new(Count::default());
        let barrier = Arc::new(std::sync::Barrier::new(3));
        let writers: Vec<_> = (0..2)
            .map(|_| {
                let (wakes, count, barrier) = (wakes.clone(), count.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    for _ in 0..50 {
                        wakes.defer(Waker::from(count.clone()));
                    }
                })
            })
            .collect();
        barrier.wait();
        wakes.park(true);
        wakes.run();
        for w in writers {
            w.join().unwrap();
        }
        assert_eq!(count.0.load(Ordering::SeqCst), 100);
    }
}

#[test]
fn a_write_that_appends_nothing_wakes_nobody() {
    let (wire, answer, _ours, _theirs) = answered();
    let count = Arc::new(Count::default());
    let waker = Waker::from(count.clone());
    assert!(answer
        .poll_bytes(&mut Context::from_waker(&waker))
        .is_pending());
    assert_eq!(wire.writev_some(&[]).unwrap(), 0);
    assert_eq!(wire.writev_some(&[b""]).unwrap(), 0);
    assert_eq!(count.0.load(Ordering::SeqCst), 0);
    wire.write_some(b"x").unwrap();
    assert_eq!(
        count.0.load(Ordering::SeqCst),
        1,
        "the waker was kept for this"
    );
}

#[test]
fn an_emptied_answer_keeps_only_a_small_buffer() {
    let (wire, answer, _ours, _theirs) = answered();
    let big = vec![b'b'; ANSWER_MEMORY_LIMIT];
    assert_eq!(wire.write_some(&big).unwrap(), big.len());
    let mut got = Vec::with_capacity(1);
    got.push(b'>');
    answer.take_into(&mut got);
    assert_eq!(got.len(), big.len() + 1);
    assert!(answer.lock().bytes.capacity() <= ANSWER_KEPT_CAPACITY);
    // A small answer's room is kept for the next one.
    wire.write_some(b"small").unwrap();
    answer.take_into(&mut Vec::with_capacity(64));
    assert!(answer.lock().bytes.capacity() > 0);
}
