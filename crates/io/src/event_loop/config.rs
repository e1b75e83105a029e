//! What one event loop is configured with ([`LoopConfig`]): limits,
//! timeouts, who is trusted, and the native routes it serves itself.

use std::sync::Arc;
use std::time::Duration;

use crate::native_service::NativeRoutes;
use qiao_http::forwarded::TrustedProxies;
use qiao_http::Limits;

/// The settings of one event loop.
#[derive(Clone, Debug)]
pub struct LoopConfig {
    pub limits: Limits,
    /// Idle time allowed between requests on a keep-alive connection.
    pub keepalive: Duration,
    /// Time allowed to receive a whole request head, from its first byte
    /// (or from accept, for a connection's first request).
    pub header_timeout: Duration,
    /// Longest stall while reading a body or writing a response.
    pub io_timeout: Duration,
    /// Connections one loop holds at most; beyond, accepting pauses.
    pub max_connections: usize,
    /// How long a draining loop keeps serving before it closes what is left.
    pub graceful_timeout: Duration,
    /// Connections accepted per listener wake-up. With several loops on
    /// the same sockets, 1 spreads connections over the threads (the
    /// listener is re-armed so the others see what is left).
    pub accept_batch: usize,
    /// `GET`/`HEAD` of this exact path is answered by the loop itself
    /// (`200 ok`, or `503` while draining), without the application.
    pub health_path: Option<Vec<u8>>,
    /// Peers whose forwarding headers are believed. A Unix-socket peer
    /// counts as trusted whenever the list is not empty (only a local
    /// process with access to the socket file can connect). After a PROXY
    /// header, the peer is the client it names.
    pub trusted: Arc<TrustedProxies>,
    /// Every connection starts with a PROXY v1/v2 header (`--proxy-protocol`),
    /// accepted only from `proxy_allow` peers.
    pub proxy_protocol: bool,
    /// `--proxy-allow-from` (a Unix-socket peer: allowed unless empty).
    pub proxy_allow: Arc<TrustedProxies>,
    /// `--uwsgi-allow-from`: who may connect to a uwsgi listener; others
    /// are closed at once (a Unix-socket peer: allowed unless empty).
    pub uwsgi_allow: Arc<TrustedProxies>,
    /// Where warnings for the operator go (a refused uwsgi peer).
    pub notices: Option<Arc<crate::notice::Notices>>,
    /// Indexes of the listeners that speak the uwsgi protocol.
    pub uwsgi_listeners: Vec<usize>,
    /// The worker's metrics block (`--metrics-bind`): open connections.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
    /// Path prefixes served by native services (`--static`, `--proxy`):
    /// a thread serves those requests without [`Handler::session`](crate::Handler::session) (no GIL).
    pub native: Option<Arc<NativeRoutes>>,
}
