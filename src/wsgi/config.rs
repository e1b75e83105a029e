//! The engine's configuration: what `_qiao.serve(..., config=...)` reads,
//! once, before anything is started.
//!
//! Why one module: every engine setting used to be a keyword argument of
//! `serve` with a default of its own, repeating (and drifting from) the
//! Python settings table. Now the table (`python/qiao/config.py`) owns
//! every default, `qiao.server.engine_options` maps the settings onto the
//! groups below, and this module reads them:
//!
//! - the `Raw*` structs are the dict's shape (`#[derive(FromPyObject)]`
//!   with `from_item_all`): every key is required, so a setting the
//!   Python side forgot is an error naming it, never a second default
//!   here; the stub `python/qiao/_qiao.pyi` spells the same shape;
//! - [`Config::from_py`] checks the values and turns them into the
//!   engine's types (`Duration`s, [`Limits`], [`StaticOptions`], ...), with
//!   a `ValueError` naming the setting when one cannot work.
//!
//! Nothing here runs per request: the server is built from a [`Config`].

use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use qiao_front::tls::{CertReqs, TlsSettings};
use qiao_http::compress::CompressConfig;
use qiao_http::forwarded::{HeaderFamily, TrustedProxies};
use qiao_http::Limits;
use qiao_native::proxy::ProxyOptions;
use qiao_native::routes::NativeConfig;
use qiao_native::static_files::{EtagMode, StaticOptions};
use qiao_native::upstream::Balance;

/// Shortest request line or header field a limit may be lowered to.
pub(crate) const MIN_LIMIT: usize = 16;
/// `wsgi.url_scheme` of the loop's own listeners (TLS is the front's).
pub(crate) const URL_SCHEME: &str = "http";

/// `config`: the top level, the settings that are not in a group.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct RawConfig {
    threads: usize,
    multiprocess: bool,
    script_name: String,
    health_path: Option<String>,
    forwarded_allow_ips: String,
    proxy_protocol: bool,
    forwarded_headers: String,
    proxy_allow_ips: String,
    uwsgi_allow_ips: String,
    max_requests: u64,
    limits: RawLimits,
    timeouts: RawTimeouts,
    tls: RawTls,
    #[pyo3(item("static"))]
    statics: RawStatic,
    proxy: RawProxy,
    compress: Option<Py<PyDict>>,
    logging: Logging,
}

/// `config["limits"]`.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct RawLimits {
    limit_request_line: usize,
    limit_request_fields: usize,
    limit_request_field_size: usize,
    max_body: Option<u64>,
    max_connections: usize,
}

/// `config["timeouts"]`, in seconds.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct RawTimeouts {
    keepalive: f64,
    header_timeout: f64,
    io_timeout: f64,
    graceful_timeout: f64,
}

/// `config["tls"]`.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct RawTls {
    certfile: Option<String>,
    keyfile: Option<String>,
    ca_certs: Option<String>,
    cert_reqs: String,
    http2: bool,
}

/// `config["static"]` (`--static` and its settings).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct RawStatic {
    dirs: Vec<(String, String)>,
    index: Option<String>,
    cache_control: Option<String>,
    etag: String,
    hidden: bool,
    types: Vec<(String, String)>,
}

/// `config["proxy"]` (`--proxy` and its settings).
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
struct RawProxy {
    routes: Vec<(String, Vec<String>)>,
    balance: String,
    timeout: f64,
    connect_timeout: f64,
    max_fails: u32,
    probe_interval: f64,
    preserve_host: bool,
    status: Option<String>,
    health_path: Option<String>,
}

/// `config["logging"]`: the Python callables errors and requests go to.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct Logging {
    /// `log_error(message, exception_or_None)`.
    pub log_error: Py<PyAny>,
    /// `access(environ, status, bytes, seconds)`, None when off.
    pub access_log: Option<Py<PyAny>>,
    /// The request fields the access log format uses (native requests
    /// record only those), None for all.
    pub access_log_fields: Option<Vec<String>>,
}

/// The loop's timeouts.
pub struct Timeouts {
    pub keepalive: Duration,
    pub header: Duration,
    pub io: Duration,
    pub graceful: Duration,
}

/// The engine's configuration, checked.
pub struct Config {
    /// Serving threads a worker may grow to (at least one).
    pub threads: usize,
    pub multiprocess: bool,
    pub script_name: String,
    /// Requests after which the worker stops (0: never).
    pub max_requests: u64,
    pub health_path: Option<Vec<u8>>,
    /// `--forwarded-allow-ips`, reading `--forwarded-headers`' family.
    pub trusted: Arc<TrustedProxies>,
    pub proxy_protocol: bool,
    /// `--proxy-allow-from`: who may send PROXY headers.
    pub proxy_allow: Arc<TrustedProxies>,
    /// `--uwsgi-allow-from`: who may connect to a uwsgi bind.
    pub uwsgi_allow: Arc<TrustedProxies>,
    pub limits: Limits,
    /// At least one.
    pub max_connections: usize,
    pub timeouts: Timeouts,
    /// `--certfile` and the rest, None without TLS.
    pub tls: Option<TlsSettings>,
    pub http2: bool,
    /// The native routes (`access` still unset: the server sets it).
    pub native: NativeConfig,
    pub compress: Option<Arc<CompressConfig>>,
    pub logging: Logging,
}

