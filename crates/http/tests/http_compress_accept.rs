//! `--compress`'s choice of a coding in `qiao_http::compress`, as a
//! table: the coding an `Accept-Encoding` chooses (q-values, `*`,
//! identity, aliases, several fields, malformed values), within the codings
//! offered and the parse limit. The rules are the portable
//! `qiao.middleware.Compress`'s; the e2e suite
//! (`tests/e2e/test_middleware_compress.py`) checks both agree on the wire.

use qiao_http::codec::Kind;
use qiao_http::compress::{AcceptEncoding, DEFAULT_CODINGS};
use qiao_http::limits::MAX_FIELD_PARSE;

use Kind::{Brotli as Br, Gzip, Zstd};

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
