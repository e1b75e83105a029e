//! The precondition sequence of RFC 9110 §13.2.2 for one representation
//! (static files): which of `If-Match`, `If-Unmodified-Since`,
//! `If-None-Match`, `If-Modified-Since` and `Range`/`If-Range` decide the
//! answer, in which order, and what each failure answers. The field rules
//! themselves are [`fields`](super::fields)'; this only orders them, so
//! the native route and the portable middleware (`_http.py`'s
//! `evaluate_preconditions`, the same steps) cannot drift apart: both run
//! the `preconditions` cases of `tests/cases/http_fields.json`.
//!
//! Pure: the caller hands over the request's field values and the
//! representation's validators, and writes the answer the [`Verdict`]
//! names. A malformed field never fails a request: a date that does not
//! parse is absent, an entity-tag list that does not parse matches nothing
//! past its error, a `Range` that does not parse asks for the whole.

use super::fields::{etag_matches, parse_etags, parse_http_date, parse_range, Range, Tags};

/// What the request's method allows of the sequence: `If-None-Match`
/// answers 304 only to a read (412 to anything else), `If-Modified-Since`
/// applies to reads only (RFC 9110 §13.1.3) and `Range` to `GET` only
/// (§14.2: the one method range handling is defined for).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    /// Any other method (it may change the resource: a met `If-None-Match`
    /// fails it rather than reporting "not modified").
    Other,
}

impl Method {
    /// The method of a request line's name (case-sensitive, RFC 9110 §9.1).
    pub fn of(name: &[u8]) -> Self {
        match name {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            _ => Method::Other,
        }
    }

    fn is_read(self) -> bool {
        matches!(self, Method::Get | Method::Head)
    }
}

/// The request's conditional fields and `Range`, as sent (None: absent;
/// several lines of one field joined by `", "`). Present but empty is
/// present: an empty `If-Match` matches nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct Conditions<'a> {
    pub if_match: Option<&'a [u8]>,
    pub if_none_match: Option<&'a [u8]>,
    pub if_modified_since: Option<&'a [u8]>,
    pub if_unmodified_since: Option<&'a [u8]>,
    pub range: Option<&'a [u8]>,
    pub if_range: Option<&'a [u8]>,
}

/// What to answer, once the preconditions are evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// 200: the whole representation (no `Range`, or one that is ignored).
    Full,
    /// 206: bytes `first..=last` of it.
    Partial(u64, u64),
    /// 304: the client's copy is current (reads only); validators, no body.
    NotModified,
    /// 412: `If-Match` or `If-Unmodified-Since` does not hold, or
    /// `If-None-Match` matches a method other than a read.
    PreconditionFailed,
    /// 416: the one range asked for lies past the end.
    RangeNotSatisfiable,
}

/// RFC 9110 §13.2.2, steps 1 to 6, for a representation with entity tag
/// `etag` (None: the route sends none, so no tag condition but `*` matches it),
/// `Last-Modified` of `mtime` (whole seconds since the epoch, earlier than
/// 1970 too) and `size` bytes.
///
/// 1. `If-Match` (strong comparison) fails: 412. Absent, then
/// 2. `If-Unmodified-Since` (a valid date) earlier than `mtime`: 412.
/// 3. `If-None-Match` (weak comparison) matches: 304 to a read, else 412.
///    Absent, then
/// 4. `If-Modified-Since` (a valid date, reads only) at or after `mtime`: 304.
/// 5. A `GET` with `Range` whose `If-Range` is absent or names this very
///    representation (a strong tag, or exactly `mtime`): 206 or 416.
/// 6. Otherwise 200.
pub fn evaluate_preconditions(
    method: Method,
    req: &Conditions<'_>,
    etag: Option<&str>,
    mtime: i64,
    size: u64,
) -> Verdict {
    // `*` names any current representation, tagged or not (RFC 9110
    // §13.1.1, §13.1.2): the file exists, so it matches with no tag sent.
    let listed = |field: &[u8], weak: bool| match etag {
        Some(t) => etag_matches(Some(field), t, weak),
        None => matches!(parse_etags(field), Tags::Any),
    };
    if let Some(field) = req.if_match {
        if !listed(field, false) {
            return Verdict::PreconditionFailed;
        }
    } else if parse_http_date(req.if_unmodified_since).is_some_and(|since| mtime > since) {
        return Verdict::PreconditionFailed;
    }
    let current = match req.if_none_match {
        Some(field) => listed(field, true),
        None => {
            method.is_read()
                && parse_http_date(req.if_modified_since).is_some_and(|since| mtime <= since)
        }
    };
    if current {
        return if method.is_read() {
            Verdict::NotModified
        } else {
            Verdict::PreconditionFailed
        };
    }
    if method != Method::Get || !if_range_holds(req.if_range, etag, mtime) {
        return Verdict::Full;
    }
    match parse_range(req.range, size) {
        Range::Whole => Verdict::Full,
        Range::Bytes(first, last) => Verdict::Partial(first, last),
        Range::Unsatisfiable => Verdict::RangeNotSatisfiable,
    }
}

