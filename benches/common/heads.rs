//! The request heads both benches use, so parser and environ numbers are
//! comparable: from the smallest valid HTTP/1.1 head to one at the
//! default field-count limit.

// Shared by several test binaries, each using a part: `pub` here is
// the support's interface, not the crate's.
#![allow(unreachable_pub)]

/// `(name, head bytes)`, each a complete head ending in CRLF CRLF.
pub fn heads() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("minimal", MINIMAL.to_vec()),
        ("browser", BROWSER.to_vec()),
        ("post", POST.to_vec()),
        ("absolute", ABSOLUTE.to_vec()),
        ("fields100", fields_100()),
    ]
}

/// The smallest valid HTTP/1.1 request: what `wrk` and health checks send.
pub const MINIMAL: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost:8000\r\n\r\n";

/// A Firefox-like page load: 14 fields, a query string and cookies.
pub const BROWSER: &[u8] = b"GET /articles/2025/rust-wsgi?page=2&sort=recent HTTP/1.1\r\n\
Host: www.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-GB,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://www.example.com/articles/2025/\r\n\
Connection: keep-alive\r\n\
Cookie: sessionid=k3n9x0q7vz2m5c8r1t4y6u0w; csrftoken=Xy7QpL2mN9vR4sT6uW8zA1bC3dE5fG0h; _ga=GA1.2.1234567890.1700000000; theme=dark\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-Site: same-origin\r\n\
Sec-Fetch-User: ?1\r\n\
Priority: u=0, i\r\n\
\r\n";

/// An API call with a JSON body (the body itself is not part of the head).
pub const POST: &[u8] = b"POST /api/v1/orders HTTP/1.1\r\n\
Host: api.example.com\r\n\
User-Agent: python-requests/2.32.3\r\n\
Accept-Encoding: gzip, deflate\r\n\
Accept: application/json\r\n\
Connection: keep-alive\r\n\
Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U\r\n\
Content-Type: application/json\r\n\
Content-Length: 87\r\n\
\r\n";

/// An absolute-form target (its authority replaces Host) with a
/// percent-encoded path.
pub const ABSOLUTE: &[u8] =
    b"GET http://www.example.com:8080/files/annual%20report%202025.pdf?download=1 HTTP/1.1\r\n\
Host: www.example.com:8080\r\n\
User-Agent: curl/8.5.0\r\n\
Accept: */*\r\n\
\r\n";

/// Exactly `MAX_HEADER_FIELDS` (100, the default `--limit-request-fields`)
/// fields of ~80 bytes each, about 8 KiB of head: the most fields a
/// request may carry before a 431.
pub fn fields_100() -> Vec<u8> {
    let mut head = b"GET /search?q=limits HTTP/1.1\r\nHost: www.example.com\r\n".to_vec();
    for i in 1..qiao_http::limits::MAX_HEADER_FIELDS {
        head.extend_from_slice(
            format!("X-Custom-Field-{i:03}: value-{i:03}-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMN\r\n")
                .as_bytes(),
        );
    }
    head.extend_from_slice(b"\r\n");
    head
}
