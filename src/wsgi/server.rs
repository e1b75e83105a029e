//! The Python entry point `_qiao.serve(...)`: builds the worker's event
//! loop over the listening sockets Python bound and serves it with the
//! I/O ring's thread pool, the GIL released; the calling (main) thread
//! runs the pool's monitor and Python's signal handlers. Returns when a
//! signal handler raised, or the server was stopped or drained.

use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use super::app::{WsgiServe, WsgiShared};
use super::environ::EnvironCache;
use super::file_wrapper::FileWrapper;
use super::native_access::AccessDrain;
use super::reuse::Spare;
use crate::front::{tls, Front, FrontConfig};
use crate::http::forwarded::TrustedProxies;
use crate::http::limits::MAX_HEADER_FIELDS_CEILING;
use crate::http::Limits;
use crate::io::heartbeat::{Heartbeat, SLOT_SIZE};
use crate::io::inbox::Inbox;
use crate::io::metrics::{Metrics, METRICS_BLOCK};
use crate::io::record::AccessQueue;
use crate::io::{
    pool, EventLoop, Handler, HandlerFactory, Listener, ListenerInfo, LoopConfig, Serve, Shared,
};
use crate::native::proxy::ProxyOptions;
use crate::native::routes::NativeConfig;
use crate::native::static_files::{EtagMode, StaticOptions};
use crate::native::upstream::Balance;
use pyo3::buffer::PyBuffer;

/// Connections one worker holds at most by default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Deleted entries in the environ template, i.e. room for this many
/// request headers in each copy before CPython resizes it. Half the
/// template's live entries at most, or `dict.copy()` stops cloning the key
/// table and inserts one key at a time.
pub const TEMPLATE_HEADROOM: usize = 10;
/// Serving threads a worker may grow to by default (the pool starts with
/// one and adds threads only while requests block).
pub const DEFAULT_MAX_THREADS: usize = 128;

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
}

/// The WSGI side of one serving thread.
struct WsgiHandler {
    shared: Arc<WsgiShared>,
    cache: EnvironCache,
    spare: Spare,
}

impl Handler for WsgiHandler {
    fn session<R>(&mut self, f: impl FnOnce(&mut dyn Serve) -> R) -> R {
        Python::attach(|py| {
            let mut serve = WsgiServe {
                py,
                shared: &self.shared,
                cache: &mut self.cache,
                spare: &mut self.spare,
            };
            f(&mut serve)
        })
    }
}

/// Makes the serving threads' handlers.
struct WsgiThreads {
    shared: Arc<WsgiShared>,
}

impl HandlerFactory for WsgiThreads {
    type Handler = WsgiHandler;

    fn run_thread<R: Send>(&self, body: impl FnOnce(&mut WsgiHandler) -> R + Send) -> R {
        block_signals();
        let mut handler = WsgiHandler {
            shared: self.shared.clone(),
            cache: EnvironCache::default(),
            spare: Spare::default(),
        };
        // The thread keeps one Python thread state for its whole life
        // (attached once, then detached while not serving), so taking the
        // GIL per session is a plain restore, not a new thread state.
        Python::attach(|py| py.detach(|| body(&mut handler)))
    }
}

