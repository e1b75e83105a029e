//! A connection's byte stream as every reader and writer of it sees it:
//! the raw socket, or a TLS session over that socket. The event loop, the
//! serving threads (`wsgi.input`, the response) and the native services
//! read and write through a [`Wire`], never through the descriptor alone.
//!
//! Why TLS lives here and not in a front of its own: a TLS request then
//! costs the system calls of a plaintext one plus the crypto. The
//! handshake is done by the protocol front (`qiao_front`, where its
//! timeout, the PROXY header before it and ALPN's choice of HTTP/2 live);
//! an HTTP/1.1 session is then handed to the loop with its socket and
//! every later byte goes through here. Measured in `bench/RESULTS.md`.
//!
//! Semantics match the plain calls in [`sock`] so callers need not know
//! which they have: `WouldBlock` (or 0, or `None`, as the plain call says
//! it) when the socket takes or gives nothing now. Under TLS a write is
//! *accepted* once rustls has encrypted it; the encrypted bytes the socket
//! did not take stay in the session ([`Wire::tls_pending`]) and are
//! flushed first by every later call, and by the loop before it reads
//! again (backpressure). rustls's own buffer limit bounds them
//! ([`TLS_PENDING_LIMIT`]). Files go through a copy under TLS (this kernel
//! family may lack kernel TLS; see the module of `front::tls`).
//!
//! The front's internal connections for HTTP/2 streams write their
//! answers to memory instead ([`crate::answer`]), spilling to the socket
//! only when that fills.
//!
//! The session is behind a mutex only because the response's park
//! (`output::Park`) may be written by the monitor thread; a connection is
//! otherwise used by one thread at a time, so the lock is never contended.

use std::io::{self, BufRead, IoSlice, Read, Write};
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rustls::ServerConnection;

use super::answer::Answer;
use super::sock::{self, Interest, Waiter};

/// Encrypted bytes a session may hold that the socket has not taken; past
/// it, writes are refused (`WouldBlock`) until the socket takes some.
pub(crate) const TLS_PENDING_LIMIT: usize = 64 * 1024;
/// Most bytes of a file copied through TLS per call.
pub(crate) const TLS_FILE_PIECE: usize = 64 * 1024;

/// The socket of a connection, with its TLS session if it has one.
#[derive(Clone)]
pub struct Wire {
    fd: RawFd,
    tls: Option<Arc<Mutex<ServerConnection>>>,
    /// Where the answers go instead of the socket (an internal
    /// connection of the front's, never under TLS).
    answer: Option<Arc<Answer>>,
}

impl Default for Wire {
    /// No connection: every call fails (`EBADF`).
    fn default() -> Wire {
        Wire::plain(-1)
    }
}

impl Wire {
    /// A plaintext connection.
    pub fn plain(fd: RawFd) -> Wire {
        Wire {
            fd,
            tls: None,
            answer: None,
        }
    }

    /// An internal connection whose writes go to `answer` first.
    pub fn answered(fd: RawFd, answer: Arc<Answer>) -> Wire {
        Wire {
            fd,
            tls: None,
            answer: Some(answer),
        }
    }

    /// A connection whose handshake is done: `session` encrypts from now on.
    pub fn tls(fd: RawFd, mut session: ServerConnection) -> Wire {
        session.set_buffer_limit(Some(TLS_PENDING_LIMIT));
        Wire {
            fd,
            tls: Some(Arc::new(Mutex::new(session))),
            answer: None,
        }
    }