impl Config {
    /// Reads and checks `config`: a `ValueError` names a missing or
    /// invalid setting.
    pub(crate) fn from_py(config: &Bound<'_, PyAny>) -> PyResult<Config> {
        let raw: RawConfig = config.extract().map_err(|e| {
            PyValueError::new_err(format!("engine config: {}", chain(config.py(), e)))
        })?;
        let family = HeaderFamily::parse(&raw.forwarded_headers)
            .map_err(|e| PyValueError::new_err(format!("forwarded_headers: {e}")))?;
        let trusted = allow_list("forwarded_allow_ips", &raw.forwarded_allow_ips)?;
        let trusted = trusted.with_family(family);
        let proxy_allow = allow_list("proxy_allow_ips", &raw.proxy_allow_ips)?;
        let uwsgi_allow = allow_list("uwsgi_allow_ips", &raw.uwsgi_allow_ips)?;
        let compress = (raw.compress.as_ref())
            .map(|c| super::compress::config_from_py(c.bind(config.py())).map(Arc::new))
            .transpose()?;
        Ok(Config {
            threads: raw.threads.max(1),
            multiprocess: raw.multiprocess,
            script_name: raw.script_name,
            max_requests: raw.max_requests,
            health_path: raw.health_path.map(String::into_bytes),
            trusted: Arc::new(trusted),
            proxy_protocol: raw.proxy_protocol,
            proxy_allow: Arc::new(proxy_allow),
            uwsgi_allow: Arc::new(uwsgi_allow),
            limits: raw.limits.limits(),
            max_connections: raw.limits.max_connections.max(1),
            timeouts: raw.timeouts.check()?,
            http2: raw.tls.http2,
            tls: raw.tls.check()?,
            native: NativeConfig {
                statics: raw.statics.dirs.clone(),
                static_options: raw.statics.check()?,
                proxies: raw.proxy.routes.clone(),
                proxy_status: raw.proxy.status.clone(),
                proxy_options: raw.proxy.check()?,
                access: None,
            },
            compress,
            logging: raw.logging,
        })
    }
}

/// An error and its causes on one line: the derive's "failed to extract
/// field RawLimits.max_body" is caused by the `KeyError` naming the key.
fn chain(py: Python<'_>, err: PyErr) -> String {
    let mut text = err.to_string();
    let mut cause = err.cause(py);
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.cause(py);
    }
    text
}

/// `seconds` as a `Duration`, or a `ValueError` naming the setting.
/// An address list setting, or a `ValueError` naming it.
fn allow_list(name: &str, spec: &str) -> PyResult<TrustedProxies> {
    TrustedProxies::parse(spec).map_err(|e| PyValueError::new_err(format!("{name}: {e}")))
}

fn secs(seconds: f64, what: &str) -> PyResult<Duration> {
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| PyValueError::new_err(format!("invalid {what}: {seconds}")))
}

impl RawLimits {
    fn limits(&self) -> Limits {
        Limits::from_settings(
            self.limit_request_line,
            self.limit_request_fields,
            self.limit_request_field_size,
            self.max_body,
            MIN_LIMIT,
        )
    }
}

impl RawTimeouts {
    fn check(&self) -> PyResult<Timeouts> {
        Ok(Timeouts {
            keepalive: secs(self.keepalive, "keepalive")?,
            header: secs(self.header_timeout, "header timeout")?,
            io: secs(self.io_timeout, "I/O timeout")?,
            graceful: secs(self.graceful_timeout, "graceful timeout")?,
        })
    }
}

impl RawTls {
    /// The TLS settings, None without a certificate; the files are read
    /// when the server is built.
    fn check(self) -> PyResult<Option<TlsSettings>> {
        match (self.certfile, self.keyfile) {
            (Some(certfile), Some(keyfile)) => Ok(Some(TlsSettings {
                certfile,
                keyfile,
                ca_certs: self.ca_certs,
                cert_reqs: CertReqs::parse(&self.cert_reqs).map_err(PyValueError::new_err)?,
                http2: self.http2,
            })),
            (None, None) => Ok(None),
            _ => Err(PyValueError::new_err("TLS needs both certfile and keyfile")),
        }
    }
}

impl RawStatic {
    fn check(&self) -> PyResult<StaticOptions> {
        let etag = match self.etag.as_str() {
            "strong" => EtagMode::Strong,
            "weak" => EtagMode::Weak,
            "none" | "" => EtagMode::Off,
            other => {
                return Err(PyValueError::new_err(format!(
                    "static_etag must be strong, weak or none, not {other:?}"
                )))
            }
        };
        Ok(StaticOptions {
            index: self.index.clone().filter(|s| !s.is_empty()),
            cache_control: self.cache_control.clone().filter(|s| !s.is_empty()),
            etag,
            hidden: self.hidden,
            types: (self.types.iter())
                .map(|(ext, t)| (ext.to_ascii_lowercase(), t.clone()))
                .collect(),
        })
    }
}

impl RawProxy {
    fn check(&self) -> PyResult<ProxyOptions> {
        let balance = Balance::parse(&self.balance).ok_or_else(|| {
            PyValueError::new_err(format!(
                "proxy_balance must be round_robin or least_conn, not {:?}",
                self.balance
            ))
        })?;
        Ok(ProxyOptions {
            balance,
            timeout: secs(self.timeout, "proxy timeout")?,
            connect_timeout: secs(self.connect_timeout, "proxy connect timeout")?,
            max_fails: self.max_fails,
            probe_interval: secs(self.probe_interval, "proxy probe interval")?,
            preserve_host: self.preserve_host,
            url_scheme: URL_SCHEME.to_string(),
            health_path: self.health_path.clone().filter(|p| !p.is_empty()),
        })
    }
}
