//! Building a worker's server from its [`Config`]: the environ template,
//! the shared state of the serving threads, the native routes, the event
//! loop over the plaintext listeners, the TLS/HTTP/2 front over the
//! others, and the blocks of the supervisor's shared memory the worker
//! writes to. Everything that can fail does so here, before a request is
//! served; [`super::server`] then runs what was built.

use std::os::fd::RawFd;
use std::sync::Arc;

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use super::app::WsgiShared;
use super::config::{Config, URL_SCHEME};
use super::environ::EnvironConfig;
use super::file_wrapper::FileWrapper;
use super::native_access::AccessDrain;
use super::threads::{block_signals, WsgiThreads};
use super::tls_environ::TlsTemplate;
use qiao_front::{tls, Front, FrontConfig};
use qiao_io::heartbeat::{Heartbeat, SLOT_SIZE};
use qiao_io::inbox::Inbox;
use qiao_io::metrics::{Metrics, METRICS_BLOCK};
use qiao_io::native_service::NativeRoutes;
use qiao_io::notice::Notices;
use qiao_io::record::AccessQueue;
use qiao_io::{EventLoop, Listener, ListenerInfo, LoopConfig, Shared};
use qiao_native::runtime::NativeRuntime;

/// Deleted entries in the environ template, i.e. room for this many
/// request headers in each copy before CPython resizes it. Half the
/// template's live entries at most, or `dict.copy()` stops cloning the key
/// table and inserts one key at a time.
pub const TEMPLATE_HEADROOM: usize = 10;
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

/// The rustls configuration (the files read and checked), None without
/// TLS.
fn tls_config(
    config: &Config,
    listeners: &[(RawFd, bool, Protocol)],
) -> PyResult<Option<Arc<rustls::ServerConfig>>> {
    match &config.tls {
        Some(settings) => Ok(Some(
            tls::server_config(settings).map_err(PyValueError::new_err)?,
        )),
        None if listeners.iter().any(|l| l.2 == Protocol::Tls) => {
            Err(PyValueError::new_err("TLS needs both certfile and keyfile"))
        }
        None => Ok(None),
    }
}

/// The event loop over the plaintext listeners, and the TLS ones left for
/// the front.
fn event_loop(
    listeners: &[(RawFd, bool, Protocol)],
    config: &Config,
    native: Option<Arc<NativeRoutes>>,
    metrics: Option<Arc<Metrics>>,
    notices: Option<Arc<Notices>>,
    stop: &Arc<Shared>,
) -> PyResult<(EventLoop, Vec<RawFd>)> {
    let (plain, secure, uwsgi_listeners) = split_listeners(listeners);
    let ls = (plain.iter())
        .map(|&(fd, unix)| Listener::from_shared_fd(fd, unix))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| PyOSError::new_err(format!("cannot use listening socket: {e}")))?;
    let timeouts = &config.timeouts;
    let loop_config = LoopConfig {
        limits: config.limits.clone(),
        keepalive: timeouts.keepalive,
        header_timeout: timeouts.header,
        io_timeout: timeouts.io,
        max_connections: config.max_connections,
        graceful_timeout: timeouts.graceful,
        accept_batch: qiao_io::event_loop::ACCEPT_BATCH,
        health_path: config.health_path.clone(),
        trusted: config.trusted.clone(),
        proxy_protocol: config.proxy_protocol,
        proxy_allow: config.proxy_allow.clone(),
        uwsgi_allow: config.uwsgi_allow.clone(),
        notices,
        uwsgi_listeners,
        metrics,
        native,
    };
    qiao_io::alloc::tune();
    let lp = EventLoop::new(ls, loop_config, stop.clone())
        .map_err(|e| PyOSError::new_err(e.to_string()))?;
    Ok((lp, secure))
}

