//! Qiao: a WSGI server whose engine is Rust. This file only wires the
//! five rings together and registers the Python-visible items (as
//! pydantic-core's `lib.rs` does); each ring documents what it owns
//! (docs/architecture.md walks a request through them):
//!
//! - [`http`]: sans-IO HTTP/1.1 (no sockets, no Python)
//! - [`io`]: sockets, the event loop, connection state, timers
//! - [`front`]: TLS and HTTP/2, feeding the loop HTTP/1.1 in-process
//! - [`native`]: GIL-free static files and proxy
//! - [`wsgi`]: the only code that touches Python (PEP 3333)

// Qiao's event loop is epoll, its files go out with Linux's sendfile and its
// workers use prctl: other systems get this one line instead of a pile of
// compiler errors.
#[cfg(not(target_os = "linux"))]
compile_error!("Qiao runs on Linux only (epoll, sendfile, prctl); see the README's platform note");

pub mod codec;
pub mod front;
pub mod http;
pub mod io;
pub mod native;
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
    m.add_class::<codec::Compressor>()?;
    m.add(
        "RequestBodyError",
        m.py().get_type::<wsgi::input::RequestBodyError>(),
    )?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
