//! The Python entry point `_qiao.serve(...)`: reads the configuration
//! (`config.rs`), builds the worker's event loop over the listening
//! sockets Python bound (`setup/`) and serves it with the I/O ring's
//! thread pool, the GIL released; the calling (main) thread
//! runs the pool's monitor and Python's signal handlers. Returns when a
//! signal handler raised, or the server was stopped or drained.

use std::collections::HashMap;
use std::os::fd::RawFd;
use std::sync::Arc;

use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;

use super::config::Config;
use super::setup::{Protocol, Server, SharedBlock};
use qiao_io::heartbeat::{self, SLOT_SIZE};
use qiao_io::{pool, Shared};

/// A handle on a running server, made before `serve` and passed to it, so
/// Python signal handlers can ask for a graceful or an immediate stop.
/// Its methods only set a flag and wake the loops: safe in a handler.
#[pyclass(module = "qiao._qiao")]
pub struct Control {
    shared: Arc<Shared>,
}

#[pymethods]
impl Control {
    #[new]
    fn new() -> Self {
        Control {
            shared: Arc::new(Shared::default()),
        }
    }

    /// Graceful stop: no new connections, in-flight requests finish, each
    /// connection's next response says `Connection: close`.
    fn drain(&self) {
        self.shared.drain();
    }

    /// Immediate stop: every connection is closed.
    fn stop(&self) {
        self.shared.stop();
    }

    /// Requests served so far by this process.
    #[getter]
    fn served(&self) -> u64 {
        self.shared.served()
    }

    #[getter]
    fn draining(&self) -> bool {
        self.shared.draining()
    }

    /// The loops finished (stopped, or drained): nothing is served any
    /// more, though a request given up after `--timeout` may still run.
    #[getter]
    fn finished(&self) -> bool {
        self.shared.finished()
    }

    /// Gives up the requests the supervisor marked as over `--timeout` in
    /// this worker's `threads` heartbeat slots at `(heartbeat, offset)`: a
    /// drain then finishes without waiting for them. Returns their slot
    /// numbers (each is taken once).
    fn abandon(
        &self,
        py: Python<'_>,
        heartbeat: Py<PyAny>,
        offset: usize,
        threads: usize,
    ) -> PyResult<Vec<usize>> {
        let at = (heartbeat, offset);
        let block = SharedBlock::get(py, Some(&at), threads * SLOT_SIZE, "heartbeat")?;
        let Some(block) = block.filter(|_| threads > 0) else {
            return Ok(Vec::new());
        };
        // SAFETY: a checked block of `threads` slots, held for the call.
        Ok(unsafe { heartbeat::take_marked(block.ptr(0), threads, &self.shared) })
    }
}

/// Serves `app` on already-listening sockets until a signal handler
/// raises (the exception propagates) or the process is told to stop.
///
/// `listeners`: `(fd, is_unix, protocol)` with protocol `"http"`,
/// `"uwsgi"` or `"tls"`; the caller keeps the sockets open. `config`: the
/// settings, grouped (see `config.rs`, built by
/// `qiao.server.engine_options`). `control`, `heartbeat` and `metrics`:
/// what a supervisor gives its worker.
#[pyfunction]
#[pyo3(signature = (app, listeners, *, config, control=None, heartbeat=None, metrics=None))]
pub fn serve(
    py: Python<'_>,
    app: Py<PyAny>,
    listeners: Vec<(RawFd, bool, String)>,
    config: &Bound<'_, PyAny>,
    control: Option<Py<Control>>,
    heartbeat: Option<(Py<PyAny>, usize)>,
    metrics: Option<(Py<PyAny>, usize)>,
) -> PyResult<()> {
    let config = Config::from_py(config)?;
    let listeners = (listeners.into_iter())
        .map(|(fd, unix, protocol)| Ok((fd, unix, Protocol::parse(&protocol)?)))
        .collect::<PyResult<Vec<_>>>()?;
    let stop = match &control {
        Some(c) => c.borrow(py).shared.clone(),
        None => Arc::new(Shared::default()),
    };
    let server = Server::build(py, app, &listeners, config, stop, heartbeat, metrics)?;
    server.run(py)
}

impl Server {
    /// Runs the serving threads with the GIL released, this thread
    /// running the pool's monitor and Python's signal handlers, until a
    /// handler raises or the loops stop.
    pub fn run(self, py: Python<'_>) -> PyResult<()> {
        let Server {
            lp,
            factory,
            threads,
            heartbeats,
            front,
            drain,
            blocks,
        } = self;
        let mut pending: Option<PyErr> = None;
        let result = py.detach(|| {
            let mut tick = || match Python::attach(|py| py.check_signals()) {
                Ok(()) => true,
                Err(e) => {
                    pending = Some(e);
                    false
                }
            };
            let result = pool::run(lp, &factory, threads, heartbeats, &mut tick);
            // Every native request is over: their last records go to the
            // log before the caller stops its writer.
            if let Some(d) = drain {
                d.finish();
            }
            result
        });
        drop(front);
        // The pool is gone: nothing points into the shared blocks now.
        drop(blocks);
        if let Some(e) = pending {
            return Err(e);
        }
        result.map_err(|e| PyOSError::new_err(format!("event loop failed: {e}")))
    }
}

/// The heartbeat slots' layout (`crates/io/src/heartbeat.rs`), so the supervisor
/// reads them without repeating it: sizes, field offsets, the paused bit
/// and the supervisor's mark.
#[pyfunction]
pub(crate) fn heartbeat_layout() -> HashMap<&'static str, u64> {
    use qiao_io::heartbeat as hb;
    HashMap::from([
        ("slot_size", SLOT_SIZE as u64),
        ("busy", hb::BUSY as u64),
        ("alive", hb::ALIVE as u64),
        ("thread", hb::THREAD as u64),
        ("line_len", hb::LINE_LEN as u64),
        ("abort", hb::ABORT as u64),
        ("line", hb::LINE as u64),
        ("line_capacity", hb::LINE_CAPACITY as u64),
        ("paused", hb::PAUSED),
        ("abort_marked", u64::from(hb::ABORT_MARKED)),
    ])
}

/// The metrics block layout for the supervisor: `(block size, requests
/// word, histogram word, latency sum word, words)` plus the method names,
/// the status classes and the histogram bounds in seconds.
#[pyfunction]
#[allow(clippy::type_complexity)]
pub fn metrics_layout() -> (
    (usize, usize, usize, usize, usize),
    Vec<&'static str>,
    usize,
    Vec<f64>,
) {
    use qiao_io::metrics as m;
    (
        m::metrics_layout(),
        m::METHODS.to_vec(),
        m::STATUS_CLASSES,
        m::LATENCY_BUCKETS_US
            .iter()
            .map(|&us| us as f64 / 1e6)
            .collect(),
    )
}
