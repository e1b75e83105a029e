//! Building a worker's server from its [`Config`]: the environ template,
//! the shared state of the serving threads, the native routes, the event
//! loop over the plaintext listeners, the TLS/HTTP/2 front over the
//! others, and the blocks of the supervisor's shared memory the worker
//! writes to. Everything that can fail does so here, before a request is
//! served; [`super::server`] then runs what was built.
//!
//! This file holds what the server is made of and the order it is built
//! in: the listeners' [`Protocol`], the supervisor's `SharedBlock`s, and
//! [`Server::build`]. The engine's parts (the event loop, the front, the
//! runtime and the native routes) are assembled in `engine.rs`; what comes
//! from Python (the environ template, the serving threads' shared state,
//! the log and access-log threads) in `python.rs`.

mod engine;
mod python;

use std::os::fd::RawFd;
use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::config::Config;
use super::native_access::AccessDrain;
use super::threads::WsgiThreads;
use engine::{event_loop, native_routes, runtime_for, start_front, tls_config};
use python::{access_drain, access_queue, notice_writer, wsgi_shared};
use qiao_front::Front;
use qiao_io::heartbeat::{Heartbeat, SLOT_SIZE};
use qiao_io::metrics::{Metrics, METRICS_BLOCK};
use qiao_io::{EventLoop, Shared};

pub use python::{environ_template, TemplateShape};

/// Alignment the supervisor's shared blocks must have (their words are
/// atomics).
const BLOCK_ALIGN: usize = 8;

/// What a listener's connections speak.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1 (and h2c with `http2`).
    Http,
    /// The uwsgi protocol (nginx `uwsgi_pass`).
    Uwsgi,
    /// TLS, accepted by the front (TCP only: on a Unix socket, plain HTTP).
    Tls,
}

impl Protocol {
    pub fn parse(name: &str) -> PyResult<Protocol> {
        match name {
            "http" => Ok(Protocol::Http),
            "uwsgi" => Ok(Protocol::Uwsgi),
            "tls" => Ok(Protocol::Tls),
            other => Err(PyValueError::new_err(format!(
                "listener protocol must be http, uwsgi or tls, not {other:?}"
            ))),
        }
    }
}

/// A block of the supervisor's shared memory (an anonymous shared mmap)
/// at `offset` in `buf`: held while serving, which keeps it exported.
///
/// The address comes from `ctypes.c_char.from_buffer`, not from the
/// buffer protocol in Rust: that protocol is not in the stable ABI before
/// Python 3.11, and one wheel built for it (abi3) serves every Python
/// from 3.9 on. The `ctypes` object holds the buffer exported (the mmap
/// cannot be closed under us) and refuses a read-only one.
pub(crate) struct SharedBlock {
    _export: Py<PyAny>,
    addr: usize,
    len: usize,
}

impl SharedBlock {
    /// The block of `len` bytes at `(buffer, offset)`, checked.
    pub(super) fn get(
        py: Python<'_>,
        at: Option<&(Py<PyAny>, usize)>,
        len: usize,
        what: &str,
    ) -> PyResult<Option<SharedBlock>> {
        let Some((obj, offset)) = at else {
            return Ok(None);
        };
        let refused =
            || PyValueError::new_err(format!("{what} buffer too small, read-only or misaligned"));
        let obj = obj.bind(py);
        if obj.len()? < offset + len || offset % BLOCK_ALIGN != 0 {
            return Err(refused());
        }
        let ctypes = py.import("ctypes")?;
        let export = (ctypes.getattr("c_char")?)
            .call_method1("from_buffer", (obj, *offset))
            .map_err(|_| refused())?;
        let addr: usize = ctypes.call_method1("addressof", (&export,))?.extract()?;
        if !addr.is_multiple_of(BLOCK_ALIGN) {
            return Err(refused());
        }
        Ok(Some(SharedBlock {
            _export: export.unbind(),
            addr,
            len,
        }))
    }

    /// The address `at` bytes into the block.
    pub(super) fn ptr(&self, at: usize) -> *mut u8 {
        assert!(
            at < self.len,
            "{at} is past the shared block's {} bytes",
            self.len
        );
        (self.addr + at) as *mut u8
    }
}

/// A server built and ready to run (see `Server::run`).
pub struct Server {
    pub(super) lp: EventLoop,
    pub(super) factory: WsgiThreads,
    pub(super) threads: usize,
    pub(super) heartbeats: Vec<Option<Heartbeat>>,
    pub(super) front: Option<Front>,
    pub(super) drain: Option<AccessDrain>,
    /// Held until the pool is gone: the heartbeats and the metrics point
    /// into them.
    pub(super) blocks: [Option<SharedBlock>; 2],
}

impl Server {
    /// Builds the server: `listeners` are `(fd, is_unix, protocol)`, the
    /// caller keeps the sockets open; `heartbeat` and `metrics` are the
    /// supervisor's `(buffer, offset)` blocks.
    pub fn build(
        py: Python<'_>,
        app: Py<PyAny>,
        listeners: &[(RawFd, bool, Protocol)],
        mut config: Config,
        stop: Arc<Shared>,
        heartbeat: Option<(Py<PyAny>, usize)>,
        metrics: Option<(Py<PyAny>, usize)>,
    ) -> PyResult<Server> {
        if listeners.is_empty() {
            return Err(PyValueError::new_err("no listening socket"));
        }
        let threads = config.threads;
        let metrics_block = SharedBlock::get(py, metrics.as_ref(), METRICS_BLOCK, "metrics")?;
        let heartbeat_block =
            SharedBlock::get(py, heartbeat.as_ref(), threads * SLOT_SIZE, "heartbeat")?;
        // SAFETY: a checked block, exported until the server is dropped.
        let metrics = (metrics_block.as_ref()).map(|b| Arc::new(unsafe { Metrics::new(b.ptr(0)) }));
        let access_queue = access_queue(&config);
        // The front (TLS handshakes, HTTP/2) and the native routes run on
        // one runtime, driven by the thread that leads the loop.
        let runtime = runtime_for(listeners, &config)?;
        let native = native_routes(
            &mut config,
            access_queue.clone(),
            metrics.clone(),
            runtime.clone(),
        )?;
        let shared = Arc::new(wsgi_shared(py, app, &config, metrics.clone())?);
        stop.set_max_requests(config.max_requests);
        let tls = tls_config(&config, listeners)?;
        let notices = notice_writer(py)?;
        let (mut lp, secure) = event_loop(
            listeners,
            &config,
            native,
            metrics.clone(),
            Some(notices),
            &stop,
        )?;
        let front = match runtime {
            Some(rt) => start_front(&mut lp, &secure, tls, &config, metrics, &stop, rt)?,
            None => None,
        };
        let heartbeats = (0..threads)
            .map(|t| {
                // SAFETY: a checked block of `threads` slots, exported
                // until the server is dropped, after the pool is gone.
                (heartbeat_block.as_ref())
                    .map(|b| unsafe { Heartbeat::new(b.ptr(t * SLOT_SIZE), stop.clone()) })
            })
            .collect();
        let drain = access_drain(py, access_queue, &shared)?;
        Ok(Server {
            lp,
            factory: WsgiThreads { shared },
            threads,
            heartbeats,
            front,
            drain,
            blocks: [heartbeat_block, metrics_block],
        })
    }
}
