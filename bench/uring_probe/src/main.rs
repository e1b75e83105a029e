//! A probe, not part of Qiao: does `io_uring` serve small keep-alive
//! requests on this kernel with less CPU than the `epoll` + `read` +
//! `write` loop Qiao's event loop uses? Both loops below answer every
//! request head (up to a blank line) with the same fixed 13-byte response
//! and do nothing else: no parsing beyond the blank line, no Python, so the
//! difference between them is the I/O mechanism alone.
//!
//!     uring_probe epoll PORT
//!     uring_probe uring PORT     # QIAO_PROBE_FLAGS=plain|coop|defer
//!
//! `bench/uring_probe/run.sh` measures them side by side with wrk
//! (README.md beside this file has the method and the last numbers).

use io_uring::{opcode, squeue, types, IoUring};
use std::io;
use std::os::fd::RawFd;

/// The one response: what `bench/apps.py`'s hello app sends.
const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
/// Bytes read per receive; a wrk request head is ~40 bytes.
const RECV_BUF: usize = 16 * 1024;
/// Connections the probe holds at most (wrk runs 50 or 1,000).
const MAX_CONNS: usize = 4096;
/// Submission queue entries of the ring.
const RING_ENTRIES: u32 = 4096;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (mode, port) = match args.as_slice() {
        [_, mode, port] => (mode.as_str(), port.parse::<u16>().expect("port")),
        _ => {
            eprintln!("usage: uring_probe epoll|uring PORT");
            std::process::exit(2);
        }
    };
    let listener = listen(port).expect("listen");
    let result = match mode {
        "epoll" => epoll_loop(listener),
        "uring" => uring_loop(listener),
        _ => {
            eprintln!("mode must be epoll or uring");
            std::process::exit(2);
        }
    };
    result.expect("loop");
}

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// A non-blocking listening socket on 127.0.0.1:`port`.
fn listen(port: u16) -> io::Result<RawFd> {
    // SAFETY: plain socket calls on a descriptor this function owns.
    unsafe {
        let fd = cvt(libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        ))?;
        let one: libc::c_int = 1;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            (&one as *const libc::c_int).cast(),
            4,
        );
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_port = port.to_be();
        addr.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        cvt(libc::bind(
            fd,
            (&addr as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        ))?;
        cvt(libc::listen(fd, 4096))?;
        Ok(fd)
    }
}

fn set_nodelay(fd: RawFd) {
    let one: libc::c_int = 1;
    // SAFETY: setsockopt with an int option on an open socket.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&one as *const libc::c_int).cast(),
            4,
        );
    }
}

/// Per-connection request framing: counts complete heads (blank lines) in
/// what arrived, keeping a partial head's tail for the next read.
#[derive(Default)]
struct Heads {
    /// How many bytes of "\r\n\r\n" the previous read ended with.
    matched: usize,
}

impl Heads {
    fn count(&mut self, data: &[u8]) -> usize {
        const END: &[u8] = b"\r\n\r\n";
        let mut n = 0;
        for &b in data {
            if b == END[self.matched] {
                self.matched += 1;
                if self.matched == END.len() {
                    n += 1;
                    self.matched = 0;
                }
            } else {
                self.matched = usize::from(b == b'\r');
            }
        }
        n
    }
}

/// Responses for `n` requests, in `out` (reused).
fn respond(out: &mut Vec<u8>, n: usize) {
    out.clear();
    for _ in 0..n {
        out.extend_from_slice(RESPONSE);
    }
}

// -- epoll: the loop Qiao has -------------------------------------------------------

fn epoll_loop(listener: RawFd) -> io::Result<()> {
    // SAFETY: epoll and socket calls on descriptors this loop owns; buffers
    // outlive the calls that use them.
    unsafe {
        let ep = cvt(libc::epoll_create1(libc::EPOLL_CLOEXEC))?;
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: listener as u64,
        };
        cvt(libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, listener, &mut ev))?;
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
        let mut heads: Vec<Heads> = (0..MAX_CONNS).map(|_| Heads::default()).collect();
        let mut buf = vec![0u8; RECV_BUF];
        let mut out = Vec::with_capacity(RESPONSE.len() * 16);
        loop {
            let n = libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, -1);
            if n < 0 {
                continue;
            }
            for ev in &events[..n as usize] {
                let fd = ev.u64 as RawFd;
                if fd == listener {
                    loop {
                        let c = libc::accept4(
                            listener,
                            std::ptr::null_mut(),
                            std::ptr::null_mut(),
                            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                        );
                        if c < 0 {
                            break;
                        }
                        if c as usize >= MAX_CONNS {
                            libc::close(c);
                            continue;
                        }
                        set_nodelay(c);
                        heads[c as usize] = Heads::default();
                        let mut cev = libc::epoll_event {
                            events: libc::EPOLLIN as u32,
                            u64: c as u64,
                        };
                        libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, c, &mut cev);
                    }
                    continue;
                }
                let got = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
                if got <= 0 {
                    if got < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock {
                        continue;
                    }
                    libc::close(fd); // also leaves the epoll set
                    continue;
                }
                let reqs = heads[fd as usize].count(&buf[..got as usize]);
                if reqs > 0 {
                    respond(&mut out, reqs);
                    // Small responses fit the socket buffer: one write suffices.
                    libc::write(fd, out.as_ptr().cast(), out.len());
                }
            }
        }
    }
}

// -- io_uring -----------------------------------------------------------------------

