//! The access log of natively served requests (`--static`, `--proxy`): a
//! thread that takes the records the native routes leave in their
//! [`AccessQueue`] and hands them to the same Python hook as the
//! application's requests, `access(environ, status, sent, seconds)`, in
//! batches: one GIL hold per batch, never one per native request on the
//! serving path. Each record gets a minimal environ ([`record_environ`]):
//! what the log formats read, plus `qiao.native` set to True.
//!
//! A batch leaves [`DRAIN_DELAY`] after its first record arrived, so the
//! lines of native requests may appear that much later than they would
//! for the application's. Records the full queue dropped are reported
//! through the error log with their count.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::environ::{http_key, join_separator, latin1};
use qiao_http::request::percent_decode;
use qiao_io::record::{AccessQueue, AccessRecord};

/// How long the drain waits after a first record for more to join its
/// batch: longer means fewer GIL holds under load, and lines later.
pub(crate) const DRAIN_DELAY: Duration = Duration::from_millis(20);

/// The drain thread of one worker (see the module doc).
pub(crate) struct AccessDrain {
    queue: Arc<AccessQueue>,
    thread: Option<JoinHandle<()>>,
}

impl AccessDrain {
    /// Starts the thread that feeds `hook` from `queue`; `log_error` is
    /// `qiao._log.log_error(message, exception_or_None)`.
    pub(crate) fn start(
        queue: Arc<AccessQueue>,
        hook: Py<PyAny>,
        log_error: Py<PyAny>,
        url_scheme: String,
    ) -> std::io::Result<AccessDrain> {
        let q = queue.clone();
        let thread = std::thread::Builder::new()
            .name("qiao-native-access".into())
            .spawn(move || {
                super::threads::block_signals();
                run(&q, &hook, &log_error, &url_scheme);
            })?;
        Ok(AccessDrain {
            queue,
            thread: Some(thread),
        })
    }

    /// Hands what is still queued to the hook, then ends the thread. Call
    /// it without holding the GIL (the thread needs it for the last batch).
    pub(crate) fn finish(mut self) {
        self.queue.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for AccessDrain {
    fn drop(&mut self) {
        // Not joined here: the GIL may be held. The thread writes what is
        // left and ends on its own.
        self.queue.close();
    }
}

fn run(queue: &AccessQueue, hook: &Py<PyAny>, log_error: &Py<PyAny>, url_scheme: &str) {
    loop {
        let batch = queue.next_batch(DRAIN_DELAY);
        let dropped = queue.take_dropped();
        if batch.is_empty() && dropped == 0 {
            if queue.is_closed() {
                return;
            }
            continue;
        }
        Python::attach(|py| {
            for record in &batch {
                let logged = record_environ(py, record, url_scheme).and_then(|environ| {
                    let secs = record.duration.as_secs_f64();
                    hook.bind(py)
                        .call1((environ, record.status, record.sent, secs))
                        .map(drop)
                });
                if let Err(e) = logged {
                    let msg = format!("access log failed: {e}");
                    let _ = log_error.bind(py).call1((msg, py.None()));
                }
            }
            if dropped > 0 {
                let msg = format!(
                    "access log: {dropped} records of native requests dropped \
                     (more than {} waiting)",
                    qiao_io::record::ACCESS_QUEUE_MAX
                );
                let _ = log_error.bind(py).call1((msg, py.None()));
            }
        });
    }
}

/// The environ the access log hook gets for a native request: the CGI
/// keys the formats read, the kept request fields as `HTTP_*` keys
/// (repeated ones joined as the application's environ joins them), and
/// `qiao.native`.
pub(crate) fn record_environ<'py>(
    py: Python<'py>,
    r: &AccessRecord,
    url_scheme: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let environ = PyDict::new(py);
    environ.set_item("REQUEST_METHOD", latin1(py, &r.method))?;
    let mut path = Vec::with_capacity(r.path.len());
    percent_decode(if r.path.is_empty() { b"/" } else { &r.path }, &mut path);
    environ.set_item("PATH_INFO", latin1(py, &path))?;
    environ.set_item("SCRIPT_NAME", "")?;
    environ.set_item("QUERY_STRING", latin1(py, &r.query))?;
    environ.set_item("RAW_URI", latin1(py, &r.target))?;
    environ.set_item("REQUEST_URI", latin1(py, &r.target))?;
    environ.set_item("SERVER_PROTOCOL", r.protocol)?;
    environ.set_item("REMOTE_ADDR", &r.peer_addr)?;
    environ.set_item("REMOTE_PORT", &r.peer_port)?;
    environ.set_item("wsgi.url_scheme", url_scheme)?;
    environ.set_item("qiao.native", true)?;
    let mut key = Vec::new();
    for (name, value) in &r.headers {
        let key = match name.as_slice() {
            b"content-type" => "CONTENT_TYPE",
            b"content-length" => "CONTENT_LENGTH",
            // As the application's environ: names with `_` never reach it.
            _ if !http_key(name, &mut key) => continue,
            // ASCII: the name is a token.
            _ => std::str::from_utf8(&key).unwrap_or_default(),
        };
        let value = latin1(py, value);
        let joined = match environ.get_item(key)? {
            Some(prev) => format!("{prev}{}{value}", join_separator(name))
                .into_pyobject(py)?
                .into_any(),
            None => value.into_any(),
        };
        environ.set_item(key, joined)?;
    }
    Ok(environ)
}
