//! `--proxy PREFIX=URL[,URL...]`: a reverse proxy and load balancer in
//! Rust, answering as the portable `qiao.middleware.Proxy` does (its
//! module doc states the rules): the path below the prefix, raw as the
//! client sent it, after the upstream URL's path; end-to-end headers only,
//! plus `X-Forwarded-For/-Proto/-Host`; both bodies streamed as they come;
//! retries on another upstream (a connection that cannot be opened:
//! always; a failure after sending: only idempotent methods without a
//! body; a timeout: never, 504); `502` naming every upstream tried.
//!
//! Every request is a task of the worker's native runtime (`spawned.rs`:
//! choosing the upstream, sending; `relay.rs`: the response back), over
//! pooled HTTP/1.1 connections written by hand (`upconn.rs`, with the
//! response head parsed by the HTTP ring's `upstream_head`: it says why
//! not hyper's client); `request.rs` builds the upstream request's head,
//! `status.rs` answers `--proxy-status`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::method;
use super::upstream::policy::{after_failure, AfterFailure, Failed};
use super::upstream::{Balance, Server, Upstreams, Verdict};
use qiao_io::native_service::NativeService;
use qiao_io::service::{Exchange, Outcome};

mod relay;
mod request;
mod spawned;
mod status;

pub use status::ProxyStatus;

/// Bytes read per step from the client's body.
pub(crate) const CHUNK_SIZE: usize = 64 * 1024;
/// Longest an upstream may stay silent by default: waiting for the
/// response head (then 504) and between two pieces of its body (then the
/// response is cut).
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// Times a request without a body is sent again, on a new connection to
/// the same upstream, when the pooled one turns out closed by it.
pub const STALE_RETRIES: usize = 1;
/// Fields that concern one connection, never forwarded (RFC 9110 §7.6.1),
/// plus those `Connection` names; `Expect` is answered by this server.
pub const HOP_BY_HOP: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
];
/// Whether the field `name` concerns one connection only: one of
/// [`HOP_BY_HOP`], or named by a `Connection` field among `fields` (the
/// message's own; compared without allocating).
fn is_hop_by_hop<'a>(name: &[u8], fields: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> bool {
    if HOP_BY_HOP
        .iter()
        .any(|h| h.as_bytes().eq_ignore_ascii_case(name))
    {
        return true;
    }
    fields
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"connection"))
        .any(|(_, v)| {
            v.split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(name))
        })
}

/// How one proxy route behaves (the portable class's keyword arguments).
#[derive(Clone, Debug)]
pub struct ProxyOptions {
    pub balance: Balance,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub max_fails: u32,
    pub probe_interval: Duration,
    /// Send the client's `Host` rather than the upstream's.
    pub preserve_host: bool,
    /// `X-Forwarded-Proto` (the server's `wsgi.url_scheme`).
    pub url_scheme: String,
    /// Probe a down upstream with a `GET` of this path (`--proxy-health-path`).
    pub health_path: Option<String>,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions {
            balance: Balance::RoundRobin,
            timeout: TIMEOUT,
            connect_timeout: super::upstream::CONNECT_TIMEOUT,
            max_fails: super::upstream::MAX_FAILS,
            probe_interval: super::upstream::PROBE_INTERVAL,
            preserve_host: false,
            url_scheme: "http".into(),
            health_path: None,
        }
    }
}

/// Why one upstream did not answer.
enum Failure {
    /// Nothing was sent (no connection): any request may go elsewhere.
    Connect(String),
    /// Sent, then failed.
    Lost(String),
    /// Sent; no answer within the timeout.
    Timeout,
    /// Reading the client's body failed: the client's fault.
    Client(String),
}

