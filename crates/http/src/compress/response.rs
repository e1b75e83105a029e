//! The response side of `--compress`: for one response, whether it is
//! compressed ([`decide`]), how its head changes ([`rewrite_head`]), and
//! the body stream through the codec ([`BodyEncoder`]).
//!
//! Separate from the module's root, which holds the settings and the
//! request side (what the client's `Accept-Encoding` accepts): these are
//! the steps the WSGI ring takes, in that order, once the application has
//! started a response. The module is private; its items are re-exported
//! there, so every path stays `qiao_http::compress::...`.

use std::io;

use super::{trim, CompressConfig, STREAM_FLUSH_BYTES};
use crate::codec::{Encoder, Kind};

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
