//! The interface between the I/O ring and the application side: what a
//! loop hands over per request ([`Exchange`]), the traits the WSGI ring
//! implements ([`Handler`], [`Serve`]), and the stop signal shared by
//! every loop of a process. What a loop is configured with is
//! `event_loop::config`; the I/O ring's own services are `native_service`.

use std::os::fd::RawFd;
use std::time::Instant;

use super::body::BodyReader;
use super::listener::{ListenerInfo, PeerInfo};
use super::output::Output;
use super::sock::Interest;
use qiao_http::RequestHead;

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

/// Serves one request completely (response written, or left whole in
/// `ex.out` by [`Output::end`] for the caller to write).
pub trait Serve {
    fn serve(&mut self, ex: &mut Exchange<'_>) -> Outcome;

    /// Waits for `fd`'s readiness on behalf of the caller, the way serving
    /// does (the WSGI ring releases the GIL meanwhile).
    fn wait(&mut self, fd: RawFd, interest: Interest, deadline: Instant) -> std::io::Result<()> {
        super::sock::wait(fd, interest, deadline)
    }
}

/// The application side as the loop sees it.
pub trait Handler {
    /// Runs `f` with whatever serving needs held (the GIL, for WSGI);
    /// called once per run of requests a thread serves back to back.
    fn session<R>(&mut self, f: impl FnOnce(&mut dyn Serve) -> R) -> R;
}
