//! Parking: where a complete response waits while its app still runs, and
//! how the monitor writes it if that takes long. Separate from the writer
//! (`mod.rs`, `write.rs`) because it is the one part shared with another
//! thread (the pool's monitor) under a lock. A child of `output`, so it
//! works on the output's own state.

use std::io;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Output;
use crate::sock::Waiter;
use crate::wire::Wire;

/// A serving thread's place for the bytes of a complete response while
/// its app still runs: the thread takes them back at its next write;
/// meanwhile the monitor may write them ([`Park::flush_if_older`]).
#[derive(Default)]
pub struct Park(Mutex<Parked>);

#[derive(Default)]
struct Parked {
    wire: Wire,
    bytes: Vec<u8>,
    since: Option<Instant>,
    /// Bytes the monitor wrote.
    written: u64,
    failed: bool,
}

impl Park {
    fn lock(&self) -> std::sync::MutexGuard<'_, Parked> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes parked bytes that have waited `age` or longer, as far as
    /// the socket takes them without waiting. Skips a park its thread is
    /// using right now.
    pub(crate) fn flush_if_older(&self, age: Duration) {
        let Ok(mut p) = self.0.try_lock() else {
            return;
        };
        if p.bytes.is_empty() || p.failed || p.since.is_none_or(|t| t.elapsed() < age) {
            return;
        }
        let mut done = 0;
        while done < p.bytes.len() {
            match p.wire.write_some(&p.bytes[done..]) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    p.failed = true;
                    break;
                }
            }
        }
        p.bytes.drain(..done);
        p.written += done as u64;
    }
}

impl Output {
    /// The body is complete but the app has not returned yet (its
    /// iterator may do more work before it ends): the bytes wait in the
    /// park, where the monitor writes them if that takes long; without a
    /// park they are written now. PEP 3333 lets a server hold a block
    /// only if it keeps transmitting while the app works: the monitor is
    /// what keeps transmitting.
    pub fn park(&mut self, waiter: Waiter) -> io::Result<()> {
        let Some(park) = self
            .park
            .as_ref()
            .filter(|_| !self.failed && self.backlog.is_empty())
        else {
            return self.flush(waiter);
        };
        if self.buf.is_empty() || self.parked {
            return Ok(());
        }
        let mut p = park.lock();
        std::mem::swap(&mut p.bytes, &mut self.buf);
        p.wire = self.wire.clone();
        p.since = Some(Instant::now());
        p.written = 0;
        p.failed = false;
        self.parked = true;
        Ok(())
    }

    /// Takes parked bytes back (what the monitor did not write).
    pub(super) fn unpark(&mut self) {
        if !self.parked {
            return;
        }
        self.parked = false;
        let park = self.park.as_ref().expect("parked without a park");
        let mut p = park.lock();
        debug_assert!(self.buf.is_empty(), "nothing is buffered while parked");
        std::mem::swap(&mut p.bytes, &mut self.buf);
        p.since = None;
        self.sent += p.written;
        self.failed |= p.failed;
    }
}
