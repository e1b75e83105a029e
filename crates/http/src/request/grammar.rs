//! Byte-level field grammar (RFC 9110, RFC 3986): optional whitespace,
//! tchar, Host values, Content-Length, percent-decoding.
//!
//! Separate from the head parser because far more than the request head
//! uses these rules: chunk extensions and trailer names (`body`) and
//! response field names (`start_response`) are tchars, chunk sizes are
//! hex (`hex_val`), `Forwarded` and upstream response heads need
//! `trim_ows`, `valid_host` and `parse_content_length`, and every ring
//! that decodes a path calls `percent_decode`. They depend on nothing else
//! in `request`, which re-exports them.

use crate::error::ParseError;

/// `1*DIGIT`, or a list of identical such values (RFC 9110 §8.6).
pub(crate) fn parse_content_length(value: &[u8]) -> Result<u64, ParseError> {
    let mut result = None;
    for item in value.split(|&b| b == b',').map(trim_ows) {
        if item.is_empty()
            || item.len() > crate::limits::MAX_CONTENT_LENGTH_DIGITS
            || !item.iter().all(u8::is_ascii_digit)
        {
            return Err(ParseError::BadContentLength);
        }
        let n = item.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
        if result.is_some_and(|prev| prev != n) {
            return Err(ParseError::ConflictingContentLength);
        }
        result = Some(n);
    }
    result.ok_or(ParseError::BadContentLength)
}

/// RFC 3986 `host [":" port]`: reg-name, IPv4 or an IP literal in brackets.
pub(crate) fn valid_host(value: &[u8]) -> bool {
    value.iter().all(|&b| HOST_BYTES[b as usize])
}

/// Bytes allowed in a Host value (RFC 3986 reg-name, IP literal, port),
/// as a table: checked for every request.
static HOST_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric();
        i += 1;
    }
    let extra = b"-._~!$&'()*+,;=:%[]";
    let mut j = 0;
    while j < extra.len() {
        t[extra[j] as usize] = true;
        j += 1;
    }
    t
};

/// RFC 9110 §5.6.2 tchar. A table: this runs for every byte of every
/// response header name (`start_response`) and trailer name.
#[inline]
pub fn is_tchar(b: u8) -> bool {
    TCHAR[usize::from(b)]
}

/// [`is_tchar`]'s answer for each byte.
static TCHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        b += 1;
    }
    table
};

/// Strips SP and HTAB (and nothing else: no Unicode whitespace) at both ends.
pub fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Decodes `%XX` escapes into `out`; a `%` not followed by two hex digits is
/// kept as is (as gunicorn and waitress do), never an error.
pub fn percent_decode(src: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.reserve(src.len());
    let mut i = 0;
    while i < src.len() {
        if src[i] == b'%' && i + 2 < src.len() {
            if let (Some(h), Some(l)) = (hex_val(src[i + 1]), hex_val(src[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(src[i]);
        i += 1;
    }
}

pub(crate) fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
