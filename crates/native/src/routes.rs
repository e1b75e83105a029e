//! Turns the native settings (`--static`, `--proxy`, `--proxy-status` and
//! their options) into the route table the event loop matches requests
//! against ([`NativeRoutes`]). Every check a setting needs happens here,
//! before serving starts, so a bad directory or URL stops the worker at
//! boot with a clear message rather than failing requests.

use std::sync::Arc;
use std::time::Duration;

use super::proxy::{NativeProxy, ProxyOptions, ProxyStatus};
use super::runtime::NativeRuntime;
use super::static_files::{StaticFiles, StaticOptions};
use qiao_io::metrics::Metrics;
use qiao_io::native_service::{NativeRoutes, NativeService};
use qiao_io::record::{AccessQueue, Recorder};

/// Everything the native services are configured with.
#[derive(Clone, Debug, Default)]
pub struct NativeConfig {
    /// `(prefix, directory)` of each `--static`.
    pub statics: Vec<(String, String)>,
    pub static_options: StaticOptions,
    /// `(prefix, upstream URLs)` of each `--proxy`.
    pub proxies: Vec<(String, Vec<String>)>,
    pub proxy_options: ProxyOptions,
    /// `--proxy-status PATH`.
    pub proxy_status: Option<String>,
    /// Where records of the requests go for the access log, if it is on.
    pub access: Option<Arc<AccessQueue>>,
}

impl NativeConfig {
    pub fn is_empty(&self) -> bool {
        self.statics.is_empty() && self.proxies.is_empty()
    }

    /// The route table, or why a setting cannot be served. `runtime`: the
    /// worker's loop-driven runtime if it has one already (the protocol
    /// front runs on it too); else one is made when a route needs it.
    pub fn build(
        &self,
        metrics: Option<Arc<Metrics>>,
        runtime: Option<Arc<NativeRuntime>>,
    ) -> Result<NativeRoutes, String> {
        let recorder = Recorder {
            metrics,
            access: self.access.clone(),
        };
        let mut routes: Vec<(Vec<u8>, Arc<dyn NativeService>)> = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        let mut claim = |prefix: &str| -> Result<Vec<u8>, String> {
            if !prefix.starts_with('/') {
                return Err(format!(
                    "native route prefix {prefix:?} must start with '/'"
                ));
            }
            let norm = prefix.trim_end_matches('/').to_string();
            if seen.contains(&norm) {
                return Err(format!("two native routes for the prefix {prefix:?}"));
            }
            seen.push(norm.clone());
            Ok(norm.into_bytes())
        };
        let runtime = if runtime.is_some() || self.is_empty() {
            runtime
        } else {
            let rt = NativeRuntime::new()
                .map_err(|e| format!("cannot start the native runtime: {e}"))?;
            Some(Arc::new(rt))
        };
        for (prefix, dir) in &self.statics {
            let key = claim(prefix)?;
            let opts = self.static_options.clone();
            let files = StaticFiles::new(prefix, dir, opts, runtime.clone(), recorder.clone())
                .map_err(|e| format!("--static {prefix}={dir}: {e}"))?;
            routes.push((key, Arc::new(files)));
        }
        let mut proxies = Vec::new();
        for (prefix, urls) in &self.proxies {
            let key = claim(prefix)?;
            let rt = runtime.clone().expect("made when there are routes");
            let proxy = Arc::new(
                NativeProxy::new(
                    prefix,
                    urls,
                    self.proxy_options.clone(),
                    recorder.clone(),
                    rt,
                )
                .map_err(|e| format!("--proxy {prefix}: {e}"))?,
            );
            proxies.push(proxy.clone());
            routes.push((key, proxy));
        }
        if let Some(path) = &self.proxy_status {
            let key = claim(path)?;
            routes.push((key, Arc::new(ProxyStatus { proxies })));
        }
        let mut table = NativeRoutes::new(routes, recorder);
        if let Some(rt) = runtime {
            table.set_waiter(rt);
        }
        Ok(table)
    }
}

/// Seconds as a [`Duration`], or why not.
pub fn seconds(value: f64, what: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value).map_err(|_| format!("invalid {what}: {value}"))
}
