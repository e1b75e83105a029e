//! `http::uwsgi`: uwsgi request packets as table tests on raw bytes, fed
//! whole and as growing prefixes (every shorter prefix is `Partial` or the
//! same error), and at random cut points.

#[path = "common/cuts.rs"]
mod cuts;

use qiao_http::uwsgi::parse_uwsgi;
use qiao_http::{Framing, Limits, ParseError, RequestHead, Status, Version};

fn packet(vars: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut data = Vec::new();
    for (k, v) in vars {
        data.extend_from_slice(&(k.len() as u16).to_le_bytes());
        data.extend_from_slice(k.as_bytes());
        data.extend_from_slice(&(v.len() as u16).to_le_bytes());
        data.extend_from_slice(v.as_bytes());
    }
    let mut p = vec![0u8];
    p.extend_from_slice(&(data.len() as u16).to_le_bytes());
    p.push(0);
    p.extend_from_slice(&data);
    p.extend_from_slice(body);
    p
}

const GET: &[(&str, &str)] = &[
    ("REQUEST_METHOD", "GET"),
    ("REQUEST_URI", "/a%20b?x=1"),
    ("PATH_INFO", "/a b"),
    ("QUERY_STRING", "x=1"),
    ("HTTP_HOST", "example.com"),
    ("CONTENT_LENGTH", ""),
];

/// (name, packet, limits, answer for the whole packet).
type Case = (
    &'static str,
    Vec<u8>,
    Limits,
    Result<Status<usize>, ParseError>,
);

fn parse(buf: &[u8], limits: &Limits) -> (Result<Status<usize>, ParseError>, RequestHead) {
    let mut head = RequestHead::default();
    (parse_uwsgi(buf, limits, &mut head), head)
}

fn text<'a>(buf: &'a [u8], r: &std::ops::Range<usize>) -> &'a str {
    std::str::from_utf8(&buf[r.clone()]).unwrap()
}

#[test]
fn a_request_packet_fills_the_head() {
    let p = packet(GET, b"");
    let (r, head) = parse(&p, &Limits::default());
    assert_eq!(r, Ok(Status::Complete(p.len())));
    assert!(head.cgi && head.keep_alive);
    assert_eq!(head.version, Version::Http10, "responses framed as 1.0");
    assert_eq!(text(&p, &head.method), "GET");
    assert_eq!(text(&p, &head.target), "/a%20b?x=1");
    assert_eq!(text(&p, &head.path), "/a b");
    assert_eq!(text(&p, &head.query), "x=1");
    assert_eq!(head.framing, Framing::Empty);
    let vars: Vec<(&str, &str)> = head
        .headers
        .iter()
        .map(|(k, v)| (text(&p, k), text(&p, v)))
        .collect();
    assert_eq!(vars, GET);
}

#[test]
fn the_body_follows_the_variables() {
    let vars = [
        ("REQUEST_METHOD", "POST"),
        ("PATH_INFO", "/p"),
        ("CONTENT_LENGTH", "5"),
    ];
    let p = packet(&vars, b"hello");
    let (r, head) = parse(&p, &Limits::default());
    assert_eq!(r, Ok(Status::Complete(p.len() - 5)));
    assert_eq!(head.framing, Framing::Length(5));
    // No REQUEST_URI: the target is the path.
    assert_eq!(text(&p, &head.target), "/p");
}

