//! Response compression decisions for `--compress`, sans-IO: which coding
//! the client's `Accept-Encoding` asks for (q-values), whether a response
//! may be compressed, how its head changes, and the body stream that
//! feeds the codec ([`crate::codec`]) and flushes it at a bounded interval.
//!
//! The rules are those of the portable `qiao.middleware.Compress`
//! (`python/qiao/middleware/compress.py`, `_http.py`, `_wsgi.py`), rule for
//! rule, so `--compress` and the middleware answer alike (one e2e suite,
//! `tests/e2e/test_middleware_compress.py`, runs against both). Written by
//! hand because the decisions are a few byte comparisons on headers the
//! server already holds: no allocation unless a response is rewritten.
//!
//! This file holds the settings and the request side: what the client's
//! `Accept-Encoding` accepts and which offered coding wins. What happens
//! to one response (the decision, the head rewrite, the body stream) is in
//! `response`, private and re-exported here, so every path stays
//! `qiao_http::compress::...`.

use super::limits::MAX_FIELD_PARSE;
use crate::codec::Kind;

mod response;

pub use response::{decide, rewrite_head, BodyEncoder, Decision, FieldRanges};

/// Input fed to the codec between two flushes, at most (the portable
/// class's `STREAM_FLUSH_BYTES`): bounds what the codec holds back from a
/// slow stream, at a negligible cost in ratio.
pub const STREAM_FLUSH_BYTES: usize = 64 * 1024;
/// Media types never compressed, whatever `types` says: each server-sent
/// event must go out at once, which a codec would delay.
pub(crate) const NEVER: &[&[u8]] = &[b"text/event-stream"];
/// Codings offered by default, in order of preference for equal q-values.
pub const DEFAULT_CODINGS: [Kind; 3] = [Kind::Zstd, Kind::Brotli, Kind::Gzip];

/// The `--compress` settings of a worker.
#[derive(Clone, Debug)]
pub struct CompressConfig {
    /// Bodies known to be shorter are sent as they are (`--compress-min-size`,
    /// the portable class's `MIN_SIZE`): the codec's framing would eat the gain.
    pub min_size: u64,
    /// Lower-cased media types; an entry ending in `/` covers the whole
    /// top-level type.
    pub types: Vec<Vec<u8>>,
    /// Codings offered, in order of preference.
    pub codings: Vec<Kind>,
    /// Level per coding, indexed by [`level_slot`].
    pub levels: [i32; 3],
}

impl CompressConfig {
    /// Settings with every coding at its codec's default level.
    pub fn new(min_size: u64, types: &[&str], codings: &[Kind]) -> Self {
        CompressConfig {
            min_size,
            types: types
                .iter()
                .map(|t| t.to_ascii_lowercase().into())
                .collect(),
            codings: codings.to_vec(),
            levels: [Kind::Gzip, Kind::Brotli, Kind::Zstd].map(|k| k.levels().2),
        }
    }

    pub fn level(&self, kind: Kind) -> i32 {
        self.levels[level_slot(kind)]
    }

    /// Whether a `Content-Type` value names a type to compress.
    pub fn compressible(&self, content_type: &[u8]) -> bool {
        let media = trim(content_type.split(|&b| b == b';').next().unwrap_or(b""));
        if NEVER.iter().any(|n| media.eq_ignore_ascii_case(n)) {
            return false;
        }
        self.types.iter().any(|t| {
            if t.ends_with(b"/") {
                media.len() >= t.len() && media[..t.len()].eq_ignore_ascii_case(t)
            } else {
                media.eq_ignore_ascii_case(t)
            }
        })
    }
}

/// Index of a coding in [`CompressConfig::levels`].
pub fn level_slot(kind: Kind) -> usize {
    match kind {
        Kind::Gzip => 0,
        Kind::Brotli => 1,
        Kind::Zstd => 2,
    }
}

fn trim(s: &[u8]) -> &[u8] {
    s.trim_ascii()
}

