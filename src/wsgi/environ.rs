//! Building the PEP 3333 environ from a parsed head without copying the
//! head twice: keys are interned Python strings made once (fixed CGI keys
//! through `intern!`, `HTTP_*` keys through a per-thread cache), the
//! constant entries are copied from a template dict, and every value is
//! decoded straight from the connection buffer as latin-1, as PEP 3333
//! requires of native strings. Short values that repeat from request to
//! request (Host, User-Agent, the client address...) come from a small
//! per-thread cache of `str` objects: sharing an immutable `str` between
//! environs is invisible to the app, and skips an allocation, a decode and
//! a deallocation each.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use pyo3::{ffi, intern};

use qiao_http::forwarded::{ForwardedFields, Origin, TrustedProxies};
use qiao_http::request::percent_decode;
use qiao_io::Exchange;

/// Distinct header names whose `HTTP_*` keys are cached per thread; past
/// this, keys of unusual headers are built per request.
pub(crate) const HEADER_KEY_CACHE_SIZE: usize = 512;
/// Distinct values kept in the per-thread value cache.
pub(crate) const VALUE_CACHE_SIZE: usize = 256;
/// Longest value (bytes) the value cache keeps; longer ones (cookies,
/// tokens) rarely repeat.
pub(crate) const MAX_CACHED_VALUE: usize = 64;
/// Cache misses after which the value cache is emptied, so it follows the
/// values that repeat now rather than those of the first requests.
pub(crate) const VALUE_CACHE_REFRESH_MISSES: u32 = 4096;

/// The environ keys `fill_environ` sets for every request (see the
/// template in `server.rs`).
pub const ALWAYS_SET: [&str; 11] = [
    "REQUEST_METHOD",
    "PATH_INFO",
    "QUERY_STRING",
    "RAW_URI",
    "REQUEST_URI",
    "SERVER_PROTOCOL",
    "REMOTE_ADDR",
    "REMOTE_PORT",
    "SERVER_NAME",
    "SERVER_PORT",
    "wsgi.input",
];

/// Decodes bytes as latin-1 into a `str` (every byte is one code point).
pub fn latin1<'py>(py: Python<'py>, bytes: &[u8]) -> Bound<'py, PyString> {
    // SAFETY: valid pointer and length; latin-1 decoding cannot fail
    // except on memory exhaustion, which pyo3 turns into a panic-free Err.
    unsafe {
        let ptr = ffi::PyUnicode_DecodeLatin1(
            bytes.as_ptr().cast(),
            bytes.len() as ffi::Py_ssize_t,
            std::ptr::null(),
        );
        Bound::from_owned_ptr_or_err(py, ptr)
            .map(|b| b.cast_into_unchecked())
            .unwrap_or_else(|_| PyString::new(py, ""))
    }
}

/// The caches' hasher: FxHash (rustc-hash), a word at a time. The caches
/// are bounded, so SipHash's flooding resistance buys nothing here, and a
/// byte-at-a-time hash (FNV, tried first) cost more than the cache saved
/// (cargo bench `environ`: -20% on a browser-like head, -44% on 100 fields).
type FastHash = BuildHasherDefault<rustc_hash::FxHasher>;

/// What the environ builder needs to know of the server's settings.
#[derive(Debug, Default)]
pub struct EnvironConfig {
    /// `--forwarded-allow-ips`, to skip trusted hops in forwarding lists.
    pub trusted: std::sync::Arc<TrustedProxies>,
    /// The listener's own scheme is https (the default `SERVER_PORT`).
    pub https: bool,
}

/// Per-thread state of the environ builder.
#[derive(Default)]
pub struct EnvironCache {
    header_keys: HashMap<Vec<u8>, Py<PyString>, FastHash>,
    values: HashMap<Vec<u8>, Py<PyString>, FastHash>,
    misses: u32,
    scratch: Vec<u8>,
    key: Vec<u8>,
}

