use super::*;
use qiao_io::sock;
use std::time::Duration;

type Pair = std::os::unix::net::UnixStream;

/// What each test starts from: a current-thread runtime, a socket pair
/// (non-blocking; the first end is the front's, the second the loop's)
/// and the connection's answer memory.
fn set_up() -> (tokio::runtime::Runtime, Pair, Pair, Arc<Answer>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (ours, theirs) = Pair::pair().unwrap();
    ours.set_nonblocking(true).unwrap();
    theirs.set_nonblocking(true).unwrap();
    (rt, ours, theirs, Arc::new(Answer::default()))
}

/// The loop's side writes a response larger than the memory (so it
/// spills mid-body) from another thread while the front's side reads
/// it: every byte arrives, in order, and then the end.
#[test]
fn an_answer_that_spills_arrives_whole_and_in_order() {
    use qiao_native::upconn::{Next, UpConn};
    use std::os::fd::AsRawFd;

    let (rt, ours, theirs, answer) = set_up();
    let body: Vec<u8> = (0..5 * qiao_io::answer::ANSWER_MEMORY_LIMIT)
        .map(|i| (i % 253) as u8)
        .collect();
    let writer = {
        let (answer, body) = (answer.clone(), body.clone());
        std::thread::spawn(move || {
            let wire = qiao_io::wire::Wire::answered(theirs.as_raw_fd(), answer);
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
            let timeout = Duration::from_secs(10);
            let mut wait = |fd, interest, deadline| sock::wait(fd, interest, deadline);
            wire.write_all(head.as_bytes(), timeout, &mut wait).unwrap();
            for piece in body.chunks(7_000) {
                wire.write_all(piece, timeout, &mut wait).unwrap();
            }
            theirs
        })
    };
    let got = rt.block_on(async {
        let sock = UnixStream::from_std(ours).unwrap();
        let mut conn = UpConn::new(Answered::new(sock, answer.clone()));
        let head = conn.read_head(false, None).await.unwrap();
        let mut reader = conn.body(&head);
        let mut got = Vec::new();
        loop {
            match conn.body_next(&mut reader, None).await.unwrap() {
                Next::Data(span) => got.extend_from_slice(&conn.bytes()[span]),
                Next::Idle => {}
                Next::End => break,
            }
        }
        got
    });
    drop(writer.join().unwrap());
    assert!(answer.spilled(), "the test must cross the spill");
    assert_eq!(got.len(), body.len());
    assert!(got == body, "the bytes arrive in the order written");
}

/// [`Answered`] that misses the memory's bytes at its first look, as
/// a reader does when the writer fills the memory and spills right
/// after that look.
struct LateLook {
    inner: Answered,
    looked: std::sync::atomic::AtomicBool,
}

impl AsRawFd for LateLook {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

impl Link for LateLook {
    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        self.inner.try_write(buf)
    }
    fn writable(&self) -> impl Future<Output = io::Result<()>> + Send {
        self.inner.writable()
    }
    fn try_io<R>(&self, i: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        self.inner.try_io(i, f)
    }
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.poll_read_ready(cx)
    }
    fn take_answer(&self, buf: &mut Vec<u8>) -> usize {
        use std::sync::atomic::Ordering;
        if self.looked.swap(true, Ordering::SeqCst) {
            self.inner.take_answer(buf)
        } else {
            0
        }
    }
    fn poll_answer(&self, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

/// The race [`an_answer_that_spills_arrives_whole_and_in_order`] can
/// only stumble on, made certain: the memory looked empty, then the
/// writer filled it and spilled; the socket read finds the spilled
/// bytes, and the memory's still go first.
#[test]
fn bytes_in_memory_go_before_those_spilled_while_the_reader_looked_away() {
    use qiao_native::upconn::UpConn;
    use std::os::fd::AsRawFd;

    let (rt, ours, theirs, answer) = set_up();
    let wire = qiao_io::wire::Wire::answered(theirs.as_raw_fd(), answer.clone());
    let body = vec![b'm'; qiao_io::answer::ANSWER_MEMORY_LIMIT - 42];
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
        body.len() + 7
    );
    assert_eq!(head.len(), 42, "the head and body fill the memory exactly");
    assert_eq!(wire.write_some(head.as_bytes()).unwrap(), head.len());
    assert_eq!(wire.write_some(&body).unwrap(), body.len());
    assert_eq!(wire.write_some(b"spilled").unwrap(), 7);
    assert!(answer.spilled());
    rt.block_on(async {
        let sock = UnixStream::from_std(ours).unwrap();
        let inner = Answered::new(sock, answer);
        let looked = std::sync::atomic::AtomicBool::new(false);
        let mut conn = UpConn::new(LateLook { inner, looked });
        let head = conn.read_head(false, None).await.unwrap();
        assert_eq!(head.status, 200);
        let mut reader = conn.body(&head);
        let mut got = Vec::new();
        while let Some(span) = conn.body_ready(&mut reader).unwrap() {
            got.extend_from_slice(&conn.bytes()[span]);
        }
        assert!(got.starts_with(&body) && got.ends_with(b"spilled"));
    });
    drop(theirs);
}

