//! The WSGI ring (PEP 3333), the only code that touches Python: the
//! environ, `wsgi.input`, `start_response`/`write`, `wsgi.file_wrapper`,
//! calling the application and sending its result, and the `serve` entry
//! point that runs the I/O ring's loops with the GIL released.

pub mod app;
pub mod environ;
pub mod file_wrapper;
pub mod input;
pub mod server;
pub mod start_response;
