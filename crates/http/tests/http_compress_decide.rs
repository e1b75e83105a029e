//! `--compress` decisions on a response in `qiao_http::compress`, as
//! tables: which content types are compressible, which responses are
//! candidates, and the exact head rewrite. The rules are the portable
//! `qiao.middleware.Compress`'s; the e2e suite
//! (`tests/e2e/test_middleware_compress.py`) checks both agree on the wire.

use qiao_http::codec::Kind;
use qiao_http::compress::{
    decide, rewrite_head, CompressConfig, Decision, FieldRanges, DEFAULT_CODINGS,
};

use Kind::{Gzip, Zstd};

/// The portable class's default types.
const TYPES: &[&str] = &[
    "text/",
    "application/json",
    "application/ld+json",
    "application/manifest+json",
    "application/javascript",
    "application/xml",
    "application/xhtml+xml",
    "application/rss+xml",
    "application/atom+xml",
    "application/wasm",
    "image/svg+xml",
];

fn config() -> CompressConfig {
    CompressConfig::new(1024, TYPES, &DEFAULT_CODINGS)
}

#[rustfmt::skip]
const TYPE_CASES: &[(&str, bool)] = &[
    ("text/plain", true),
    ("text/html; charset=utf-8", true),
    ("TEXT/CSS", true),
    ("  text/plain  ;q=1", true),
    ("application/json", true),
    ("application/JSON;charset=utf-8", true),
    ("image/svg+xml", true),
    ("application/json-seq", false),
    ("application/jsonx", false),
    ("text/event-stream", false),
    ("Text/Event-Stream; charset=utf-8", false),
    ("image/png", false),
    ("application/octet-stream", false),
    ("text", false),
    ("", false),
    ("textual/plain", false),
];

#[test]
fn compressible_types() {
    let c = config();
    for (ctype, want) in TYPE_CASES {
        assert_eq!(c.compressible(ctype.as_bytes()), *want, "{ctype:?}");
    }
    let narrow = CompressConfig::new(0, &["TEXT/Plain", "application/"], &DEFAULT_CODINGS);
    assert!(narrow.compressible(b"text/plain"));
    assert!(!narrow.compressible(b"text/html"));
    assert!(narrow.compressible(b"application/x-anything"));
}

type Head<'a> = &'a [(&'a str, &'a str)];

fn run_decide(status: u16, head: Head<'_>, length: Option<u64>, coding: Option<Kind>) -> Decision {
    let iter = head.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes()));
    decide(&config(), status, iter, length, || coding)
}

const TEXT: (&str, &str) = ("Content-Type", "text/plain");
const ENC: fn(bool) -> Decision = |add_vary| Decision::Encode {
    coding: Gzip,
    add_vary,
};

