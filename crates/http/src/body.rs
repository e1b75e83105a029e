//! Request-body framing: a decoder for `Content-Length` and `chunked`
//! bodies, fed bytes and returning spans of body data, with no copying.
//!
//! Hand-written rather than taken from a crate because it must be strict
//! where smuggling hides (CRLF exactly after every size line and every
//! chunk, hex digits only, bounded sizes, bounded extensions and trailers,
//! never resynchronising after garbage) and because it works in place on
//! the connection's buffer: `decode` answers with a range of the input that
//! is body data, so the bytes go from the socket buffer to the Python
//! `bytes` object in a single copy.

use std::ops::Range;

use super::error::ParseError;
use super::limits::{MAX_CHUNK_EXT_BYTES, MAX_CHUNK_SIZE_DIGITS, MAX_TRAILER_BYTES};
use super::request::{hex_val, is_tchar, Framing};

/// What one call to [`BodyDecoder::decode`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// Body bytes at this range of the input.
    Data(Range<usize>),
    /// The input was consumed without finding data or the end: feed more.
    NeedMore,
    /// The body is complete; nothing after it belongs to it.
    End,
}

/// Where a chunked decoder is inside the chunked grammar (RFC 9112 §7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    /// Reading the hex digits of a chunk size.
    Size { digits: usize, value: u64 },
    /// After the size: optional whitespace, then `;` or CR.
    SizeWs { value: u64 },
    /// Inside the chunk extensions, up to CR.
    Ext { value: u64, at: ExtAt },
    /// Saw the CR ending the size line; LF must follow.
    SizeLf { value: u64 },
    /// Inside chunk data, with this many bytes left.
    Data { remaining: u64 },
    /// Chunk data done; CR must follow.
    DataCr,
    /// CR after data seen; LF must follow.
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    /// Inside a trailer field line.
    TrailerLine { has_colon: bool },
    /// CR ending a trailer line seen; LF must follow.
    TrailerLf,
    /// CR of the final empty line seen; LF must follow.
    EndLf,
}

/// Where a decoder is inside the chunk extensions of a size line:
/// `*( BWS ";" BWS ext-name [ BWS "=" BWS ( token / quoted-string ) ] )`
/// (RFC 9112 §7.1.1), parsed rather than skipped so garbage is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ExtAt {
    /// After `;`: optional whitespace, then a name.
    BeforeName,
    Name,
    /// After a name: whitespace, `=`, `;` or CR.
    AfterName,
    /// After `=`: optional whitespace, then a token or a quoted string.
    BeforeValue,
    Token,
    Quoted,
    /// After a backslash inside a quoted string.
    Escape,
    /// After a value: whitespace, `;` or CR.
    AfterValue,
}

/// Decodes one request body, whatever its framing.
#[derive(Clone, Debug)]
pub struct BodyDecoder {
    state: BodyState,
    /// Body bytes yielded so far.
    total: u64,
    /// Largest decoded body accepted, for chunked bodies (413 beyond).
    max_body: Option<u64>,
    ext_bytes: usize,
    trailer_bytes: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyState {
    Length { remaining: u64 },
    Chunked(Chunk),
    Done,
}

impl BodyDecoder {
    pub fn new(framing: Framing, max_body: Option<u64>) -> Self {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => BodyState::Done,
            Framing::Length(n) => BodyState::Length { remaining: n },
            Framing::Chunked => BodyState::Chunked(Chunk::Size {
                digits: 0,
                value: 0,
            }),
        };
        BodyDecoder {
            state,
            total: 0,
            max_body,
            ext_bytes: 0,
            trailer_bytes: 0,
        }
    }

    /// True once the whole body (and for chunked, the trailers) was read.
    pub fn is_done(&self) -> bool {
        self.state == BodyState::Done
    }

    /// Body bytes still expected, when the framing says (Content-Length).
    pub fn remaining_hint(&self) -> Option<u64> {
        match self.state {
            BodyState::Length { remaining } => Some(remaining),
            BodyState::Done => Some(0),
            BodyState::Chunked(_) => None,
        }
    }

    /// Body bytes decoded so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Consumes a prefix of `src`. Returns how many bytes were consumed and
    /// what they held; data ranges index `src`. Call again with the rest.
    pub fn decode(&mut self, src: &[u8]) -> Result<(usize, Decoded), ParseError> {
        match self.state {
            BodyState::Done => Ok((0, Decoded::End)),
            BodyState::Length { remaining } => {
                if src.is_empty() {
                    return Ok((0, Decoded::NeedMore));
                }
                let n = (src.len() as u64).min(remaining) as usize;
                self.total += n as u64;
                self.state = match remaining - n as u64 {
                    0 => BodyState::Done,
                    remaining => BodyState::Length { remaining },
                };
                Ok((n, Decoded::Data(0..n)))
            }
            BodyState::Chunked(chunk) => self.decode_chunked(chunk, src),
        }
    }

