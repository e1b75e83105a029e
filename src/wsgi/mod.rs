//! The WSGI ring (PEP 3333), the only code that touches Python: the
//! environ, `wsgi.input`, `start_response`/`write`, `wsgi.file_wrapper`,
//! calling the application and sending its result, `--compress`, and the
//! `serve` entry point (`server.rs`) that reads its configuration once
//! (`config.rs`), builds the server (`setup/`) and runs the I/O ring's
//! loops with the GIL released.

mod app;
mod cgi;
mod compress;
pub mod compressor;
mod config;
pub mod environ;
pub mod file_wrapper;
pub mod input;
mod kept;
mod native_access;
mod reuse;
pub mod server;
pub mod setup;
pub mod start_response;
mod threads;
pub mod tls_environ;

use std::os::fd::RawFd;
use std::time::Instant;

use pyo3::Python;

use qiao_io::sock::{self, Interest};

/// The way the WSGI ring waits for a socket: `sock::wait` with the GIL
/// released, so other threads run Python meanwhile.
pub(crate) fn gil_free_wait(
    py: Python<'_>,
) -> impl FnMut(RawFd, Interest, Instant) -> std::io::Result<()> + '_ {
    move |fd, interest, deadline| py.detach(|| sock::wait(fd, interest, deadline))
}