    /// The socket (for waiting on its readiness, and socket options).
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    pub(crate) fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    fn session(&self) -> Option<MutexGuard<'_, ServerConnection>> {
        self.tls
            .as_ref()
            .map(|m| m.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Encrypted bytes wait for the socket.
    pub(crate) fn tls_pending(&self) -> bool {
        self.session().is_some_and(|s| s.wants_write())
    }

    /// Writes pending encrypted bytes as far as the socket takes them now.
    /// True when none are left (always, in plaintext).
    pub fn flush(&self) -> io::Result<bool> {
        match self.session() {
            None => Ok(true),
            Some(mut s) => flush_session(&mut s, self.fd),
        }
    }

    /// One non-blocking read into the spare capacity of `buf` (at most
    /// `max` bytes): `Ok(0)` at the end, `WouldBlock` when nothing is there.
    pub(crate) fn read_some(&self, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
        self.read_emptying(buf, max).map(|(n, _)| n)
    }

    /// [`Wire::read_some`], and whether the read left the socket empty of
    /// data (so the next bytes come with a new readiness edge, and the
    /// loop need not read again to find `WouldBlock`). In plaintext a
    /// short read says so. Under TLS the socket read is not the caller's:
    /// it is the session's last read that was short, with no decrypted
    /// byte left behind in the session. Saves a system call per request.
    pub(crate) fn read_emptying(&self, buf: &mut Vec<u8>, max: usize) -> io::Result<(usize, bool)> {
        let Some(mut s) = self.session() else {
            let n = sock::read_some(self.fd, buf, max)?;
            return Ok((n, n > 0 && n < max));
        };
        read_session(&mut s, self.fd, buf, max)
    }

    /// One non-blocking write of `data`: the bytes taken, `WouldBlock`
    /// when none.
    pub fn write_some(&self, data: &[u8]) -> io::Result<usize> {
        let n = match (self.session(), &self.answer) {
            (Some(mut s), _) => write_session(&mut s, self.fd, &[data])?,
            (None, Some(a)) => a.writev(self.fd, &[data])?,
            (None, None) => return sock::write_some(self.fd, data),
        };
        match n {
            0 if !data.is_empty() => Err(io::ErrorKind::WouldBlock.into()),
            n => Ok(n),
        }
    }

    /// One non-blocking vectored write: the bytes taken, 0 when none.
    pub(crate) fn writev_some(&self, parts: &[&[u8]]) -> io::Result<usize> {
        match (self.session(), &self.answer) {
            (Some(mut s), _) => write_session(&mut s, self.fd, parts),
            (None, Some(a)) => a.writev(self.fd, parts),
            (None, None) => sock::writev_some(self.fd, parts),
        }
    }

    /// Up to `count` bytes of `file_fd` from `offset`: `Some(sent)` (0: the
    /// file ended), `None` when the socket took nothing. `sendfile(2)` in
    /// plaintext; under TLS (or to an answer in memory) a read and a write.
    pub fn sendfile_some(
        &self,
        file_fd: RawFd,
        offset: u64,
        count: u64,
    ) -> io::Result<Option<u64>> {
        if let Some(a) = self.answer.as_ref().filter(|a| !a.spilled()) {
            return match file_piece(file_fd, offset, count)? {
                None => Ok(Some(0)),
                Some(piece) => match a.writev(self.fd, &[&piece])? {
                    0 => Ok(None),
                    n => Ok(Some(n as u64)),
                },
            };
        }
        let Some(mut s) = self.session() else {
            return sock::sendfile_some(self.fd, file_fd, offset, count);
        };
        if !flush_session(&mut s, self.fd)? {
            return Ok(None);
        }
        match file_piece(file_fd, offset, count)? {
            None => Ok(Some(0)),
            Some(piece) => match write_session(&mut s, self.fd, &[&piece])? {
                0 => Ok(None),
                n => Ok(Some(n as u64)),
            },
        }
    }

    /// Writes all of `data` and what the session holds, waiting through
    /// `waiter` while the socket is full; `timeout` bounds each stall.
    pub fn write_all(&self, mut data: &[u8], timeout: Duration, waiter: Waiter) -> io::Result<()> {
        loop {
            if !data.is_empty() {
                match self.write_some(data) {
                    Ok(n) => data = &data[n..],
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
            if data.is_empty() && self.flush()? {
                return Ok(());
            }
            waiter(self.fd, Interest::Write, sock::deadline_in(timeout))?;
        }
    }

    /// Ends the sending side: under TLS a `close_notify` first, written as
    /// far as the socket takes it now.
    pub(crate) fn shutdown_write(&self) {
        if let Some(mut s) = self.session() {
            s.send_close_notify();
            let _ = flush_session(&mut s, self.fd);
        }
        sock::shutdown_write(self.fd);
    }

    /// `TCP_CORK` (see [`sock::set_cork`]).
    pub fn set_cork(&self, on: bool) {
        sock::set_cork(self.fd, on);
    }
}

/// Up to [`TLS_FILE_PIECE`] bytes of `file_fd` from `offset` (at most
/// `count`), read for a write that cannot be a `sendfile(2)`; `None` at
/// the file's end.
fn file_piece(file_fd: RawFd, offset: u64, count: u64) -> io::Result<Option<Vec<u8>>> {
    let want = (count as usize).min(TLS_FILE_PIECE);
    // Not zero-filled: `pread` writes what `set_len` then exposes.
    let mut piece: Vec<u8> = Vec::with_capacity(want);
    // SAFETY: reads at most `want` bytes into the reserved capacity.
    let rc = unsafe { libc::pread(file_fd, piece.as_mut_ptr().cast(), want, offset as i64) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    if rc == 0 {
        return Ok(None);
    }
    // SAFETY: the kernel initialised `rc` bytes.
    unsafe { piece.set_len(rc as usize) };
    Ok(Some(piece))
}

/// The socket as `io::Write` for rustls: one system call each,
/// `WouldBlock` passed through.
struct Fd(RawFd);

/// The socket as `io::Read` for rustls, remembering whether its last read
/// took less than it was offered (the socket was emptied).
struct FdReader {
    fd: RawFd,
    short: bool,
}

impl Read for FdReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // SAFETY: reads at most `buf.len()` bytes into a live slice.
            let rc = unsafe { libc::read(self.fd, buf.as_mut_ptr().cast(), buf.len()) };
            if rc >= 0 {
                self.short = rc > 0 && (rc as usize) < buf.len();
                return Ok(rc as usize);
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
}

impl Write for Fd {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        sock::write_some(self.0, data)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match sock::writev_slices(self.0, bufs)? {
            0 if bufs.iter().any(|b| !b.is_empty()) => Err(io::ErrorKind::WouldBlock.into()),
            n => Ok(n),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes encrypted bytes until none are left (true) or the socket is full.
fn flush_session(s: &mut ServerConnection, fd: RawFd) -> io::Result<bool> {
    while s.wants_write() {
        match s.write_tls(&mut Fd(fd)) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Encrypts what the session's limit allows of `parts`, then writes.
fn write_session(s: &mut ServerConnection, fd: RawFd, parts: &[&[u8]]) -> io::Result<usize> {
    flush_session(s, fd)?;
    let n = sock::with_iovecs(parts, |iov| match iov {
        [] => Ok(0),
        _ => s.writer().write_vectored(iov),
    })?;
    flush_session(s, fd)?;
    Ok(n)
}

/// Up to `max` decrypted bytes appended to `buf`, reading the socket
/// only when none wait. `Ok(0)`: the client closed. With them, whether
/// the socket was left empty (see [`Wire::read_emptying`]).
fn read_session(
    s: &mut ServerConnection,
    fd: RawFd,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<(usize, bool)> {
    let mut eof = false;
    // Whether this call's last socket read was short: known only once the
    // socket was read here.
    let mut emptied = false;
    loop {
        let mut taken = 0;
        let mut reader = s.reader();
        let state = loop {
            match reader.fill_buf() {
                Ok([]) => break Ok(true), // the client's close_notify
                Ok(chunk) => {
                    let n = chunk.len().min(max - taken);
                    buf.extend_from_slice(&chunk[..n]);
                    reader.consume(n);
                    taken += n;
                    if taken == max {
                        break Ok(false);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(false),
                // Closed without close_notify: an end all the same.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break Ok(true),
                Err(e) => break Err(e),
            }
        };
        let ended = state?;
        if taken > 0 || ended {
            // Bytes left in the session (`max` reached) are not emptied.
            let left = taken == max;
            return Ok((taken, emptied && !ended && !left));
        }
        if eof {
            return Ok((0, false));
        }
        // The socket's end (0) is seen by the session: its reader then
        // says so, after any whole records before it.
        let mut reader = FdReader { fd, short: false };
        eof = s.read_tls(&mut reader)? == 0;
        emptied = reader.short;
        if let Err(e) = s.process_new_packets() {
            // A bad record: the alert rustls queued goes out, then the end.
            let _ = flush_session(s, fd);
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        // Answers the session owes (a key update) go out with the next write.
        let _ = flush_session(s, fd);
    }
}

#[cfg(test)]
#[path = "wire/tests.rs"]
mod tests;