/// Where the engine's messages go (`io::notice`): a thread writes each
/// line queued through `qiao._log.log_engine` at its level (the loop
/// itself never takes the GIL); the `log` macros of the whole engine lead
/// here while the server lives. It ends when the queue is dropped with
/// the server.
fn notice_writer(py: Python<'_>) -> PyResult<Arc<Notices>> {
    let log_engine = py.import("qiao._log")?.getattr("log_engine")?.unbind();
    let (notices, lines) = Notices::new();
    std::thread::Builder::new()
        .name("qiao-notices".into())
        .spawn(move || {
            block_signals();
            for (level, line) in lines {
                let levelno = match level {
                    log::Level::Error => 40,
                    log::Level::Warn => 30,
                    log::Level::Info => 20,
                    log::Level::Debug | log::Level::Trace => 10,
                };
                Python::attach(|py| {
                    let _ = log_engine.bind(py).call1((levelno, line));
                });
            }
        })
        .map_err(|e| PyOSError::new_err(format!("cannot start the log thread: {e}")))?;
    let notices = Arc::new(notices);
    qiao_io::notice::install(&notices);
    Ok(notices)
}

/// The thread that gives native requests' records to the access log,
/// when both are on.
fn access_drain(
    py: Python<'_>,
    queue: Option<Arc<AccessQueue>>,
    shared: &WsgiShared,
) -> PyResult<Option<AccessDrain>> {
    let (Some(queue), Some(hook)) = (queue, &shared.access_log) else {
        return Ok(None);
    };
    let log_error = shared.log_error.clone_ref(py);
    AccessDrain::start(queue, hook.clone_ref(py), log_error, URL_SCHEME.to_string())
        .map(Some)
        .map_err(|e| PyOSError::new_err(format!("cannot start the access log thread: {e}")))
}

/// Native requests reach the access log through a queue and a drain
/// thread (`native_access.rs`), only when both are on.
fn access_queue(config: &Config) -> Option<Arc<AccessQueue>> {
    (config.logging.access_log.is_some() && !config.native.is_empty()).then(|| {
        let fields = config.logging.access_log_fields.clone();
        Arc::new(AccessQueue::new(fields, config.trusted.clone()))
    })
}

/// The loop-driven runtime the front and the native routes share
/// (`native::runtime`), when either is there.
fn runtime_for(
    listeners: &[(RawFd, bool, Protocol)],
    config: &Config,
) -> PyResult<Option<Arc<NativeRuntime>>> {
    let front = config.http2 || !split_listeners(listeners).1.is_empty();
    if !front && config.native.is_empty() {
        return Ok(None);
    }
    let rt = NativeRuntime::new()
        .map_err(|e| PyOSError::new_err(format!("cannot start the worker's runtime: {e}")))?;
    Ok(Some(Arc::new(rt)))
}

/// The route table of `--static` and `--proxy`; without them, an empty
/// one when there is a runtime to drive (the front's). None otherwise.
fn native_routes(
    config: &mut Config,
    access: Option<Arc<AccessQueue>>,
    metrics: Option<Arc<Metrics>>,
    runtime: Option<Arc<NativeRuntime>>,
) -> PyResult<Option<Arc<NativeRoutes>>> {
    if config.native.is_empty() && runtime.is_none() {
        return Ok(None);
    }
    config.native.access = access;
    let routes = config
        .native
        .build(metrics, runtime)
        .map_err(PyValueError::new_err)?;
    Ok(Some(Arc::new(routes)))
}

/// What every serving thread shares: the application, the environ
/// template, the logging callables, `--compress`.
fn wsgi_shared(
    py: Python<'_>,
    app: Py<PyAny>,
    config: &Config,
    metrics: Option<Arc<Metrics>>,
) -> PyResult<WsgiShared> {
    let logging = &config.logging;
    Ok(WsgiShared {
        app,
        template: environ_template(py, config, false)?.unbind(),
        tls_template: TlsTemplate::new(environ_template(py, config, true)?.unbind()),
        log_error: logging.log_error.clone_ref(py),
        log_debug: py.import("qiao._log")?.getattr("log_debug")?.unbind(),
        access_log: logging.access_log.as_ref().map(|f| f.clone_ref(py)),
        metrics,
        compress: config.compress.clone(),
        environ: EnvironConfig {
            trusted: config.trusted.clone(),
            https: URL_SCHEME == "https",
        },
    })
}