const OP_ACCEPT: u64 = 0;
const OP_RECV: u64 = 1;
const OP_SEND: u64 = 2;

fn tag(fd: RawFd, op: u64) -> u64 {
    ((fd as u64) << 2) | op
}

struct Conn {
    heads: Heads,
    buf: Vec<u8>,
    out: Vec<u8>,
    /// Bytes of `out` the kernel has sent so far.
    sent: usize,
    sending: bool,
    /// Requests answered once the send in flight completes (its buffer
    /// must not move meanwhile).
    pending: usize,
    /// The peer closed while a send was in flight: close after it.
    closing: bool,
}

fn uring_loop(listener: RawFd) -> io::Result<()> {
    let flags = std::env::var("QIAO_PROBE_FLAGS").unwrap_or_else(|_| "defer".into());
    let mut builder = IoUring::builder();
    match flags.as_str() {
        "plain" => {}
        "coop" => {
            builder.setup_coop_taskrun().setup_single_issuer();
        }
        "defer" => {
            builder.setup_single_issuer().setup_defer_taskrun();
        }
        other => panic!("QIAO_PROBE_FLAGS: unknown {other}"),
    }
    let mut ring: IoUring = builder.build(RING_ENTRIES)?;
    let mut conns: Vec<Option<Conn>> = (0..MAX_CONNS).map(|_| None).collect();
    let accept = opcode::AcceptMulti::new(types::Fd(listener))
        .build()
        .user_data(tag(listener, OP_ACCEPT));
    push(&mut ring, &accept)?;
    let mut completions: Vec<(u64, i32, u32)> = Vec::with_capacity(1024);
    loop {
        ring.submit_and_wait(1)?;
        completions.clear();
        completions.extend(
            ring.completion()
                .map(|c| (c.user_data(), c.result(), c.flags())),
        );
        for &(data, res, cflags) in &completions {
            let fd = (data >> 2) as RawFd;
            match data & 3 {
                OP_ACCEPT => {
                    if res >= 0 && (res as usize) < MAX_CONNS {
                        let c = res as RawFd;
                        set_nodelay(c);
                        conns[c as usize] = Some(Conn {
                            heads: Heads::default(),
                            buf: vec![0; RECV_BUF],
                            out: Vec::with_capacity(RESPONSE.len() * 16),
                            sent: 0,
                            sending: false,
                            pending: 0,
                            closing: false,
                        });
                        recv(&mut ring, c, conns[c as usize].as_mut().unwrap())?;
                    } else if res >= 0 {
                        // SAFETY: a descriptor the kernel just gave us.
                        unsafe { libc::close(res) };
                    }
                    if !io_uring::cqueue::more(cflags) {
                        push(&mut ring, &accept)?; // re-arm the multishot accept
                    }
                }
                OP_RECV => {
                    let Some(conn) = conns[fd as usize].as_mut() else {
                        continue;
                    };
                    if res <= 0 {
                        if conn.sending {
                            conn.closing = true;
                        } else {
                            close(&mut conns, fd);
                        }
                        continue;
                    }
                    let reqs = conn.heads.count(&conn.buf[..res as usize]);
                    if reqs > 0 && !conn.sending {
                        respond(&mut conn.out, reqs);
                        conn.sent = 0;
                        conn.sending = true;
                        send(&mut ring, fd, conn)?;
                    } else {
                        conn.pending += reqs;
                    }
                    recv(&mut ring, fd, conn)?;
                }
                OP_SEND => {
                    let Some(conn) = conns[fd as usize].as_mut() else {
                        continue;
                    };
                    if res < 0 || conn.closing {
                        conn.sending = false;
                        if conn.closing {
                            close(&mut conns, fd);
                        }
                        continue; // else the receive side sees the close
                    }
                    conn.sent += res as usize;
                    if conn.sent < conn.out.len() {
                        send(&mut ring, fd, conn)?;
                    } else if conn.pending > 0 {
                        respond(&mut conn.out, std::mem::take(&mut conn.pending));
                        conn.sent = 0;
                        send(&mut ring, fd, conn)?;
                    } else {
                        conn.sending = false;
                    }
                }
                _ => unreachable!(),
            }
        }
    }
}

fn close(conns: &mut [Option<Conn>], fd: RawFd) {
    conns[fd as usize] = None;
    // SAFETY: the connection's descriptor, with nothing in flight on it.
    unsafe { libc::close(fd) };
}

fn push(ring: &mut IoUring, entry: &squeue::Entry) -> io::Result<()> {
    loop {
        // SAFETY: every buffer an entry points to lives in `conns`, unmoved,
        // until its completion arrives: a connection is dropped only with
        // neither a recv nor a send in flight, and `out` is rewritten only
        // when no send is.
        if unsafe { ring.submission().push(entry) }.is_ok() {
            return Ok(());
        }
        ring.submit()?;
    }
}

fn recv(ring: &mut IoUring, fd: RawFd, conn: &mut Conn) -> io::Result<()> {
    let e = opcode::Recv::new(types::Fd(fd), conn.buf.as_mut_ptr(), conn.buf.len() as u32)
        .build()
        .user_data(tag(fd, OP_RECV));
    push(ring, &e)
}

fn send(ring: &mut IoUring, fd: RawFd, conn: &mut Conn) -> io::Result<()> {
    let rest = &conn.out[conn.sent..];
    let e = opcode::Send::new(types::Fd(fd), rest.as_ptr(), rest.len() as u32)
        .build()
        .user_data(tag(fd, OP_SEND));
    push(ring, &e)
}
