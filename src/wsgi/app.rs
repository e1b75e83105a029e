//! One request through the application: environ in, `app(environ,
//! start_response)` called, its result sent (lists with a known length,
//! `wsgi.file_wrapper` files by `sendfile`, any other iterable chunk by
//! chunk, no further than [`MAX_SURPLUS_BYTES`] past its end), `close()`
//! always called, failures answered with a 500 and logged with their
//! traceback.

use std::os::fd::RawFd;
use std::time::Instant;

use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use super::cgi::fill_from_cgi;
use super::compress::Compression;
use super::environ::{fill_environ, EnvironCache, EnvironConfig};
use super::file_wrapper::FileWrapper;
use super::reuse::Spare;
use super::start_response::StartResponse;
use super::tls_environ::TlsTemplate;
use qiao_http::response::{simple_response, BodyMode, RequestFacts};
use qiao_io::sock::{self, Interest};
use qiao_io::{BodyError, Exchange, Outcome, Output, Serve};

/// Bytes an application may yield past its body's end (its announced
/// `Content-Length`, or any body where none is sent, as to HEAD) before the
/// server stops asking for more: PEP 3333 lets the server discard them, not
/// read an endless iterable forever at 100 % CPU.
pub(crate) const MAX_SURPLUS_BYTES: u64 = 64 * 1024;
/// Logged when an application yields more than its `Content-Length`.
const SURPLUS_MESSAGE: &str =
    "Application yielded more than its Content-Length: the rest was not read";
