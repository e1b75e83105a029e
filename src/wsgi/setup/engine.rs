//! The engine's parts built from the configuration: the event loop over
//! the plaintext listeners, the TLS/HTTP/2 front over the TLS ones, the
//! runtime they share with the native routes, and the route table of
//! `--static` and `--proxy`. Apart from `mod.rs`, which only orders the
//! build, and from `python.rs`: nothing here touches the interpreter but
//! to raise its exceptions; it assembles the io, front and native crates'
//! types.

use std::os::fd::RawFd;
use std::sync::Arc;

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;

use super::Protocol;
use crate::wsgi::config::Config;
use qiao_front::{tls, Front, FrontConfig};
use qiao_io::inbox::Inbox;
use qiao_io::metrics::Metrics;
use qiao_io::native_service::NativeRoutes;
use qiao_io::notice::Notices;
use qiao_io::record::AccessQueue;
use qiao_io::{EventLoop, Listener, ListenerInfo, LoopConfig, Shared};
use qiao_native::runtime::NativeRuntime;

/// The rustls configuration (the files read and checked), None without
/// TLS.
pub(super) fn tls_config(
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
pub(super) fn event_loop(
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

/// The loop-driven runtime the front and the native routes share
/// (`native::runtime`), when either is there.
pub(super) fn runtime_for(
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
pub(super) fn native_routes(
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

/// The TLS/HTTP/2 front over the TLS listeners `secure`, also serving
/// h2c the loop hands over; None without TLS listeners and HTTP/2.
pub(super) fn start_front(
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