    fn decode_chunked(
        &mut self,
        mut st: Chunk,
        src: &[u8],
    ) -> Result<(usize, Decoded), ParseError> {
        let mut i = 0;
        while i < src.len() {
            if let Chunk::Data { remaining } = st {
                let n = ((src.len() - i) as u64).min(remaining) as usize;
                self.total += n as u64;
                if self.max_body.is_some_and(|max| self.total > max) {
                    return Err(ParseError::BodyTooLarge);
                }
                st = if remaining == n as u64 {
                    Chunk::DataCr
                } else {
                    Chunk::Data {
                        remaining: remaining - n as u64,
                    }
                };
                self.state = BodyState::Chunked(st);
                return Ok((i + n, Decoded::Data(i..i + n)));
            }
            let b = src[i];
            i += 1;
            st = match st {
                Chunk::Size { digits, value } => match hex_val(b) {
                    Some(d) if digits < MAX_CHUNK_SIZE_DIGITS => Chunk::Size {
                        digits: digits + 1,
                        value: value << 4 | u64::from(d),
                    },
                    Some(_) => return Err(ParseError::BadChunkSize),
                    None if digits == 0 => return Err(ParseError::BadChunkSize),
                    None => match b {
                        b'\r' => Chunk::SizeLf { value },
                        b';' => self.ext_byte(value, ExtAt::BeforeName)?,
                        b' ' | b'\t' => Chunk::SizeWs { value },
                        _ => return Err(ParseError::BadChunkSize),
                    },
                },
                Chunk::SizeWs { value } => match b {
                    b' ' | b'\t' => Chunk::SizeWs { value },
                    b';' => self.ext_byte(value, ExtAt::BeforeName)?,
                    _ => return Err(ParseError::BadChunkSize),
                },
                Chunk::Ext { value, at } => {
                    use ExtAt::*;
                    let ws = b == b' ' || b == b'\t';
                    let next = match (at, b) {
                        (BeforeName, _) if ws => BeforeName,
                        (BeforeName | Name, _) if is_tchar(b) => Name,
                        (Name | AfterName, _) if ws => AfterName,
                        (Name | AfterName, b'=') => BeforeValue,
                        (BeforeValue, _) if ws => BeforeValue,
                        (BeforeValue, b'"') => Quoted,
                        (BeforeValue | Token, _) if is_tchar(b) => Token,
                        (Quoted, b'\\') => Escape,
                        (Quoted, b'"') => AfterValue,
                        (Quoted, b'\t' | b' ' | b'!' | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff) => {
                            Quoted
                        }
                        (Escape, b'\t' | b' '..=b'~' | 0x80..=0xff) => Quoted,
                        (Token | AfterValue, _) if ws => AfterValue,
                        (Name | AfterName | Token | AfterValue, b';') => BeforeName,
                        (Name | AfterName | Token | AfterValue, b'\r') => {
                            st = Chunk::SizeLf { value };
                            continue;
                        }
                        _ => return Err(ParseError::BadChunkExtension),
                    };
                    self.ext_byte(value, next)?
                }
                Chunk::SizeLf { value } => match (b, value) {
                    (b'\n', 0) => Chunk::TrailerStart,
                    // A chunk announced past the body limit is refused now,
                    // not after its bytes were received.
                    (b'\n', remaining)
                        if self
                            .max_body
                            .is_some_and(|max| self.total.saturating_add(remaining) > max) =>
                    {
                        return Err(ParseError::BodyTooLarge)
                    }
                    (b'\n', remaining) => Chunk::Data { remaining },
                    _ => return Err(ParseError::BadChunkSize),
                },
                Chunk::Data { .. } => unreachable!("handled above"),
                Chunk::DataCr if b == b'\r' => Chunk::DataLf,
                Chunk::DataLf if b == b'\n' => Chunk::Size {
                    digits: 0,
                    value: 0,
                },
                Chunk::DataCr | Chunk::DataLf => return Err(ParseError::BadChunkData),
                Chunk::TrailerStart => match b {
                    b'\r' => Chunk::EndLf,
                    _ if is_tchar(b) => self.trailer_byte(false)?,
                    _ => return Err(ParseError::BadTrailer),
                },
                Chunk::TrailerLine { has_colon } => match b {
                    b'\r' if has_colon => Chunk::TrailerLf,
                    b':' if !has_colon => self.trailer_byte(true)?,
                    _ if !has_colon && is_tchar(b) => self.trailer_byte(false)?,
                    b'\t' | b' '..=b'~' | 0x80..=0xff if has_colon => self.trailer_byte(true)?,
                    _ => return Err(ParseError::BadTrailer),
                },
                Chunk::TrailerLf if b == b'\n' => Chunk::TrailerStart,
                Chunk::TrailerLf => return Err(ParseError::BadTrailer),
                Chunk::EndLf if b == b'\n' => {
                    self.state = BodyState::Done;
                    return Ok((i, Decoded::End));
                }
                Chunk::EndLf => return Err(ParseError::BadTrailer),
            };
        }
        self.state = BodyState::Chunked(st);
        Ok((i, Decoded::NeedMore))
    }

    fn ext_byte(&mut self, value: u64, at: ExtAt) -> Result<Chunk, ParseError> {
        self.ext_bytes += 1;
        if self.ext_bytes > MAX_CHUNK_EXT_BYTES {
            return Err(ParseError::BadChunkExtension);
        }
        Ok(Chunk::Ext { value, at })
    }

    fn trailer_byte(&mut self, has_colon: bool) -> Result<Chunk, ParseError> {
        self.trailer_bytes += 1;
        if self.trailer_bytes > MAX_TRAILER_BYTES {
            return Err(ParseError::BadTrailer);
        }
        Ok(Chunk::TrailerLine { has_colon })
    }
}
