//! Qiao: a WSGI server whose engine is Rust. This file only wires the
//! three rings together and registers the Python-visible items (as
//! pydantic-core's `lib.rs` does); each ring documents what it owns:
//!
//! - [`http`]: sans-IO HTTP/1.1 (no sockets, no Python)
//! - [`io`]: sockets, the event loop, connection state, timers
//! - [`wsgi`]: the only code that touches Python (PEP 3333)

pub mod http;
