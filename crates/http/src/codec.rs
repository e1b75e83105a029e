//! Streaming response compression: one [`Encoder`] per response body, fed
//! chunk by chunk, handing back the compressed bytes produced so far (never
//! the whole body at once). The engine's `--compress` (`compress`) and the
//! Python class `qiao._qiao.Compressor` (the extension crate's
//! `wsgi::compressor`, for `qiao.middleware.Compress`) both drive it.
//!
//! The codecs are well-kept crates: `flate2` (gzip, pure-Rust backend),
//! `brotli` (Dropbox's pure-Rust port) and `zstd` (bindings to the
//! reference C library). Independent of the rest of the server: no
//! sockets, no Python.

use std::io::{self, Write};

/// gzip level when none is given: zlib's own default, a good ratio at a
/// speed fit for compressing on the fly.
pub(crate) const GZIP_DEFAULT_LEVEL: i32 = 6;
/// brotli quality when none is given: 4 is the usual choice for dynamic
/// responses (11, the maximum, is for precompressing files offline).
pub(crate) const BROTLI_DEFAULT_QUALITY: i32 = 4;
/// brotli window (log2 of its size): 22, 4 MiB, the encoder's default.
pub(crate) const BROTLI_WINDOW_BITS: u32 = 22;
/// Size of the brotli writer's internal output buffer.
pub(crate) const BROTLI_BUFFER_SIZE: usize = 16 * 1024;
/// zstd level when none is given: the library's default.
pub(crate) const ZSTD_DEFAULT_LEVEL: i32 = 3;
/// Highest zstd level accepted: above 19 the window may exceed the 8 MiB
/// that HTTP clients must support (RFC 8878 §3).
pub(crate) const ZSTD_MAX_LEVEL: i32 = 19;

/// A content coding, by its HTTP token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Gzip,
    Brotli,
    Zstd,
}

impl Kind {
    /// The kind named by an HTTP content-coding token (`gzip`, `br`, `zstd`).
    pub fn from_token(token: &str) -> Option<Kind> {
        match token {
            "gzip" => Some(Kind::Gzip),
            "br" => Some(Kind::Brotli),
            "zstd" => Some(Kind::Zstd),
            _ => None,
        }
    }

    pub fn token(self) -> &'static str {
        match self {
            Kind::Gzip => "gzip",
            Kind::Brotli => "br",
            Kind::Zstd => "zstd",
        }
    }

    /// Accepted levels, and the default.
    pub fn levels(self) -> (i32, i32, i32) {
        match self {
            Kind::Gzip => (0, 9, GZIP_DEFAULT_LEVEL),
            Kind::Brotli => (0, 11, BROTLI_DEFAULT_QUALITY),
            Kind::Zstd => (1, ZSTD_MAX_LEVEL, ZSTD_DEFAULT_LEVEL),
        }
    }
}

/// One compressed stream, written into an in-memory sink that each call
/// drains, so memory stays bounded by what the codec itself holds.
pub enum Encoder {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

impl Encoder {
    /// A new stream; `level` must lie in `kind.levels()` (checked by the caller).
    pub fn new(kind: Kind, level: i32) -> io::Result<Encoder> {
        Ok(match kind {
            Kind::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(level as u32),
            )),
            Kind::Brotli => Encoder::Brotli(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                BROTLI_BUFFER_SIZE,
                level as u32,
                BROTLI_WINDOW_BITS,
            ))),
            Kind::Zstd => Encoder::Zstd(zstd::stream::write::Encoder::new(Vec::new(), level)?),
        })
    }

    fn sink(&mut self) -> &mut Vec<u8> {
        match self {
            Encoder::Gzip(e) => e.get_mut(),
            Encoder::Brotli(e) => e.get_mut(),
            Encoder::Zstd(e) => e.get_mut(),
        }
    }

    /// Compresses `data`; returns whatever output the codec has produced
    /// (often nothing: codecs keep a window of input before emitting).
    pub fn compress(&mut self, data: &[u8]) -> io::Result<Vec<u8>> {
        match self {
            Encoder::Gzip(e) => e.write_all(data)?,
            Encoder::Brotli(e) => e.write_all(data)?,
            Encoder::Zstd(e) => e.write_all(data)?,
        }
        Ok(std::mem::take(self.sink()))
    }

    /// Emits everything fed so far as a decodable prefix of the stream
    /// (a sync flush), at a small cost in ratio.
    pub fn flush(&mut self) -> io::Result<Vec<u8>> {
        match self {
            Encoder::Gzip(e) => e.flush()?,
            Encoder::Brotli(e) => e.flush()?,
            Encoder::Zstd(e) => e.flush()?,
        }
        Ok(std::mem::take(self.sink()))
    }

    /// Ends the stream; returns the last bytes (trailer included).
    pub fn finish(self) -> io::Result<Vec<u8>> {
        match self {
            Encoder::Gzip(e) => e.finish(),
            // into_inner() writes the final block before handing the sink back.
            Encoder::Brotli(e) => Ok(e.into_inner()),
            Encoder::Zstd(e) => e.finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn decode(kind: Kind, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match kind {
            Kind::Gzip => {
                flate2::read::GzDecoder::new(data)
                    .read_to_end(&mut out)
                    .unwrap();
            }
            Kind::Brotli => {
                brotli::Decompressor::new(data, 4096)
                    .read_to_end(&mut out)
                    .unwrap();
            }
            Kind::Zstd => out = zstd::stream::decode_all(data).unwrap(),
        }
        out
    }

    fn sample(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| (i * 7 % 251) as u8 ^ (i / 1000) as u8)
            .collect()
    }

    #[test]
    fn round_trip_in_pieces_with_flushes() {
        let input = sample(300_000);
        for kind in [Kind::Gzip, Kind::Brotli, Kind::Zstd] {
            let mut enc = Encoder::new(kind, kind.levels().2).unwrap();
            let mut out = Vec::new();
            for (i, piece) in input.chunks(7_919).enumerate() {
                out.extend(enc.compress(piece).unwrap());
                if i % 5 == 0 {
                    out.extend(enc.flush().unwrap());
                }
            }
            out.extend(enc.finish().unwrap());
            assert_eq!(decode(kind, &out), input, "{kind:?}");
        }
    }

    #[test]
    fn flush_makes_the_prefix_decodable() {
        for kind in [Kind::Gzip, Kind::Brotli, Kind::Zstd] {
            let mut enc = Encoder::new(kind, kind.levels().2).unwrap();
            let mut out = enc.compress(b"hello ").unwrap();
            out.extend(enc.flush().unwrap());
            assert!(!out.is_empty(), "{kind:?} flushed nothing");
            out.extend(enc.finish().unwrap());
            assert_eq!(decode(kind, &out), b"hello ", "{kind:?}");
        }
    }

    #[test]
    fn empty_stream_is_valid() {
        for kind in [Kind::Gzip, Kind::Brotli, Kind::Zstd] {
            let enc = Encoder::new(kind, kind.levels().2).unwrap();
            assert_eq!(decode(kind, &enc.finish().unwrap()), b"", "{kind:?}");
        }
    }

    #[test]
    fn tokens_round_trip() {
        for kind in [Kind::Gzip, Kind::Brotli, Kind::Zstd] {
            assert_eq!(Kind::from_token(kind.token()), Some(kind));
        }
        assert_eq!(Kind::from_token("deflate"), None);
    }
}
