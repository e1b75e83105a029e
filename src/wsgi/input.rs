//! `wsgi.input`: the request body as a Python binary stream, reading
//! through the I/O ring's [`BodyReader`] and releasing the GIL while it
//! waits for the client. After the response the reader goes back to the
//! connection and this object answers every call with an error.

use pyo3::create_exception;
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use qiao_io::{BodyError, BodyReader};

create_exception!(
    qiao,
    RequestBodyError,
    PyOSError,
    "The request body could not be read in full (client disconnect, bad framing, timeout)."
);

/// Bytes read per step by `read()` without a size.
const READ_ALL_STEP: usize = 64 * 1024;

/// Largest read buffer a renewed `wsgi.input` keeps: a bigger one (a whole
/// large body read at once) is freed rather than held by the thread.
pub(crate) const RENEW_SCRATCH_MAX: usize = 64 * 1024;

/// The stream given to the application as `environ['wsgi.input']`.
#[pyclass(module = "qiao._qiao")]
pub struct Input {
    reader: BodyReader,
    scratch: Vec<u8>,
}

impl Input {
    pub fn new(reader: BodyReader) -> Self {
        Input {
            reader,
            scratch: Vec::new(),
        }
    }

    /// Makes this object the `wsgi.input` of a new request (`reuse.rs`:
    /// nothing else refers to it any more), keeping its scratch buffer.
    pub(crate) fn renew(&mut self, reader: BodyReader) {
        self.reader = reader;
        if self.scratch.capacity() > RENEW_SCRATCH_MAX {
            self.scratch = Vec::new();
        }
        self.scratch.clear();
    }

    /// Takes the reader back when the request is over.
    pub(crate) fn take_reader(&mut self) -> BodyReader {
        std::mem::take(&mut self.reader)
    }

    pub(crate) fn reader_mut(&mut self) -> &mut BodyReader {
        &mut self.reader
    }

    fn fill<'py>(
        &mut self,
        py: Python<'py>,
        size: Option<isize>,
        line: bool,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let mut wait = super::gil_free_wait(py);
        self.scratch.clear();
        let result = match size.filter(|&n| n >= 0) {
            Some(n) if line => self
                .reader
                .read_line(&mut self.scratch, n as usize, &mut wait),
            Some(0) => Ok(0),
            Some(n) => {
                // Most reads are served by one run of the buffer: made
                // into the bytes object straight from there.
                let n = n as usize;
                match self.reader.read_run(n, &mut wait).map_err(to_pyerr)? {
                    Some(run) if run.len() == n => return Ok(PyBytes::new(py, run)),
                    Some(run) => self.scratch.extend_from_slice(run),
                    None => return Ok(PyBytes::new(py, b"")),
                }
                let got = self.scratch.len();
                self.reader.read(&mut self.scratch, n - got, &mut wait)
            }
            None if line => self
                .reader
                .read_line(&mut self.scratch, usize::MAX, &mut wait),
            None => loop {
                match self
                    .reader
                    .read(&mut self.scratch, READ_ALL_STEP, &mut wait)
                {
                    Ok(0) => break Ok(self.scratch.len()),
                    Ok(_) => {}
                    Err(e) => break Err(e),
                }
            },
        };
        result.map_err(to_pyerr)?;
        Ok(PyBytes::new(py, &self.scratch))
    }
}

pub(crate) fn to_pyerr(e: BodyError) -> PyErr {
    RequestBodyError::new_err(e.to_string())
}

#[pymethods]
impl Input {
    /// Reads up to `size` bytes (all of the body when omitted or negative);
    /// fewer only at the end of the body.
    #[pyo3(signature = (size=None))]
    fn read<'py>(&mut self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        self.fill(py, size, false)
    }

    /// Reads one line, up to and including `\n`, at most `size` bytes.
    #[pyo3(signature = (size=None))]
    fn readline<'py>(
        &mut self,
        py: Python<'py>,
        size: Option<isize>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        self.fill(py, size, true)
    }

    /// Reads lines until the end of the body, or until about `hint` bytes.
    #[pyo3(signature = (hint=None))]
    fn readlines<'py>(
        &mut self,
        py: Python<'py>,
        hint: Option<isize>,
    ) -> PyResult<Bound<'py, PyList>> {
        let lines = PyList::empty(py);
        let limit = hint.filter(|&h| h > 0).map(|h| h as usize);
        let mut total = 0;
        loop {
            let line = self.fill(py, None, true)?;
            if line.as_bytes().is_empty() {
                break;
            }
            total += line.as_bytes().len();
            lines.append(line)?;
            if limit.is_some_and(|l| total >= l) {
                break;
            }
        }
        Ok(lines)
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let line = self.fill(py, None, true)?;
        Ok((!line.as_bytes().is_empty()).then_some(line))
    }

    fn readable(&self) -> bool {
        true
    }

    /// Accepted and ignored: the server owns the stream (PEP 3333 says
    /// the application must not close it, but some frameworks do).
    fn close(&self) {}
}
