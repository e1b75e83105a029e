//! Where a request path really points, for a route that forwards the path
//! below its prefix (the native proxy): RFC 3986 §5.2.4 dot-segment
//! removal, and the rule that keeps what is forwarded below the route.
//!
//! The router matches prefixes on the percent-decoded path as sent, dot
//! segments and all, so `/ng/../secret` and `/%6eg/%2e%2e/secret` both
//! match `/ng`; an upstream that removes dot segments itself (any server
//! does) would then serve `/secret`, outside the base path the route was
//! meant to confine requests to. nginx removes them before it matches a
//! location, so such a request never reaches the proxied location there;
//! here [`below_prefix`] refuses it instead, and what it lets through has
//! no dot segment left for the upstream to resolve.
//!
//! Two readings of a raw path are checked, since an upstream may use
//! either: segments split on `/` as sent, each a dot segment when it is
//! `.`/`..` once its escapes are decoded (`%2e%2e` counts, `%2F` does not
//! split); and the whole path decoded first (`..%2F..` becomes two dot
//! segments).

/// Why a path is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escape {
    /// A `..` climbs above `/`: not a valid path at all (nginx: 400).
    AboveRoot,
    /// It resolves to a path outside the route's prefix (nginx would not
    /// have routed it there: 404).
    OutsidePrefix,
}

/// Whether a segment is `.` or `..` once its `%2e` escapes are decoded
/// (the only escape that decodes to `.`): `Some(false)` for `.`,
/// `Some(true)` for `..`, None for any other segment.
fn dot_segment(seg: &[u8]) -> Option<bool> {
    let mut dots = 0;
    let mut i = 0;
    while i < seg.len() {
        if seg[i] == b'.' {
            i += 1;
        } else if seg[i..].len() >= 3 && seg[i..i + 3].eq_ignore_ascii_case(b"%2e") {
            i += 3;
        } else {
            return None;
        }
        dots += 1;
        if dots > 2 {
            return None;
        }
    }
    match dots {
        1 => Some(false),
        2 => Some(true),
        _ => None,
    }
}

/// `path` (absolute, or empty) with its dot segments removed as RFC 3986
/// §5.2.4 does, segments split on `/` as they are; `Err` where a `..`
/// would climb above the root (which the RFC silently drops).
pub(crate) fn remove_dot_segments(path: &[u8]) -> Result<Vec<u8>, Escape> {
    let Some(body) = path.strip_prefix(b"/") else {
        return Ok(path.to_vec());
    };
    let mut kept: Vec<&[u8]> = Vec::new();
    let mut trailing = false;
    for seg in body.split(|&b| b == b'/') {
        trailing = false;
        match dot_segment(seg) {
            Some(false) => trailing = true,
            Some(true) => {
                kept.pop().ok_or(Escape::AboveRoot)?;
                trailing = true;
            }
            None => kept.push(seg),
        }
    }
    let mut out = Vec::with_capacity(path.len());
    for seg in &kept {
        out.push(b'/');
        out.extend_from_slice(seg);
    }
    if trailing || kept.is_empty() {
        out.push(b'/');
    }
    Ok(out)
}

/// Whether `path` is `prefix` or below it, on whole segments.
fn under(path: &[u8], prefix: &[u8]) -> bool {
    path.starts_with(prefix) && (path.len() == prefix.len() || path[prefix.len()] == b'/')
}

/// The path to forward below a route's base path, or why the request must
/// be refused. `full`: the request's path, raw; `prefix`: the route's
/// prefix, decoded, without a trailing `/`; `rest`: the raw part of `full`
/// below the prefix (empty or starting with `/`).
///
/// Refused: `full`, decoded, climbs above the root ([`Escape::AboveRoot`])
/// or resolves outside `prefix`; `rest`, in either reading, climbs above
/// its own root (both [`Escape::OutsidePrefix`]). Returned: `rest` with its
/// dot segments removed (the other bytes as sent), which stays below the
/// base path in both readings.
pub fn below_prefix(full: &[u8], prefix: &[u8], rest: &[u8]) -> Result<Vec<u8>, Escape> {
    let mut decoded = Vec::new();
    super::request::percent_decode(full, &mut decoded);
    if !under(&remove_dot_segments(&decoded)?, prefix) {
        return Err(Escape::OutsidePrefix);
    }
    let outside = |_| Escape::OutsidePrefix;
    let kept = remove_dot_segments(rest).map_err(outside)?;
    super::request::percent_decode(&kept, &mut decoded);
    remove_dot_segments(&decoded).map_err(outside)?;
    // An empty rest stays empty: the base path alone is the target.
    Ok(if rest.is_empty() { Vec::new() } else { kept })
}