/// One `--proxy` route.
pub struct NativeProxy {
    prefix: Vec<u8>,
    upstreams: Arc<Upstreams>,
    /// `host:port` of each upstream, to connect to.
    addrs: Vec<String>,
    opts: ProxyOptions,
    /// Pooled connections of the native runtime (`spawned.rs`), per upstream.
    idle: spawned::IdlePool,
    /// Where each request's end is recorded (metrics, access log).
    recorder: qiao_io::record::Recorder,
    /// Where requests without a body are served (`spawned.rs`).
    runtime: Arc<crate::runtime::NativeRuntime>,
}

/// What to do after an upstream failed.
enum Next {
    /// Try another upstream.
    Retry,
    /// Answer 502 with the failures so far.
    Stop,
    /// Answer this instead (504).
    Answer(u16, &'static str, String),
}

/// The 502 body naming every upstream tried.
fn bad_gateway(failures: &str) -> String {
    format!("Bad Gateway: no upstream answered\n{failures}")
}

impl NativeProxy {
    pub fn new(
        prefix: &str,
        urls: &[String],
        opts: ProxyOptions,
        recorder: qiao_io::record::Recorder,
        runtime: Arc<crate::runtime::NativeRuntime>,
    ) -> Result<Self, String> {
        if urls.is_empty() {
            return Err("a proxy needs at least one upstream".into());
        }
        let servers = urls
            .iter()
            .map(|u| Server::parse(u))
            .collect::<Result<Vec<_>, _>>()?;
        let addrs = servers.iter().map(Server::address).collect();
        Ok(NativeProxy {
            prefix: prefix.trim_end_matches('/').as_bytes().to_vec(),
            upstreams: Arc::new(Upstreams::new(
                servers,
                opts.balance,
                opts.max_fails,
                opts.probe_interval,
                opts.connect_timeout,
                opts.health_path.clone(),
            )),
            idle: Mutex::new(urls.iter().map(|_| Vec::new()).collect()),
            addrs,
            opts,
            recorder,
            runtime,
        })
    }

    /// The upstream states, for `--proxy-status`.
    pub fn upstreams(&self) -> &Upstreams {
        &self.upstreams
    }
}

impl NativeProxy {
    /// Records that upstream `index` failed on a request with `method`
    /// (and a body if `has_body`); says what to do next
    /// ([`after_failure`]).
    fn failed(
        &self,
        index: usize,
        failure: &Failure,
        failures: &mut String,
        method: &[u8],
        has_body: bool,
    ) -> Next {
        self.upstreams.release(index, Verdict::Failure);
        let url = &self.upstreams.servers[index].url;
        let (reason, failed) = match failure {
            Failure::Connect(r) => (r.as_str(), Failed::NotSent),
            Failure::Lost(r) | Failure::Client(r) => (r.as_str(), Failed::Sent),
            Failure::Timeout => ("timed out", Failed::TimedOut),
        };
        log::error!("proxy: upstream {url} failed: {reason}");
        failures.push_str(&format!("  {url}: {reason}\n"));
        match after_failure(failed, method, has_body) {
            AfterFailure::TryAnother => Next::Retry,
            AfterFailure::BadGateway => Next::Stop,
            AfterFailure::GatewayTimeout => {
                let text = format!(
                    "Gateway Timeout: {url} did not answer within {:?}s\n",
                    self.opts.timeout.as_secs_f64()
                );
                Next::Answer(504, "Gateway Timeout", text)
            }
        }
    }
}

impl NativeService for NativeProxy {
    fn spawn(
        self: Arc<Self>,
        job: qiao_io::handoff::OpenJob,
        sink: qiao_io::handoff::DoneSink,
    ) -> Option<qiao_io::handoff::OpenJob> {
        self.spawn_job(job, sink)
    }

    fn serve(&self, ex: &mut Exchange<'_>) -> (Outcome, u16) {
        // `spawn` takes every request; this is only reached if it could not.
        super::plain(
            ex,
            500,
            "Internal Server Error",
            "the proxy cannot serve this request here\n",
            &[],
        )
    }
}