impl EnvironCache {
    /// `bytes` as a latin-1 `str`, shared with earlier requests when short
    /// and seen before.
    pub(crate) fn value<'py>(&mut self, py: Python<'py>, bytes: &[u8]) -> Bound<'py, PyString> {
        if bytes.len() > MAX_CACHED_VALUE {
            return latin1(py, bytes);
        }
        if let Some(v) = self.values.get(bytes) {
            return v.bind(py).clone();
        }
        self.misses += 1;
        if self.misses >= VALUE_CACHE_REFRESH_MISSES {
            self.misses = 0;
            self.values.clear();
        }
        let v = latin1(py, bytes);
        if self.values.len() < VALUE_CACHE_SIZE {
            self.values.insert(bytes.to_vec(), v.clone().unbind());
        }
        v
    }

    /// An environ key given as it is (a uwsgi variable name, or an `HTTP_*`
    /// key built by `header_key`): interned and cached, up to
    /// `HEADER_KEY_CACHE_SIZE` distinct keys; past that, built per request.
    pub(crate) fn raw_key<'py>(&mut self, py: Python<'py>, name: &[u8]) -> Bound<'py, PyString> {
        if let Some(k) = self.header_keys.get(name) {
            return k.bind(py).clone();
        }
        if self.header_keys.len() < HEADER_KEY_CACHE_SIZE {
            let key = PyString::intern(py, &String::from_utf8_lossy(name));
            self.header_keys.insert(name.to_vec(), key.clone().unbind());
            return key;
        }
        latin1(py, name)
    }

    /// The interned `HTTP_*` key for a header name, or `None` for names
    /// that must not reach the environ (containing `_`).
    fn header_key<'py>(&mut self, py: Python<'py>, name: &[u8]) -> Option<Bound<'py, PyString>> {
        let mut key = std::mem::take(&mut self.key);
        if !http_key(name, &mut key) {
            self.key = key;
            return None;
        }
        let interned = self.raw_key(py, &key);
        self.key = key;
        Some(interned)
    }
}

/// The `HTTP_*` environ key of the request field `name`, into `out`
/// (emptied first); false for names that must not reach the environ.
pub(crate) fn http_key(name: &[u8], out: &mut Vec<u8>) -> bool {
    // `X_Forwarded_For` would alias `X-Forwarded-For`: a client could
    // spoof headers a proxy sets. Dropped, as nginx and gunicorn do.
    if name.contains(&b'_') {
        return false;
    }
    out.clear();
    out.extend_from_slice(b"HTTP_");
    out.extend(name.iter().map(|&b| {
        if b == b'-' {
            b'_'
        } else {
            b.to_ascii_uppercase()
        }
    }));
    true
}

/// What joins the values of a repeated request field in the environ.
pub(crate) fn join_separator(name: &[u8]) -> &'static str {
    if name.eq_ignore_ascii_case(b"cookie") {
        "; "
    } else {
        ", "
    }
}

