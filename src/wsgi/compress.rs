//! `--compress` in the WSGI ring: the `compress` group of
//! `serve(config=...)`, the coding each request negotiates, and
//! [`Compression`], the per-response state `start_response` consults
//! when it writes the head and each body piece. The codec runs with the GIL released on large
//! pieces, as `qiao._qiao.Compressor` does. The rules themselves are
//! sans-IO, in [`qiao_http::compress`].

use std::sync::Arc;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::wsgi::compressor::GIL_RELEASE_BYTES;
use qiao_http::codec::Kind;
use qiao_http::compress::{
    decide, level_slot, rewrite_head, AcceptEncoding, BodyEncoder, CompressConfig, Decision,
    FieldRanges,
};
use qiao_http::limits::MAX_FIELD_PARSE;
use qiao_io::Exchange;

/// The keys of `serve(config={"compress": ...})`: the keyword arguments
/// of the portable `Compress` class, with the same meaning.
const KEYS: [&str; 4] = ["min_size", "types", "codings", "levels"];

/// Reads `{"min_size": int, "types": [str], "codings": [str], "levels":
/// {coding: int}}`. Every key is required: the Python side passes the
/// settings table's values and the portable class's lists, so there is
/// one default of each, in Python.
pub(crate) fn config_from_py(dict: &Bound<'_, PyDict>) -> PyResult<CompressConfig> {
    for key in dict.keys() {
        let key = key.cast::<PyString>()?.to_cow()?.into_owned();
        if !KEYS.contains(&key.as_str()) {
            return Err(PyValueError::new_err(format!(
                "compress: unknown setting {key:?} (expected one of {KEYS:?})"
            )));
        }
    }
    let item = |key: &str| {
        dict.get_item(key)?
            .ok_or_else(|| PyValueError::new_err(format!("compress: {key:?} is required")))
    };
    let min_size = item("min_size")?;
    let min_size = min_size.extract::<u64>().map_err(|_| {
        PyValueError::new_err(format!(
            "compress: min_size must be an integer >= 0, not {min_size}"
        ))
    })?;
    let types: Vec<String> = item("types")?.extract()?;
    let codings = (item("codings")?.extract::<Vec<String>>()?.iter())
        .map(|c| coding(c))
        .collect::<PyResult<Vec<_>>>()?;
    let types: Vec<&str> = types.iter().map(String::as_str).collect();
    let mut config = CompressConfig::new(min_size, &types, &codings);
    for (name, level) in item("levels")?.cast::<PyDict>()?.iter() {
        let kind = coding(&name.extract::<String>()?)?;
        let level: i32 = level.extract()?;
        let (lo, hi, _) = kind.levels();
        if !(lo..=hi).contains(&level) {
            return Err(PyValueError::new_err(format!(
                "compress: {} level must be in {lo}..={hi}, not {level}",
                kind.token()
            )));
        }
        config.levels[level_slot(kind)] = level;
    }
    Ok(config)
}

fn coding(token: &str) -> PyResult<Kind> {
    Kind::from_token(token).ok_or_else(|| {
        PyValueError::new_err(format!(
            "compress: unknown coding {token:?}: choose among 'zstd', 'br', 'gzip'"
        ))
    })
}

/// The request's `Accept-Encoding` fields, joined by `", "` as in the
/// environ, up to the part that is parsed ([`MAX_FIELD_PARSE`]); empty
/// (no allocation) when there is none. Copied because the head's buffer
/// moves on with the body reader; parsed only for a response that may be
/// compressed.
fn accept_encoding(ex: &Exchange<'_>) -> Vec<u8> {
    // A uwsgi request carries its headers as CGI variables.
    let name: &[u8] = if ex.head.cgi {
        b"HTTP_ACCEPT_ENCODING"
    } else {
        b"accept-encoding"
    };
    let mut joined = Vec::new();
    for (n, v) in &ex.head.headers {
        if ex.bytes(n).eq_ignore_ascii_case(name) {
            if !joined.is_empty() {
                joined.extend_from_slice(b", ");
            }
            joined.extend_from_slice(ex.bytes(v));
        }
    }
    joined.truncate(MAX_FIELD_PARSE);
    joined
}

/// Compression of one response: what was negotiated, then the encoder
/// once the head says the body is encoded.
pub struct Compression {
    config: Arc<CompressConfig>,
    /// The request's `Accept-Encoding`, see [`accept_encoding`].
    accept: Vec<u8>,
    /// Boxed: codec state is large, and most responses never have one.
    encoder: Option<Box<BodyEncoder>>,
}

fn codec_error(e: std::io::Error) -> PyErr {
    PyRuntimeError::new_err(format!("compression failed: {e}"))
}

impl Compression {
    pub fn new(config: &Arc<CompressConfig>, ex: &Exchange<'_>) -> Self {
        Compression {
            accept: accept_encoding(ex),
            config: config.clone(),
            encoder: None,
        }
    }

    /// Decides for the head about to be written and rewrites it; returns
    /// whether the body is encoded (its length is then unknown). `length`:
    /// the body's length if known before it is read; `declared`: the
    /// application's `Content-Length`, which still bounds what it sends.
    pub(crate) fn plan_head(
        &mut self,
        status: u16,
        fields: &mut Vec<u8>,
        ranges: &mut FieldRanges,
        (length, declared): (Option<u64>, Option<u64>),
        is_head: bool,
    ) -> PyResult<bool> {
        let view = ranges
            .iter()
            .map(|&(s, m, e)| (&fields[s..m], &fields[m..e]));
        let (config, accept) = (&self.config, &self.accept);
        let decision = decide(config, status, view, length, || {
            let mut parsed = AcceptEncoding::default();
            parsed.add(accept);
            parsed.choose(&config.codings)
        });
        rewrite_head(fields, ranges, decision);
        let Decision::Encode { coding, .. } = decision else {
            return Ok(false);
        };
        if !is_head {
            let level = self.config.level(coding);
            let encoder = BodyEncoder::new(coding, level, declared).map_err(codec_error)?;
            self.encoder = Some(Box::new(encoder));
        }
        Ok(true)
    }

    /// The encoded form of a body piece, or None when the body is sent as
    /// it is.
    pub fn encode(&mut self, py: Python<'_>, data: &[u8]) -> PyResult<Option<Vec<u8>>> {
        let Some(encoder) = self.encoder.as_mut() else {
            return Ok(None);
        };
        let out = if data.len() >= GIL_RELEASE_BYTES {
            py.detach(|| encoder.feed(data))
        } else {
            encoder.feed(data)
        };
        out.map(Some).map_err(codec_error)
    }

    /// The application's declared length has been encoded in whole (more
    /// of its body is dropped, and need not be asked for).
    pub(crate) fn input_complete(&self) -> bool {
        self.encoder.as_ref().is_some_and(|e| e.is_complete())
    }

    /// The encoded body is shorter than the application declared: it must
    /// stay cut (see [`BodyEncoder`]), [`finish`](Self::finish) not called.
    pub fn is_short(&self) -> bool {
        self.encoder.as_ref().is_some_and(|e| e.is_short())
    }

    /// The encoded stream's last bytes, once; None when not encoding.
    pub fn finish(&mut self) -> PyResult<Option<Vec<u8>>> {
        match self.encoder.take() {
            Some(encoder) => encoder.finish().map(Some).map_err(codec_error),
            None => Ok(None),
        }
    }
}
