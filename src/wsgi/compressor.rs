//! `qiao._qiao.Compressor`: the Python face of the engine's streaming
//! codecs (`qiao_http::codec`), used by `qiao.middleware.Compress`. It
//! releases the GIL while it compresses a large chunk; everything else is
//! the codec's.

use std::io;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use qiao_http::codec::{Encoder, Kind};

/// Chunks at least this long are compressed with the GIL released, so
/// other threads run Python meanwhile; shorter ones are not worth the
/// release and re-acquire.
pub(crate) const GIL_RELEASE_BYTES: usize = 16 * 1024;

/// `qiao._qiao.Compressor(kind, level=None)`: a streaming compressor for
/// one response body. `kind` is `"gzip"`, `"br"` or `"zstd"`. Not for use
/// by two threads at once (one response is one thread's).
#[pyclass(module = "qiao._qiao")]
pub struct Compressor {
    kind: Kind,
    level: i32,
    encoder: Option<Encoder>,
}

fn os_error(e: io::Error) -> PyErr {
    PyRuntimeError::new_err(format!("compression failed: {e}"))
}

impl Compressor {
    fn encoder(&mut self) -> PyResult<&mut Encoder> {
        self.encoder
            .as_mut()
            .ok_or_else(|| PyRuntimeError::new_err("the compressor is finished"))
    }
}

#[pymethods]
impl Compressor {
    #[new]
    #[pyo3(signature = (kind, level=None))]
    fn new(kind: &str, level: Option<i32>) -> PyResult<Self> {
        let kind = Kind::from_token(kind).ok_or_else(|| {
            PyValueError::new_err(format!(
                "unknown coding {kind:?}: use 'gzip', 'br' or 'zstd'"
            ))
        })?;
        let (lo, hi, default) = kind.levels();
        let level = level.unwrap_or(default);
        if !(lo..=hi).contains(&level) {
            return Err(PyValueError::new_err(format!(
                "{} level must be in {lo}..={hi}, not {level}",
                kind.token()
            )));
        }
        let encoder = Encoder::new(kind, level).map_err(os_error)?;
        Ok(Compressor {
            kind,
            level,
            encoder: Some(encoder),
        })
    }

    /// The content-coding token: `"gzip"`, `"br"` or `"zstd"`.
    #[getter]
    fn kind(&self) -> &'static str {
        self.kind.token()
    }

    #[getter]
    fn level(&self) -> i32 {
        self.level
    }

    /// Compresses `data`; returns the output produced so far (maybe `b""`).
    fn compress<'py>(&mut self, py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let encoder = self.encoder()?;
        let out = if data.len() >= GIL_RELEASE_BYTES {
            py.detach(|| encoder.compress(data))
        } else {
            encoder.compress(data)
        };
        Ok(PyBytes::new(py, &out.map_err(os_error)?))
    }

    /// Sync flush: everything fed so far becomes decodable output.
    fn flush<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let out = self.encoder()?.flush().map_err(os_error)?;
        Ok(PyBytes::new(py, &out))
    }

    /// Ends the stream and returns its last bytes; the compressor is then
    /// finished and every further call raises `RuntimeError`.
    fn finish<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let encoder = self
            .encoder
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("the compressor is finished"))?;
        let out = encoder.finish().map_err(os_error)?;
        Ok(PyBytes::new(py, &out))
    }
}
