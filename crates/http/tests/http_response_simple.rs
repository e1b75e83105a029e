//! The responses the server writes itself, in `qiao_http::response`: the
//! reason phrases and `simple_response` for every status it produces (its
//! length in bytes, `Connection: close`, HEAD without the body).

use qiao_http::response::{reason, simple_response};

const DATE: &[u8] = b"Sun, 06 Nov 1994 08:49:37 GMT";

const D: &str = "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n";

#[test]
fn reasons() {
    let cases: &[(u16, &str)] = &[
        (400, "Bad Request"),
        (408, "Request Timeout"),
        (413, "Content Too Large"),
        (414, "URI Too Long"),
        (431, "Request Header Fields Too Large"),
        (500, "Internal Server Error"),
        (501, "Not Implemented"),
        (503, "Service Unavailable"),
        (505, "HTTP Version Not Supported"),
        (200, "OK"),
        (404, "Not Found"),
        (502, "Bad Gateway"),
        (504, "Gateway Timeout"),
        (418, "Error"),
    ];
    for (status, want) in cases {
        assert_eq!(reason(*status), *want);
    }
}

fn simple(status: u16, msg: &str, keep_alive: bool, is_head: bool) -> String {
    let mut out = Vec::new();
    simple_response(&mut out, status, msg, DATE, keep_alive, is_head);
    String::from_utf8(out).unwrap()
}

#[test]
fn simple_responses() {
    let base = |line: &str, len: usize| {
        format!("HTTP/1.1 {line}\r\nServer: qiao\r\n{D}Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len}\r\n")
    };
    let msg = "malformed request line";
    assert_eq!(
        simple(400, msg, false, false),
        format!(
            "{}Connection: close\r\n\r\n{msg}\n",
            base("400 Bad Request", 23)
        )
    );
    assert_eq!(
        simple(400, msg, false, true),
        format!("{}Connection: close\r\n\r\n", base("400 Bad Request", 23))
    );
    assert_eq!(
        simple(500, "boom", true, false),
        format!("{}\r\nboom\n", base("500 Internal Server Error", 5))
    );
    assert_eq!(
        simple(503, "", true, true),
        format!("{}\r\n", base("503 Service Unavailable", 1))
    );
    for status in [400, 408, 413, 414, 431, 500, 501, 503, 505] {
        let s = simple(status, "why", false, false);
        assert!(
            s.starts_with(&format!("HTTP/1.1 {status} {}\r\n", reason(status))),
            "{s}"
        );
        let (head, body) = s.split_once("\r\n\r\n").unwrap();
        assert_eq!(body, "why\n");
        assert!(head.contains("\r\nContent-Length: 4") && head.ends_with("Connection: close"));
    }
    // UTF-8 messages: the length counts bytes.
    assert!(simple(400, "é", true, false).contains("Content-Length: 3\r\n"));
}
