//! Raw socket operations on file descriptors: non-blocking reads, vectored
//! writes and `sendfile(2)` that wait for readiness through a caller-given
//! function, so the WSGI ring can release the GIL exactly while waiting.
//!
//! Plain `libc` calls rather than `std`/`mio` streams because the WSGI
//! objects (`wsgi.input`, `write()`) hold only the fd while the connection
//! itself stays owned by the event loop; `writev` and `sendfile` are not in
//! `std` for sockets anyway.

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use super::heartbeat::Paused;

/// Which readiness to wait for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interest {
    Read,
    Write,
}

/// Blocks until `fd` is ready or `deadline` passes (`TimedOut`). This is
/// the only blocking call: callers wrap it to release the GIL around it.
/// A serving thread waits here for its client only: its request's
/// `--timeout` clock is paused meanwhile ([`Paused`]).
pub fn wait(fd: RawFd, interest: Interest, deadline: Instant) -> io::Result<()> {
    let _paused = Paused::now();
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "socket timed out"));
        }
        let ms = (deadline - now).as_millis().clamp(1, i32::MAX as u128) as i32;
        let events = match interest {
            Interest::Read => libc::POLLIN,
            Interest::Write => libc::POLLOUT,
        };
        let mut pfd = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        // SAFETY: one valid pollfd, count 1.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc > 0 {
            return Ok(());
        }
        if rc < 0 {
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
}

/// A way to wait for readiness: `sock::wait` itself, or a wrapper that
/// releases the GIL around it.
pub(crate) type Waiter<'a> = &'a mut dyn FnMut(RawFd, Interest, Instant) -> io::Result<()>;