fn refused() -> Vec<(&'static str, Vec<u8>, Limits, ParseError)> {
    let d = Limits::default();
    let small_body = Limits {
        max_body: Some(3),
        ..Limits::default()
    };
    let mut bad_key = packet(GET, b"");
    bad_key[4] = 0xff; // the first key's length now runs past the block
    vec![
        (
            "modifier",
            vec![5, 0, 0, 0],
            d.clone(),
            ParseError::BadRequestLine,
        ),
        (
            "no-method",
            packet(&[("PATH_INFO", "/")], b""),
            d.clone(),
            ParseError::BadRequestLine,
        ),
        ("key-past-block", bad_key, d.clone(), ParseError::BadHeader),
        (
            "empty-key",
            packet(&[("", "x"), ("REQUEST_METHOD", "GET")], b""),
            d.clone(),
            ParseError::BadHeader,
        ),
        (
            "crlf-in-remote-user",
            packet(
                &[("REQUEST_METHOD", "GET"), ("REMOTE_USER", "bob\r\nforged")],
                b"",
            ),
            d.clone(),
            ParseError::BadHeader,
        ),
        (
            "nul-in-remote-addr",
            packet(
                &[("REQUEST_METHOD", "GET"), ("REMOTE_ADDR", "1.2.3.4\0")],
                b"",
            ),
            d.clone(),
            ParseError::BadHeader,
        ),
        (
            "del-in-header",
            packet(&[("REQUEST_METHOD", "GET"), ("HTTP_X_A", "a\x7fb")], b""),
            d.clone(),
            ParseError::BadHeader,
        ),
        (
            "lf-in-key",
            packet(&[("REQUEST_METHOD", "GET"), ("X\nY", "1")], b""),
            d.clone(),
            ParseError::BadHeader,
        ),
        (
            "bad-length",
            packet(&[("REQUEST_METHOD", "POST"), ("CONTENT_LENGTH", "-1")], b""),
            d.clone(),
            ParseError::BadContentLength,
        ),
        (
            "body-too-large",
            packet(
                &[("REQUEST_METHOD", "POST"), ("CONTENT_LENGTH", "4")],
                b"abcd",
            ),
            small_body,
            ParseError::BodyTooLarge,
        ),
        (
            "too-large",
            {
                let mut p = vec![0, 0xff, 0xff, 0];
                p.resize(70_000, 0);
                p
            },
            Limits {
                header_fields: 2,
                field_size: 64,
                ..Limits::default()
            },
            ParseError::HeaderTooLarge,
        ),
    ]
}

#[test]
fn decoded_paths_and_tabs_may_hold_what_other_variables_may_not() {
    // nginx's PATH_INFO is the decoded path: `%0A` legitimately becomes LF.
    let p = packet(
        &[
            ("REQUEST_METHOD", "GET"),
            ("REQUEST_URI", "/a%0Ab"),
            ("PATH_INFO", "/a\nb"),
            ("SCRIPT_NAME", "/s\r"),
            ("HTTP_X_TAB", "a\tb"),
        ],
        b"",
    );
    let (r, head) = parse(&p, &Limits::default());
    assert_eq!(r, Ok(Status::Complete(p.len())));
    assert_eq!(text(&p, &head.path), "/a\nb");
}

#[test]
fn malformed_packets_are_refused() {
    for (name, p, limits, err) in refused() {
        assert_eq!(parse(&p, &limits).0, Err(err), "{name}");
    }
}

#[test]
fn prefixes_and_splits_never_change_the_answer() {
    let mut all: Vec<Case> = vec![(
        "get",
        packet(GET, b""),
        Limits::default(),
        Ok(Status::Complete(0)),
    )];
    for (name, p, limits, err) in refused() {
        all.push((name, p, limits, Err(err)));
    }
    for (name, p, limits, expected) in all {
        let whole = parse(&p, &limits).0;
        if let Ok(Status::Complete(_)) = expected {
            assert!(matches!(whole, Ok(Status::Complete(_))), "{name}");
        }
        let mut cuts: Vec<usize> = (0..p.len()).collect();
        for seed in [1, 7, 99] {
            cuts.extend(cuts::random_cuts(p.len(), seed));
        }
        for cut in cuts {
            match parse(&p[..cut], &limits).0 {
                Ok(Status::Partial) => {}
                other => assert_eq!(other, whole, "{name}: prefix {cut}"),
            }
        }
    }
}
