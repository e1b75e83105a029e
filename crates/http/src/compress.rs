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

use std::io;

use super::limits::MAX_FIELD_PARSE;
use crate::codec::{Encoder, Kind};

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

/// What to do with one response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Not a candidate (wrong status or type, encoded, partial, small,
    /// `no-transform`): the head goes out as the app gave it.
    Leave,
    /// A candidate, but the client wants identity: only `Vary` may change.
    Identity { add_vary: bool },
    /// Compress with this coding.
    Encode { coding: Kind, add_vary: bool },
}

/// The first value of each field [`decide`] reads, found in one pass.
#[derive(Default)]
struct Fields<'h> {
    encoding: Option<&'h [u8]>,
    cache_control: Option<&'h [u8]>,
    range: Option<&'h [u8]>,
    content_type: Option<&'h [u8]>,
    length: Option<&'h [u8]>,
}

impl<'h> Fields<'h> {
    fn collect(headers: impl Iterator<Item = (&'h [u8], &'h [u8])>) -> Self {
        let mut f = Fields::default();
        for (name, value) in headers {
            // The length picks the one candidate name to compare with.
            let slot = match name.len() {
                16 if name.eq_ignore_ascii_case(b"content-encoding") => &mut f.encoding,
                13 if name.eq_ignore_ascii_case(b"cache-control") => &mut f.cache_control,
                13 if name.eq_ignore_ascii_case(b"content-range") => &mut f.range,
                12 if name.eq_ignore_ascii_case(b"content-type") => &mut f.content_type,
                14 if name.eq_ignore_ascii_case(b"content-length") => &mut f.length,
                _ => continue,
            };
            slot.get_or_insert(value);
        }
        f
    }
}

/// A `Content-Length` value's number, if it is all digits once trimmed
/// (one too large to count is taken as the largest: not small).
fn declared_length(value: &[u8]) -> Option<u64> {
    let digits = trim(value);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(digits.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// Decides for a response with `status` and `headers`; `length` is the
/// body's length when the server knows it before sending the head (a list
/// result); `coding` gives what the request's `Accept-Encoding` chooses,
/// asked only for a candidate (most responses left alone never parse the
/// header). Any one reason leaves the response alone, so the cheapest are
/// checked first.
pub fn decide<'h>(
    config: &CompressConfig,
    status: u16,
    headers: impl Iterator<Item = (&'h [u8], &'h [u8])> + Clone,
    length: Option<u64>,
    coding: impl FnOnce() -> Option<Kind>,
) -> Decision {
    if status < 200 || matches!(status, 204 | 206 | 304) {
        return Decision::Leave;
    }
    let f = Fields::collect(headers.clone());
    let known = f.length.and_then(declared_length).or(length);
    if known.is_some_and(|n| n < config.min_size)
        || f.range.is_some()
        || f.encoding
            .is_some_and(|v| !trim(v).eq_ignore_ascii_case(b"identity"))
        || f.cache_control.is_some_and(|v| {
            v.windows(12)
                .any(|w| w.eq_ignore_ascii_case(b"no-transform"))
        })
        || !f.content_type.is_some_and(|t| config.compressible(t))
    {
        return Decision::Leave;
    }
    let add_vary = !headers
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"vary"))
        .flat_map(|(_, v)| v.split(|&b| b == b','))
        .any(|t| {
            let t = trim(t);
            t == b"*" || t.eq_ignore_ascii_case(b"accept-encoding")
        });
    match coding() {
        Some(coding) => Decision::Encode { coding, add_vary },
        None => Decision::Identity { add_vary },
    }
}

/// A response head as the WSGI ring keeps it: every name and value in one
/// buffer, and `(start, mid, end)` offsets per field (name is
/// `start..mid`, value `mid..end`).
pub type FieldRanges = Vec<(usize, usize, usize)>;

fn add_field(fields: &mut Vec<u8>, ranges: &mut FieldRanges, name: &[u8], value: &[u8]) {
    let start = fields.len();
    fields.extend_from_slice(name);
    let mid = fields.len();
    fields.extend_from_slice(value);
    ranges.push((start, mid, fields.len()));
}