/// The q-values of one request's `Accept-Encoding`, for the names that can
/// matter: the three codings, `*` and `identity`. Fed one field value at a
/// time (several fields count as one comma-joined list).
#[derive(Clone, Copy, Debug, Default)]
pub struct AcceptEncoding {
    /// gzip, br, zstd, `*`, identity; None: not listed.
    q: [Option<f64>; 5],
    /// Bytes of the joined value parsed so far (see [`MAX_FIELD_PARSE`]).
    seen: usize,
}

const STAR: usize = 3;
const IDENTITY: usize = 4;
/// The names that matter, with their slot; `x-gzip` is gzip (RFC 9110 §8.4.1.3).
const NAMES: [(&[u8], usize); 6] = [
    (b"gzip", 0),
    (b"x-gzip", 0),
    (b"br", 1),
    (b"zstd", 2),
    (b"*", STAR),
    (b"identity", IDENTITY),
];

impl AcceptEncoding {
    /// Adds one `Accept-Encoding` field value.
    pub fn add(&mut self, value: &[u8]) {
        if self.seen > 0 {
            self.seen += 2; // the ", " joining it to the previous field
        }
        let room = MAX_FIELD_PARSE.saturating_sub(self.seen);
        let value = &value[..value.len().min(room)];
        self.seen += value.len();
        for item in value.split(|&b| b == b',') {
            let mut parts = item.split(|&b| b == b';');
            let name = trim(parts.next().unwrap_or(b""));
            let Some(slot) = slot_of(name) else {
                continue;
            };
            let mut q = 1.0;
            for param in parts {
                let (key, val) = match param.iter().position(|&b| b == b'=') {
                    Some(i) => (&param[..i], &param[i + 1..]),
                    None => (param, &b""[..]),
                };
                if trim(key).eq_ignore_ascii_case(b"q") {
                    q = parse_q(trim(val));
                }
            }
            let prev = self.q[slot].unwrap_or(0.0);
            self.q[slot] = Some(q.max(prev));
        }
    }

    /// The coding to send, of `codings` (in the server's order of
    /// preference); None for identity. No header (or an empty one) means
    /// identity; the highest q wins, ties go to the earlier coding, `*`
    /// covers codings not named, q=0 refuses, and identity wins only if
    /// rated above every coding.
    pub fn choose(&self, codings: &[Kind]) -> Option<Kind> {
        self.pick(codings.iter().map(|&k| (k, Some(level_slot(k)))))
    }

    /// [`choose`](Self::choose) by coding name (`gzip`, `br`, `zstd`, as
    /// static files' precompressed siblings are named); a name this does
    /// not track counts as unnamed (`*`).
    pub(crate) fn choose_named<'a>(&self, names: &[&'a str]) -> Option<&'a str> {
        self.pick(names.iter().map(|&n| (n, slot_of(n.as_bytes()))))
    }

    /// The negotiation itself, over `(coding, its slot if tracked)`.
    fn pick<T: Copy>(&self, options: impl Iterator<Item = (T, Option<usize>)>) -> Option<T> {
        let star = self.q[STAR].unwrap_or(0.0);
        let (mut best, mut best_q) = (None, 0.0);
        for (coding, slot) in options {
            let q = slot.and_then(|s| self.q[s]).unwrap_or(star);
            if q > best_q {
                (best, best_q) = (Some(coding), q);
            }
        }
        if best.is_some() && self.q[IDENTITY].unwrap_or(0.0) > best_q {
            return None;
        }
        best
    }
}

/// The slot of a tracked coding name (case-blind).
fn slot_of(name: &[u8]) -> Option<usize> {
    NAMES
        .iter()
        .find(|(n, _)| name.eq_ignore_ascii_case(n))
        .map(|&(_, slot)| slot)
}

/// A q-value clamped to 0..=1; malformed counts as 0.
fn parse_q(text: &[u8]) -> f64 {
    std::str::from_utf8(text)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|q| !q.is_nan())
        .map_or(0.0, |q| q.clamp(0.0, 1.0))
}
