//! The sans-IO HTTP/1.1 ring: bytes in, parsed heads and body spans out;
//! response heads and frames out. No sockets, no Python, no clock but the
//! `Date` cache: everything here is tested on raw bytes alone (whole, byte
//! by byte and in random splits, see `crates/http/tests/http_*.rs`) and fuzzed (`fuzz/`).
//!
//! Its own crate, so the compiler keeps it sans-IO: it depends on no
//! sockets library (mio, tokio), no TLS and no pyo3.
//!
//! - [`request`]: the request head (httparse + RFC 9112 semantics)
//! - [`body`]: Content-Length and chunked body decoding
//! - [`codec`]: streaming gzip, brotli and zstd encoders
//! - [`conn`]: a connection's request side as a state machine (phases, steps)
//! - [`compress`]: `--compress` decisions (Accept-Encoding, which responses, head rewrite)
//! - [`conditional`]: the precondition sequence (304, 412, 206/416) of one representation
//! - [`response`]: response framing decisions and serialisation
//! - [`error`]: why a request is refused, mapped to its status code
//! - [`fields`]: conditional and negotiation fields (dates, ETags, Range, codings)
//! - [`forwarded`]: what trusted proxies say about the original request
//! - [`limits`]: every bound, as a named constant
//! - [`path`]: dot segments, and what stays below a route's prefix
//! - [`proxy_protocol`]: HAProxy's PROXY v1/v2 connection header
//! - [`uwsgi`]: the uwsgi binary protocol (nginx `uwsgi_pass`)
//! - [`upstream_head`]: an upstream's response head (the native proxy's client side)

mod body;
pub mod codec;
pub mod compress;
pub mod conditional;
pub mod conn;
pub mod date;
mod error;
pub mod fields;
pub mod forwarded;
pub mod limits;
pub mod path;
pub mod proxy_protocol;
pub mod request;
pub mod response;
pub mod upstream_head;
pub mod uwsgi;

pub use body::{BodyDecoder, Decoded};
pub use error::ParseError;
pub use limits::Limits;
pub use request::{match_h2_preface, parse_head, Framing, RequestHead, Status, Version};
