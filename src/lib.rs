//! Qiao: a WSGI server whose engine is Rust. This crate is the extension
//! module: the WSGI ring, and the registration of the Python-visible items
//! (as pydantic-core's `lib.rs` does). The other rings are crates of their
//! own, so the compiler keeps the layers (docs/architecture.md walks a
//! request through them):
//!
//! - `qiao_http` (crates/http): sans-IO HTTP/1.1 and the codecs (no
//!   sockets, no TLS, no Python)
//! - `qiao_io` (crates/io): sockets, the event loop, connection state,
//!   timers (no Python)
//! - `qiao_native` (crates/native): GIL-free static files and proxy
//! - `qiao_front` (crates/front): TLS handshakes and HTTP/2
//! - [`wsgi`]: the only code that touches Python (PEP 3333)

// Qiao's event loop is epoll, its files go out with Linux's sendfile and its
// workers use prctl: other systems get this one line instead of a pile of
// compiler errors.
#[cfg(not(target_os = "linux"))]
compile_error!("Qiao runs on Linux only (epoll, sendfile, prctl); see the README's platform note");

pub mod wsgi;

use pyo3::prelude::*;

/// The native module `qiao._qiao`.
#[pymodule]
fn _qiao(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(wsgi::server::serve, m)?)?;
    m.add_class::<wsgi::server::Control>()?;
    m.add_function(wrap_pyfunction!(wsgi::server::heartbeat_layout, m)?)?;
    m.add_function(wrap_pyfunction!(wsgi::server::metrics_layout, m)?)?;
    m.add_class::<wsgi::file_wrapper::FileWrapper>()?;
    m.add_class::<wsgi::input::Input>()?;
    m.add_class::<wsgi::start_response::StartResponse>()?;
    m.add_class::<wsgi::compressor::Compressor>()?;
    m.add(
        "RequestBodyError",
        m.py().get_type::<wsgi::input::RequestBodyError>(),
    )?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // The field-parse bound is one constant (`qiao_http::limits`); the
    // portable middleware reads it from here.
    m.add("MAX_FIELD_PARSE", qiao_http::limits::MAX_FIELD_PARSE)?;
    Ok(())
}