/// The environ entries every request starts with, copied per request;
/// with `tls`, those of every request that came over TLS.
fn environ_template<'py>(
    py: Python<'py>,
    config: &Config,
    tls: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let template = PyDict::new(py);
    template.set_item("wsgi.version", PyTuple::new(py, [1, 0])?)?;
    template.set_item("wsgi.url_scheme", URL_SCHEME)?;
    template.set_item("wsgi.errors", py.import("sys")?.getattr("stderr")?)?;
    template.set_item("wsgi.multithread", config.threads > 1)?;
    template.set_item("wsgi.multiprocess", config.multiprocess)?;
    template.set_item("wsgi.run_once", false)?;
    template.set_item("wsgi.input_terminated", true)?;
    template.set_item("wsgi.file_wrapper", py.get_type::<FileWrapper>())?;
    template.set_item("SCRIPT_NAME", &config.script_name)?;
    // Keys set for every request get a placeholder here, so copying the
    // template clones a key table big enough for the whole environ and each
    // per-request set replaces a value instead of inserting (and resizing).
    for key in super::environ::ALWAYS_SET {
        template.set_item(key, "")?;
    }
    if tls {
        for (key, value) in super::tls_environ::TLS_CONSTANT {
            template.set_item(key, value)?;
        }
        for key in super::tls_environ::TLS_LEARNED {
            template.set_item(key, "")?;
        }
    }
    // Room for the request's headers too: keys inserted then deleted stay
    // in the key table CPython's `dict.copy()` clones (it does so as long
    // as at most a third of the entries are deleted ones), so each copy
    // has space for `TEMPLATE_HEADROOM` more keys before a resize.
    for i in 0..TEMPLATE_HEADROOM {
        template.set_item(format!("qiao.headroom.{i}"), "")?;
    }
    for i in 0..TEMPLATE_HEADROOM {
        template.del_item(format!("qiao.headroom.{i}"))?;
    }
    Ok(template)
}

/// The TLS/HTTP/2 front over the TLS listeners `secure`, also serving
/// h2c the loop hands over; None without TLS listeners and HTTP/2.
fn start_front(
    lp: &mut EventLoop,
    secure: &[RawFd],
    tls: Option<Arc<rustls::ServerConfig>>,
    config: &Config,
    metrics: Option<Arc<Metrics>>,
    stop: &Shared,
    runtime: Arc<NativeRuntime>,
) -> PyResult<Option<Front>> {
    if secure.is_empty() && !config.http2 {
        return Ok(None);
    }
    let std_ls = (secure.iter())
        .map(|&fd| Listener::dup_tcp(fd))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| PyOSError::new_err(format!("cannot use listening socket: {e}")))?;
    let infos = std_ls.iter().map(tls_listener_info).collect();
    let inbox = Arc::new(Inbox::new(metrics));
    let base = lp.attach_inbox(inbox.clone(), infos);
    let front_config = FrontConfig {
        tls_listeners: std_ls.into_iter().zip(base..).collect(),
        tls,
        h2c: config.http2,
        keepalive: config.timeouts.keepalive,
        max_connections: config.max_connections,
        proxy_protocol: config.proxy_protocol.then(|| config.proxy_allow.clone()),
    };
    let front = Front::start(front_config, inbox, stop, runtime)
        .map_err(|e| PyOSError::new_err(format!("cannot start the TLS/HTTP/2 front: {e}")))?;
    Ok(Some(front))
}

/// Splits the listeners into the loop's own (plaintext), the TLS ones the
/// front accepts on (TCP only: a Unix-socket listener stays plaintext),
/// and the indexes among the loop's of those that speak uwsgi.
fn split_listeners(
    listeners: &[(RawFd, bool, Protocol)],
) -> (Vec<(RawFd, bool)>, Vec<RawFd>, Vec<usize>) {
    let (mut plain, mut secure, mut uwsgi) = (Vec::new(), Vec::new(), Vec::new());
    for &(fd, unix, protocol) in listeners {
        if protocol == Protocol::Tls && !unix {
            secure.push(fd);
        } else {
            if protocol == Protocol::Uwsgi {
                uwsgi.push(plain.len());
            }
            plain.push((fd, unix));
        }
    }
    (plain, secure, uwsgi)
}

/// `SERVER_NAME`/`SERVER_PORT` defaults of a TLS listener.
fn tls_listener_info(l: &std::net::TcpListener) -> ListenerInfo {
    let (server_name, server_port) = match l.local_addr() {
        Ok(a) => (a.ip().to_string(), a.port().to_string()),
        Err(_) => ("localhost".into(), "443".into()),
    };
    ListenerInfo {
        server_name,
        server_port,
        uwsgi: false,
    }
}
