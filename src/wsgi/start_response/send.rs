//! The sending side of `start_response`: the head written once the app
//! gives its first body bytes (or ends), the body framed as the plan says
//! (Content-Length, chunked, until close), `--compress`'s encoder on the
//! way, and the flushes, parking and end of the response. Apart from the
//! state it works on (`mod.rs`) and from what the app calls (`call.rs`):
//! this is the part `app/run.rs` drives, and the one that writes to the
//! connection's `Output`.

use pyo3::exceptions::PyAssertionError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::StartResponse;
use crate::wsgi::gil_free_wait;
use crate::wsgi::kept::KeptBytes;
use qiao_http::response::{self, AppFacts, BodyMode};
use qiao_io::output::Keep;

impl StartResponse {
    /// Writes the head into the output buffer (not yet to the socket).
    /// `known_length`: the whole body's length when the server knows it.
    pub(crate) fn send_head(&mut self, py: Python<'_>, known_length: Option<u64>) -> PyResult<()> {
        self.head(py, known_length, known_length)
    }

    /// [`Self::send_head`] for a `wsgi.file_wrapper` of `count` bytes: the
    /// framing may use the length, but `--compress` decides as for any
    /// iterable (by the app's `Content-Length` only), as the portable
    /// class does.
    pub(crate) fn send_file_head(&mut self, py: Python<'_>, count: u64) -> PyResult<()> {
        self.head(py, Some(count), None)
    }

    /// `known_length` frames the body; `decide_length` is what
    /// `--compress` may know of it.
    fn head(
        &mut self,
        py: Python<'_>,
        mut known_length: Option<u64>,
        decide_length: Option<u64>,
    ) -> PyResult<()> {
        // (Before start_response, status 0 makes compression leave it alone.)
        if let Some(c) = &mut self.compress {
            let (fields, ranges) = (&mut self.fields, &mut self.headers);
            let (status, is_head) = (self.status_code, self.req.is_head);
            let lengths = (decide_length, self.content_length);
            if c.plan_head(status, fields, ranges, lengths, is_head)? {
                self.content_length = None;
                known_length = None;
            }
        }
        let Some(status) = &self.status else {
            return Err(PyAssertionError::new_err(
                "the application returned a body before calling start_response()",
            ));
        };
        let plan = response::plan(
            self.req,
            AppFacts {
                status: self.status_code,
                content_length: self.content_length,
                connection_close: self.connection_close,
                known_length,
            },
        );
        let fields = &self.fields;
        let headers = self
            .headers
            .iter()
            .map(|&(s, m, e)| (&fields[s..m], &fields[m..e]));
        response::write_head(
            self.out.buffer(),
            status,
            headers,
            &self.date,
            self.req,
            &plan,
        );
        self.plan = Some(plan);
        self.headers_sent = true;
        if let Some(input) = &self.input {
            // The final response has begun: a 100 Continue now would be wrong.
            input.bind(py).borrow_mut().reader_mut().cancel_continue();
        }
        Ok(())
    }

    /// Sends one body chunk, sending the head first if needed.
    pub(crate) fn send_body(&mut self, py: Python<'_>, piece: &Bound<'_, PyBytes>) -> PyResult<()> {
        let data = piece.as_bytes();
        if data.is_empty() {
            return Ok(());
        }
        if !self.headers_sent {
            self.send_head(py, None)?;
        }
        match &mut self.compress {
            Some(c) => match c.encode(py, data)? {
                Some(encoded) => self.send_framed(py, &encoded, None),
                None => self.send_framed(py, data, Some(piece)),
            },
            None => self.send_framed(py, data, Some(piece)),
        }
    }