/// Serves `app` on already-listening sockets until a signal handler
/// raises (the exception propagates) or the process is told to stop.
///
/// `listeners`: `(fd, is_unix)` pairs; the caller keeps the sockets open.
#[pyfunction]
#[pyo3(signature = (
    app, listeners, *, threads=DEFAULT_MAX_THREADS, multiprocess=false, url_scheme="http", script_name="",
    errors=None, log_error=None, access_log=None, keepalive=5.0, header_timeout=30.0,
    io_timeout=30.0, max_connections=DEFAULT_MAX_CONNECTIONS,
    limit_request_line=crate::http::limits::MAX_REQUEST_LINE,
    limit_request_fields=crate::http::limits::MAX_HEADER_FIELDS,
    limit_request_field_size=crate::http::limits::MAX_FIELD_SIZE, max_body=None,
    control=None, max_requests=0, graceful_timeout=30.0, heartbeat=None, health_path=None,
    forwarded_allow_ips="", proxy_protocol=false, uwsgi_listeners=Vec::new(), metrics=None,
    compress=None,
    tls_listeners=Vec::new(), certfile=None, keyfile=None, ca_certs=None, cert_reqs="none",
    http2=true,
    static_dirs=Vec::new(), static_index=Some(crate::native::static_files::DEFAULT_INDEX.to_string()),
    static_cache_control=Some(crate::native::static_files::DEFAULT_CACHE_CONTROL.to_string()),
    static_etag="strong", static_hidden=false, static_types=Vec::new(),
    proxy_routes=Vec::new(), proxy_balance="round_robin",
    proxy_timeout=30.0, proxy_connect_timeout=5.0, proxy_max_fails=1, proxy_probe_interval=5.0,
    proxy_preserve_host=false, proxy_status=None, proxy_health_path=None,
    access_log_fields=None,
))]
#[allow(clippy::too_many_arguments)]
pub fn serve(
    py: Python<'_>,
    app: Py<PyAny>,
    listeners: Vec<(RawFd, bool)>,
    threads: usize,
    multiprocess: bool,
    url_scheme: &str,
    script_name: &str,
    errors: Option<Py<PyAny>>,
    log_error: Option<Py<PyAny>>,
    access_log: Option<Py<PyAny>>,
    keepalive: f64,
    header_timeout: f64,
    io_timeout: f64,
    max_connections: usize,
    limit_request_line: usize,
    limit_request_fields: usize,
    limit_request_field_size: usize,
    max_body: Option<u64>,
    control: Option<Py<Control>>,
    max_requests: u64,
    graceful_timeout: f64,
    heartbeat: Option<(Py<PyAny>, usize)>,
    health_path: Option<String>,
    forwarded_allow_ips: &str,
    proxy_protocol: bool,
    uwsgi_listeners: Vec<usize>,
    metrics: Option<(Py<PyAny>, usize)>,
    compress: Option<Bound<'_, PyDict>>,
    tls_listeners: Vec<usize>,
    certfile: Option<String>,
    keyfile: Option<String>,
    ca_certs: Option<String>,
    cert_reqs: &str,
    http2: bool,
    static_dirs: Vec<(String, String)>,
    static_index: Option<String>,
    static_cache_control: Option<String>,
    static_etag: &str,
    static_hidden: bool,
    static_types: Vec<(String, String)>,
    proxy_routes: Vec<(String, Vec<String>)>,
    proxy_balance: &str,
    proxy_timeout: f64,
    proxy_connect_timeout: f64,
    proxy_max_fails: u32,
    proxy_probe_interval: f64,
    proxy_preserve_host: bool,
    proxy_status: Option<String>,
    proxy_health_path: Option<String>,
    access_log_fields: Option<Vec<String>>,
) -> PyResult<()> {
    if listeners.is_empty() {
        return Err(PyValueError::new_err("no listening socket"));
    }
    let threads = threads.max(1);
    let secs = |s: f64, what: &str| {
        Duration::try_from_secs_f64(s)
            .map_err(|_| PyValueError::new_err(format!("invalid {what}: {s}")))
    };
    // The metrics block, like the heartbeat slots, lives in a buffer the
    // supervisor shares; holding the PyBuffer keeps it exported.
    let metrics_buf = match &metrics {
        Some((obj, offset)) => {
            let buf = PyBuffer::<u8>::get(obj.bind(py))?;
            if buf.readonly() || buf.len_bytes() < offset + METRICS_BLOCK || offset % 8 != 0 {
                return Err(PyValueError::new_err(
                    "metrics buffer too small, read-only or misaligned",
                ));
            }
            Some((buf, *offset))
        }
        None => None,
    };
    // SAFETY: bounds, alignment and writability checked above; the buffer
    // stays exported until `metrics_buf` drops, after the pool is gone.
    let metrics = metrics_buf.as_ref().map(|(buf, offset)| {
        Arc::new(unsafe { Metrics::new((buf.buf_ptr() as *mut u8).add(*offset)) })
    });
    let compress = compress
        .map(|c| super::compress::config_from_py(&c).map(Arc::new))
        .transpose()?;
    let trusted = Arc::new(
        TrustedProxies::parse(forwarded_allow_ips)
            .map_err(|e| PyValueError::new_err(format!("forwarded_allow_ips: {e}")))?,
    );
    let native_config = NativeConfig {
        statics: static_dirs,
        static_options: StaticOptions {
            index: static_index.filter(|s| !s.is_empty()),
            cache_control: static_cache_control.filter(|s| !s.is_empty()),
            etag: match static_etag {
                "strong" => EtagMode::Strong,
                "weak" => EtagMode::Weak,
                "none" | "" => EtagMode::Off,
                other => {
                    return Err(PyValueError::new_err(format!(
                        "static_etag must be strong, weak or none, not {other:?}"
                    )))
                }
            },
            hidden: static_hidden,
            types: static_types
                .into_iter()
                .map(|(ext, t)| (ext.to_ascii_lowercase(), t))
                .collect(),
        },
        proxies: proxy_routes,
        proxy_options: ProxyOptions {
            balance: Balance::parse(proxy_balance).ok_or_else(|| {
                PyValueError::new_err(format!(
                    "proxy_balance must be round_robin or least_conn, not {proxy_balance:?}"
                ))
            })?,
            timeout: secs(proxy_timeout, "proxy timeout")?,
            connect_timeout: secs(proxy_connect_timeout, "proxy connect timeout")?,
            max_fails: proxy_max_fails,
            probe_interval: secs(proxy_probe_interval, "proxy probe interval")?,
            preserve_host: proxy_preserve_host,
            url_scheme: url_scheme.to_string(),
            health_path: proxy_health_path.filter(|p| !p.is_empty()),
        },
        proxy_status,
        access: None,
    };
    // Native requests reach the access log through a queue and a drain
    // thread (`native_access.rs`), only when both are on.
    let access_queue = (access_log.is_some() && !native_config.is_empty())
        .then(|| Arc::new(AccessQueue::new(access_log_fields, trusted.clone())));
    let mut native_config = native_config;
    native_config.access = access_queue.clone();
    let native = if native_config.is_empty() {
        None
    } else {
        Some(Arc::new(
            native_config
                .build(metrics.clone())
                .map_err(PyValueError::new_err)?,
        ))
    };
    let mut config = LoopConfig {
        limits: Limits {
            request_line: limit_request_line.max(16),
            header_fields: limit_request_fields.clamp(1, MAX_HEADER_FIELDS_CEILING),
            field_size: limit_request_field_size.max(16),
            max_body,
        },
        keepalive: secs(keepalive, "keepalive")?,
        header_timeout: secs(header_timeout, "header timeout")?,
        io_timeout: secs(io_timeout, "I/O timeout")?,
        max_connections: max_connections.max(1),
        graceful_timeout: secs(graceful_timeout, "graceful timeout")?,
        accept_batch: crate::io::event_loop::ACCEPT_BATCH,
        health_path: health_path.map(String::into_bytes),
        trusted: trusted.clone(),
        proxy_protocol,
        uwsgi_listeners,
        metrics: metrics.clone(),
        native,
    };
    let template = PyDict::new(py);
    template.set_item("wsgi.version", PyTuple::new(py, [1, 0])?)?;
    template.set_item("wsgi.url_scheme", url_scheme)?;
    template.set_item(
        "wsgi.errors",
        match errors {
            Some(e) => e,
            None => py.import("sys")?.getattr("stderr")?.unbind(),
        },
    )?;
    template.set_item("wsgi.multithread", threads > 1)?;
    template.set_item("wsgi.multiprocess", multiprocess)?;
    template.set_item("wsgi.run_once", false)?;
    template.set_item("wsgi.input_terminated", true)?;
    template.set_item("wsgi.file_wrapper", py.get_type::<FileWrapper>())?;
    template.set_item("SCRIPT_NAME", script_name)?;
    // Keys set for every request get a placeholder here, so copying the
    // template clones a key table big enough for the whole environ and each
    // per-request set replaces a value instead of inserting (and resizing).
    for key in super::environ::ALWAYS_SET {
        template.set_item(key, "")?;
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
    let log_error = match log_error {
        Some(f) => f,
        None => py.import("qiao._log")?.getattr("log_error")?.unbind(),
    };
    let log_debug = py.import("qiao._log")?.getattr("log_debug")?.unbind();
    let shared = Arc::new(WsgiShared {
        app,
        template: template.unbind(),
        log_error,
        log_debug,
        access_log,
        metrics: metrics.clone(),
        compress,
        environ: super::environ::EnvironConfig {
            trusted,
            https: url_scheme == "https",
        },
    });
    let stop = match &control {
        Some(c) => c.borrow(py).shared.clone(),
        None => Arc::new(Shared::default()),
    };
    stop.set_max_requests(max_requests);
    // The heartbeat slots live in a buffer the supervisor shares (an
    // anonymous shared mmap); holding the PyBuffer keeps it exported.
    let heartbeat_buf = match &heartbeat {
        Some((obj, offset)) => {
            let buf = PyBuffer::<u8>::get(obj.bind(py))?;
            let end = offset + threads * SLOT_SIZE;
            if buf.readonly() || buf.len_bytes() < end || offset % 8 != 0 {
                return Err(PyValueError::new_err(
                    "heartbeat buffer too small, read-only or misaligned",
                ));
            }
            Some((buf, *offset))
        }
        None => None,
    };

    let tls = match (&certfile, &keyfile) {
        (Some(certfile), Some(keyfile)) => Some(
            tls::server_config(&tls::TlsSettings {
                certfile: certfile.clone(),
                keyfile: keyfile.clone(),
                ca_certs,
                cert_reqs: tls::CertReqs::parse(cert_reqs).map_err(PyValueError::new_err)?,
                http2,
            })
            .map_err(PyValueError::new_err)?,
        ),
        (None, None) if tls_listeners.is_empty() => None,
        _ => return Err(PyValueError::new_err("TLS needs both certfile and keyfile")),
    };
    let keepalive_secs = config.keepalive;
    let proxy_protocol = config.proxy_protocol.then(|| config.trusted.clone());
    let (plain, secure) = split_listeners(&listeners, &tls_listeners, &mut config);
    let ls = plain
        .iter()
        .map(|&(fd, unix)| Listener::from_shared_fd(fd, unix))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(|e| PyOSError::new_err(format!("cannot use listening socket: {e}")))?;
    crate::io::alloc::tune();
    let mut lp =
        EventLoop::new(ls, config, stop.clone()).map_err(|e| PyOSError::new_err(e.to_string()))?;
    let front = if secure.is_empty() && !http2 {
        None
    } else {
        let std_ls = secure
            .iter()
            .map(|&fd| Listener::dup_tcp(fd))
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| PyOSError::new_err(format!("cannot use listening socket: {e}")))?;
        let infos = std_ls.iter().map(tls_listener_info).collect();
        let inbox = Arc::new(Inbox::new(metrics.clone()));
        let base = lp.attach_inbox(inbox.clone(), infos);
        let config = FrontConfig {
            tls_listeners: std_ls.into_iter().zip(base..).collect(),
            tls,
            h2c: http2,
            keepalive: keepalive_secs,
            max_connections: max_connections.max(1),
            proxy_protocol,
        };
        Some(
            Front::start(config, inbox, &stop, block_signals).map_err(|e| {
                PyOSError::new_err(format!("cannot start the TLS/HTTP/2 front: {e}"))
            })?,
        )
    };
    let heartbeats = (0..threads)
        .map(|t| {
            heartbeat_buf.as_ref().map(|(buf, offset)| {
                // SAFETY: bounds, alignment and writability checked above;
                // the buffer stays exported until `heartbeat_buf` drops,
                // after the pool is gone.
                unsafe { Heartbeat::new((buf.buf_ptr() as *mut u8).add(offset + t * SLOT_SIZE)) }
            })
        })
        .collect();
    let drain = match (&access_queue, &shared.access_log) {
        (Some(queue), Some(hook)) => Some(
            AccessDrain::start(
                queue.clone(),
                hook.clone_ref(py),
                shared.log_error.clone_ref(py),
                url_scheme.to_string(),
            )
            .map_err(|e| PyOSError::new_err(format!("cannot start the access log thread: {e}")))?,
        ),
        _ => None,
    };
    let factory = WsgiThreads { shared };
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
        // Every native request is over: their last records go to the log
        // before the caller stops its writer.
        if let Some(d) = drain {
            d.finish();
        }
        result
    });
    drop(front);
    drop(heartbeat_buf);
    drop(metrics_buf);
    if let Some(e) = pending {
        return Err(e);
    }
    result.map_err(|e| PyOSError::new_err(format!("event loop failed: {e}")))
}

