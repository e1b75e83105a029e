//! The request fields a response's conditions depend on (RFC 9110), each
//! rule in one place for the whole engine (static files, `--compress`):
//! content-coding negotiation by `Accept-Encoding` q-values (through
//! [`AcceptEncoding`], which `--compress` uses too), HTTP dates, entity-tag
//! lists and their comparison, and one byte range. Parsed as the portable
//! middleware's `_http.py` parses them, so both answer the same; both run
//! the one table of cases in `tests/cases/http_fields.json`. Pure
//! functions over bytes; a malformed value never fails a request, it only
//! makes a condition not hold.

use super::compress::AcceptEncoding;
use super::limits::MAX_FIELD_PARSE;

/// The content coding to send of `available` (in the server's order of
/// preference), or None for identity: no header means identity, the
/// highest q wins, ties go to the earlier coding, `*` covers the unnamed,
/// q=0 refuses, identity wins only if rated above every coding.
pub fn choose_coding<'a>(accept: Option<&[u8]>, available: &[&'a str]) -> Option<&'a str> {
    let accept = accept.filter(|a| !a.is_empty())?;
    let mut qs = AcceptEncoding::default();
    qs.add(accept);
    qs.choose_named(available)
}

/// Seconds since the epoch of an HTTP date (any of the three forms, dates
/// before 1970 too), or None when absent or malformed. An HTTP-date is
/// ASCII: a byte past it (even in the weekday, which is not checked) makes
/// it none, whether or not the bytes happen to be UTF-8.
pub fn parse_http_date(value: Option<&[u8]>) -> Option<i64> {
    let value = value.filter(|v| !v.is_empty() && v.len() <= MAX_FIELD_PARSE && v.is_ascii())?;
    crate::date::parse_http_date(std::str::from_utf8(value).ok()?)
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` for whole seconds since the epoch: a
/// file dated before 1970 gets its true date, which an HTTP-date can write
/// (years 0000 to 9999), as the portable middleware sends it.
pub fn http_date(secs: i64) -> String {
    crate::date::fmt_http_date(secs)
}

/// An entity-tag list: `*`, or `(weak, opaque-tag)` pairs.
pub(crate) enum Tags<'a> {
    Any,
    List(Vec<(bool, &'a [u8])>),
}

/// Parses an `If-Match`/`If-None-Match` list; a malformed list yields what
/// parsed before the error (which can only make a condition fail to match).
pub(crate) fn parse_etags(value: &[u8]) -> Tags<'_> {
    let value = trim(&value[..value.len().min(MAX_FIELD_PARSE)]);
    if value == b"*" {
        return Tags::Any;
    }
    let mut tags = Vec::new();
    let mut rest = value;
    loop {
        rest = trim_start(rest);
        if rest.is_empty() {
            break;
        }
        let weak = rest.starts_with(b"W/");
        if weak {
            rest = &rest[2..];
        }
        if rest.first() != Some(&b'"') {
            break;
        }
        let Some(end) = rest[1..].iter().position(|&b| b == b'"') else {
            break;
        };
        let tag = &rest[..end + 2];
        rest = trim_start(&rest[end + 2..]);
        tags.push((weak, tag));
        match rest.first() {
            None => break,
            Some(b',') => rest = &rest[1..],
            Some(_) => break,
        }
    }
    Tags::List(tags)
}

/// Whether `etag` is listed in `header`: by weak comparison (opaque tags
/// only: `If-None-Match`) or strong (both strong and equal: `If-Match`,
/// `If-Range`).
pub fn etag_matches(header: Option<&[u8]>, etag: &str, weak: bool) -> bool {
    let Some(header) = header else {
        return false;
    };
    let (mine_weak, mine) = match etag.strip_prefix("W/") {
        Some(t) => (true, t.as_bytes()),
        None => (false, etag.as_bytes()),
    };
    match parse_etags(header) {
        Tags::Any => true,
        Tags::List(tags) => tags
            .iter()
            .any(|&(theirs_weak, theirs)| theirs == mine && (weak || !(theirs_weak || mine_weak))),
    }
}

/// What a `Range` header asks of a representation.
#[derive(Debug, PartialEq, Eq)]
pub enum Range {
    /// Send everything (absent, another unit, malformed, several ranges).
    Whole,
    /// Bytes `first..=last`.
    Bytes(u64, u64),
    /// Nothing can be served: 416.
    Unsatisfiable,
}

/// The single byte range of `value` for a `size`-byte representation.
pub fn parse_range(value: Option<&[u8]>, size: u64) -> Range {
    let Some(value) = value.filter(|v| !v.is_empty() && v.len() <= MAX_FIELD_PARSE) else {
        return Range::Whole;
    };
    let Some(eq) = value.iter().position(|&b| b == b'=') else {
        return Range::Whole;
    };
    let (unit, spec) = (&value[..eq], &value[eq + 1..]);
    if !trim(unit).eq_ignore_ascii_case(b"bytes") || spec.contains(&b',') {
        return Range::Whole;
    }
    let spec = trim_tabs(spec);
    let Some(dash) = spec.iter().position(|&b| b == b'-') else {
        return Range::Whole;
    };
    let (first_s, last_s) = (&spec[..dash], &spec[dash + 1..]);
    let (Some(first), Some(last)) = (digits(first_s), digits(last_s)) else {
        return Range::Whole;
    };
    match (first, last) {
        (None, None) => Range::Whole,
        (None, Some(suffix)) => {
            if suffix == 0 || size == 0 {
                Range::Unsatisfiable
            } else {
                Range::Bytes(size.saturating_sub(suffix), size - 1)
            }
        }
        (Some(first), last) => {
            if matches!(last, Some(l) if l < first) {
                return Range::Whole;
            }
            if first >= size {
                return Range::Unsatisfiable;
            }
            Range::Bytes(first, last.map_or(size - 1, |l| l.min(size - 1)))
        }
    }
}

/// `Some(None)` for no digits, `Some(Some(n))` for a number (saturating),
/// None for anything else.
fn digits(s: &[u8]) -> Option<Option<u64>> {
    if s.is_empty() {
        return Some(None);
    }
    if !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(Some(s.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    })))
}

fn trim_start(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &s[n..]
}

fn trim(s: &[u8]) -> &[u8] {
    let s = trim_start(s);
    let n = s
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_whitespace())
        .count();
    &s[..s.len() - n]
}

/// Trims spaces and tabs only (the portable range pattern allows those).
fn trim_tabs(s: &[u8]) -> &[u8] {
    let is_ws = |b: &u8| *b == b' ' || *b == b'\t';
    let start = s.iter().take_while(|b| is_ws(b)).count();
    let end = s.len() - s[start..].iter().rev().take_while(|b| is_ws(b)).count();
    &s[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codings() {
        let av = ["br", "gzip"];
        assert_eq!(choose_coding(Some(b"gzip, br"), &av), Some("br"));
        assert_eq!(
            choose_coding(Some(b"gzip;q=1, br;q=0.5"), &av),
            Some("gzip")
        );
        assert_eq!(choose_coding(Some(b"br;q=0, gzip;q=0"), &av), None);
        assert_eq!(choose_coding(Some(b"identity"), &av), None);
        assert_eq!(choose_coding(None, &av), None);
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range(Some(b"bytes=0-4"), 10), Range::Bytes(0, 4));
        assert_eq!(parse_range(Some(b"bytes=-3"), 10), Range::Bytes(7, 9));
        assert_eq!(parse_range(Some(b"bytes=-0"), 10), Range::Unsatisfiable);
        assert_eq!(parse_range(Some(b"bytes=10-"), 10), Range::Unsatisfiable);
        assert_eq!(parse_range(Some(b"bytes=5-1"), 10), Range::Whole);
        assert_eq!(parse_range(Some(b"bytes=0-1,5-6"), 10), Range::Whole);
        assert_eq!(parse_range(Some(b"bytes=x-y"), 10), Range::Whole);
        assert_eq!(parse_range(Some(b"bytes="), 10), Range::Whole);
    }

    #[test]
    fn etags() {
        assert!(etag_matches(Some(b"\"a\", W/\"b\""), "\"b\"", true));
        assert!(!etag_matches(Some(b"W/\"b\""), "\"b\"", false));
        assert!(etag_matches(Some(b"*"), "\"x\"", false));
        assert!(!etag_matches(Some(b"\"x\""), "W/\"x\"", false));
    }
}
