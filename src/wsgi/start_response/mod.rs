//! `start_response` and the `write()` callable it returns (PEP 3333),
//! with the response state they share: validated status and headers, the
//! framing plan, and the connection's [`Output`] for the duration of the
//! request. Headers are validated when the app passes them (a CR, LF or
//! NUL in a header can never be sent) and go out with the first non-empty
//! body chunk. With `--compress`, the head is rewritten and the body
//! encoded on the way out ([`Compression`]); without it, nothing is added
//! to the path.
//!
//! This file holds the state: the class, its creation and renewal for the
//! next request (`reuse.rs`), and what the rest of the ring reads of it.
//! What the application calls, and the checks of what it passes, are in
//! `call.rs`; the head and body going out in `send.rs`. Children of this
//! module, so both work on its private fields.

use pyo3::prelude::*;

use super::compress::Compression;
use super::input::Input;
use qiao_http::date::DATE_LEN;
use qiao_http::response::{Plan, RequestFacts};
use qiao_io::Output;

mod call;
mod send;

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
}
