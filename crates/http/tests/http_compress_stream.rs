//! `--compress`'s body stream in `qiao_http::compress` (`BodyEncoder`),
//! for each coding: a flush every `STREAM_FLUSH_BYTES` makes the prefix
//! decodable, and the encoder keeps to a declared length (complete, short,
//! the surplus dropped).

use std::io::Read;

use qiao_http::codec::Kind;
use qiao_http::compress::{BodyEncoder, STREAM_FLUSH_BYTES};

use Kind::{Brotli as Br, Gzip, Zstd};

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
