//! The upstream request of a proxied exchange, as the portable `Proxy`
//! builds it: the target (the upstream URL's path, then the path below
//! the route's prefix as the client sent it but without dot segments, then
//! the query; a path resolving outside the prefix is refused), the client's
//! end-to-end fields (hop-by-hop ones, those `Connection` names and
//! names with `_` dropped), `Host` (the upstream's, or the client's with
//! `--proxy-preserve-host`), `X-Forwarded-For/-Proto/-Host` and
//! `Forwarded` (the client's replaced, never passed on).

use super::{is_hop_by_hop, NativeProxy};
use crate::method;
use crate::upstream::Server;
use qiao_http::forwarded::forwarded_element;
use qiao_http::path::{below_prefix, quote, Escape};
use qiao_http::request::percent_decode;
use qiao_http::response::push_field;
use qiao_http::Framing;
use qiao_io::service::Exchange;

/// Bytes kept as they are when a decoded path is quoted again (a `%` is
/// always encoded: it is data by then).
const PATH_SAFE: &[u8] = b"/:@!$&'()*+,;=-._~";

impl NativeProxy {
    /// The path below the prefix to forward, dot segments removed; or why
    /// the request is refused (it resolves outside the prefix: see
    /// [`below_prefix`]).
    pub(super) fn rest(&self, ex: &Exchange<'_>) -> Result<Vec<u8>, Escape> {
        let raw = ex.bytes(&ex.head.path);
        let rest = match raw.strip_prefix(&self.prefix[..]) {
            Some(rest) if rest.is_empty() || rest[0] == b'/' => rest.to_vec(),
            // The prefix itself was percent-encoded: decode, quote again.
            _ => {
                let mut decoded = Vec::new();
                percent_decode(raw, &mut decoded);
                let rest = decoded.get(self.prefix.len()..).unwrap_or_default();
                quote(rest, PATH_SAFE)
            }
        };
        below_prefix(raw, &self.prefix, &rest)
    }

    /// The upstream's request target: its base path, then `rest` (the path
    /// below the prefix, see [`rest`](Self::rest)), then the query.
    pub(super) fn target(&self, ex: &Exchange<'_>, server: &Server, rest: &[u8]) -> Vec<u8> {
        let mut target = server.base_path.as_bytes().to_vec();
        target.extend_from_slice(rest);
        if target.is_empty() {
            target.push(b'/');
        }
        let query = ex.bytes(&ex.head.query);
        if !query.is_empty() {
            target.push(b'?');
            target.extend_from_slice(query);
        }
        target
    }

    /// Writes the upstream request's head into `out` (emptied first):
    /// the request line, the client's end-to-end fields in order, `Host`,
    /// `X-Forwarded-For/-Proto/-Host` and `Forwarded`, then the body's
    /// framing if it has one: exactly one `Content-Length` (the length the
    /// request parser validated, never the client's field as sent), or
    /// chunked.
    pub(super) fn write_request(
        &self,
        ex: &Exchange<'_>,
        server: &Server,
        rest: &[u8],
        body: Framing,
        out: &mut Vec<u8>,
    ) {
        out.clear();
        out.extend_from_slice(method(ex));
        out.push(b' ');
        push_quoted_invalid(&self.target(ex, server, rest), out);
        out.extend_from_slice(b" HTTP/1.1\r\n");
        let mut client_host: &[u8] = b"";
        let mut chain = false;
        let mut has_length = false;
        for (name, value) in fields(ex) {
            if name.eq_ignore_ascii_case(b"host") {
                client_host = value;
            } else if name.eq_ignore_ascii_case(b"x-forwarded-for") {
                chain = true;
            } else if name.eq_ignore_ascii_case(b"content-length") {
                // Written once below from the length the parser settled
                // on: the client's line may be a list (`3, 3`) or repeated,
                // which upstreams such as nginx and gunicorn answer with 400.
                has_length = true;
            } else if name.contains(&b'_') {
                // Dropped, as nginx does by default (`underscores_in_headers
                // off`) and the WSGI side does: `X_Forwarded_For` and
                // `X-Forwarded-For` are one CGI variable to an upstream
                // behind, so a client could smuggle one past the other.
            } else if !name.eq_ignore_ascii_case(b"x-forwarded-proto")
                && !name.eq_ignore_ascii_case(b"x-forwarded-host")
                && !name.eq_ignore_ascii_case(b"forwarded")
                && !is_hop_by_hop(name, fields(ex))
            {
                push_field(out, name, value);
            }
        }
        if client_host.is_empty() {
            client_host = ex.listener.server_name.as_bytes();
        }
        let host = if self.opts.preserve_host {
            client_host
        } else {
            server.netloc.as_bytes()
        };
        push_field(out, b"Host", host);
        out.extend_from_slice(b"X-Forwarded-For: ");
        if chain {
            for (name, value) in fields(ex) {
                if name.eq_ignore_ascii_case(b"x-forwarded-for") {
                    out.extend_from_slice(value);
                    out.extend_from_slice(b", ");
                }
            }
        }
        out.extend_from_slice(ex.peer.addr.as_bytes());
        out.extend_from_slice(b"\r\n");
        push_field(out, b"X-Forwarded-Proto", self.opts.url_scheme.as_bytes());
        push_field(out, b"X-Forwarded-Host", client_host);
        // The client's own `Forwarded` is dropped above: ours replaces it.
        out.extend_from_slice(b"Forwarded: ");
        let scheme = &self.opts.url_scheme;
        forwarded_element(&ex.peer.addr, scheme, client_host, out);
        out.extend_from_slice(b"\r\n");
        match body {
            // An explicit `Content-Length: 0` stays (a POST without one
            // may get 411 from some upstreams); the parser made it Empty.
            Framing::Empty if has_length => push_field(out, b"Content-Length", b"0"),
            Framing::Empty => {}
            Framing::Length(n) => push_field(
                out,
                b"Content-Length",
                itoa::Buffer::new().format(n).as_bytes(),
            ),
            Framing::Chunked => push_field(out, b"Transfer-Encoding", b"chunked"),
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// The request's fields, as bytes.
fn fields<'a>(ex: &'a Exchange<'_>) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
    ex.head
        .headers
        .iter()
        .map(|(n, v)| (ex.bytes(n), ex.bytes(v)))
}

/// Percent-encodes the bytes of a raw target a URI cannot hold as they
/// are, appending to `out`.
fn push_quoted_invalid(target: &[u8], out: &mut Vec<u8>) {
    for &b in target {
        if b.is_ascii_graphic()
            && !matches!(
                b,
                b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}'
            )
        {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
}