    /// Sends body bytes as the plan frames them (the head is sent).
    /// `owner`: the `bytes` object `data` lies in, kept instead of copied
    /// if a slow client leaves part of it unsent (`kept.rs`).
    fn send_framed(
        &mut self,
        py: Python<'_>,
        data: &[u8],
        owner: Option<&Bound<'_, PyBytes>>,
    ) -> PyResult<()> {
        if data.is_empty() {
            return Ok(());
        }
        let mut wait = gil_free_wait(py);
        let keep = |piece| owner.map(|o| move || KeptBytes::boxed(o, piece));
        let result = match self.plan.map(|p| p.mode) {
            Some(BodyMode::None) | None => Ok(()),
            Some(BodyMode::Length(n)) => {
                // Never send more than announced: extra bytes would be read
                // by the client as the start of the next response.
                let room = n.saturating_sub(self.body_sent).min(data.len() as u64) as usize;
                self.body_sent += room as u64;
                let k = keep(&data[..room]);
                self.out
                    .push_kept(&data[..room], k.as_ref().map(|f| f as Keep), &mut wait)
            }
            Some(BodyMode::Chunked) => {
                self.body_sent += data.len() as u64;
                response::chunk_header(data.len(), self.out.buffer());
                let k = keep(data);
                let r = self
                    .out
                    .push_kept(data, k.as_ref().map(|f| f as Keep), &mut wait);
                self.out.buffer().extend_from_slice(response::CHUNK_END);
                r
            }
            Some(BodyMode::UntilClose) => {
                self.body_sent += data.len() as u64;
                let k = keep(data);
                self.out
                    .push_kept(data, k.as_ref().map(|f| f as Keep), &mut wait)
            }
        };
        result.map_err(PyErr::from)
    }

    /// Whether the whole body has been given: the announced Content-Length
    /// reached (compressed: the app's, in what was encoded), or a response
    /// that has no body.
    pub(crate) fn body_complete(&self) -> bool {
        match self.plan.map(|p| p.mode) {
            Some(BodyMode::Length(n)) => self.body_sent >= n,
            Some(BodyMode::None) => true,
            _ => self.compress.as_ref().is_some_and(|c| c.input_complete()),
        }
    }

    /// The body was compressed and the app sent less than its
    /// `Content-Length`: the response is incomplete (close the connection).
    pub(crate) fn body_short(&self) -> bool {
        self.compress.as_ref().is_some_and(|c| c.is_short())
    }

    /// The body is complete but the app still runs: the bytes may wait
    /// (see `Output::park`), bounded by the pool's monitor.
    pub fn park(&mut self, py: Python<'_>) -> PyResult<()> {
        let mut wait = gil_free_wait(py);
        self.out.park(&mut wait).map_err(PyErr::from)
    }

    /// Writes out what is buffered (the head, body bytes, a chunk's end).
    pub fn flush(&mut self, py: Python<'_>) -> PyResult<()> {
        let mut wait = gil_free_wait(py);
        self.out.flush(&mut wait).map_err(PyErr::from)
    }

    /// Ends the body (last chunk) and writes everything out, or leaves a
    /// short response for the serving thread to write with its batch.
    /// `known_empty`: the body was known to be empty before it was read (an
    /// empty list), which `--compress` may take into account; an empty
    /// iterator is only found empty at its end.
    pub fn finish(&mut self, py: Python<'_>, known_empty: bool) -> PyResult<()> {
        if !self.headers_sent {
            self.head(py, Some(0), known_empty.then_some(0))?;
        }
        if self.body_short() {
            // Compressed, and shorter than the app's Content-Length: no
            // end of stream, no last chunk; the connection closes (see
            // `app/run.rs`), so the client sees it cut, as uncompressed.
            return self.out.end().map_err(PyErr::from);
        }
        if let Some(tail) = self
            .compress
            .as_mut()
            .map(|c| c.finish())
            .transpose()?
            .flatten()
        {
            self.send_framed(py, &tail, None)?;
        }
        if self.plan.is_some_and(|p| p.mode == BodyMode::Chunked) {
            self.out.buffer().extend_from_slice(response::LAST_CHUNK);
        }
        self.out.end().map_err(PyErr::from)
    }
}
