//! `--compress` decisions in `qiao_http::compress`, as tables: the coding
//! an `Accept-Encoding` chooses (q-values, `*`, identity, aliases, several
//! fields, malformed values, the parse limit), which content types are
//! compressible, which responses are candidates, the exact head rewrite,
//! and the body stream (flushes make the prefix decodable). The rules are
//! the portable `qiao.middleware.Compress`'s; the e2e suite
//! (`tests/e2e/test_middleware_compress.py`) checks both agree on the wire.

use std::io::Read;

use qiao_http::codec::Kind;
use qiao_http::compress::{
    decide, rewrite_head, AcceptEncoding, BodyEncoder, CompressConfig, Decision, FieldRanges,
    DEFAULT_CODINGS, STREAM_FLUSH_BYTES,
};
use qiao_http::limits::MAX_FIELD_PARSE;

use Kind::{Brotli as Br, Gzip, Zstd};

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

fn choose(fields: &[&str], codings: &[Kind]) -> Option<Kind> {
    let mut accept = AcceptEncoding::default();
    for f in fields {
        accept.add(f.as_bytes());
    }
    accept.choose(codings)
}

#[rustfmt::skip]
const ACCEPT: &[(&[&str], Option<Kind>)] = &[
    // The e2e suite's cases.
    (&["gzip;q=0.5, br;q=0.9"], Some(Br)),
    (&["br;q=0, gzip"], Some(Gzip)),
    (&["gzip, zstd;q=0.1"], Some(Gzip)),
    (&["zstd, br, gzip"], Some(Zstd)),
    (&["gzip, deflate, br"], Some(Br)),
    (&["*"], Some(Zstd)),
    (&["*;q=0.5, gzip;q=0.8"], Some(Gzip)),
    (&["GZIP"], Some(Gzip)),
    (&["x-gzip"], Some(Gzip)),
    (&["*;q=0"], None),
    (&["identity"], None),
    (&["gzip;q=0.3, identity;q=0.9"], None),
    (&[""], None),
    (&[], None),
    // Ties go to the server's order; identity must beat the best, not tie it.
    (&["gzip, br"], Some(Br)),
    (&["gzip;q=0.5, identity;q=0.5"], Some(Gzip)),
    (&["identity;q=1, *;q=0.5"], None),
    // `*` covers only codings not named.
    (&["*, zstd;q=0"], Some(Br)),
    (&["*;q=0.1, br;q=0.2"], Some(Br)),
    // Whitespace, parameters, case.
    (&["  gzip ; q = 0.7 ,br;level=1;q=0.6"], Some(Gzip)),
    (&["Br;Q=1"], Some(Br)),
    (&["gzip;Q=0"], None),
    // Malformed or out-of-range q: malformed is 0, others clamp to 0..1.
    (&["gzip;q=abc"], None),
    (&["gzip;q=", "br;q=0.1"], Some(Br)),
    (&["gzip;q=5, br;q=0.9"], Some(Gzip)),
    (&["gzip;q=-1"], None),
    (&["gzip;q=nan"], None),
    (&["gzip;q=1e-1, br;q=.05"], Some(Gzip)),
    // A name listed twice keeps its highest q.
    (&["gzip;q=0, gzip;q=0.4"], Some(Gzip)),
    // Several fields count as one list.
    (&["gzip;q=0.2", "br;q=0.3"], Some(Br)),
    (&["", "gzip"], Some(Gzip)),
    // Unknown names only.
    (&["deflate, compress"], None),
    (&[",,, ;q=1"], None),
];

#[test]
fn accept_encoding_table() {
    for (fields, want) in ACCEPT {
        assert_eq!(choose(fields, &DEFAULT_CODINGS), *want, "{fields:?}");
    }
}