/// Logged when a response is cut because half the serving threads already
/// wait for slow clients (`io::output`'s wait budget).
const OVER_BUDGET_LOG: &str = "Response cut: a slow client, and half the serving threads \
     (--threads) already wait for slow clients";

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
    fn run_app(&mut self, environ: &Bound<'_, PyDict>, sr: &Bound<'_, StartResponse>) -> Outcome {
        let py = self.py;
        let result = match self.shared.app.bind(py).call1((environ, sr)) {
            Ok(r) => r,
            Err(e) => return self.fail(sr, "Error handling request", e),
        };
        let outcome = match self.send_result(sr, &result) {
            Ok(o) => o,
            Err(e) => self.fail(sr, "Error handling request", e),
        };
        // PEP 3333: close() is called however the response ended. (A plain
        // list or tuple has none: skipping the lookup saves a raised and
        // discarded AttributeError per request.)
        let plain =
            result.is_exact_instance_of::<PyList>() || result.is_exact_instance_of::<PyTuple>();
        if !plain && matches!(result.hasattr(intern!(py, "close")), Ok(true)) {
            if let Err(e) = result.call_method0(intern!(py, "close")) {
                self.log("Error closing the application's result", Some(e));
            }
        }
        outcome
    }

    fn send_result(
        &mut self,
        sr: &Bound<'_, StartResponse>,
        result: &Bound<'_, PyAny>,
    ) -> PyResult<Outcome> {
        let py = self.py;
        if let Ok(fw) = result.cast::<FileWrapper>() {
            if let Some(outcome) = self.try_sendfile(sr, &fw.borrow())? {
                return Ok(outcome);
            }
        }
        // A list or tuple: its items, held (the list could change while a
        // full socket is waited for with the GIL released). The usual
        // `[body]` needs no allocation at all.
        let (one, many);
        let items: Option<&[Bound<'_, PyAny>]> = match result.cast::<PyList>() {
            Ok(list) if list.len() == 1 => {
                one = [list.get_item(0)?];
                Some(&one)
            }
            Ok(list) => {
                many = list.iter().collect::<Vec<_>>();
                Some(&many)
            }
            Err(_) => match result.cast::<PyTuple>() {
                Ok(tuple) => {
                    many = tuple.iter().collect::<Vec<_>>();
                    Some(&many)
                }
                Err(_) => None,
            },
        };
        if let Some(items) = items {
            // The whole body is known: check every item before sending a
            // byte, and send a Content-Length instead of chunking.
            let mut total = 0u64;
            for item in items {
                total += body_bytes(item)?.as_bytes().len() as u64;
            }
            let mut this = sr.borrow_mut();
            if !this.headers_sent() && total > 0 {
                this.send_head(py, Some(total))?;
            }
            for item in items {
                this.send_body(py, item.cast::<PyBytes>()?)?;
            }
            this.finish(py, true)?;
            return Ok(self.outcome(&this));
        }
        let mut surplus = 0u64;
        for item in result.try_iter()? {
            let item = item?;
            let bytes = body_bytes(&item)?;
            let mut this = sr.borrow_mut();
            if this.body_complete() {
                // Past the announced length (or a body that has none, as
                // to HEAD): discarded; an endless iterable (a file wrapper
                // over /dev/zero) is not read forever.
                surplus += bytes.as_bytes().len() as u64;
                if surplus > MAX_SURPLUS_BYTES {
                    if matches!(this.plan().map(|p| p.mode), Some(BodyMode::Length(_))) {
                        self.log(SURPLUS_MESSAGE, None);
                    }
                    break;
                }
            }
            this.send_body(py, bytes)?;
            // PEP 3333: a block is transmitted before the next is asked
            // for (a generator may take its time to produce it). Once the
            // announced length is complete, the bytes may wait in the
            // thread's park instead, which the pool's monitor writes out
            // if the app takes long to end; usually it ends at once and
            // the response joins the thread's batch.
            if this.body_complete() {
                this.park(py)?;
            } else {
                this.flush(py)?;
            }
            if this.output().failed() {
                return Ok(Outcome::Close);
            }
        }
        let mut this = sr.borrow_mut();
        this.finish(py, false)?;
        Ok(self.outcome(&this))
    }

    /// Sends a `wsgi.file_wrapper` around a regular file with sendfile(2);
    /// `None` when the file-like has no usable descriptor (then iterate).
    fn try_sendfile(
        &mut self,
        sr: &Bound<'_, StartResponse>,
        fw: &FileWrapper,
    ) -> PyResult<Option<Outcome>> {
        let py = self.py;
        let file = fw.filelike.bind(py);
        let Some(fd) = file
            .call_method0(intern!(py, "fileno"))
            .ok()
            .and_then(|f| f.extract::<RawFd>().ok())
        else {
            return Ok(None);
        };
        // SAFETY: fstat into a zeroed struct on a descriptor the app owns.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        if unsafe { libc::fstat(fd, &mut st) } != 0 || (st.st_mode & libc::S_IFMT) != libc::S_IFREG
        {
            return Ok(None);
        }
        let pos = match file
            .call_method0(intern!(py, "tell"))
            .and_then(|p| p.extract::<u64>())
        {
            Ok(p) => p,
            Err(_) => return Ok(None),
        };
        let mut this = sr.borrow_mut();
        let mut count = (st.st_size as u64).saturating_sub(pos);
        if let Some(cl) = this.content_length() {
            count = count.min(cl);
        }
        if !this.headers_sent() {
            this.send_file_head(py, count)?;
        }
        let mode = this.plan().map(|p| p.mode);
        let mut wait = super::gil_free_wait(py);
        match mode {
            Some(BodyMode::Length(n)) => {
                let want = count.min(n.saturating_sub(this.body_sent()));
                let sent = this.output().sendfile(fd, pos, want)?;
                this.add_body_sent(sent);
                if sent < want {
                    return Ok(Some(Outcome::Close));
                }
            }
            Some(BodyMode::None) => this.output().flush(&mut wait)?,
            // Chunked/close-delimited after an earlier write(): iterate.
            _ => return Ok(None),
        }
        Ok(Some(self.outcome(&this)))
    }

    fn outcome(&self, sr: &StartResponse) -> Outcome {
        let complete = match sr.plan().map(|p| p.mode) {
            Some(BodyMode::Length(n)) => sr.body_sent() >= n,
            _ => !sr.body_short(),
        };
        if sr.keep_alive() && complete && !sr.output_failed() {
            Outcome::KeepAlive
        } else {
            Outcome::Close
        }
    }

    /// The app failed: log with traceback; answer 500 if nothing was sent,
    /// else cut the connection so the client sees an incomplete response.
    fn fail(&mut self, sr: &Bound<'_, StartResponse>, msg: &str, err: PyErr) -> Outcome {
        let py = self.py;
        let mut this = sr.borrow_mut();
        if this.output_over_budget() {
            // Not the app's fault, but the operator's to know: the worker
            // had no serving thread to spare for a slow client.
            self.log(OVER_BUDGET_LOG, None);
            return Outcome::Close;
        }
        if this.output_failed() {
            // The client went away mid-response: not the application's fault.
            self.debug(&format!("client disconnected: {}", err.value(py)));
            return Outcome::Close;
        }
        if let Some(body_error) = this.body_error(py) {
            // The request body failed (bad framing, cut short, too slow):
            // the client's fault, answered with its 4xx, not a 500.
            self.debug(&format!("request body error: {body_error}"));
            if !this.headers_sent() {
                let (status, text) = client_error_status(&body_error);
                let (date, is_head) = (*this.date(), this.is_head());
                send_simple(py, this.output(), status, text, &date, is_head);
            }
            return Outcome::Close;
        }
        self.log(msg, Some(err));
        if !this.headers_sent() {
            let (date, is_head) = (*this.date(), this.is_head());
            send_simple(
                py,
                this.output(),
                500,
                "Internal Server Error",
                &date,
                is_head,
            );
        }
        Outcome::Close
    }

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

/// The status answering a request whose body could not be read.
fn client_error_status(e: &BodyError) -> (u16, &'static str) {
    match e {
        BodyError::Invalid(p) => (p.status(), p.message()),
        BodyError::Truncated { .. } => (400, "incomplete request body"),
        BodyError::Io(std::io::ErrorKind::TimedOut) => (408, "timed out reading the request body"),
        BodyError::Io(_) | BodyError::Closed => (400, "error reading the request body"),
    }
}

/// A body item must be bytes (PEP 3333); a str is the classic mistake.
fn body_bytes<'a, 'py>(item: &'a Bound<'py, PyAny>) -> PyResult<&'a Bound<'py, PyBytes>> {
    item.cast::<PyBytes>().map_err(|_| {
        let name = item
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_default();
        PyTypeError::new_err(format!("response body items must be bytes, not {name}"))
    })
}
