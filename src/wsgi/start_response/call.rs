//! What the application calls: `start_response(status, headers,
//! exc_info=None)` and the `write(data)` it returns (the class's
//! `#[pymethods]`), with the checks of what it passes: the status line and
//! each header are validated and encoded as latin-1 here, so the sending
//! side (`send.rs`) only meets bytes that may go on the wire. Apart from it
//! because this is where Python's arguments end and bytes begin.

use pyo3::exceptions::{PyAssertionError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};

use super::StartResponse;
use crate::wsgi::gil_free_wait;
use qiao_http::request::is_tchar;

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
        let mut wait = gil_free_wait(py);
        // write() promises the data is on its way before it returns.
        self.out.flush(&mut wait).map_err(PyErr::from)
    }
}

impl StartResponse {
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