#[test]
fn accept_encoding_respects_the_codings_offered() {
    assert_eq!(choose(&["zstd, br, gzip"], &[Gzip]), Some(Gzip));
    assert_eq!(choose(&["zstd"], &[Gzip, Br]), None);
    assert_eq!(choose(&["*"], &[Br, Gzip]), Some(Br));
    assert_eq!(choose(&["gzip, br"], &[Gzip, Br]), Some(Gzip));
    assert_eq!(choose(&["gzip"], &[]), None);
}

#[test]
fn accept_encoding_parses_only_the_first_bytes() {
    let pad = " ".repeat(MAX_FIELD_PARSE - 6);
    // "gzip" ends exactly at the limit: parsed.
    assert_eq!(
        choose(&[&format!("{pad}, gzip")], &DEFAULT_CODINGS),
        Some(Gzip)
    );
    // One byte further: cut to "gzi", not a coding.
    assert_eq!(choose(&[&format!("{pad},  gzip")], &DEFAULT_CODINGS), None);
    // The limit counts the joined fields, separators included.
    let long = " ".repeat(MAX_FIELD_PARSE - 3);
    assert_eq!(choose(&[&long, "br"], &DEFAULT_CODINGS), None);
    assert_eq!(choose(&[&long[1..], "br"], &DEFAULT_CODINGS), Some(Br));
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

fn decode(kind: Kind, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match kind {
        Kind::Gzip => {
            // A flushed but unfinished stream: read what decodes.
            let mut d = flate2::read::MultiGzDecoder::new(data);
            let _ = d.read_to_end(&mut out);
        }
        Kind::Brotli => {
            let _ = brotli::Decompressor::new(data, 4096).read_to_end(&mut out);
        }
        Kind::Zstd => {
            let mut d = zstd::stream::read::Decoder::new(data).unwrap();
            let _ = d.read_to_end(&mut out);
        }
    }
    out
}

fn sample(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| b"abcdefghij klmnop"[(i * 7 + i / 13) % 17])
        .collect()
}

#[test]
fn body_stream_flushes_every_stream_flush_bytes() {
    let input = sample(STREAM_FLUSH_BYTES * 3 + 100);
    for kind in [Gzip, Br, Zstd] {
        let mut enc = BodyEncoder::new(kind, kind.levels().2, None).unwrap();
        let mut out = Vec::new();
        let mut fed = 0;
        for piece in input.chunks(STREAM_FLUSH_BYTES / 4) {
            out.extend(enc.feed(piece).unwrap());
            fed += piece.len();
            if fed % STREAM_FLUSH_BYTES == 0 {
                // Just flushed: everything fed so far decodes.
                assert_eq!(decode(kind, &out), input[..fed], "{kind:?} at {fed}");
            }
        }
        assert!(enc.feed(b"").unwrap().is_empty());
        out.extend(enc.finish().unwrap());
        assert_eq!(decode(kind, &out), input, "{kind:?}");
    }
}

#[test]
fn body_stream_keeps_to_the_declared_length() {
    for kind in [Gzip, Br, Zstd] {
        // Exactly as declared: complete, never short.
        let mut enc = BodyEncoder::new(kind, kind.levels().2, Some(10)).unwrap();
        assert!(enc.is_short() && !enc.is_complete());
        let mut out = enc.feed(b"0123456789").unwrap();
        assert!(enc.is_complete() && !enc.is_short());
        // Past it: dropped, as from an uncompressed body.
        assert!(enc.feed(b"surplus").unwrap().is_empty());
        out.extend(enc.finish().unwrap());
        assert_eq!(decode(kind, &out), b"0123456789", "{kind:?}");
        // Short of it: short, for the server to leave the body cut.
        let mut enc = BodyEncoder::new(kind, kind.levels().2, Some(4096)).unwrap();
        enc.feed(&[b'x'; 100]).unwrap();
        assert!(enc.is_short() && !enc.is_complete(), "{kind:?}");
        // Nothing declared: never either.
        let mut enc = BodyEncoder::new(kind, kind.levels().2, None).unwrap();
        enc.feed(b"abc").unwrap();
        assert!(!enc.is_short() && !enc.is_complete(), "{kind:?}");
    }
}
