//! The heads of an HTTP/2 stream mapped to HTTP/1.1 for the loop and
//! back (sans-IO, tested here): pseudo-headers to an origin-form target
//! and `Host` (a `Host` naming another authority than `:authority`
//! refused), and the connection-specific fields HTTP/2 forbids dropped in
//! both directions. Both ways of forwarding a stream (`fast`, `upstream`)
//! use them.

use hyper::header::{HeaderMap, HeaderName, HeaderValue, HOST};
use hyper::Uri;

/// Hop-by-hop fields (RFC 9110 §7.6.1) and those HTTP/2 forbids
/// (RFC 9113 §8.2.2): never forwarded in either direction. `Expect` is
/// handled by HTTP/2 itself (a stream's body simply follows).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "expect",
];

fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
}

/// Why an HTTP/2 request is malformed (answered 400 on its stream).
pub(crate) const AUTHORITY_MISMATCH: &str = "Bad Request: Host differs from :authority\n";

/// The HTTP/1.1 request head for an HTTP/2 request: origin-form target,
/// `Host` from `:authority` when the client sent no `Host`, hop-by-hop
/// fields dropped. `Content-Length` passes through (or hyper's client
/// frames the streamed body as chunked). `Err` for a request RFC 9113
/// §8.3.1 calls malformed: a `Host` naming another authority than
/// `:authority` (which would otherwise win, unseen by anything that
/// routed or checked the stream by its `:authority`).
pub(crate) fn h1_request_head(
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(Uri, HeaderMap), &'static str> {
    if let Some(authority) = uri.authority() {
        let default_port = if uri.scheme_str() == Some("http") {
            "80"
        } else {
            "443"
        };
        let differs = headers.get_all(HOST).iter().any(|host| {
            !host
                .to_str()
                .is_ok_and(|h| same_authority(h, authority.as_str(), default_port))
        });
        if differs {
            return Err(AUTHORITY_MISMATCH);
        }
    }
    let target = uri.path_and_query().map_or_else(
        || Uri::from_static("/"),
        |pq| Uri::try_from(pq.as_str()).unwrap_or_else(|_| Uri::from_static("/")),
    );
    let mut out = HeaderMap::with_capacity(headers.len() + 1);
    for (name, value) in headers {
        if !is_hop_by_hop(name) {
            out.append(name.clone(), value.clone());
        }
    }
    if !out.contains_key(HOST) {
        if let Some(a) = uri.authority() {
            if let Ok(v) = HeaderValue::from_str(a.as_str()) {
                out.insert(HOST, v);
            }
        }
    }
    Ok((target, out))
}

/// Whether two `host[:port]` name the same authority, normalized as RFC
/// 9113 §8.3.1 asks: the host without case, a missing port as the scheme's
/// default.
fn same_authority(a: &str, b: &str, default_port: &str) -> bool {
    let split = |s: &str| -> (String, String) {
        let s = s.trim().to_ascii_lowercase();
        // An IPv6 literal's colons are inside its brackets.
        match s.rfind(':').filter(|&i| !s[i..].contains(']')) {
            Some(i) => (s[..i].to_string(), s[i + 1..].to_string()),
            None => (s, default_port.to_string()),
        }
    };
    split(a) == split(b)
}

/// The HTTP/2 response head for the loop's HTTP/1.1 answer: its fields
/// minus the connection-specific ones.
pub(crate) fn h2_response_head(headers: &mut HeaderMap) {
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|n| is_hop_by_hop(n))
        .cloned()
        .collect();
    for n in names {
        headers.remove(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (n, v) in pairs {
            m.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        m
    }

    #[test]
    fn request_heads() {
        type Case = (
            &'static str,
            &'static str,
            &'static [(&'static str, &'static str)],
            &'static str,
            &'static [(&'static str, &'static str)],
        );
        let cases: &[Case] = &[
            (
                "plain get",
                "https://example.com/a?b=1",
                &[("accept", "*/*")],
                "/a?b=1",
                &[("accept", "*/*"), ("host", "example.com")],
            ),
            (
                "host kept",
                "https://example.com/",
                &[("host", "Example.COM:443")],
                "/",
                &[("host", "Example.COM:443")],
            ),
            (
                "no path",
                "https://example.com",
                &[],
                "/",
                &[("host", "example.com")],
            ),
            (
                "port kept",
                "http://h:8443/x",
                &[],
                "/x",
                &[("host", "h:8443")],
            ),
            (
                "hop-by-hop dropped",
                "https://h/",
                &[
                    ("te", "trailers"),
                    ("expect", "100-continue"),
                    ("content-length", "5"),
                ],
                "/",
                &[("content-length", "5"), ("host", "h")],
            ),
            (
                "repeated fields kept",
                "https://h/",
                &[("cookie", "a=1"), ("cookie", "b=2")],
                "/",
                &[("cookie", "a=1"), ("cookie", "b=2"), ("host", "h")],
            ),
        ];
        for (name, uri, headers, target, want) in cases {
            let (t, h) = h1_request_head(&uri.parse().unwrap(), &map(headers)).unwrap();
            assert_eq!(t.to_string(), *target, "{name}");
            assert_eq!(h, map(want), "{name}");
        }
    }

    #[test]
    fn host_must_name_the_authority() {
        let refused: &[(&str, &[(&str, &str)])] = &[
            ("https://example.com/", &[("host", "other")]),
            ("https://example.com/", &[("host", "example.com:8443")]),
            ("http://h:8080/", &[("host", "h")]),
            (
                "https://example.com/",
                &[("host", "example.com"), ("host", "evil")],
            ),
            ("https://[::1]:8443/", &[("host", "[::1]")]),
        ];
        for (uri, headers) in refused {
            let got = h1_request_head(&uri.parse().unwrap(), &map(headers));
            assert_eq!(got.err(), Some(AUTHORITY_MISMATCH), "{uri} {headers:?}");
        }
        let accepted: &[(&str, &[(&str, &str)])] = &[
            ("https://example.com/", &[("host", "EXAMPLE.com")]),
            ("http://h/", &[("host", "h:80")]),
            ("https://[::1]:8443/", &[("host", "[::1]:8443")]),
            ("/", &[("host", "anything")]),
        ];
        for (uri, headers) in accepted {
            let got = h1_request_head(&uri.parse().unwrap(), &map(headers));
            assert!(got.is_ok(), "{uri} {headers:?}");
        }
    }

    #[test]
    fn response_heads() {
        let mut h = map(&[
            ("content-type", "text/plain"),
            ("connection", "close"),
            ("transfer-encoding", "chunked"),
            ("keep-alive", "timeout=5"),
            ("set-cookie", "a=1"),
            ("set-cookie", "b=2"),
        ]);
        h2_response_head(&mut h);
        assert_eq!(
            h,
            map(&[
                ("content-type", "text/plain"),
                ("set-cookie", "a=1"),
                ("set-cookie", "b=2")
            ])
        );
    }
}
