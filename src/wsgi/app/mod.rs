//! One request through the application: environ in, `app(environ,
//! start_response)` called, its result sent (lists with a known length,
//! `wsgi.file_wrapper` files by `sendfile`, any other iterable chunk by
//! chunk, no further than [`MAX_SURPLUS_BYTES`](run::MAX_SURPLUS_BYTES)
//! past its end), `close()` always called, failures answered with a 500
//! and logged with their traceback.
//!
//! This file holds the request around the call: what the serving threads
//! share ([`WsgiShared`]), the serving session ([`WsgiServe`]) building
//! the environ, `wsgi.input` and `start_response`, then counting and
//! logging the response, and the ring's own error answer and logging.
//! The call itself, the result sent and the app's failures answered are
//! in `run.rs`.

mod run;

use std::os::fd::RawFd;
use std::time::Instant;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::cgi::fill_from_cgi;
use super::compress::Compression;
use super::environ::{fill_environ, EnvironCache, EnvironConfig};
use super::reuse::Spare;
use super::tls_environ::TlsTemplate;
use qiao_http::response::{simple_response, RequestFacts};
use qiao_io::sock::{self, Interest};
use qiao_io::{Exchange, Outcome, Output, Serve};

/// What every serving thread shares: the app and the logging hooks.
pub(super) struct WsgiShared {
    pub app: Py<PyAny>,
    /// Constant environ entries, copied per request.
    pub template: Py<PyDict>,
    /// The same for requests that came over TLS, with what it learned of
    /// their connections (`tls_environ`).
    pub tls_template: TlsTemplate,
    /// `log_error(message, exception_or_None)`.
    pub log_error: Py<PyAny>,
    /// `log_debug(message)`.
    pub log_debug: Py<PyAny>,
    /// `access(environ, status, bytes, seconds)` or None when disabled.
    pub access_log: Option<Py<PyAny>>,
    /// Settings the environ builder needs.
    pub environ: EnvironConfig,
    /// The worker's metrics block (`--metrics-bind`), if any.
    pub metrics: Option<std::sync::Arc<qiao_io::metrics::Metrics>>,
    /// `--compress` settings, if on.
    pub compress: Option<std::sync::Arc<qiao_http::compress::CompressConfig>>,
}

/// A serving session: one GIL hold on one thread.
pub(super) struct WsgiServe<'a, 'py> {
    pub py: Python<'py>,
    pub shared: &'a WsgiShared,
    pub cache: &'a mut EnvironCache,
    /// The thread's `wsgi.input` and `start_response` to reuse.
    pub spare: &'a mut Spare,
}

impl Serve for WsgiServe<'_, '_> {
    fn serve(&mut self, ex: &mut Exchange<'_>) -> Outcome {
        let py = self.py;
        let timed = self.shared.access_log.is_some() || self.shared.metrics.is_some();
        let started = timed.then(Instant::now);
        if let Some(m) = &self.shared.metrics {
            m.request_started();
        }
        let environ = match &ex.peer.tls {
            Some(tls) => self.shared.tls_template.environ_for(py, tls, self.cache),
            None => self.shared.template.bind(py).copy(),
        };
        let environ = match environ {
            Ok(e) => e,
            Err(e) => return self.internal_error(ex, "cannot copy the environ template", e),
        };
        let config = &self.shared.environ;
        let filled = if ex.head.cgi {
            fill_from_cgi(py, &environ, ex, self.cache, config)
        } else {
            fill_environ(py, &environ, ex, self.cache, config)
        };
        if let Err(e) = filled {
            return self.internal_error(ex, "cannot build the environ", e);
        }
        let req = RequestFacts {
            version: ex.head.version,
            is_head: ex.bytes(&ex.head.method) == b"HEAD",
            keep_alive: ex.head.keep_alive,
        };
        // Negotiated before the body reader (which holds the head) moves out.
        let compress = self
            .shared
            .compress
            .as_ref()
            .map(|c| Compression::new(c, ex));
        let input = match self.spare.input(py, std::mem::take(ex.body)) {
            Ok(i) => i,
            Err(e) => return self.internal_error(ex, "cannot create wsgi.input", e),
        };
        let out = std::mem::take(ex.out);
        let sr =
            match self
                .spare
                .start_response(py, out, req, ex.date, input.clone_ref(py), compress)
            {
                Ok(sr) => sr,
                Err(e) => {
                    *ex.body = input.borrow_mut(py).take_reader();
                    return self.internal_error(ex, "cannot create start_response", e);
                }
            };
        let outcome = match environ.set_item(intern!(py, "wsgi.input"), &input) {
            Ok(()) => self.run_app(&environ, &sr),
            Err(e) => self.fail(&sr, "cannot set wsgi.input", e),
        };
        let (status, sent) = {
            let sr = sr.borrow();
            (
                if sr.headers_sent() {
                    sr.status_code()
                } else {
                    500
                },
                sr.body_sent(),
            )
        };
        *ex.out = sr.borrow_mut().take_output();
        *ex.body = input.borrow_mut(py).take_reader();
        if let (Some(m), Some(t0)) = (&self.shared.metrics, started) {
            let micros = u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX);
            let method = ex.bytes(&ex.head.method);
            m.request_done(method, status, micros, ex.body.received(), sent);
        }
        if let (Some(log), Some(t0)) = (&self.shared.access_log, started) {
            let secs = t0.elapsed().as_secs_f64();
            if let Err(e) = log.bind(py).call1((&environ, status, sent, secs)) {
                self.log(&format!("access log failed: {e}"), None);
            }
        }
        drop(environ);
        self.spare.keep(input, sr);
        outcome
    }

    fn wait(&mut self, fd: RawFd, interest: Interest, deadline: Instant) -> std::io::Result<()> {
        self.py.detach(|| sock::wait(fd, interest, deadline))
    }
}

impl WsgiServe<'_, '_> {
    fn internal_error(&mut self, ex: &mut Exchange<'_>, msg: &str, err: PyErr) -> Outcome {
        self.log(msg, Some(err));
        send_simple(
            self.py,
            ex.out,
            500,
            "Internal Server Error",
            ex.date,
            false,
        );
        Outcome::Close
    }

    fn debug(&self, msg: &str) {
        let _ = self.shared.log_debug.bind(self.py).call1((msg,));
    }

    fn log(&self, msg: &str, err: Option<PyErr>) {
        let py = self.py;
        let exc = err.map(|e| e.into_value(py).into_any());
        if self.shared.log_error.bind(py).call1((msg, exc)).is_err() {
            log::error!("{msg}");
        }
    }
}

/// Replaces whatever is buffered with a complete response of the server's
/// own (nothing of the app's response has been sent) and writes it out.
fn send_simple(
    py: Python<'_>,
    out: &mut Output,
    status: u16,
    text: &str,
    date: &[u8],
    is_head: bool,
) {
    out.buffer().clear();
    simple_response(out.buffer(), status, text, date, false, is_head);
    let _ = out.flush(&mut super::gil_free_wait(py));
}
