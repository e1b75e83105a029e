//! The WSGI ring (PEP 3333), the only code that touches Python: the
//! environ, `wsgi.input`, `start_response`/`write`, `wsgi.file_wrapper`,
//! calling the application and sending its result, `--compress`, and the
//! `serve` entry point (`server.rs`) that reads its configuration once
//! (`config.rs`), builds the server (`setup.rs`) and runs the I/O ring's
//! loops with the GIL released.

pub mod app;
pub mod cgi;
pub mod compress;
pub mod compressor;
pub mod config;
pub mod environ;
pub mod file_wrapper;
pub mod input;
pub mod kept;
pub mod native_access;
pub mod reuse;
pub mod server;
pub mod setup;
pub mod start_response;
pub mod threads;

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
