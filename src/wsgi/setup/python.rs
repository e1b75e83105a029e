//! What the server takes from Python: the environ templates every
//! request's environ is copied from, the state the serving threads share
//! ([`WsgiShared`]: the application, the logging callables, `--compress`),
//! and the threads that hand the engine's messages and the native
//! requests' access records to `qiao._log` and the access log. Apart from
//! the engine's parts (`engine.rs`): this is where the GIL is needed, and
//! where the environ's layout is decided.

use std::sync::Arc;

use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::wsgi::app::WsgiShared;
use crate::wsgi::config::{Config, URL_SCHEME};
use crate::wsgi::environ::EnvironConfig;
use crate::wsgi::file_wrapper::FileWrapper;
use crate::wsgi::native_access::AccessDrain;
use crate::wsgi::threads::block_signals;
use crate::wsgi::tls_environ::TlsTemplate;
use qiao_io::metrics::Metrics;
use qiao_io::notice::Notices;
use qiao_io::record::AccessQueue;

/// Deleted entries in the environ template, i.e. room for this many
/// request headers in each copy before CPython resizes it. Half the
/// template's live entries at most, or `dict.copy()` stops cloning the key
/// table and inserts one key at a time.
const TEMPLATE_HEADROOM: usize = 10;

/// Where the engine's messages go (`io::notice`): a thread writes each
/// line queued through `qiao._log.log_engine` at its level (the loop
/// itself never takes the GIL); the `log` macros of the whole engine lead
/// here while the server lives. It ends when the queue is dropped with
/// the server.
pub(super) fn notice_writer(py: Python<'_>) -> PyResult<Arc<Notices>> {
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
pub(super) fn access_drain(
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
pub(super) fn access_queue(config: &Config) -> Option<Arc<AccessQueue>> {
    (config.logging.access_log.is_some() && !config.native.is_empty()).then(|| {
        let fields = config.logging.access_log_fields.clone();
        Arc::new(AccessQueue::new(fields, config.trusted.clone()))
    })
}

/// What every serving thread shares: the application, the environ
/// template, the logging callables, `--compress`.
pub(super) fn wsgi_shared(
    py: Python<'_>,
    app: Py<PyAny>,
    config: &Config,
    metrics: Option<Arc<Metrics>>,
) -> PyResult<WsgiShared> {
    let logging = &config.logging;
    let shape = TemplateShape::of(config);
    Ok(WsgiShared {
        app,
        template: environ_template(py, &shape, false)?.unbind(),
        tls_template: TlsTemplate::new(environ_template(py, &shape, true)?.unbind()),
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

/// What the environ template depends on in the configuration.
pub struct TemplateShape<'a> {
    /// `wsgi.multithread`: more than one serving thread.
    pub multithread: bool,
    pub multiprocess: bool,
    pub script_name: &'a str,
}

impl TemplateShape<'_> {
    fn of(config: &Config) -> TemplateShape<'_> {
        TemplateShape {
            multithread: config.threads > 1,
            multiprocess: config.multiprocess,
            script_name: &config.script_name,
        }
    }
}

/// The environ entries every request starts with, copied per request;
/// with `tls`, those of every request that came over TLS. Public for
/// `benches/environ.rs`, which measures copying it.
pub fn environ_template<'py>(
    py: Python<'py>,
    shape: &TemplateShape<'_>,
    tls: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let template = PyDict::new(py);
    template.set_item("wsgi.version", PyTuple::new(py, [1, 0])?)?;
    template.set_item("wsgi.url_scheme", URL_SCHEME)?;
    template.set_item("wsgi.errors", py.import("sys")?.getattr("stderr")?)?;
    template.set_item("wsgi.multithread", shape.multithread)?;
    template.set_item("wsgi.multiprocess", shape.multiprocess)?;
    template.set_item("wsgi.run_once", false)?;
    template.set_item("wsgi.input_terminated", true)?;
    template.set_item("wsgi.file_wrapper", py.get_type::<FileWrapper>())?;
    template.set_item("SCRIPT_NAME", shape.script_name)?;
    // Keys set for every request get a placeholder here, so copying the
    // template clones a key table big enough for the whole environ and each
    // per-request set replaces a value instead of inserting (and resizing).
    for key in crate::wsgi::environ::ALWAYS_SET {
        template.set_item(key, "")?;
    }
    if tls {
        for (key, value) in crate::wsgi::tls_environ::TLS_CONSTANT {
            template.set_item(key, value)?;
        }
        for key in crate::wsgi::tls_environ::TLS_LEARNED {
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
