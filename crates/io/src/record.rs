//! Where the end of a request served natively (`--static`, `--proxy`: no
//! Python, no GIL) is recorded ([`Recorder`]): the metrics block, and the
//! access log's queue ([`AccessQueue`]).
//!
//! The access log is written by a Python hook, and calling it would take
//! the GIL on every native request. Instead each one leaves an
//! [`AccessRecord`] (owned copies of what the log formats read) in a
//! bounded queue, and one thread (`wsgi::native_access`) hands them to the
//! hook in batches, taking the GIL once per batch. A full queue drops new
//! records and counts them ([`AccessQueue::take_dropped`]) rather than
//! growing without bound or slowing requests down.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::metrics::Metrics;
use super::service::Exchange;
use qiao_http::forwarded::{ForwardedFields, TrustedProxies};

/// Records waiting for the access log hook, at most; beyond, new ones are
/// dropped and counted (as the Python side's `accesslog.MAX_QUEUED`).
pub const ACCESS_QUEUE_MAX: usize = 10_000;

/// One natively served request, as the access log needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessRecord {
    pub method: Vec<u8>,
    /// The request target as sent (`RAW_URI`).
    pub target: Vec<u8>,
    /// Its path, undecoded, and query, without `?`.
    pub path: Vec<u8>,
    pub query: Vec<u8>,
    /// `HTTP/1.0`, `HTTP/1.1` or `HTTP/2`.
    pub protocol: &'static str,
    pub status: u16,
    /// Body bytes sent (the response head not counted).
    pub sent: u64,
    pub duration: Duration,
    /// The client's address (`REMOTE_ADDR`): the peer's, or what a
    /// trusted proxy's forwarding fields say, as for the application.
    pub peer_addr: String,
    pub peer_port: String,
    /// The request fields the log format reads (lower-case names).
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
}

impl AccessRecord {
    /// The record of `ex` as it starts (status, size and duration are
    /// filled in at its end); `fields`: the names of the request fields to
    /// keep (None: all); `trusted`: `--forwarded-allow-ips`.
    pub fn new(
        ex: &Exchange<'_>,
        fields: Option<&[Vec<u8>]>,
        trusted: &TrustedProxies,
    ) -> AccessRecord {
        let head = ex.head;
        let mut forwarded = ForwardedFields::default();
        if ex.peer.trusted {
            for (n, v) in &head.headers {
                forwarded.add(ex.bytes(n), ex.bytes(v));
            }
        }
        let client = if forwarded.is_empty() {
            None
        } else {
            forwarded.origin(trusted).client
        };
        let peer_addr = match client {
            Some(c) => String::from_utf8_lossy(c).into_owned(),
            None => ex.peer.addr.clone(),
        };
        let headers = head
            .headers
            .iter()
            .map(|(n, v)| (ex.bytes(n), ex.bytes(v)))
            .filter(|(n, _)| fields.is_none_or(|f| f.iter().any(|k| n.eq_ignore_ascii_case(k))))
            .map(|(n, v)| (n.to_ascii_lowercase(), v.to_vec()))
            .collect();
        let protocol = match head.version {
            // The front forwards each HTTP/2 stream as an HTTP/1.1 request.
            _ if ex.peer.http2 => "HTTP/2",
            qiao_http::Version::Http10 => "HTTP/1.0",
            qiao_http::Version::Http11 => "HTTP/1.1",
        };
        AccessRecord {
            method: ex.bytes(&head.method).to_vec(),
            target: ex.bytes(&head.target).to_vec(),
            path: ex.bytes(&head.path).to_vec(),
            query: ex.bytes(&head.query).to_vec(),
            protocol,
            status: 0,
            sent: 0,
            duration: Duration::ZERO,
            peer_addr,
            peer_port: ex.peer.port.clone(),
            headers,
        }
    }
}

/// The bounded queue of [`AccessRecord`]s and the drop counter.
pub struct AccessQueue {
    records: Mutex<Vec<AccessRecord>>,
    /// Signalled when the queue stops being empty, or on [`close`](Self::close).
    ready: Condvar,
    closed: AtomicBool,
    dropped: AtomicU64,
    /// Request fields kept in records (lower case; None: all).
    fields: Option<Vec<Vec<u8>>>,
    /// `--forwarded-allow-ips`, for the client's address.
    trusted: Arc<TrustedProxies>,
}

