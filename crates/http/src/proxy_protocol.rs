//! HAProxy's PROXY protocol, versions 1 (text) and 2 (binary): the header
//! a load balancer sends first on each connection to say who the client
//! is (`--proxy-protocol`). Sans-IO and `Complete | Partial` like the head
//! parser: bytes in, the header's length and the client address out, so
//! it is tested whole, byte by byte and in random splits.
//!
//! Only what a WSGI server needs is kept: the source address and port of
//! TCP over IPv4/IPv6. `UNKNOWN` (v1), `LOCAL` (v2, the balancer's own
//! health checks) and other families say nothing about a client: the
//! connection keeps its real peer. TLVs (v2) are skipped.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::error::ParseError;
use super::request::Status;

/// Longest v1 header, CRLF included (the specification's bound).
pub(crate) const MAX_V1_HEADER: usize = 107;
/// Largest v2 address block accepted (addresses plus TLVs).
pub(crate) const MAX_V2_PAYLOAD: usize = 1024;
/// The 12 bytes every v2 header starts with.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
const V1_PREFIX: &[u8] = b"PROXY ";

/// The client the proxy speaks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxiedPeer {
    pub ip: IpAddr,
    pub port: u16,
}

/// A complete header: its length, and the client when it names one.
pub(crate) type ProxyHeader = (usize, Option<ProxiedPeer>);

/// Parses the PROXY header at the start of `buf`.
pub fn parse_proxy_header(buf: &[u8]) -> Result<Status<ProxyHeader>, ParseError> {
    if buf.is_empty() {
        return Ok(Status::Partial);
    }
    if buf[0] == b'\r' {
        let n = buf.len().min(V2_SIGNATURE.len());
        return if buf[..n] != V2_SIGNATURE[..n] {
            Err(ParseError::BadProxyHeader)
        } else if n < V2_SIGNATURE.len() {
            Ok(Status::Partial)
        } else {
            parse_v2(buf)
        };
    }
    let n = buf.len().min(V1_PREFIX.len());
    if buf[..n] != V1_PREFIX[..n] {
        return Err(ParseError::BadProxyHeader);
    }
    parse_v1(buf)
}

fn parse_v1(buf: &[u8]) -> Result<Status<ProxyHeader>, ParseError> {
    let Some(lf) = buf.iter().take(MAX_V1_HEADER).position(|&b| b == b'\n') else {
        return if buf.len() >= MAX_V1_HEADER {
            Err(ParseError::BadProxyHeader)
        } else {
            Ok(Status::Partial)
        };
    };
    let line = buf[..lf]
        .strip_suffix(b"\r")
        .ok_or(ParseError::BadProxyHeader)?;
    let line = std::str::from_utf8(line).map_err(|_| ParseError::BadProxyHeader)?;
    let mut parts = line.split(' ');
    parts.next(); // "PROXY"
    let peer = match parts.next() {
        Some("UNKNOWN") => None,
        Some(family @ ("TCP4" | "TCP6")) => {
            let fields: Vec<&str> = parts.collect();
            let [src, dst, sport, dport] = fields[..] else {
                return Err(ParseError::BadProxyHeader);
            };
            let parse_ip = |s: &str| -> Result<IpAddr, ParseError> {
                let ip: IpAddr = if family == "TCP4" {
                    s.parse::<Ipv4Addr>().map(IpAddr::V4)
                } else {
                    s.parse::<Ipv6Addr>().map(IpAddr::V6)
                }
                .map_err(|_| ParseError::BadProxyHeader)?;
                Ok(ip)
            };
            let parse_port = |s: &str| -> Result<u16, ParseError> {
                // Decimal without sign or leading zeros, as the spec says.
                if s.is_empty() || (s.len() > 1 && s.starts_with('0')) {
                    return Err(ParseError::BadProxyHeader);
                }
                s.parse().map_err(|_| ParseError::BadProxyHeader)
            };
            let ip = parse_ip(src)?;
            parse_ip(dst)?;
            let port = parse_port(sport)?;
            parse_port(dport)?;
            Some(ProxiedPeer { ip, port })
        }
        _ => return Err(ParseError::BadProxyHeader),
    };
    Ok(Status::Complete((lf + 1, peer)))
}

fn parse_v2(buf: &[u8]) -> Result<Status<ProxyHeader>, ParseError> {
    const FIXED: usize = 16;
    if buf.len() < FIXED {
        return Ok(Status::Partial);
    }
    let (ver_cmd, family) = (buf[12], buf[13]);
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if ver_cmd >> 4 != 2 || len > MAX_V2_PAYLOAD {
        return Err(ParseError::BadProxyHeader);
    }
    if buf.len() < FIXED + len {
        return Ok(Status::Partial);
    }
    let payload = &buf[FIXED..FIXED + len];
    let peer = match (ver_cmd & 0x0f, family) {
        // LOCAL: the proxy's own connection (health check).
        (0, _) => None,
        (1, 0x11) => {
            let a: [u8; 12] = payload
                .get(..12)
                .and_then(|s| s.try_into().ok())
                .ok_or(ParseError::BadProxyHeader)?;
            Some(ProxiedPeer {
                ip: IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3])),
                port: u16::from_be_bytes([a[8], a[9]]),
            })
        }
        (1, 0x21) => {
            let a: [u8; 36] = payload
                .get(..36)
                .and_then(|s| s.try_into().ok())
                .ok_or(ParseError::BadProxyHeader)?;
            let mut src = [0u8; 16];
            src.copy_from_slice(&a[..16]);
            Some(ProxiedPeer {
                ip: IpAddr::V6(Ipv6Addr::from(src)),
                port: u16::from_be_bytes([a[32], a[33]]),
            })
        }
        // UNSPEC, UDP, Unix sockets: no TCP client to report.
        (1, _) => None,
        _ => return Err(ParseError::BadProxyHeader),
    };
    Ok(Status::Complete((FIXED + len, peer)))
}