/// The same through hyper's side ([`AsyncRead`]), read to the
/// connection's end in small reads.
#[test]
fn an_answer_that_spills_reads_whole_and_in_order_through_async_read() {
    use tokio::io::AsyncReadExt;

    let (rt, ours, theirs, answer) = set_up();
    let bytes: Vec<u8> = (0..3 * qiao_io::answer::ANSWER_MEMORY_LIMIT + 17)
        .map(|i| (i % 241) as u8)
        .collect();
    let writer = {
        let (answer, bytes) = (answer.clone(), bytes.clone());
        std::thread::spawn(move || {
            let wire = qiao_io::wire::Wire::answered(theirs.as_raw_fd(), answer);
            let mut wait = |fd, interest, deadline| sock::wait(fd, interest, deadline);
            for piece in bytes.chunks(5_000) {
                wire.write_all(piece, Duration::from_secs(10), &mut wait)
                    .unwrap();
            }
            drop(theirs); // the end, on the socket
        })
    };
    let got = rt.block_on(async {
        let sock = UnixStream::from_std(ours).unwrap();
        let mut conn = Answered::new(sock, answer.clone());
        let mut got = Vec::new();
        let mut piece = [0u8; 3_000];
        loop {
            match conn.read(&mut piece).await.unwrap() {
                0 => break got,
                n => got.extend_from_slice(&piece[..n]),
            }
        }
    });
    writer.join().unwrap();
    assert!(answer.spilled(), "the test must cross the spill");
    assert!(
        got == bytes,
        "every byte, in the order written, then the end"
    );
}

/// Memory's bytes come before the socket's even when the socket is
/// read first (what a read racing a spill finds).
#[test]
fn async_read_puts_memory_before_bytes_already_on_the_socket() {
    use tokio::io::AsyncReadExt;

    let (rt, ours, theirs, answer) = set_up();
    let wire = qiao_io::wire::Wire::answered(theirs.as_raw_fd(), answer.clone());
    let first = vec![b'm'; qiao_io::answer::ANSWER_MEMORY_LIMIT];
    assert_eq!(wire.write_some(&first).unwrap(), first.len());
    assert_eq!(wire.write_some(b"spilled").unwrap(), 7);
    drop(theirs);
    let got = rt.block_on(async {
        let sock = UnixStream::from_std(ours).unwrap();
        let mut conn = Answered::new(sock, answer.clone());
        // A read with no room returns at once, taking nothing.
        std::future::poll_fn(|cx| {
            let mut none = ReadBuf::new(&mut []);
            assert!(Pin::new(&mut conn).poll_read(cx, &mut none).is_ready());
            Poll::Ready(())
        })
        .await;
        assert!(answer.has_bytes());
        // The socket's bytes are taken in before memory is looked at.
        let mut piece = vec![0u8; 7];
        let n = loop {
            conn.sock.readable().await.unwrap();
            match conn.sock.try_read(&mut piece) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                read => break read.unwrap(),
            }
        };
        assert_eq!(n, 7);
        conn.held.extend_from_slice(&piece[..n]);
        let mut got = Vec::new();
        conn.read_to_end(&mut got).await.unwrap();
        got
    });
    assert!(got.starts_with(&first) && got.ends_with(b"spilled"));
    assert_eq!(got.len(), first.len() + 7);
}
