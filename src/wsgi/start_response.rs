//! `start_response` and the `write()` callable it returns (PEP 3333),
//! with the response state they share: validated status and headers, the
//! framing plan, and the connection's [`Output`] for the duration of the
//! request. Headers are validated when the app passes them (a CR, LF or
//! NUL in a header can never be sent) and go out with the first non-empty
//! body chunk. With `--compress`, the head is rewritten and the body
//! encoded on the way out ([`Compression`]); without it, nothing is added
//! to the path.

use pyo3::exceptions::{PyAssertionError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use super::compress::Compression;
use super::input::Input;
use super::kept::KeptBytes;
use qiao_http::date::DATE_LEN;
use qiao_http::request::is_tchar;
use qiao_http::response::{self, AppFacts, BodyMode, Plan, RequestFacts};
use qiao_io::output::Keep;
use qiao_io::Output;

/// Header buffer a new `start_response` starts with (bytes of names and
/// values): room for a typical response's fields without growing.
pub(crate) const FIELDS_CAPACITY: usize = 256;
/// Largest header buffer a renewed `start_response` keeps (an app's
/// unusually large headers are not held by the thread afterwards).
pub(crate) const RENEW_FIELDS_MAX: usize = 16 * 1024;

/// The `start_response` callable of one request.
#[pyclass(module = "qiao._qiao")]
pub struct StartResponse {
    /// `"200 OK"` as bytes, once start_response was called.
    status: Option<Vec<u8>>,
    status_code: u16,
    /// Validated headers as latin-1 bytes: (name, value) ranges of `fields`.
    fields: Vec<u8>,
    headers: Vec<(usize, usize, usize)>,
    content_length: Option<u64>,
    connection_close: bool,
    headers_sent: bool,
    plan: Option<Plan>,
    req: RequestFacts,
    date: [u8; DATE_LEN],
    body_sent: u64,
    out: Output,
    input: Option<Py<Input>>,
    /// `--compress`: what this request negotiated, then the body encoder.
    compress: Option<Compression>,
    /// The bound `write` method returned by every call, made once (a
    /// reference cycle while set: `reuse.rs` takes it out at the end of
    /// every request).
    write: Option<Py<PyAny>>,
}

impl StartResponse {
    pub fn new(
        out: Output,
        req: RequestFacts,
        date: &[u8],
        input: Py<Input>,
        compress: Option<Compression>,
    ) -> Self {
        let buffers = (Vec::with_capacity(FIELDS_CAPACITY), Vec::with_capacity(8));
        Self::with_buffers(buffers, out, req, date, input, compress)
    }

    /// Makes this object the `start_response` of a new request, as
    /// [`new`](Self::new) would, keeping only its buffers' capacity
    /// (`reuse.rs`: nothing else refers to it any more).
    pub(crate) fn renew(
        &mut self,
        out: Output,
        req: RequestFacts,
        date: &[u8],
        input: Py<Input>,
        compress: Option<Compression>,
    ) {
        let (mut fields, mut headers) = (
            std::mem::take(&mut self.fields),
            std::mem::take(&mut self.headers),
        );
        if fields.capacity() > RENEW_FIELDS_MAX {
            fields = Vec::with_capacity(FIELDS_CAPACITY);
        }
        fields.clear();
        headers.clear();
        *self = Self::with_buffers((fields, headers), out, req, date, input, compress);
    }

    fn with_buffers(
        (fields, headers): (Vec<u8>, Vec<(usize, usize, usize)>),
        out: Output,
        req: RequestFacts,
        date: &[u8],
        input: Py<Input>,
        compress: Option<Compression>,
    ) -> Self {
        let mut d = [0u8; DATE_LEN];
        d.copy_from_slice(&date[..DATE_LEN]);
        StartResponse {
            status: None,
            status_code: 0,
            fields,
            headers,
            content_length: None,
            connection_close: false,
            headers_sent: false,
            plan: None,
            req,
            date: d,
            body_sent: 0,
            out,
            input: Some(input),
            compress,
            write: None,
        }
    }

    /// Takes the cached `write` method out (ends the reference cycle).
    pub(crate) fn take_write(&mut self) -> Option<Py<PyAny>> {
        self.write.take()
    }

    /// Sets the `write` method to return (kept from an earlier request).
    pub(crate) fn set_write(&mut self, write: Py<PyAny>) {
        self.write = Some(write);
    }

    pub(crate) fn headers_sent(&self) -> bool {
        self.headers_sent
    }

    pub(crate) fn status_code(&self) -> u16 {
        self.status_code
    }

    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    pub fn started(&self) -> bool {
        self.status.is_some()
    }

    pub(crate) fn body_sent(&self) -> u64 {
        self.body_sent
    }

    /// The error reading the request body met, if any: a failure caused by
    /// the client, which the app usually just let propagate.
    pub fn body_error(&self, py: Python<'_>) -> Option<qiao_io::BodyError> {
        let input = self.input.as_ref()?;
        let guard = input.bind(py).try_borrow_mut().ok()?;
        let mut guard = guard;
        guard.reader_mut().error().cloned()
    }

    /// Counts body bytes sent past `send_body` (by sendfile).
    pub(crate) fn add_body_sent(&mut self, n: u64) {
        self.body_sent += n;
    }

    pub(crate) fn output_failed(&self) -> bool {
        self.out.failed()
    }

    pub(crate) fn output_over_budget(&self) -> bool {
        self.out.over_budget()
    }

    pub fn date(&self) -> &[u8; DATE_LEN] {
        &self.date
    }

    pub fn is_head(&self) -> bool {
        self.req.is_head
    }

    pub fn output(&mut self) -> &mut Output {
        &mut self.out
    }

    /// Takes the output back for the connection at the end of the request.
    /// Also lets go of the input and of `--compress`'s encoder (its state
    /// can be large, and a reused object waits for the next request).
    pub(crate) fn take_output(&mut self) -> Output {
        self.input = None;
        self.compress = None;
        std::mem::take(&mut self.out)
    }

    /// Whether the connection can carry another request after this one.
    pub fn keep_alive(&self) -> bool {
        self.plan.is_some_and(|p| p.keep_alive)
    }

    pub fn plan(&self) -> Option<Plan> {
        self.plan
    }

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
        let mut wait = super::gil_free_wait(py);
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
        let mut wait = super::gil_free_wait(py);
        self.out.park(&mut wait).map_err(PyErr::from)
    }

    /// Writes out what is buffered (the head, body bytes, a chunk's end).
    pub fn flush(&mut self, py: Python<'_>) -> PyResult<()> {
        let mut wait = super::gil_free_wait(py);
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
            // `app.rs`), so the client sees it cut, as uncompressed.
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

    fn set_status(&mut self, status: &Bound<'_, PyAny>) -> PyResult<()> {
        let status = status.cast::<PyString>().map_err(|_| {
            PyTypeError::new_err(format!("status must be a str, not {}", type_name(status)))
        })?;
        let s = status.to_cow()?;
        let line = status_line(&s).map_err(PyValueError::new_err)?;
        self.status_code = s[..3].parse().unwrap_or(500);
        self.status = Some(line);
        Ok(())
    }

    fn set_headers(&mut self, headers: &Bound<'_, PyAny>) -> PyResult<()> {
        let list = headers.cast::<PyList>().map_err(|_| {
            PyTypeError::new_err(format!(
                "headers must be a list, not {}",
                type_name(headers)
            ))
        })?;
        self.fields.clear();
        self.headers.clear();
        self.content_length = None;
        self.connection_close = false;
        for item in list.iter() {
            let pair = item.cast::<PyTuple>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "each header must be a (name, value) tuple, not {}",
                    type_name(&item)
                ))
            })?;
            if pair.len() != 2 {
                return Err(PyTypeError::new_err(
                    "each header must be a (name, value) tuple of two str",
                ));
            }
            let (name, value) = (pair.get_item(0)?, pair.get_item(1)?);
            let start = self.fields.len();
            push_latin1(&mut self.fields, &name, "header name")?;
            let mid = self.fields.len();
            push_latin1(&mut self.fields, &value, "header value")?;
            let end = self.fields.len();
            let (n, v) = (&self.fields[start..mid], &self.fields[mid..end]);
            if n.is_empty() || !n.iter().all(|&b| is_tchar(b)) {
                return Err(PyValueError::new_err(format!(
                    "invalid header name {:?}",
                    String::from_utf8_lossy(n)
                )));
            }
            if v.iter().any(|&b| b < b' ' && b != b'\t' || b == 0x7f) {
                return Err(PyValueError::new_err(format!(
                    "invalid header value for {:?}: control characters (CR, LF, NUL...) are not allowed",
                    String::from_utf8_lossy(n)
                )));
            }
            if n.eq_ignore_ascii_case(b"content-length") {
                let text = std::str::from_utf8(v)
                    .unwrap_or("")
                    .trim_matches([' ', '\t']);
                let len = (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| text.parse::<u64>().ok())
                    .flatten()
                    .ok_or_else(|| {
                        PyValueError::new_err(format!("invalid Content-Length {text:?}"))
                    })?;
                self.content_length = Some(len);
            } else if n.eq_ignore_ascii_case(b"connection") {
                self.connection_close |= v
                    .split(|&b| b == b',')
                    .any(|t| qiao_http::request::trim_ows(t).eq_ignore_ascii_case(b"close"));
            }
            self.headers.push((start, mid, end));
        }
        Ok(())
    }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// The status line's `code SP reason` as sent, from the application's
