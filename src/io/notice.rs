//! Warnings the I/O ring has for the operator (a uwsgi peer refused), on
//! their way to the error log.
//!
//! Why a queue: the event loop never takes the GIL (it would stall every
//! connection behind the application's threads, and a thread that holds
//! the GIL may be waiting for the loop). So the loop leaves one line in a
//! bounded channel ([`Notices::warn`], never blocking) and a thread of the
//! WSGI ring writes it. A flood of refused peers fills the channel: the
//! lines beyond are counted, not queued, and the next line says how many
//! were left out.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};

/// Lines waiting for the writer, at most; beyond, they are counted only.
pub const NOTICE_QUEUE: usize = 64;

/// The sending end, shared by the loops of a worker.
pub struct Notices {
    tx: SyncSender<String>,
    dropped: AtomicU64,
}

impl fmt::Debug for Notices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notices")
            .field("dropped", &self.dropped.load(Ordering::Relaxed))
            .finish()
    }
}

impl Notices {
    /// The queue and its receiving end: whoever holds the receiver writes
    /// the lines (at warning level); it ends once the `Notices` is dropped.
    pub fn new() -> (Notices, Receiver<String>) {
        let (tx, rx) = sync_channel(NOTICE_QUEUE);
        let notices = Notices {
            tx,
            dropped: AtomicU64::new(0),
        };
        (notices, rx)
    }

    /// Queues one warning line, or counts it when the queue is full.
    pub fn warn(&self, line: String) {
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        let line = if dropped == 0 {
            line
        } else {
            format!("{line} ({dropped} similar lines left out)")
        };
        match self.tx.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(dropped + 1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_counts_and_the_next_line_says_so() {
        let (n, rx) = Notices::new();
        for i in 0..NOTICE_QUEUE + 3 {
            n.warn(format!("line {i}"));
        }
        let got: Vec<String> = rx.try_iter().collect();
        assert_eq!(got.len(), NOTICE_QUEUE);
        n.warn("again".into());
        assert_eq!(rx.try_recv().unwrap(), "again (3 similar lines left out)");
        n.warn("quiet".into());
        assert_eq!(rx.try_recv().unwrap(), "quiet");
    }
}
