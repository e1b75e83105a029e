//! The engine's messages for the operator (a uwsgi peer refused, a proxy
//! upstream failing, an internal error), on their way to the error log:
//! the one path every line the engine writes takes, ending in Python's
//! `qiao.error` logger (so `--log-level`, `--error-logfile`, syslog and
//! `logconfig_dict` apply to them as to every other line).
//!
//! Engine code logs with the `log` crate's macros (`log::warn!`...); the
//! WSGI ring installs [`EngineLogger`] once per worker, which queues the
//! line here. Why a queue: the event loop never takes the GIL (it would
//! stall every connection behind the application's threads, and a thread
//! that holds the GIL may be waiting for the loop). So the line goes into
//! a bounded channel ([`Notices::push`], never blocking) and a thread of
//! the WSGI ring writes it. A flood fills the channel: the lines beyond
//! are counted, not queued, and the next line says how many were left out.
//! Without a logger installed (the Rust tests) the macros do nothing.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, RwLock, Weak};

use log::{Level, LevelFilter, Log, Metadata, Record};

/// Lines waiting for the writer, at most; beyond, they are counted only.
pub(crate) const NOTICE_QUEUE: usize = 64;

/// Only records of this crate's modules are the engine's (libraries'
/// own records are not forwarded).
const ENGINE_TARGET: &str = "qiao";

/// The sending end, shared by the loops of a worker.
pub struct Notices {
    tx: SyncSender<(Level, String)>,
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
    /// the lines at their level; it ends once the `Notices` is dropped.
    pub fn new() -> (Notices, Receiver<(Level, String)>) {
        let (tx, rx) = sync_channel(NOTICE_QUEUE);
        let notices = Notices {
            tx,
            dropped: AtomicU64::new(0),
        };
        (notices, rx)
    }

    /// Queues one warning line, or counts it when the queue is full.
    pub fn warn(&self, line: String) {
        self.push(Level::Warn, line);
    }

    /// Queues one line at `level`, or counts it when the queue is full.
    pub fn push(&self, level: Level, line: String) {
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        let line = if dropped == 0 {
            line
        } else {
            format!("{line} ({dropped} similar lines left out)")
        };
        match self.tx.try_send((level, line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(dropped + 1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

/// The `log` facade's end in a worker: the engine's records go to the
/// queue of the [`Notices`] installed last, while it lives (a server gone,
/// its writer thread ends and records are dropped).
pub(crate) struct EngineLogger(RwLock<Weak<Notices>>);

/// The process's logger (the `log` facade takes one, for good).
static LOGGER: EngineLogger = EngineLogger(RwLock::new(Weak::new()));

impl Log for EngineLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target().starts_with(ENGINE_TARGET)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let notices = self.0.read().unwrap_or_else(|e| e.into_inner()).upgrade();
        if let Some(n) = notices {
            n.push(record.level(), record.args().to_string());
        }
    }

    fn flush(&self) {}
}

/// Sends the engine's records to `notices` from now on, while it lives.
/// Python's logger filters by level, so every level is queued.
pub fn install(notices: &Arc<Notices>) {
    *LOGGER.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::downgrade(notices);
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(LevelFilter::Debug);
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
        let got: Vec<(Level, String)> = rx.try_iter().collect();
        assert_eq!(got.len(), NOTICE_QUEUE);
        n.warn("again".into());
        let again = (Level::Warn, "again (3 similar lines left out)".to_string());
        assert_eq!(rx.try_recv().unwrap(), again);
        n.push(Level::Error, "quiet".into());
        assert_eq!(rx.try_recv().unwrap(), (Level::Error, "quiet".to_string()));
    }

    #[test]
    fn the_logger_forwards_only_the_engine_records() {
        let (n, rx) = Notices::new();
        let n = Arc::new(n);
        let logger = EngineLogger(RwLock::new(Arc::downgrade(&n)));
        for target in ["qiao::native::proxy", "rustls::conn"] {
            logger.log(
                &Record::builder()
                    .level(Level::Error)
                    .target(target)
                    .args(format_args!("upstream failed"))
                    .build(),
            );
        }
        let got: Vec<(Level, String)> = rx.try_iter().collect();
        assert_eq!(got, vec![(Level::Error, "upstream failed".to_string())]);
    }
}
