//! Taking new connections: accepting from a listener in batches, admitting
//! the peer, and giving each a slot with its socket registered. A child of
//! `event_loop`, so it works on the loop's own state.

use std::io;
use std::time::Instant;

use mio::{Interest, Token};

use super::{EventLoop, ACCEPT_BATCH, CONN_BASE};
use crate::conn::{Conn, Phase};
use crate::listener::Stream;

impl EventLoop {
    /// A slot for a new connection, its socket registered for reading;
    /// `None` (the slot given back) when registration fails.
    pub(super) fn register(&mut self, stream: &mut Stream) -> Option<usize> {
        let idx = self.free.pop().unwrap_or_else(|| {
            self.conns.push(None);
            self.missed.push(None);
            self.conns.len() - 1
        });
        self.missed[idx] = None;
        let registered = self.poll.registry().register(
            stream.source(),
            Token(CONN_BASE + idx),
            Interest::READABLE,
        );
        if registered.is_err() {
            self.free.push(idx);
            return None;
        }
        Some(idx)
    }

    pub(super) fn accept(&mut self, li: usize) {
        if self.drain_until.is_some() {
            return;
        }
        let batch = self.config.accept_batch.clamp(1, ACCEPT_BATCH);
        for n in 0..batch {
            if self.live >= self.config.max_connections {
                self.accept_paused = true;
                return;
            }
            let (mut stream, mut peer) = match self.listeners[li].accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(_) => {
                    // Out of descriptors or memory: no new edge will come
                    // for what is queued, so retry when a connection
                    // closes or at the next sweep.
                    self.accept_paused = true;
                    return;
                }
            };
            if !self.admit(li, &mut peer) {
                continue; // closed at once, before registration
            }
            let Some(idx) = self.register(&mut stream) else {
                continue;
            };
            let deadline = Instant::now() + self.config.header_timeout;
            let mut conn = Box::new(Conn::new(stream, peer, li, deadline));
            if self.config.proxy_protocol {
                conn.phase = Phase::Proxy;
            }
            self.conns[idx] = Some(conn);
            self.live += 1;
            if let Some(m) = &self.config.metrics {
                m.connection_opened();
            }
            if n + 1 == batch {
                // Stopping before WouldBlock: the registration is
                // edge-triggered, so re-arm it for what is still queued
                // (any loop watching this socket will be woken).
                let _ = self.poll.registry().reregister(
                    self.listeners[li].source(),
                    Token(li),
                    Interest::READABLE,
                );
            }
        }
    }
}