/// status string: three digits (not starting with 0), then nothing or a
/// space and a reason of visible characters, spaces and tabs, encoded as
/// latin-1 (PEP 3333: every status and header string is latin-1; a
/// character above U+00FF is an application error, a 500, never UTF-8 on
/// the wire). A bare code gets the space RFC 9112 requires.
fn status_line(s: &str) -> Result<Vec<u8>, String> {
    let invalid = || format!("invalid status {s:?}: expected e.g. '200 OK'");
    let b = s.as_bytes();
    let shape = b.len() >= 3
        && b[..3].iter().all(u8::is_ascii_digit)
        && b[0] != b'0'
        && (b.len() == 3 || b[3] == b' ');
    if !shape {
        return Err(invalid());
    }
    let mut line = Vec::with_capacity(b.len() + 1);
    for c in s.chars() {
        let code = c as u32;
        if code > 0xff {
            return Err(format!("status {s:?} is not latin-1 encodable"));
        }
        if code != u32::from(b'\t') && (code < 0x20 || code == 0x7f) {
            return Err(invalid());
        }
        line.push(code as u8);
    }
    if line.len() == 3 {
        line.push(b' ');
    }
    Ok(line)
}

/// Appends a `str` as latin-1 (PEP 3333: header strings are latin-1).
fn push_latin1(out: &mut Vec<u8>, obj: &Bound<'_, PyAny>, what: &str) -> PyResult<()> {
    let s = obj.cast::<PyString>().map_err(|_| {
        PyTypeError::new_err(format!("{what} must be a str, not {}", type_name(obj)))
    })?;
    let text = s.to_cow()?;
    if text.is_ascii() {
        // The common case: ASCII is its own latin-1 encoding.
        out.extend_from_slice(text.as_bytes());
        return Ok(());
    }
    for c in text.chars() {
        let code = c as u32;
        if code > 0xff {
            return Err(PyValueError::new_err(format!(
                "{what} {s} is not latin-1 encodable"
            )));
        }
        out.push(code as u8);
    }
    Ok(())
}

