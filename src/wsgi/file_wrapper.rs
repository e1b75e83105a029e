//! `wsgi.file_wrapper`: wraps a file-like object so the server can send a
//! real file with `sendfile(2)` (see `response.rs`), and iterates in
//! `blksize` blocks for anything else, as PEP 3333 describes.

use pyo3::prelude::*;

/// Default block size of a file wrapper, as in wsgiref.
const DEFAULT_BLKSIZE: usize = 8192;

#[pyclass(module = "qiao._qiao")]
pub struct FileWrapper {
    #[pyo3(get)]
    pub filelike: Py<PyAny>,
    #[pyo3(get)]
    pub blksize: usize,
}

#[pymethods]
impl FileWrapper {
    #[new]
    #[pyo3(signature = (filelike, blksize=DEFAULT_BLKSIZE))]
    fn new(filelike: Py<PyAny>, blksize: usize) -> Self {
        FileWrapper {
            filelike,
            blksize: blksize.max(1),
        }
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let data = self
            .filelike
            .bind(py)
            .call_method1("read", (self.blksize,))?;
        Ok((data.len()? > 0).then(|| data.unbind()))
    }

    /// Closes the wrapped file, if it can be closed.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let f = self.filelike.bind(py);
        if f.hasattr("close")? {
            f.call_method0("close")?;
        }
        Ok(())
    }
}