#[test]
fn decide_table() {
    use Decision::{Identity, Leave};
    let leave: &[(u16, Head<'_>, Option<u64>)] = &[
        (100, &[TEXT], None),
        (204, &[TEXT], None),
        (206, &[TEXT], None),
        (304, &[TEXT], None),
        (200, &[], None),
        (200, &[("Content-Type", "image/png")], None),
        (200, &[("Content-Type", "text/event-stream")], None),
        (200, &[TEXT, ("Content-Encoding", "gzip")], None),
        (200, &[TEXT, ("content-encoding", " br ")], None),
        (200, &[TEXT, ("Content-Range", "bytes 0-1/9")], None),
        (
            200,
            &[TEXT, ("Cache-Control", "public, No-Transform")],
            None,
        ),
        (200, &[TEXT, ("Content-Length", "1023")], None),
        (200, &[TEXT, ("Content-Length", " 10 ")], Some(5000)),
        (200, &[TEXT], Some(1023)),
        (200, &[TEXT], Some(0)),
        // Only the first Content-Type counts.
        (200, &[("Content-Type", "image/png"), TEXT], None),
    ];
    for &(status, head, length) in leave {
        let iter = head.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes()));
        // A response left alone never needs the Accept-Encoding parsed.
        let coding = || panic!("Accept-Encoding parsed for {status} {head:?}");
        assert_eq!(decide(&config(), status, iter, length, coding), Leave);
    }
    let encode: &[(u16, Head<'_>, Option<u64>, Decision)] = &[
        (200, &[TEXT], None, ENC(true)),
        (500, &[TEXT], None, ENC(true)),
        (200, &[TEXT], Some(1024), ENC(true)),
        (
            200,
            &[TEXT, ("Content-Length", "1024")],
            Some(10),
            ENC(true),
        ),
        (
            200,
            &[TEXT, ("Content-Encoding", "Identity")],
            None,
            ENC(true),
        ),
        // Only the first Cache-Control counts.
        (
            200,
            &[
                TEXT,
                ("Cache-Control", "max-age=5"),
                ("Cache-Control", "no-transform"),
            ],
            None,
            ENC(true),
        ),
        (200, &[TEXT, ("Vary", "Cookie")], None, ENC(true)),
        (
            200,
            &[TEXT, ("Vary", "Cookie, accept-encoding")],
            None,
            ENC(false),
        ),
        (
            200,
            &[TEXT, ("Vary", "Cookie"), ("Vary", " Accept-Encoding ")],
            None,
            ENC(false),
        ),
        (200, &[TEXT, ("Vary", "*")], None, ENC(false)),
        // Too large to count: certainly not small.
        (
            200,
            &[TEXT, ("Content-Length", "99999999999999999999999")],
            Some(10),
            ENC(true),
        ),
        // Only the first Content-Length counts.
        (
            200,
            &[TEXT, ("Content-Length", "5000"), ("Content-Length", "10")],
            None,
            ENC(true),
        ),
    ];
    for &(status, head, length, want) in encode {
        assert_eq!(
            run_decide(status, head, length, Some(Gzip)),
            want,
            "{status} {head:?}"
        );
    }
    assert_eq!(
        run_decide(200, &[TEXT], None, None),
        Identity { add_vary: true }
    );
    let vary = &[TEXT, ("Vary", "accept-encoding")];
    assert_eq!(
        run_decide(200, vary, None, None),
        Identity { add_vary: false }
    );
    // min_size 0: even an empty body known to be empty is a candidate.
    let zero = CompressConfig::new(0, TYPES, &DEFAULT_CODINGS);
    let head = [(&b"Content-Type"[..], &b"text/plain"[..])];
    assert_eq!(
        decide(&zero, 200, head.into_iter(), Some(0), || Some(Gzip)),
        ENC(true)
    );
}

fn rewritten(head: Head<'_>, decision: Decision) -> Vec<(String, String)> {
    let (mut fields, mut ranges) = (Vec::new(), FieldRanges::new());
    for (n, v) in head {
        let start = fields.len();
        fields.extend_from_slice(n.as_bytes());
        let mid = fields.len();
        fields.extend_from_slice(v.as_bytes());
        ranges.push((start, mid, fields.len()));
    }
    rewrite_head(&mut fields, &mut ranges, decision);
    let text = |r: std::ops::Range<usize>| String::from_utf8(fields[r].to_vec()).unwrap();
    ranges
        .iter()
        .map(|&(s, m, e)| (text(s..m), text(m..e)))
        .collect()
}

fn pairs(head: Head<'_>) -> Vec<(String, String)> {
    head.iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

#[test]
fn rewrite_head_exact() {
    let app: Head<'_> = &[
        TEXT,
        ("Content-Length", "5000"),
        ("ETag", "\"v1\""),
        ("Accept-Ranges", "bytes"),
        ("X-Other", "kept"),
        ("content-encoding", "identity"),
        ("etag", "W/\"already-weak\""),
    ];
    assert_eq!(rewritten(app, Decision::Leave), pairs(app));
    assert_eq!(
        rewritten(app, Decision::Identity { add_vary: false }),
        pairs(app)
    );
    let mut vary = pairs(app);
    vary.push(("Vary".into(), "Accept-Encoding".into()));
    assert_eq!(rewritten(app, Decision::Identity { add_vary: true }), vary);
    let encode = |add_vary| Decision::Encode {
        coding: Zstd,
        add_vary,
    };
    assert_eq!(
        rewritten(app, encode(true)),
        pairs(&[
            TEXT,
            ("ETag", "W/\"v1\""),
            ("X-Other", "kept"),
            ("etag", "W/\"already-weak\""),
            ("Vary", "Accept-Encoding"),
            ("Content-Encoding", "zstd"),
        ])
    );
    assert_eq!(
        rewritten(&[TEXT, ("Vary", "*")], encode(false)),
        pairs(&[TEXT, ("Vary", "*"), ("Content-Encoding", "zstd")])
    );
}