/// One non-blocking `read(2)` into the spare capacity of `buf`.
/// `Ok(0)` is end of stream; `WouldBlock` means nothing is there yet.
pub(crate) fn read_some(fd: RawFd, buf: &mut Vec<u8>, max: usize) -> io::Result<usize> {
    buf.reserve(max);
    let spare = buf.spare_capacity_mut();
    let len = spare.len().min(max);
    loop {
        // SAFETY: writing at most `len` bytes into reserved, owned memory.
        let rc = unsafe { libc::read(fd, spare.as_mut_ptr().cast(), len) };
        if rc >= 0 {
            let n = rc as usize;
            // SAFETY: the kernel initialised `n` bytes.
            unsafe { buf.set_len(buf.len() + n) };
            return Ok(n);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// One non-blocking `write(2)` of `data`: the bytes the socket took,
/// `WouldBlock` when it took none.
pub fn write_some(fd: RawFd, data: &[u8]) -> io::Result<usize> {
    loop {
        // SAFETY: reads at most `data.len()` bytes from a live slice.
        let rc = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if rc >= 0 {
            return Ok(rc as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Most buffers given to one `writev(2)`: the rest wait for the next call.
pub(crate) const MAX_IOV: usize = 64;

/// One non-blocking `writev(2)` of `parts` (at most [`MAX_IOV`] of them
/// used): the bytes the socket took, 0 when it took none (`WouldBlock`).
pub(crate) fn writev_some(fd: RawFd, parts: &[&[u8]]) -> io::Result<usize> {
    with_iovecs(parts, |iov| writev_slices(fd, iov))
}

/// Calls `f` with the non-empty `parts` (the first [`MAX_IOV`]) as
/// iovecs. They are built on the stack and only as many slots as are used
/// are written: this runs once per response, where an allocation, or
/// filling all 64 slots, each cost more than the rest of the call.
pub(crate) fn with_iovecs<R>(parts: &[&[u8]], f: impl FnOnce(&[IoSlice<'_>]) -> R) -> R {
    let mut slots = [const { MaybeUninit::<IoSlice<'_>>::uninit() }; MAX_IOV];
    let mut count = 0;
    for part in parts.iter().filter(|p| !p.is_empty()).take(MAX_IOV) {
        slots[count].write(IoSlice::new(part));
        count += 1;
    }
    // SAFETY: the first `count` slots were written just above, and
    // `MaybeUninit<T>` has `T`'s layout.
    let iov = unsafe { std::slice::from_raw_parts(slots.as_ptr().cast::<IoSlice<'_>>(), count) };
    f(iov)
}

/// [`writev_some`] of slices already shaped as iovecs (as rustls hands
/// them over): no copy of the list.
pub(crate) fn writev_slices(fd: RawFd, iov: &[IoSlice<'_>]) -> io::Result<usize> {
    let iov = &iov[..iov.len().min(MAX_IOV)];
    if iov.iter().all(|s| s.is_empty()) {
        return Ok(0);
    }
    loop {
        // SAFETY: `IoSlice` is ABI-compatible with `iovec` on Unix, and
        // the slices it points to are alive for this call.
        let rc = unsafe {
            libc::writev(
                fd,
                iov.as_ptr().cast::<libc::iovec>(),
                iov.len() as libc::c_int,
            )
        };
        if rc >= 0 {
            return Ok(rc as usize);
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return Ok(0),
            _ => return Err(err),
        }
    }
}

/// One non-blocking `sendfile(2)` of up to `count` bytes of `file_fd` from
/// `offset`: `Some(bytes sent)` (0: the file ended), `None` when the socket
/// took nothing (`WouldBlock`).
pub fn sendfile_some(
    sock: RawFd,
    file_fd: RawFd,
    offset: u64,
    count: u64,
) -> io::Result<Option<u64>> {
    loop {
        let mut off = offset as libc::off_t;
        // SAFETY: valid fds; `off` is a local the kernel updates.
        let rc = unsafe { libc::sendfile(sock, file_fd, &mut off, count as usize) };
        if rc >= 0 {
            return Ok(Some(rc as u64));
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return Ok(None),
            _ => return Err(err),
        }
    }
}

/// Writes every byte of every slice, in order, with `writev(2)`, waiting
/// through `waiter` whenever the socket buffer is full.
/// `timeout` bounds each stall (no progress), not the whole transfer.
pub fn write_all_vectored(
    fd: RawFd,
    parts: &[&[u8]],
    timeout: Duration,
    waiter: Waiter,
) -> io::Result<()> {
    let mut iov: Vec<libc::iovec> = parts
        .iter()
        .filter(|p| !p.is_empty())
        .map(|p| libc::iovec {
            iov_base: p.as_ptr() as *mut _,
            iov_len: p.len(),
        })
        .collect();
    let mut first = 0;
    while first < iov.len() {
        let count = (iov.len() - first).min(MAX_IOV);
        // SAFETY: the iovecs point into `parts`, alive for this call.
        let rc = unsafe { libc::writev(fd, iov[first..].as_ptr(), count as libc::c_int) };
        if rc < 0 {
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => {
                    waiter(fd, Interest::Write, deadline_in(timeout))?;
                    continue;
                }
                _ => return Err(err),
            }
        }
        let mut n = rc as usize;
        while n > 0 && first < iov.len() {
            let v = &mut iov[first];
            if n >= v.iov_len {
                n -= v.iov_len;
                first += 1;
            } else {
                // SAFETY: advancing within the same slice.
                v.iov_base = unsafe { (v.iov_base as *mut u8).add(n) }.cast();
                v.iov_len -= n;
                n = 0;
            }
        }
    }
    Ok(())
}

/// Sends `count` bytes of `file_fd` from `offset` with `sendfile(2)`: the
/// bytes go from the page cache to the socket without entering user space.
/// Returns the bytes sent, fewer than `count` only if the file was shorter.
pub fn sendfile_all(
    sock: RawFd,
    file_fd: RawFd,
    mut offset: u64,
    count: u64,
    timeout: Duration,
    waiter: Waiter,
) -> io::Result<u64> {
    /// Largest piece per call: keeps one call from monopolising the socket.
    const SENDFILE_PIECE: u64 = 1 << 21;
    let mut sent = 0;
    while sent < count {
        let mut off = offset as libc::off_t;
        let piece = (count - sent).min(SENDFILE_PIECE) as usize;
        // SAFETY: valid fds; `off` is a local the kernel updates.
        let rc = unsafe { libc::sendfile(sock, file_fd, &mut off, piece) };
        if rc < 0 {
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => {
                    waiter(sock, Interest::Write, deadline_in(timeout))?;
                    continue;
                }
                _ => return Err(err),
            }
        }
        if rc == 0 {
            break; // end of file
        }
        sent += rc as u64;
        offset += rc as u64;
    }
    Ok(sent)
}

/// Sets or clears `TCP_CORK`, so a head and a `sendfile` body leave in
/// full segments. Errors are ignored: on a Unix socket it does not apply.
pub fn set_cork(fd: RawFd, on: bool) {
    let v: libc::c_int = on.into();
    // SAFETY: plain setsockopt with an int option.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_CORK,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Half-closes the sending side (used before a lingering close).
pub(crate) fn shutdown_write(fd: RawFd) {
    // SAFETY: shutdown on an fd we own; errors are irrelevant here.
    unsafe { libc::shutdown(fd, libc::SHUT_WR) };
}

/// `deadline` from a timeout.
pub(crate) fn deadline_in(timeout: Duration) -> Instant {
    Instant::now() + timeout
}
