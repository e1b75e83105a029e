//! The two objects every request hands the application, `wsgi.input` and
//! `start_response`, reused by the serving thread from one request to the
//! next when nothing else refers to them any more ([`Spare`]).
//!
//! Why by hand: making both and freeing them again was ~1,000 of the ~43k
//! instructions of an `environ`-style request (callgrind: two allocations
//! and initialisations of Python objects, their deallocation, and the
//! header buffers of `start_response`), all of it for objects that live
//! exactly one request. Reuse is safe only when the app kept no
//! reference (it may keep `environ`, and with it `wsgi.input`, or the
//! `start_response` callable, e.g. in a closure that outlives the
//! request): so the reference counts are checked once the request is over
//! and the thread's `environ` reference is gone, and a pair that is still
//! referred to is simply left to the app and replaced by new objects.

use pyo3::prelude::*;

use super::compress::Compression;
use super::input::Input;
use super::start_response::StartResponse;
use qiao_http::response::RequestFacts;
use qiao_io::{BodyReader, Output};

/// A serving thread's spare pair, from its last request.
#[derive(Default)]
pub(super) struct Spare {
    input: Option<Py<Input>>,
    start_response: Option<Py<StartResponse>>,
    /// `start_response`'s bound `write` method (it refers to it; neither
    /// refers to this one while spare, so no cycle outlives a request).
    write: Option<Py<PyAny>>,
}

impl Spare {
    /// `wsgi.input` for a request reading `reader`: the spare one, renewed,
    /// or a new one.
    pub(super) fn input(&mut self, py: Python<'_>, reader: BodyReader) -> PyResult<Py<Input>> {
        match self.input.take() {
            Some(input) => {
                input.bind(py).borrow_mut().renew(reader);
                Ok(input)
            }
            None => Py::new(py, Input::new(reader)),
        }
    }

    /// `start_response` for a request: the spare one, renewed, or a new
    /// one. Spares are taken: they come back through [`Self::keep`] if
    /// still unshared at the end.
    pub(super) fn start_response<'py>(
        &mut self,
        py: Python<'py>,
        out: Output,
        req: RequestFacts,
        date: &[u8],
        input: Py<Input>,
        compress: Option<Compression>,
    ) -> PyResult<Bound<'py, StartResponse>> {
        match self.start_response.take() {
            Some(sr) => {
                let sr = sr.into_bound(py);
                let mut this = sr.borrow_mut();
                this.renew(out, req, date, input, compress);
                if let Some(write) = self.write.take() {
                    this.set_write(write);
                }
                drop(this);
                Ok(sr)
            }
            None => Bound::new(py, StartResponse::new(out, req, date, input, compress)),
        }
    }

    /// Keeps the request's pair for the next request if the thread's
    /// references are the only ones left (call it once the request is
    /// over: its output and reader taken back, the environ dropped).
    ///
    /// Always ends `start_response`'s cycle with its `write` method, so
    /// objects the app still holds are freed by reference counting alone.
    pub(super) fn keep(&mut self, input: Py<Input>, sr: Bound<'_, StartResponse>) {
        let py = sr.py();
        let write = sr.borrow_mut().take_write();
        // The method refers to `sr`: one more reference, expected.
        let sr_refs = 1 + isize::from(write.is_some());
        let write_free = write.as_ref().is_none_or(|w| w.get_refcnt(py) == 1);
        if input.get_refcnt(py) == 1 && sr.get_refcnt() == sr_refs && write_free {
            self.input = Some(input);
            self.start_response = Some(sr.unbind());
            self.write = write;
        }
    }
}