impl AccessQueue {
    /// `fields`: the request fields the log format reads (None: all);
    /// `trusted`: the proxies whose forwarding fields name the client.
    pub fn new(fields: Option<Vec<String>>, trusted: Arc<TrustedProxies>) -> AccessQueue {
        AccessQueue {
            records: Mutex::new(Vec::new()),
            ready: Condvar::new(),
            closed: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            fields: fields.map(|f| {
                f.into_iter()
                    .map(|n| n.to_ascii_lowercase().into())
                    .collect()
            }),
            trusted,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<AccessRecord>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The record of the request `ex` as it starts (its status, size and
    /// duration filled in at its end), or None if the queue is full (then
    /// counted as dropped, with no copying).
    pub(crate) fn begin(&self, ex: &Exchange<'_>) -> Option<AccessRecord> {
        if self.len() >= ACCESS_QUEUE_MAX {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let fields = self.fields.as_deref();
        Some(AccessRecord::new(ex, fields, &self.trusted))
    }

    /// Queues `record` (or counts it as dropped, if the queue is full).
    pub(crate) fn enqueue(&self, record: AccessRecord) {
        let mut records = self.lock();
        if records.len() >= ACCESS_QUEUE_MAX {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        records.push(record);
        // Only the first record of a batch wakes the drain: it takes the
        // rest with it.
        let first = records.len() == 1;
        drop(records);
        if first {
            self.ready.notify_one();
        }
    }

    /// Waits until a record is queued or the queue is closed, then `delay`
    /// more (so records arriving meanwhile join the batch, unless closed),
    /// and takes every record. Empty only once closed.
    pub fn next_batch(&self, delay: Duration) -> Vec<AccessRecord> {
        let mut records = self.lock();
        while records.is_empty() && !self.is_closed() {
            records = self.ready.wait(records).unwrap_or_else(|e| e.into_inner());
        }
        if !self.is_closed() && !delay.is_zero() {
            let deadline = Instant::now() + delay;
            // Woken early only by `close`: then everything goes at once.
            while !self.is_closed() {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                records = self
                    .ready
                    .wait_timeout(records, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
        std::mem::take(&mut *records)
    }

    /// Records waiting.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records dropped since the last call (the queue was full).
    pub fn take_dropped(&self) -> u64 {
        self.dropped.swap(0, Ordering::Relaxed)
    }

    /// No more records will come: [`next_batch`](Self::next_batch) returns
    /// what is left at once, then empty batches.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let _guard = self.lock();
        self.ready.notify_all();
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }
}

impl std::fmt::Debug for AccessQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessQueue")
            .field("queued", &self.lock().len())
            .field("dropped", &self.dropped.load(Ordering::Relaxed))
            .finish()
    }
}

/// What a native request's end is recorded in; a no-op when neither the
/// metrics nor the access log is on (no clock read either).
#[derive(Clone, Debug, Default)]
pub struct Recorder {
    pub metrics: Option<Arc<Metrics>>,
    pub access: Option<Arc<AccessQueue>>,
}

impl Recorder {
    /// A request starts: what its end will be recorded with, if anything
    /// records it. Taken from the head now: reading the request's body
    /// may reuse the buffer the head is in.
    pub fn start(&self, ex: &Exchange<'_>) -> Option<Started> {
        let method = self.metrics.as_ref().map(|m| {
            m.request_started();
            ex.bytes(&ex.head.method).to_vec()
        });
        let record = self.access.as_ref().and_then(|q| q.begin(ex));
        if method.is_none() && self.access.is_none() {
            return None;
        }
        Some(Started {
            t0: Instant::now(),
            method,
            record,
        })
    }

    /// The request `start` saw is over: answered with `status`, `received`
    /// body bytes read and `sent` body bytes written (the payload: neither
    /// the head nor chunk framing, as the application's requests count).
    pub fn done(&self, started: Option<Started>, status: u16, received: u64, sent: u64) {
        let Some(started) = started else {
            return;
        };
        let elapsed = started.t0.elapsed();
        if let (Some(m), Some(method)) = (&self.metrics, &started.method) {
            let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
            m.request_done(method, status, micros, received, sent);
        }
        if let (Some(q), Some(mut record)) = (&self.access, started.record) {
            record.status = status;
            record.sent = sent;
            record.duration = elapsed;
            q.enqueue(record);
        }
    }
}

/// What [`Recorder::start`] took of a request, for its end.
#[derive(Debug)]
pub struct Started {
    t0: Instant,
    /// For the metrics (when on).
    method: Option<Vec<u8>>,
    /// For the access log (when on, and the queue was not full).
    record: Option<AccessRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: u16) -> AccessRecord {
        AccessRecord {
            method: b"GET".to_vec(),
            target: b"/x".to_vec(),
            path: b"/x".to_vec(),
            query: Vec::new(),
            protocol: "HTTP/1.1",
            status,
            sent: 0,
            duration: Duration::ZERO,
            peer_addr: "127.0.0.1".into(),
            peer_port: "1".into(),
            headers: Vec::new(),
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let q = AccessQueue::new(None, Default::default());
        for _ in 0..ACCESS_QUEUE_MAX + 3 {
            q.enqueue(record(200));
        }
        assert_eq!(q.len(), ACCESS_QUEUE_MAX);
        assert_eq!(q.take_dropped(), 3);
        assert_eq!(q.take_dropped(), 0);
        assert_eq!(q.next_batch(Duration::ZERO).len(), ACCESS_QUEUE_MAX);
        q.enqueue(record(404));
        assert_eq!(q.next_batch(Duration::ZERO), vec![record(404)]);
    }

    /// A drain waiting for records, or for its batch to fill, returns at
    /// once when the queue closes, with what is left.
    #[test]
    fn close_ends_the_wait() {
        let q = Arc::new(AccessQueue::new(None, Default::default()));
        let waiter = {
            let q = q.clone();
            std::thread::spawn(move || q.next_batch(Duration::from_secs(60)))
        };
        std::thread::sleep(Duration::from_millis(20));
        q.enqueue(record(200));
        std::thread::sleep(Duration::from_millis(20));
        let started = Instant::now();
        q.close();
        assert_eq!(waiter.join().unwrap(), vec![record(200)]);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(q.next_batch(Duration::from_secs(60)).is_empty());
    }
}