/// Splits the listeners into the loop's own (plaintext; `uwsgi_listeners`
/// renumbered in `config`) and the TLS ones the front accepts on (TCP
/// only: a Unix-socket listener stays plaintext).
fn split_listeners(
    listeners: &[(RawFd, bool)],
    tls_listeners: &[usize],
    config: &mut LoopConfig,
) -> (Vec<(RawFd, bool)>, Vec<RawFd>) {
    let (mut plain, mut secure, mut uwsgi) = (Vec::new(), Vec::new(), Vec::new());
    for (i, &(fd, unix)) in listeners.iter().enumerate() {
        if tls_listeners.contains(&i) && !unix {
            secure.push(fd);
        } else {
            if config.uwsgi_listeners.contains(&i) {
                uwsgi.push(plain.len());
            }
            plain.push((fd, unix));
        }
    }
    config.uwsgi_listeners = uwsgi;
    (plain, secure)
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

/// Serving threads leave signals to the main thread, whose loop wakes on
/// them (EINTR) and runs the Python handlers.
pub(crate) fn block_signals() {
    // SAFETY: building and applying a signal mask for this thread only.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGTTIN,
            libc::SIGTTOU,
            libc::SIGCHLD,
            libc::SIGWINCH,
        ] {
            libc::sigaddset(&mut set, sig);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// `(slot_size, line_offset, line_capacity)` of the heartbeat slots, so the
/// supervisor reads them without repeating the layout.
#[pyfunction]
pub fn heartbeat_layout() -> (usize, usize, usize) {
    (
        SLOT_SIZE,
        SLOT_SIZE - crate::io::heartbeat::LINE_CAPACITY,
        crate::io::heartbeat::LINE_CAPACITY,
    )
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
    use crate::io::metrics as m;
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