/// Fills `environ` (a copy of the template, the TLS one for a request
/// that came over TLS) for one HTTP request (a uwsgi one's variables are
/// the environ: `cgi::fill_from_cgi`).
pub fn fill_environ<'py>(
    py: Python<'py>,
    environ: &Bound<'py, PyDict>,
    ex: &Exchange<'_>,
    cache: &mut EnvironCache,
    config: &EnvironConfig,
) -> PyResult<()> {
    let head = ex.head;
    let method = match ex.bytes(&head.method) {
        b"GET" => intern!(py, "GET").clone(),
        b"POST" => intern!(py, "POST").clone(),
        b"HEAD" => intern!(py, "HEAD").clone(),
        b"PUT" => intern!(py, "PUT").clone(),
        b"DELETE" => intern!(py, "DELETE").clone(),
        other => latin1(py, other),
    };
    environ.set_item(intern!(py, "REQUEST_METHOD"), method)?;
    let path = ex.bytes(&head.path);
    percent_decode(
        if path.is_empty() { b"/" } else { path },
        &mut cache.scratch,
    );
    environ.set_item(intern!(py, "PATH_INFO"), latin1(py, &cache.scratch))?;
    environ.set_item(
        intern!(py, "QUERY_STRING"),
        latin1(py, ex.bytes(&head.query)),
    )?;
    let target = latin1(py, ex.bytes(&head.target));
    environ.set_item(intern!(py, "RAW_URI"), &target)?;
    environ.set_item(intern!(py, "REQUEST_URI"), target)?;
    let protocol = match head.version {
        // The front forwards each HTTP/2 stream as an HTTP/1.1 request.
        _ if ex.peer.http2 => intern!(py, "HTTP/2"),
        qiao_http::Version::Http10 => intern!(py, "HTTP/1.0"),
        qiao_http::Version::Http11 => intern!(py, "HTTP/1.1"),
    };
    environ.set_item(intern!(py, "SERVER_PROTOCOL"), protocol)?;
    environ.set_item(
        intern!(py, "REMOTE_ADDR"),
        cache.value(py, ex.peer.addr.as_bytes()),
    )?;
    environ.set_item(
        intern!(py, "REMOTE_PORT"),
        cache.value(py, ex.peer.port.as_bytes()),
    )?;

    let mut fields = ForwardedFields::default();
    for (name_r, value_r) in &head.headers {
        let name = ex.bytes(name_r);
        let value = ex.bytes(value_r);
        if ex.peer.trusted {
            fields.add(name, value);
        }
        let key = if name.eq_ignore_ascii_case(b"content-type") {
            intern!(py, "CONTENT_TYPE").clone()
        } else if name.eq_ignore_ascii_case(b"content-length") {
            intern!(py, "CONTENT_LENGTH").clone()
        } else if name.eq_ignore_ascii_case(b"host") && head.authority.is_some() {
            // The absolute-form authority replaces Host (RFC 9112 §3.2.2).
            continue;
        } else {
            match cache.header_key(py, name) {
                Some(k) => k,
                None => continue,
            }
        };
        match environ.get_item(&key)? {
            Some(prev) => {
                let joined = format!(
                    "{}{}{}",
                    prev.cast::<PyString>()?.to_cow()?,
                    join_separator(name),
                    latin1(py, value).to_cow()?
                );
                environ.set_item(key, joined)?;
            }
            None => environ.set_item(key, cache.value(py, value))?,
        }
    }
    if let Some(auth) = &head.authority {
        environ.set_item(intern!(py, "HTTP_HOST"), latin1(py, ex.bytes(auth)))?;
    }
    if let qiao_http::Framing::Length(n) = head.framing {
        environ.set_item(intern!(py, "CONTENT_LENGTH"), itoa::Buffer::new().format(n))?;
    }
    let origin = if fields.is_empty() {
        Origin::default()
    } else {
        fields.origin(&config.trusted)
    };
    let https =
        apply_origin(py, environ, &origin, cache)?.unwrap_or(config.https || ex.peer.tls.is_some());
    let host = origin.host.or_else(|| {
        head.authority
            .as_ref()
            .or(head.host.as_ref())
            .map(|r| ex.bytes(r))
    });
    let (name, port) = match host {
        Some(h) => split_host(h),
        None => (&b""[..], &b""[..]),
    };
    if name.is_empty() {
        environ.set_item(
            intern!(py, "SERVER_NAME"),
            PyString::new(py, &ex.listener.server_name),
        )?;
        environ.set_item(
            intern!(py, "SERVER_PORT"),
            PyString::new(py, &ex.listener.server_port),
        )?;
    } else {
        environ.set_item(intern!(py, "SERVER_NAME"), cache.value(py, name))?;
        let port = if port.is_empty() {
            if https {
                intern!(py, "443").clone()
            } else {
                intern!(py, "80").clone()
            }
        } else {
            cache.value(py, port)
        };
        environ.set_item(intern!(py, "SERVER_PORT"), port)?;
    }
    Ok(())
}

/// Applies what trusted proxies said: `REMOTE_ADDR`, `wsgi.url_scheme`
/// and `HTTP_HOST` (the caller derives `SERVER_NAME`/`SERVER_PORT` from the
/// host). Returns whether the forwarded scheme is https, if one was given.
fn apply_origin<'py>(
    py: Python<'py>,
    environ: &Bound<'py, PyDict>,
    origin: &Origin<'_>,
    cache: &mut EnvironCache,
) -> PyResult<Option<bool>> {
    if let Some(client) = origin.client {
        environ.set_item(intern!(py, "REMOTE_ADDR"), cache.value(py, client))?;
    }
    if let Some(host) = origin.host {
        environ.set_item(intern!(py, "HTTP_HOST"), cache.value(py, host))?;
    }
    match origin.proto {
        Some(p) => {
            let https = p.eq_ignore_ascii_case(b"https");
            let scheme = if https {
                intern!(py, "https")
            } else {
                intern!(py, "http")
            };
            environ.set_item(intern!(py, "wsgi.url_scheme"), scheme)?;
            Ok(Some(https))
        }
        None => Ok(None),
    }
}

/// `host[:port]` or `[v6]:port` → (host, port).
fn split_host(value: &[u8]) -> (&[u8], &[u8]) {
    if value.first() == Some(&b'[') {
        if let Some(end) = value.iter().position(|&b| b == b']') {
            let rest = &value[end + 1..];
            return (&value[..=end], rest.strip_prefix(b":").unwrap_or(b""));
        }
        return (value, b"");
    }
    match value.iter().rposition(|&b| b == b':') {
        Some(i) => (&value[..i], &value[i + 1..]),
        None => (value, b""),
    }
}
