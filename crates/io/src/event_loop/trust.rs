//! Whom a connection's peer is trusted as, decided once per connection:
//! on accept (may it speak uwsgi? are its forwarding headers believed?)
//! and again when a PROXY header names the client.
//!
//! Each protocol that lets a peer speak for someone else has its own list,
//! so trusting a peer for one never trusts it for another: `--uwsgi-allow-from`
//! for the uwsgi variables, `--proxy-allow-from` for PROXY headers (checked
//! in `progress`), `--forwarded-allow-ips` for forwarding headers. Once a
//! PROXY header names the client, the client is the peer: its own
//! `X-Forwarded-For` counts only if its address is a trusted proxy, never
//! because the balancer in front of it is one.

use super::EventLoop;
use crate::listener::PeerInfo;
use qiao_http::forwarded::TrustedProxies;
use qiao_http::proxy_protocol::ProxiedPeer;

impl EventLoop {
    /// Sets `peer.trusted` for a connection just accepted on listener
    /// `li`; false if the peer may not use that listener at all (a uwsgi
    /// peer not in `--uwsgi-allow-from`: one warning, then closed).
    pub(super) fn admit(&self, li: usize, peer: &mut PeerInfo) -> bool {
        if self.infos[li].uwsgi && !self.config.uwsgi_allow.admits(peer.ip) {
            if let Some(n) = &self.config.notices {
                n.warn(format!(
                    "uwsgi: refused a connection from {} (not in --uwsgi-allow-from)",
                    peer.addr
                ));
            }
            return false;
        }
        peer.trusted = self.config.trusted.admits(peer.ip);
        true
    }
}

/// The client a PROXY header named becomes the peer, for `REMOTE_ADDR`
/// and for every trust decision after.
pub(super) fn proxied(peer: &mut PeerInfo, client: &ProxiedPeer, trusted: &TrustedProxies) {
    peer.addr = client.ip.to_string();
    peer.port = client.port.to_string();
    peer.ip = Some(client.ip);
    peer.trusted = trusted.admits(peer.ip);
}
