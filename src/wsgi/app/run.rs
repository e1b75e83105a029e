//! The application called and its result sent: `app(environ,
//! start_response)`, then a list or tuple with its length known, a
//! `wsgi.file_wrapper` file by `sendfile`, or any other iterable chunk by
//! chunk, no further than [`MAX_SURPLUS_BYTES`] past its body's end;
//! `close()` called however it ended, and the app's failures answered (a
//! 500, the client's 4xx for a bad request body, or the connection cut).
//! Apart from the request around the call (`mod.rs`): this is the part
//! that drives `start_response`'s sending side, and decides how the
//! connection goes on.

use std::os::fd::RawFd;

use pyo3::exceptions::PyTypeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

use super::{send_simple, WsgiServe};
use crate::wsgi::file_wrapper::FileWrapper;
use crate::wsgi::start_response::StartResponse;
use qiao_http::response::BodyMode;
use qiao_io::{BodyError, Outcome};

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

impl WsgiServe<'_, '_> {
    pub(super) fn run_app(
        &mut self,
        environ: &Bound<'_, PyDict>,
        sr: &Bound<'_, StartResponse>,
    ) -> Outcome {
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
        let mut wait = crate::wsgi::gil_free_wait(py);
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
    pub(super) fn fail(&mut self, sr: &Bound<'_, StartResponse>, msg: &str, err: PyErr) -> Outcome {
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