/// Percent-encodes every byte of `bytes` that is neither an ASCII letter
/// or digit nor in `safe`, as Python's `urllib.parse.quote(bytes, safe)`
/// does (upper-case hex): the one quoting rule of the engine.
pub fn quote(bytes: &[u8], safe: &[u8]) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || safe.contains(&b) {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rds(p: &str) -> Result<String, Escape> {
        remove_dot_segments(p.as_bytes()).map(|v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn dot_segments_as_rfc_3986() {
        assert_eq!(rds("/a/b/c/./../../g"), Ok("/a/g".into()));
        assert_eq!(rds("/a/b/.."), Ok("/a/".into()));
        assert_eq!(rds("/a/."), Ok("/a/".into()));
        assert_eq!(rds("/a/b/"), Ok("/a/b/".into()));
        assert_eq!(rds("/a/.."), Ok("/".into()));
        assert_eq!(rds("/"), Ok("/".into()));
        assert_eq!(rds(""), Ok("".into()));
        assert_eq!(rds("/a/%2E%2e/b"), Ok("/b".into()));
        assert_eq!(rds("/a/.%2e"), Ok("/".into()));
        assert_eq!(rds("/a/..%2Fb"), Ok("/a/..%2Fb".into()));
        assert_eq!(rds("/a/.../b"), Ok("/a/.../b".into()));
        assert_eq!(rds("/a/..x/b"), Ok("/a/..x/b".into()));
        assert_eq!(rds("/.."), Err(Escape::AboveRoot));
        assert_eq!(rds("/a/../.."), Err(Escape::AboveRoot));
    }

    fn below(full: &str, rest: &str) -> Result<String, Escape> {
        below_prefix(full.as_bytes(), b"/ng", rest.as_bytes())
            .map(|v| String::from_utf8(v).unwrap())
    }

    #[test]
    fn what_stays_below_the_prefix() {
        assert_eq!(below("/ng/a/b", "/a/b"), Ok("/a/b".into()));
        assert_eq!(below("/ng", ""), Ok("".into()));
        assert_eq!(below("/ng/a/../b", "/a/../b"), Ok("/b".into()));
        assert_eq!(below("/ng/a%2Fb", "/a%2Fb"), Ok("/a%2Fb".into()));
        assert_eq!(below("/ng/..", "/.."), Err(Escape::OutsidePrefix));
        assert_eq!(
            below("/ng/../secret/", "/../secret/"),
            Err(Escape::OutsidePrefix)
        );
        assert_eq!(
            below("/%6eg/%2e%2e/secret/", "/%2e%2e/secret/"),
            Err(Escape::OutsidePrefix)
        );
        assert_eq!(below("/ng/../../etc", "/../../etc"), Err(Escape::AboveRoot));
        assert_eq!(
            below("/ng/..%2f..%2fx", "/..%2f..%2fx"),
            Err(Escape::AboveRoot)
        );
        // Harmless decoded, climbing as sent: `a%2Fb` is one segment there.
        assert_eq!(
            below("/ng/a%2Fb/../..", "/a%2Fb/../.."),
            Err(Escape::OutsidePrefix)
        );
        // Harmless both ways as sent, climbing once the kept path is decoded.
        let full = "/ng/z/a%2fb/../..%2f..";
        assert_eq!(
            below(full, "/z/a%2fb/../..%2f.."),
            Err(Escape::OutsidePrefix)
        );
    }
}
