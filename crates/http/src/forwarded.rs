//! What a trusted reverse proxy says about the original request: the
//! client address, scheme and host from RFC 7239 `Forwarded` or the
//! de-facto `X-Forwarded-For/-Proto/-Host`. Sans-IO: header values in,
//! [`Origin`] out; the WSGI ring applies it to the environ only when the
//! connection comes from an address in [`TrustedProxies`]
//! (`--forwarded-allow-ips`).
//!
//! Chains of proxies: the list is read from the right (the hop nearest to
//! us) and trusted proxy addresses are skipped, so the first untrusted
//! address is the client: a client cannot pose as someone else by sending
//! its own `X-Forwarded-For`, it can only add entries further left (with
//! `*`, which trusts any peer, only the nearest entry is believed). Values
//! that do not parse (not an IP address, a scheme other than http/https,
//! a host with bytes a Host may not have) are ignored, not trusted.
//!
//! One family of fields is read, never both ([`HeaderFamily`],
//! `--forwarded-headers`): a proxy rewrites the family it speaks and
//! passes the other through as the client sent it (nginx adds
//! `X-Forwarded-For` and forwards a client's `Forwarded` untouched), so
//! reading both would let the client's own `Forwarded` win.

use std::net::IpAddr;

use super::request::{trim_ows, valid_host};

/// Most proxy hops read from a forwarding list; entries beyond are ignored.
pub const MAX_FORWARDED_HOPS: usize = 32;

/// Which forwarding fields a trusted proxy's request is read for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HeaderFamily {
    /// `X-Forwarded-For/-Proto/-Host` (gunicorn's, uvicorn's, Werkzeug's).
    #[default]
    XForwarded,
    /// RFC 7239 `Forwarded`.
    Forwarded,
}

impl HeaderFamily {
    /// `x-forwarded` or `forwarded` (the `--forwarded-headers` values).
    pub fn parse(text: &str) -> Result<HeaderFamily, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "x-forwarded" => Ok(HeaderFamily::XForwarded),
            "forwarded" => Ok(HeaderFamily::Forwarded),
            other => Err(format!("x-forwarded or forwarded, not {other:?}")),
        }
    }
}

/// Addresses trusted for something (forwarding headers, PROXY headers, the
/// uwsgi protocol): exact addresses and CIDR ranges (`10.0.0.0/8`,
/// `fd00::/8`), or `*` for every peer; with the forwarding-field family
/// read from the trusted ones.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies {
    any: bool,
    nets: Vec<(IpAddr, u8)>,
    family: HeaderFamily,
}

impl TrustedProxies {
    /// Parses a comma- or space-separated list; empty trusts nobody.
    pub fn parse(spec: &str) -> Result<TrustedProxies, String> {
        let mut t = TrustedProxies::default();
        for item in spec
            .split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            if item == "*" {
                t.any = true;
                continue;
            }
            let (addr, bits) = match item.split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (item, None),
            };
            let ip: IpAddr = addr
                .parse()
                .map_err(|_| format!("not an IP address: {item:?}"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                Some(b) => b
                    .parse::<u8>()
                    .ok()
                    .filter(|&b| b <= max)
                    .ok_or_else(|| format!("bad prefix length: {item:?}"))?,
                None => max,
            };
            t.nets.push((ip, bits));
        }
        Ok(t)
    }

    /// The same list, reading `family`'s forwarding fields.
    pub fn with_family(mut self, family: HeaderFamily) -> TrustedProxies {
        self.family = family;
        self
    }

    pub fn family(&self) -> HeaderFamily {
        self.family
    }

    /// Whether nobody is trusted (the feature is off).
    pub fn is_empty(&self) -> bool {
        !self.any && self.nets.is_empty()
    }

    /// Whether a connection's peer is trusted: its address is listed, or
    /// it has none (a Unix socket: only a local process that may open the
    /// socket file connects) and the list is not empty.
    pub fn admits(&self, ip: Option<IpAddr>) -> bool {
        !self.is_empty() && ip.is_none_or(|ip| self.contains(ip))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.any || self.in_nets(ip)
    }

    /// In a listed address or range (`*` aside); IPv4-mapped IPv6
    /// addresses count as their IPv4 address.
    fn in_nets(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.nets.iter().any(|&(net, bits)| in_net(ip, net, bits))
    }

    /// Whether a hop named in a forwarding list is a trusted proxy to
    /// skip. `*` does not count here: it trusts every peer to send the
    /// headers, not every address a client may write into them.
    fn is_proxy_hop(&self, addr: &[u8]) -> bool {
        parse_ip(addr).is_some_and(|ip| self.in_nets(ip))
    }
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let (a, b, width) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    let shift = width - u32::from(bits);
    shift >= width || (a >> shift) == (b >> shift)
}

fn parse_ip(text: &[u8]) -> Option<IpAddr> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// The original request as the trusted proxies describe it; `None`
/// where they say nothing usable.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin<'a> {
    /// The client's IP address, as text (no brackets, no port).
    pub client: Option<&'a [u8]>,
    /// `http` or `https` (as sent; compare case-insensitively).
    pub proto: Option<&'a [u8]>,
    /// The Host the client asked for.
    pub host: Option<&'a [u8]>,
}

/// The header values a trusted peer sent, in order of appearance.
#[derive(Clone, Debug, Default)]
pub struct ForwardedFields<'a> {
    pub forwarded: Vec<&'a [u8]>,
    pub x_for: Vec<&'a [u8]>,
    pub x_proto: Vec<&'a [u8]>,
    pub x_host: Vec<&'a [u8]>,
}

