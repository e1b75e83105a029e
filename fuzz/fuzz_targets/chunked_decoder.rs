//! `chunked_decoder`: arbitrary bytes into a chunked `qiao_http::BodyDecoder`.
//!
//! Input layout: byte 0 picks `max_body` (none, or a small/medium bound),
//! byte 1 seeds the split points; the rest is the chunked body. The body
//! is decoded twice: whole (one buffer, `decode` called until it stops),
//! and in 0-16 pieces cut at points derived from the data (each piece a
//! separate buffer, as successive socket reads). Checks:
//! - `decode` never panics;
//! - every call on non-empty input makes progress: `Data(r)` with
//!   `r` non-empty and `r.end <= consumed <= input.len()`, `End` with
//!   `0 < consumed <= input.len()`, or `NeedMore` with all input consumed;
//! - `total()` equals the number of data bytes yielded;
//! - both feedings give the same decoded bytes and the same outcome (the
//!   same error, or `End` after the same number of input bytes, or still
//!   needing more). The one allowed difference: on `BodyTooLarge` the
//!   piecewise run may have yielded more of the over-long chunk first, so
//!   there one output need only be a prefix of the other.

#![no_main]

use libfuzzer_sys::fuzz_target;
use qiao_http::{BodyDecoder, Decoded, Framing, ParseError};

#[path = "common/mod.rs"]
mod common;

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// `End` after this many input bytes in total.
    End(usize),
    NeedMore,
    Err(ParseError),
}

/// Feeds one buffer until it is used up, the body ends or an error.
/// Returns how many bytes of `src` were consumed and whether to stop.
fn feed(dec: &mut BodyDecoder, src: &[u8], out: &mut Vec<u8>) -> (usize, Option<Result<Decoded, ParseError>>) {
    let mut pos = 0;
    // Every call consumes at least one byte or returns NeedMore/End.
    for _ in 0..=src.len() + 1 {
        let rest = &src[pos..];
        match dec.decode(rest) {
            Ok((n, Decoded::Data(r))) => {
                assert!(n <= rest.len(), "consumed {n} of {} bytes", rest.len());
                assert!(!r.is_empty(), "empty Data({r:?})");
                assert!(r.end <= n, "Data({r:?}) outside the consumed {n} bytes");
                out.extend_from_slice(&rest[r]);
                pos += n;
                assert_eq!(dec.total(), out.len() as u64, "total() differs from the bytes yielded");
            }
            Ok((n, Decoded::NeedMore)) => {
                assert_eq!(n, rest.len(), "NeedMore without consuming all input");
                return (pos + n, Some(Ok(Decoded::NeedMore)));
            }
            Ok((n, Decoded::End)) => {
                assert!(n > 0 && n <= rest.len(), "End after {n} of {} bytes", rest.len());
                assert!(dec.is_done());
                return (pos + n, Some(Ok(Decoded::End)));
            }
            Err(e) => return (pos, Some(Err(e))),
        }
    }
    panic!("decode made no progress on {} bytes", src.len());
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let max_body = match data[0] % 4 {
        0 | 1 => None,
        2 => Some(u64::from(data[0] >> 2)),
        _ => Some(u64::from(data[0]) * 64),
    };
    let body = &data[2..];

    // Whole.
    let mut dec = BodyDecoder::new(Framing::Chunked, max_body);
    let mut whole_out = Vec::new();
    let whole = match feed(&mut dec, body, &mut whole_out) {
        (n, Some(Ok(Decoded::End))) => Outcome::End(n),
        (_, Some(Ok(_))) => Outcome::NeedMore,
        (_, Some(Err(e))) => Outcome::Err(e),
        (_, None) => unreachable!(),
    };

    // In pieces.
    let mut rng = common::Rng::new(data);
    let mut cuts: Vec<usize> = (0..(data[1] % 17)).map(|_| rng.upto(body.len())).collect();
    if data[1] & 0x80 != 0 {
        // Byte by byte over a stretch, where state-machine bugs hide.
        let start = rng.upto(body.len());
        cuts.extend(start..body.len().min(start + 64));
    }
    cuts.push(body.len());
    cuts.sort_unstable();
    let mut dec = BodyDecoder::new(Framing::Chunked, max_body);
    let mut out = Vec::new();
    let mut start = 0;
    let mut consumed = 0;
    let mut pieces = Outcome::NeedMore;
    for &end in &cuts {
        let piece = &body[start..end];
        start = end;
        match feed(&mut dec, piece, &mut out) {
            (n, Some(Ok(Decoded::End))) => {
                pieces = Outcome::End(consumed + n);
                break;
            }
            (n, Some(Ok(_))) => consumed += n,
            (_, Some(Err(e))) => {
                pieces = Outcome::Err(e);
                break;
            }
            (_, None) => unreachable!(),
        }
    }

    assert_eq!(pieces, whole, "pieces {cuts:?} end otherwise than whole");
    if whole == Outcome::Err(ParseError::BodyTooLarge) {
        let (short, long) = if out.len() <= whole_out.len() { (&out, &whole_out) } else { (&whole_out, &out) };
        assert!(long.starts_with(short), "decoded bytes differ before BodyTooLarge");
    } else {
        assert_eq!(out, whole_out, "pieces {cuts:?} decode other bytes than whole");
    }
    if let Some(max) = max_body {
        assert!(whole_out.len() as u64 <= max, "yielded {} bytes over max_body {max}", whole_out.len());
    }
});