/// Applies `decision` to a head: `Vary: Accept-Encoding` added when asked;
/// when encoding, `Content-Length`, `Accept-Ranges` and `Content-Encoding`
/// dropped, a strong `ETag` made weak, and `Content-Encoding` added (last,
/// as the portable class does).
pub fn rewrite_head(fields: &mut Vec<u8>, ranges: &mut FieldRanges, decision: Decision) {
    let (add_vary, coding) = match decision {
        Decision::Leave => return,
        Decision::Identity { add_vary } => (add_vary, None),
        Decision::Encode { coding, add_vary } => (add_vary, Some(coding)),
    };
    if add_vary {
        add_field(fields, ranges, b"Vary", b"Accept-Encoding");
    }
    let Some(coding) = coding else { return };
    let mut kept = FieldRanges::with_capacity(ranges.len() + 1);
    for &(start, mid, end) in ranges.iter() {
        let name = &fields[start..mid];
        if [
            &b"content-length"[..],
            b"accept-ranges",
            b"content-encoding",
        ]
        .iter()
        .any(|d| name.eq_ignore_ascii_case(d))
        {
            continue;
        }
        if name.eq_ignore_ascii_case(b"etag") && fields[mid..end].starts_with(b"\"") {
            // The body is no longer byte-identical to what the tag named,
            // but it is semantically equivalent: a weak validator.
            let mut value = b"W/".to_vec();
            value.extend_from_slice(&fields[mid..end]);
            let name = fields[start..mid].to_vec();
            add_field(fields, &mut kept, &name, &value);
            continue;
        }
        kept.push((start, mid, end));
    }
    add_field(
        fields,
        &mut kept,
        b"Content-Encoding",
        coding.token().as_bytes(),
    );
    *ranges = kept;
}

/// One response body through the codec: each piece goes in at once, and
/// once [`STREAM_FLUSH_BYTES`] have gone in since the last flush the codec
/// is flushed, so the client can decode everything sent so far.
///
/// The application's own `Content-Length` (dropped from the head) still
/// bounds its body: input past it is dropped, as the server drops it from
/// an uncompressed body, and a body that ends short of it is
/// [`short`](Self::is_short): the server must then leave the encoded body
/// unterminated and close, so the client sees it cut as it would without
/// `--compress`, not a complete, well-terminated smaller response.
pub struct BodyEncoder {
    encoder: Encoder,
    /// Input since the last flush.
    swallowed: usize,
    /// The application's declared body length, if it declared one.
    declared: Option<u64>,
    /// Input bytes taken so far.
    taken: u64,
}

impl BodyEncoder {
    /// An encoder for a body the application declared `declared` bytes long.
    pub fn new(kind: Kind, level: i32, declared: Option<u64>) -> io::Result<Self> {
        Ok(BodyEncoder {
            encoder: Encoder::new(kind, level)?,
            swallowed: 0,
            declared,
            taken: 0,
        })
    }

    /// The declared length has been taken in whole: more input is dropped.
    pub fn is_complete(&self) -> bool {
        self.declared.is_some_and(|n| self.taken >= n)
    }

    /// Less input than declared has been taken (final once the body ended).
    pub fn is_short(&self) -> bool {
        self.declared.is_some_and(|n| self.taken < n)
    }

    /// Compresses `data` (what fits in the declared length); returns the
    /// output to send now (maybe empty).
    pub fn feed(&mut self, data: &[u8]) -> io::Result<Vec<u8>> {
        let data = match self.declared {
            Some(n) => {
                let room = n.saturating_sub(self.taken).min(data.len() as u64);
                &data[..room as usize]
            }
            None => data,
        };
        if data.is_empty() {
            return Ok(Vec::new());
        }
        self.taken += data.len() as u64;
        let mut out = self.encoder.compress(data)?;
        self.swallowed += data.len();
        if self.swallowed >= STREAM_FLUSH_BYTES {
            out.extend(self.encoder.flush()?);
            self.swallowed = 0;
        }
        Ok(out)
    }

    /// Ends the stream; returns its last bytes.
    pub fn finish(self) -> io::Result<Vec<u8>> {
        self.encoder.finish()
    }
}