impl<'a> ForwardedFields<'a> {
    /// Keeps `value` if `name` is one of the forwarding fields.
    pub fn add(&mut self, name: &[u8], value: &'a [u8]) {
        let list = if name.eq_ignore_ascii_case(b"forwarded") {
            &mut self.forwarded
        } else if name.eq_ignore_ascii_case(b"x-forwarded-for") {
            &mut self.x_for
        } else if name.eq_ignore_ascii_case(b"x-forwarded-proto") {
            &mut self.x_proto
        } else if name.eq_ignore_ascii_case(b"x-forwarded-host") {
            &mut self.x_host
        } else {
            return;
        };
        list.push(value);
    }

    pub fn is_empty(&self) -> bool {
        self.forwarded.is_empty()
            && self.x_for.is_empty()
            && self.x_proto.is_empty()
            && self.x_host.is_empty()
    }

    /// What the fields of `trusted`'s family say, skipping hops that are
    /// trusted proxies; the other family is ignored.
    pub fn origin(&self, trusted: &TrustedProxies) -> Origin<'a> {
        if trusted.family == HeaderFamily::Forwarded {
            return from_forwarded(&self.forwarded, trusted);
        }
        let hops = list(&self.x_for);
        let client = pick_client(&hops, trusted).and_then(|i| node_address(hops[i]));
        Origin {
            client,
            proto: list(&self.x_proto)
                .last()
                .copied()
                .filter(|p| valid_proto(p)),
            host: list(&self.x_host)
                .last()
                .copied()
                .filter(|h| valid_forwarded_host(h)),
        }
    }
}

/// Comma-separated elements of all field values, trimmed, empty ones
/// dropped; quoted strings keep their commas. At most the last
/// [`MAX_FORWARDED_HOPS`] are kept.
fn list<'a>(values: &[&'a [u8]]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    for v in values {
        let mut start = 0;
        let mut quoted = false;
        for (i, &b) in v.iter().enumerate() {
            match b {
                b'"' => quoted = !quoted,
                b',' if !quoted => {
                    out.push(trim_ows(&v[start..i]));
                    start = i + 1;
                }
                _ => {}
            }
        }
        out.push(trim_ows(&v[start..]));
    }
    out.retain(|e| !e.is_empty());
    let skip = out.len().saturating_sub(MAX_FORWARDED_HOPS);
    out.drain(..skip);
    out
}

/// Index of the client among `hops` (nearest last): the rightmost entry
/// that is not a trusted proxy, or the leftmost when all are trusted.
fn pick_client(hops: &[&[u8]], trusted: &TrustedProxies) -> Option<usize> {
    let mut i = hops.len().checked_sub(1)?;
    while i > 0 && node_address(hops[i]).is_some_and(|a| trusted.is_proxy_hop(a)) {
        i -= 1;
    }
    Some(i)
}

fn from_forwarded<'a>(values: &[&'a [u8]], trusted: &TrustedProxies) -> Origin<'a> {
    let elements = list(values);
    let fors: Vec<&[u8]> = elements
        .iter()
        .map(|e| param(e, b"for").unwrap_or(b""))
        .collect();
    let Some(i) = pick_client(&fors, trusted) else {
        return Origin::default();
    };
    let e = elements[i];
    Origin {
        client: node_address(fors[i]),
        proto: param(e, b"proto").filter(|p| valid_proto(p)),
        host: param(e, b"host").filter(|h| valid_forwarded_host(h)),
    }
}

/// The value of `name` in one `Forwarded` element (`a=b;c="d"`), unquoted.
fn param<'a>(element: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    element.split(|&b| b == b';').find_map(|pair| {
        let eq = pair.iter().position(|&b| b == b'=')?;
        let (k, v) = (trim_ows(&pair[..eq]), trim_ows(&pair[eq + 1..]));
        if !k.eq_ignore_ascii_case(name) {
            return None;
        }
        Some(match v {
            [b'"', inner @ .., b'"'] => inner,
            _ => v,
        })
    })
}

/// The address part of a node (`1.2.3.4`, `1.2.3.4:80`, `[::1]:80`,
/// `::1`), if it is an IP address.
fn node_address(node: &[u8]) -> Option<&[u8]> {
    let node = match node {
        [b'"', inner @ .., b'"'] => inner,
        _ => node,
    };
    let addr = if let Some(rest) = node.strip_prefix(b"[") {
        &rest[..rest.iter().position(|&b| b == b']')?]
    } else if node.iter().filter(|&&b| b == b':').count() == 1 {
        &node[..node.iter().position(|&b| b == b':')?]
    } else {
        node
    };
    parse_ip(addr).map(|_| addr)
}

/// One `Forwarded` element (RFC 7239) describing a request a proxy
/// forwards: `for=` the client address (IPv6 bracketed and quoted),
/// `proto=`, and `host=` quoted (a port's `:` is not a token byte). A
/// client that is no IP address (a Unix-socket peer) is `unknown`.
pub fn forwarded_element(client: &str, proto: &str, host: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b"for=");
    match client.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => out.extend_from_slice(client.as_bytes()),
        Ok(IpAddr::V6(_)) => {
            out.extend_from_slice(b"\"[");
            out.extend_from_slice(client.as_bytes());
            out.extend_from_slice(b"]\"");
        }
        Err(_) => out.extend_from_slice(b"unknown"),
    }
    out.extend_from_slice(b";proto=");
    out.extend_from_slice(proto.as_bytes());
    if !host.is_empty() {
        out.extend_from_slice(b";host=\"");
        for &b in host {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    }
}

fn valid_proto(p: &[u8]) -> bool {
    p.eq_ignore_ascii_case(b"http") || p.eq_ignore_ascii_case(b"https")
}

fn valid_forwarded_host(h: &[u8]) -> bool {
    !h.is_empty() && valid_host(h)
}