/// `If-Range` absent, or naming this very representation (RFC 9110
/// §13.1.5): a strong entity tag, or the exact `Last-Modified` date. A
/// weak tag never does (a range of another version would be spliced in).
fn if_range_holds(field: Option<&[u8]>, etag: Option<&str>, mtime: i64) -> bool {
    let Some(field) = field else {
        return true;
    };
    let field = field.trim_ascii();
    if field.starts_with(b"\"") || field.starts_with(b"W/") {
        return etag.is_some_and(|t| etag_matches(Some(field), t, false));
    }
    parse_http_date(Some(field)) == Some(mtime)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAG: &str = "\"a\"";
    const MTIME: i64 = 784_111_777; // Sun, 06 Nov 1994 08:49:37 GMT
    const DATE: &[u8] = b"Sun, 06 Nov 1994 08:49:37 GMT";
    const OLDER: &[u8] = b"Sat, 01 Jan 1994 00:00:00 GMT";

    fn run(method: Method, req: Conditions<'_>) -> Verdict {
        evaluate_preconditions(method, &req, Some(TAG), MTIME, 10)
    }

    #[test]
    fn sequence() {
        let get = Method::Get;
        assert_eq!(run(get, Conditions::default()), Verdict::Full);
        let if_match = |v: &'static [u8]| Conditions {
            if_match: Some(v),
            if_unmodified_since: Some(OLDER),
            ..Conditions::default()
        };
        assert_eq!(run(get, if_match(b"\"a\"")), Verdict::Full);
        assert_eq!(run(get, if_match(b"W/\"a\"")), Verdict::PreconditionFailed);
        let inm = Conditions {
            if_none_match: Some(b"W/\"a\""),
            ..Conditions::default()
        };
        assert_eq!(run(Method::Head, inm), Verdict::NotModified);
        assert_eq!(run(Method::Other, inm), Verdict::PreconditionFailed);
        let ims = Conditions {
            if_modified_since: Some(DATE),
            ..Conditions::default()
        };
        assert_eq!(run(get, ims), Verdict::NotModified);
        assert_eq!(run(Method::Other, ims), Verdict::Full);
    }

    #[test]
    fn ranges() {
        let range = |if_range: Option<&'static [u8]>| Conditions {
            range: Some(b"bytes=2-4"),
            if_range,
            ..Conditions::default()
        };
        assert_eq!(run(Method::Get, range(None)), Verdict::Partial(2, 4));
        assert_eq!(run(Method::Head, range(None)), Verdict::Full);
        assert_eq!(run(Method::Get, range(Some(DATE))), Verdict::Partial(2, 4));
        assert_eq!(run(Method::Get, range(Some(OLDER))), Verdict::Full);
        assert_eq!(run(Method::Get, range(Some(b"W/\"a\""))), Verdict::Full);
        let past = Conditions {
            range: Some(b"bytes=10-"),
            ..Conditions::default()
        };
        assert_eq!(run(Method::Get, past), Verdict::RangeNotSatisfiable);
    }
}