#[pymethods]
impl StartResponse {
    /// `start_response(status, response_headers, exc_info=None)`.
    #[pyo3(signature = (status, headers, exc_info=None))]
    fn __call__<'py>(
        slf: Bound<'py, Self>,
        status: &Bound<'py, PyAny>,
        headers: &Bound<'py, PyAny>,
        exc_info: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        {
            let mut this = slf.borrow_mut();
            match exc_info.filter(|e| !e.is_none()) {
                Some(info) if this.headers_sent => {
                    // Too late to change the response: re-raise (PEP 3333).
                    return Err(PyErr::from_value(info.get_item(1)?));
                }
                Some(_) => {}
                None if this.status.is_some() => {
                    return Err(PyAssertionError::new_err(
                        "start_response() called a second time without exc_info",
                    ))
                }
                None => {}
            }
            this.set_status(status)?;
            if let Err(e) = this.set_headers(headers) {
                this.status = None;
                return Err(e);
            }
        }
        if let Some(write) = &slf.borrow().write {
            return Ok(write.bind(py).clone());
        }
        let write = slf.getattr(pyo3::intern!(py, "write"))?;
        slf.borrow_mut().write = Some(write.clone().unbind());
        Ok(write)
    }

    /// The `write(data)` callable: sends body bytes immediately.
    fn write(&mut self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        if self.input.is_none() {
            return Err(PyRuntimeError::new_err(
                "write() called after the response was finished",
            ));
        }
        let bytes = data.cast::<pyo3::types::PyBytes>().map_err(|_| {
            PyTypeError::new_err(format!("write() takes bytes, not {}", type_name(data)))
        })?;
        self.send_body(py, bytes)?;
        let mut wait = super::gil_free_wait(py);
        // write() promises the data is on its way before it returns.
        self.out.flush(&mut wait).map_err(PyErr::from)
    }
}

#[cfg(test)]
mod tests {
    use super::status_line;

    #[test]
    fn status_lines_are_latin1() {
        assert_eq!(status_line("200 OK").unwrap(), b"200 OK");
        assert_eq!(status_line("204").unwrap(), b"204 ");
        assert_eq!(status_line("200 Caf\u{e9}").unwrap(), b"200 Caf\xe9");
        assert_eq!(status_line("200 a\tb").unwrap(), b"200 a\tb");
        let err = status_line("200 Ok\u{100}").unwrap_err();
        assert!(err.contains("not latin-1"), "{err}");
        for bad in [
            "20", "2000", "099 X", "200\tOK", "200 a\nb", "200 \x7f", "abc OK",
        ] {
            assert!(status_line(bad).is_err(), "{bad:?}");
        }
    }
}
