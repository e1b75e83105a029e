//! The environ of a request that came by the uwsgi protocol: its CGI
//! variables, set by the front server (nginx's `uwsgi_params`), are the
//! environ, as they are (`PATH_INFO` arrives decoded, so it is not decoded
//! again). Keys a peer must not set (`wsgi.*`) are dropped; the scheme
//! comes from `UWSGI_SCHEME` or `HTTPS`; keys PEP 3333 requires but the
//! peer left out get the listener's values.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use super::environ::{EnvironCache, EnvironConfig};
use qiao_io::Exchange;

/// Fills `environ` (a copy of the template) from the uwsgi variables.
pub(crate) fn fill_from_cgi<'py>(
    py: Python<'py>,
    environ: &Bound<'py, PyDict>,
    ex: &Exchange<'_>,
    cache: &mut EnvironCache,
    config: &EnvironConfig,
) -> PyResult<()> {
    let head = ex.head;
    let mut https = config.https;
    let mut scheme_given = false;
    let (mut has_name, mut has_port, mut has_raw) = (false, false, false);
    for (k, v) in &head.headers {
        let (name, value) = (ex.bytes(k), ex.bytes(v));
        if name.starts_with(b"wsgi.") || name.starts_with(b"qiao.") {
            continue;
        }
        match name {
            b"UWSGI_SCHEME" => {
                https = value.eq_ignore_ascii_case(b"https");
                scheme_given = true;
            }
            b"HTTPS" if !scheme_given => {
                https = value.eq_ignore_ascii_case(b"on") || value == b"1";
            }
            b"CONTENT_LENGTH" | b"CONTENT_TYPE" if value.is_empty() => continue,
            b"SERVER_NAME" => has_name = true,
            b"SERVER_PORT" => has_port = true,
            b"RAW_URI" => has_raw = true,
            _ => {}
        }
        let key = cache.raw_key(py, name);
        environ.set_item(key, cache.value(py, value))?;
    }
    if !has_raw {
        environ.set_item(
            intern!(py, "RAW_URI"),
            cache.value(py, ex.bytes(&head.target)),
        )?;
    }
    if !has_name {
        environ.set_item(
            intern!(py, "SERVER_NAME"),
            PyString::new(py, &ex.listener.server_name),
        )?;
    }
    if !has_port {
        environ.set_item(
            intern!(py, "SERVER_PORT"),
            PyString::new(py, &ex.listener.server_port),
        )?;
    }
    let scheme = if https {
        intern!(py, "https")
    } else {
        intern!(py, "http")
    };
    environ.set_item(intern!(py, "wsgi.url_scheme"), scheme)?;
    Ok(())
}
