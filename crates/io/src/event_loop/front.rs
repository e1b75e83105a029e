//! The loop's side of the protocol front (see `io::inbox`): adopting the
//! internal connections the front queues (TLS and HTTP/2 requests, as
//! plain HTTP/1.1) and handing plaintext connections that open with the
//! HTTP/2 preface over to it; and taking the requests the front injects
//! for the internal connections it holds (`io::inbox`). A child of
//! `event_loop`, so it works on the loop's own state; nothing here runs
//! unless a front is attached.

use std::collections::HashMap;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::sync::Arc;
use std::time::Instant;

use super::{EventLoop, Step};
use crate::conn::Conn;
use crate::inbox::{Carrier, Handoff, Inbox};
use crate::listener::{ListenerInfo, Stream};
use crate::wire::Wire;

/// The adopted connections the front injects requests for.
#[derive(Default)]
pub(super) struct Pairs {
    /// Slot of each, by its `pair_id`.
    slots: HashMap<u64, usize>,
    /// Requests injected while their connection was out in a job: taken
    /// in when it comes back (`finish_job`), as bytes read then would be.
    pub(super) held: HashMap<usize, Vec<u8>>,
}

impl Pairs {
    /// The connection in slot `idx` closed.
    pub(super) fn forget(&mut self, idx: usize, pair_id: Option<u64>) {
        if let Some(id) = pair_id {
            self.slots.remove(&id);
            self.held.remove(&idx);
        }
    }
}

impl EventLoop {
    /// Connects a front: the loop will adopt what `inbox` queues, as if
    /// accepted on listeners described by `infos` (the front's own, in
    /// the front's order). Returns the loop's index of `infos[0]`: an
    /// [`crate::inbox::Adopted`] names its listener by the loop's index.
    pub fn attach_inbox(&mut self, inbox: Arc<Inbox>, infos: Vec<ListenerInfo>) -> usize {
        inbox.set_waker(self.waker.clone());
        let base = self.infos.len();
        self.infos.extend(infos.into_iter().map(Arc::new));
        self.inbox = Some(inbox);
        base
    }

    /// Client connections the front still holds (a draining loop waits
    /// for them: their requests may not have reached the loop yet).
    pub(super) fn front_open(&self) -> usize {
        self.inbox.as_ref().map_or(0, |i| i.open())
    }

    /// Takes in the connections the front queued. Beyond
    /// `max_connections` they are still taken (the front's client is
    /// already connected; refusing would only fail its request): the
    /// front bounds them with its own stream limits.
    pub(super) fn adopt(&mut self) {
        let Some(inbox) = &self.inbox else {
            return;
        };
        let taken = inbox.take();
        for a in taken.adopted {
            if self.closed {
                continue; // dropped: the front sees the pair close
            }
            let (mut stream, session) = match a.stream {
                Carrier::Pair(s) if s.set_nonblocking(true).is_ok() => {
                    (Stream::Unix(mio::net::UnixStream::from_std(s)), None)
                }
                Carrier::Tls(s, session) if s.set_nonblocking(true).is_ok() => {
                    (Stream::Tcp(mio::net::TcpStream::from_std(s)), Some(session))
                }
                _ => continue,
            };
            let Some(idx) = self.register(&mut stream) else {
                continue;
            };
            let mut peer = a.peer;
            let trusted = &self.config.trusted;
            peer.trusted = !trusted.is_empty() && peer.ip.is_some_and(|ip| trusted.contains(ip));
            let deadline = Instant::now() + self.config.header_timeout;
            let listener = if a.listener < self.infos.len() {
                a.listener
            } else {
                0
            };
            let mut conn = Box::new(Conn::new(stream, peer, listener, deadline));
            conn.adopted = true;
            conn.held = a.held;
            conn.pair_id = a.pair_id;
            if let Some(id) = a.pair_id {
                self.pairs.slots.insert(id, idx);
            }
            if let Some(session) = session {
                conn.wire = Wire::tls(conn.stream.fd(), *session);
            } else if let Some(answer) = a.answer {
                conn.wire = Wire::answered(conn.stream.fd(), answer);
            }
            self.conns[idx] = Some(conn);
            // Counted live (the loop holds it), not in the metrics: the
            // front counts its client connections there.
            self.live += 1;
            // Bytes may have arrived before registration: read now (the
            // registration is edge-triggered).
            if let Step::Ready = self.progress(idx) {
                self.ready.push_back(idx);
            }
        }
        for (id, request) in taken.injected {
            // Closed meanwhile: dropped (the front sees the socket's end).
            let Some(&idx) = self.pairs.slots.get(&id) else {
                continue;
            };
            if self.conns[idx].is_none() {
                // Out in a job (its answer is written, the thread not
                // back yet): held until it comes back.
                self.pairs.held.entry(idx).or_default().extend(request);
                continue;
            }
            self.receive(idx, request);
            if let Step::Ready = self.progress(idx) {
                self.ready.push_back(idx);
            }
        }
    }

    /// Takes `bytes` in as if read from connection `idx`'s socket. When
    /// nothing is left unread, `bytes` becomes the buffer (an HTTP/2
    /// request with its body is one buffer, not copied again).
    pub(super) fn receive(&mut self, idx: usize, bytes: Vec<u8>) {
        let Some(conn) = self.conns[idx].as_mut() else {
            return;
        };
        if conn.start == conn.buf.len() && bytes.len() > conn.buf.capacity() {
            let old = std::mem::replace(&mut conn.buf, bytes);
            conn.start = 0;
            self.recycle(old);
        } else if let Some(conn) = self.with_buffer(idx) {
            conn.buf.extend_from_slice(&bytes);
        }
    }

    /// Takes a plaintext connection out of the loop and gives it, with
    /// what was read of it, to the front.
    pub(super) fn hand_off_h2c(&mut self, idx: usize) {
        let Some(mut conn) = self.conns[idx].take() else {
            return;
        };
        let _ = self.poll.registry().deregister(conn.stream.source());
        self.free.push(idx);
        self.live -= 1;
        if let Some(m) = &self.config.metrics {
            m.connection_closed();
        }
        let read = conn.buf[conn.start..].to_vec();
        let buf = std::mem::take(&mut conn.buf);
        self.recycle(buf);
        let Conn {
            stream,
            peer,
            listener,
            ..
        } = *conn;
        let Stream::Tcp(tcp) = stream else {
            return;
        };
        // SAFETY: the descriptor moves from the mio stream to a std one.
        let stream = unsafe { std::net::TcpStream::from_raw_fd(tcp.into_raw_fd()) };
        if let Some(inbox) = &self.inbox {
            inbox.hand_off(Handoff {
                stream,
                read,
                peer,
                listener,
            });
        }
    }
}

/// Whether a connection's first bytes may go to the front as h2c: a TCP
/// connection on an HTTP listener, with a front that serves h2c.
pub(super) fn h2c_candidate(
    inbox: &Option<Arc<Inbox>>,
    infos: &[Arc<ListenerInfo>],
    listener: usize,
    stream: &Stream,
    wire: &Wire,
) -> bool {
    matches!(stream, Stream::Tcp(_))
        && !wire.is_tls()
        && !infos[listener].uwsgi
        && inbox.as_ref().is_some_and(|i| i.serves_h2c())
}
