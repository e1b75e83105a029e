//! The interface between the I/O ring and the application side: what a
//! loop is configured with, what it hands over per request ([`Exchange`]),
//! the traits the WSGI ring implements ([`Handler`], [`Serve`]), and the
//! stop signal shared by every loop of a process.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mio::Waker;

use super::body::BodyReader;
use super::listener::{ListenerInfo, PeerInfo};
use super::output::Output;
use crate::http::{Limits, RequestHead};

/// The settings of one event loop.
#[derive(Clone, Debug)]
pub struct LoopConfig {
    pub limits: Limits,
    /// Idle time allowed between requests on a keep-alive connection.
    pub keepalive: Duration,
    /// Time allowed to receive a whole request head, from its first byte
    /// (or from accept, for a connection's first request).
    pub header_timeout: Duration,
    /// Longest stall while reading a body or writing a response.
    pub io_timeout: Duration,
    /// Connections one loop holds at most; beyond, accepting pauses.
    pub max_connections: usize,
    /// Connections accepted per listener wake-up. With several loops on
    /// the same sockets, 1 spreads connections over the threads (the
    /// listener is re-armed so the others see what is left).
    pub accept_batch: usize,
}

/// State shared by all loops of a process: the stop flag and the wakers.
#[derive(Default)]
pub struct Shared {
    stop: AtomicBool,
    wakers: Mutex<Vec<Arc<Waker>>>,
}

impl Shared {
    /// Registers a loop's waker, so [`stop`](Self::stop) reaches it.
    pub fn add_waker(&self, waker: Arc<Waker>) {
        self.wakers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(waker);
    }

    /// Asks every loop to stop: they close idle connections and return.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        for w in self.wakers.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = w.wake();
        }
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// One request handed to the application side.
pub struct Exchange<'a> {
    pub head: &'a RequestHead,
    /// `head`'s ranges index `body.buffer()[base..]`.
    pub base: usize,
    pub body: &'a mut BodyReader,
    pub out: &'a mut Output,
    pub peer: &'a PeerInfo,
    pub listener: &'a ListenerInfo,
    /// The current IMF-fixdate.
    pub date: &'a [u8],
}

impl Exchange<'_> {
    /// The bytes of a range of the head.
    pub fn bytes(&self, r: &std::ops::Range<usize>) -> &[u8] {
        &self.body.buffer()[self.base + r.start..self.base + r.end]
    }
}

/// What the application side decided about the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    KeepAlive,
    Close,
}

/// Serves one request completely (response written and flushed).
pub trait Serve {
    fn serve(&mut self, ex: &mut Exchange<'_>) -> Outcome;
}

/// The application side as the loop sees it.
pub trait Handler {
    /// Runs `f` with whatever serving needs held (the GIL, for WSGI);
    /// called once per batch of ready requests.
    fn session<R>(&mut self, f: impl FnOnce(&mut dyn Serve) -> R) -> R;
    /// Called on the main thread's loop every sweep and when a signal
    /// interrupted the wait; returns false to stop the server.
    fn tick(&mut self) -> bool {
        true
    }
}
