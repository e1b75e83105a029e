//! Request-body framing: the Content-Length and Transfer-Encoding rules of
//! `parse_head` (RFC 9112 §6, the request-smuggling surface) as head table
//! cases, then `BodyDecoder` on Content-Length and chunked bodies: valid
//! bodies reassemble exactly and reach `End`, invalid chunked syntax,
//! oversized extensions and trailers and `max_body` give the same
//! `ParseError` whole, byte by byte and in random reads, and bytes after the
//! body are never consumed (pipelining).

mod common;

use common::{body_all_ways, err, run, serve_all_ways, BodyOutcome, Case, ConnEnd, Want, C::*};
use qiao_http::limits::{MAX_CHUNK_EXT_BYTES, MAX_TRAILER_BYTES};
use qiao_http::{BodyDecoder, Decoded, Framing, Limits, ParseError, ParseError::*};

#[rustfmt::skip]
const FRAMING: &[Case] = &[
    ("cl", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", Want::Ok(&[F(Framing::Length(5))])),
    ("cl zero is empty", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", Want::Ok(&[F(Framing::Empty)])),
    ("cl on GET", b"GET /foo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", Want::Ok(&[F(Framing::Length(5))])),
    ("cl name case", b"GET / HTTP/1.0\r\nconTENT-Length: 5\r\n\r\n", Want::Ok(&[F(Framing::Length(5))])),
    ("cl OWS", b"POST / HTTP/1.0\r\nContent-Length: \t 5 \t\r\n\r\n", Want::Ok(&[F(Framing::Length(5))])),
    ("cl plus", b"POST / HTTP/1.0\r\nContent-Length: +5\r\n\r\n", err(BadContentLength, 400)),
    ("cl minus one", b"PUT / HTTP/1.0\r\nCONTENT-LENGTH: -1\r\n\r\n", err(BadContentLength, 400)),
    ("cl minus zero", b"GET / HTTP/1.0\r\nContent-Length: -0\r\n\r\n", err(BadContentLength, 400)),
    ("cl hex", b"POST / HTTP/1.0\r\nContent-Length: 0x5\r\n\r\n", err(BadContentLength, 400)),
    ("cl two numbers", b"POST / HTTP/1.0\r\nContent-Length: 5 5\r\n\r\n", err(BadContentLength, 400)),
    ("cl zero one", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0 1\r\n\r\n", err(BadContentLength, 400)),
    ("cl underscore", b"POST / HTTP/1.0\r\nContent-Length: 1_0\r\n\r\n", err(BadContentLength, 400)),
    ("cl underscore 0_1", b"POST / HTTP/1.0\r\nContent-Length: 0_1\r\n\r\n", err(BadContentLength, 400)),
    ("cl empty", b"POST / HTTP/1.0\r\nContent-Length:\r\n\r\n", err(BadContentLength, 400)),
    ("cl words", b"POST / HTTP/1.0\r\nCONTENT-LENGTH: bla-bla-bla\r\n\r\n", err(BadContentLength, 400)),
    ("cl decimal point", b"POST / HTTP/1.0\r\nContent-Length: 5.0\r\n\r\n", err(BadContentLength, 400)),
    ("cl arabic digit", "POST / HTTP/1.0\r\nContent-Length: ٥\r\n\r\n".as_bytes(), err(BadContentLength, 400)),
    ("cl 18 digits", b"POST / HTTP/1.0\r\nContent-Length: 999999999999999999\r\n\r\n", Want::Ok(&[F(Framing::Length(999_999_999_999_999_999))])),
    ("cl 18 digits zeros", b"POST / HTTP/1.0\r\nContent-Length: 000000000000000005\r\n\r\n", Want::Ok(&[F(Framing::Length(5))])),
    ("cl 19 digits", b"POST / HTTP/1.0\r\nContent-Length: 1000000000000000000\r\n\r\n", err(BadContentLength, 400)),
    ("cl u64 overflow", b"POST / HTTP/1.0\r\nContent-Length: 18446744073709551616\r\n\r\n", err(BadContentLength, 400)),
    ("cl huge", b"POST / HTTP/1.0\r\nContent-Length: 99999999999999999999999999999999\r\n\r\n", err(BadContentLength, 400)),
    ("cl list same", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", Want::Ok(&[F(Framing::Length(5))])),
    ("cl list same x3", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,5 ,5\r\n\r\n", Want::Ok(&[F(Framing::Length(5))])),
    ("cl list differs", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", err(ConflictingContentLength, 400)),
    ("cl list trailing comma", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n", err(BadContentLength, 400)),
    ("cl list leading comma", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: , 5\r\n\r\n", err(BadContentLength, 400)),
    ("cl repeated same", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", Want::Ok(&[F(Framing::Length(5))])),
    ("cl repeated list", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 5, 5\r\n\r\n", Want::Ok(&[F(Framing::Length(5))])),
    ("cl repeated differs", b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 2\r\n\r\nxyz", err(ConflictingContentLength, 400)),
    ("cl repeated zero and five", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\n", err(ConflictingContentLength, 400)),
    ("te chunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", Want::Ok(&[F(Framing::Chunked)])),
    ("te Chunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n", Want::Ok(&[F(Framing::Chunked)])),
    ("te CHUNKED OWS", b"POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: \t CHUNKED \r\n\r\n", Want::Ok(&[F(Framing::Chunked)])),
    ("te gzip, chunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", err(UnsupportedTransferCoding, 501)),
    ("te identity, chunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity, chunked\r\n\r\n", err(UnsupportedTransferCoding, 501)),
    ("te gzip then chunked fields", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", err(UnsupportedTransferCoding, 501)),
    ("te chunked, gzip", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", err(BadTransferEncoding, 400)),
    ("te chunked then gzip fields", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", err(BadTransferEncoding, 400)),
    ("te gzip", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", err(BadTransferEncoding, 400)),
    ("te identity", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", err(BadTransferEncoding, 400)),
    ("te chunked twice", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", err(BadTransferEncoding, 400)),
    ("te chunked in two fields", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", err(BadTransferEncoding, 400)),
    ("te double chunked list", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity, chunked, identity, chunked\r\n\r\n", err(BadTransferEncoding, 400)),
    ("te empty", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", err(BadTransferEncoding, 400)),
    ("te empty item", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n", err(BadTransferEncoding, 400)),
    ("te chunked with params", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", err(BadTransferEncoding, 400)),
    ("te and cl", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", err(ContentLengthWithTransferEncoding, 400)),
    ("cl after te", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n", err(ContentLengthWithTransferEncoding, 400)),
    ("te with tab and cl", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\nTransfer-Encoding: \tchunked\r\n\r\n", err(ContentLengthWithTransferEncoding, 400)),
    ("te on 1.0", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", err(TransferEncodingOnHttp10, 400)),
    ("te gzip on 1.0", b"POST / HTTP/1.0\r\nTransfer-Encoding: gzip\r\n\r\n", err(TransferEncodingOnHttp10, 400)),
    ("te and cl on 1.0", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", err(ContentLengthWithTransferEncoding, 400)),
    ("underscore te ignored", b"POST / HTTP/1.0\r\nTransfer_Encoding: chunked\r\nContent-Length: 7\r\n\r\n", Want::Ok(&[F(Framing::Length(7))])),
];

#[test]
fn framing_heads() {
    run(FRAMING, &Limits::default());
}

fn done(body: &[u8], consumed: usize) -> BodyOutcome {
    BodyOutcome::Done(body.to_vec(), consumed)
}

#[test]
fn content_length_bodies() {
    let l = |n| Framing::Length(n);
    assert_eq!(body_all_ways(l(5), None, b"hello"), done(b"hello", 5));
    assert_eq!(
        body_all_ways(l(5), None, b"helloGET / HTTP/1.1\r\n"),
        done(b"hello", 5)
    );
    assert_eq!(
        body_all_ways(l(5), None, b"hel"),
        BodyOutcome::Incomplete(b"hel".to_vec())
    );
    assert_eq!(body_all_ways(l(0), None, b"GET"), done(b"", 0));
    assert_eq!(body_all_ways(Framing::Empty, None, b"GET"), done(b"", 0));
    assert_eq!(body_all_ways(Framing::Empty, None, b""), done(b"", 0));
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(body_all_ways(l(100_000), None, &big), done(&big, 100_000));
    // Chunked syntax inside a Content-Length body is just data.
    assert_eq!(
        body_all_ways(l(5), None, b"0\r\n\r\nX"),
        done(b"0\r\n\r\n", 5)
    );
    let mut dec = BodyDecoder::new(l(5), None);
    assert_eq!(dec.remaining_hint(), Some(5));
    assert_eq!(dec.decode(b"he").unwrap(), (2, Decoded::Data(0..2)));
    assert_eq!(
        (dec.remaining_hint(), dec.total(), dec.is_done()),
        (Some(3), 2, false)
    );
    assert_eq!(dec.decode(b"lloXY").unwrap(), (3, Decoded::Data(0..3)));
    assert_eq!(
        (dec.remaining_hint(), dec.total(), dec.is_done()),
        (Some(0), 5, true)
    );
    assert_eq!(dec.decode(b"XY").unwrap(), (0, Decoded::End));
    assert_eq!(
        BodyDecoder::new(Framing::Chunked, None).remaining_hint(),
        None
    );
}

/// Valid chunked bodies: (name, wire bytes, body, bytes the body takes).
#[rustfmt::skip]
const CHUNKED_OK: &[(&str, &[u8], &[u8], usize)] = &[
    ("one chunk", b"5\r\nhello\r\n0\r\n\r\n", b"hello", 15),
    ("two chunks, 000 end", b"5\r\nhello\r\n6\r\n world\r\n000\r\n\r\n", b"hello world", 28),
    ("pipelined request after", b"5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n", b"hello", 15),
    ("empty body", b"0\r\n\r\n", b"", 5),
    ("uppercase hex", b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789", 20),
    ("lowercase hex", b"a\r\n0123456789\r\n0\r\n\r\n", b"0123456789", 20),
    ("leading zeros", b"0005\r\nhello\r\n0\r\n\r\n", b"hello", 18),
    ("15 digits", b"000000000000005\r\nhello\r\n0\r\n\r\n", b"hello", 29),
    ("extensions", b"5; some; parameters=stuff\r\nhello\r\n0\r\n\r\n", b"hello", 39),
    ("quoted extension", b"5;foo=\"bar baz\"\r\nhello\r\n0\r\n\r\n", b"hello", 29),
    ("OWS before extension", b"5 \t;a=b\r\nhello\r\n0\r\n\r\n", b"hello", 21),
    ("extension on last chunk", b"5\r\nhello\r\n0;last\r\n\r\n", b"hello", 20),
    ("obs-text in a quoted extension", b"1;x=\"\xff\xfe\"\r\na\r\n0\r\n\r\n", b"a", 18),
    ("escaped quote in extension", b"1;x=\"a\\\"b\"\r\na\r\n0\r\n\r\n", b"a", 20),
    ("BWS around = in extension", b"1 ; x = y ; z\r\na\r\n0\r\n\r\n", b"a", 23),
    ("trailers discarded", b"5\r\nhello\r\n0\r\nVary: *\r\nContent-Type: text/plain\r\n\r\nNEXT", b"hello", 50),
    ("trailer empty value", b"0\r\nX:\r\n\r\n", b"", 9),
    ("trailer obs-text", b"0\r\nX: caf\xc3\xa9\t\r\n\r\n", b"", 16),
    ("CRLF and 0 inside data", b"7\r\n0\r\n\r\nab\r\n0\r\n\r\n", b"0\r\n\r\nab", 17),
    ("one-byte chunks", b"1\r\na\r\n1\r\nb\r\n1\r\nc\r\n0\r\n\r\n", b"abc", 23),
];

#[test]
fn chunked_bodies() {
    for (name, wire, body, used) in CHUNKED_OK {
        assert_eq!(
            body_all_ways(Framing::Chunked, None, wire),
            done(body, *used),
            "{name}"
        );
    }
    let data: Vec<u8> = (0..5000u32).map(|i| (i % 253) as u8).collect();
    let mut wire = b"1388\r\n".to_vec();
    wire.extend_from_slice(&data);
    wire.extend_from_slice(b"\r\n0\r\n\r\n");
    assert_eq!(
        body_all_ways(Framing::Chunked, None, &wire),
        done(&data, wire.len())
    );
}

#[test]
fn chunked_incomplete() {
    let cases: &[(&[u8], &[u8])] = &[
        (b"", b""),
        (b"5", b""),
        (b"5\r\nhel", b"hel"),
        (b"5\r\nhello\r", b"hello"),
        (b"0\r\n", b""),
        (b"5\r\nhello\r\n0\r\n\r", b"hello"),
        (b"0\r\nX: y\r\n", b""),
    ];
    for (wire, body) in cases {
        let got = body_all_ways(Framing::Chunked, None, wire);
        assert_eq!(
            got,
            BodyOutcome::Incomplete(body.to_vec()),
            "{}",
            common::show(wire)
        );
    }
}

#[rustfmt::skip]
const CHUNKED_ERR: &[(&str, &[u8], ParseError)] = &[
    ("non-hex size", b"x\r\nhello\r\n0\r\n\r\n", BadChunkSize),
    ("empty size", b"\r\nhello\r\n0\r\n\r\n", BadChunkSize),
    ("space before size", b" 5\r\nhello\r\n0\r\n\r\n", BadChunkSize),
    ("ext without size", b" ;foo=bar\r\nhello\r\n0\r\n\r\n", BadChunkSize),
    ("0x prefix", b"0x5\r\nhello\r\n0\r\n\r\n", BadChunkSize),
    ("minus sign", b"-5\r\nhello\r\n0\r\n\r\n", BadChunkSize),
    ("plus sign", b"+5\r\nhello\r\n0\r\n\r\n", BadChunkSize),
    ("underscore", b"5\r\nhello\r\n6_0\r\n world\r\n0\r\n\r\n", BadChunkSize),
    ("16 digits", b"1000000000000000\r\n", BadChunkSize),
    ("16 digits leading zeros", b"0000000000000005\r\nhello\r\n0\r\n\r\n", BadChunkSize),
    ("overflow", b"fffffffffffffffffff\r\n", BadChunkSize),
    ("LF only after size", b"5\nhello\r\n0\r\n\r\n", BadChunkSize),
    ("LF then semicolon", b"5\n;\r\nhello\r\n0\r\n\r\n", BadChunkSize),
    ("OWS without extension", b"5\r\nhello\r\n0 \r\n\r\n", BadChunkSize),
    ("CR CR after size", b"5\r\rhello", BadChunkSize),
    ("bare CR in extension", b"5;ext=val\rue\r\nhello\r\n0\r\n\r\n", BadChunkSize),
    ("LF only after extension", b"5;a\nhello\r\n0\r\n\r\n", BadChunkExtension),
    ("NUL in extension", b"5;a\0\r\nhello\r\n0\r\n\r\n", BadChunkExtension),
    ("obs-text in an unquoted extension value", b"1;x=\xff\r\na\r\n0\r\n\r\n", BadChunkExtension),
    ("empty extension name", b"1;=v\r\na\r\n0\r\n\r\n", BadChunkExtension),
    ("extension value missing", b"1;x=\r\na\r\n0\r\n\r\n", BadChunkExtension),
    ("unterminated quoted extension", b"1;x=\"ab\r\na\r\n0\r\n\r\n", BadChunkExtension),
    ("two values in one extension", b"1;x=a b\r\na\r\n0\r\n\r\n", BadChunkExtension),
    ("DEL in extension", b"5;a\x7f\r\nhello\r\n0\r\n\r\n", BadChunkExtension),
    ("data too long", b"5\r\nhelloX\r\n0\r\n\r\n", BadChunkData),
    ("no CRLF after data", b"5\r\nhello0\r\n\r\n", BadChunkData),
    ("LF only after data", b"5\r\nhello\n0\r\n\r\n", BadChunkData),
    ("CR CR after data", b"5\r\nhello\r\r\n0\r\n\r\n", BadChunkData),
    ("trailer empty name", b"0\r\n: v\r\n\r\n", BadTrailer),
    ("trailer space in name", b"0\r\nX y: v\r\n\r\n", BadTrailer),
    ("trailer no colon", b"0\r\nX\r\n\r\n", BadTrailer),
    ("trailer space before colon", b"0\r\nX : v\r\n\r\n", BadTrailer),
    ("trailer LF only", b"0\r\nX: a\nY: b\r\n\r\n", BadTrailer),
    ("trailer NUL", b"0\r\nX: a\0b\r\n\r\n", BadTrailer),
    ("trailer CR CR", b"0\r\nX: a\r\r\n\r\n", BadTrailer),
    ("trailer obs-fold", b"0\r\nX: a\r\n b\r\n\r\n", BadTrailer),
    ("final CR then junk", b"0\r\n\rX", BadTrailer),
    ("final LF only", b"0\r\n\n", BadTrailer),
];

#[test]
fn chunked_errors() {
    for (name, wire, e) in CHUNKED_ERR {
        assert_eq!(
            body_all_ways(Framing::Chunked, None, wire),
            BodyOutcome::Error(*e),
            "{name}"
        );
    }
}

/// `n` chunks of one byte, each with an extension of `ext` bytes (`;` included).
fn with_extensions(n: usize, ext: usize) -> Vec<u8> {
    let mut wire = Vec::new();
    for _ in 0..n {
        wire.extend_from_slice(format!("1;{}\r\nx\r\n", "e".repeat(ext - 1)).as_bytes());
    }
    wire.extend_from_slice(b"0\r\n\r\n");
    wire
}

#[test]
fn extension_budget() {
    let max = MAX_CHUNK_EXT_BYTES;
    let ok = with_extensions(1, max);
    assert_eq!(
        body_all_ways(Framing::Chunked, None, &ok),
        done(b"x", ok.len())
    );
    let over = with_extensions(1, max + 1);
    assert_eq!(
        body_all_ways(Framing::Chunked, None, &over),
        BodyOutcome::Error(BadChunkExtension)
    );
    // The budget covers the whole body, not each chunk.
    let ok = with_extensions(4, max / 4);
    assert_eq!(
        body_all_ways(Framing::Chunked, None, &ok),
        done(b"xxxx", ok.len())
    );
    let over = with_extensions(5, max / 4);
    assert_eq!(
        body_all_ways(Framing::Chunked, None, &over),
        BodyOutcome::Error(BadChunkExtension)
    );
}

#[test]
fn trailer_budget() {
    // Counted bytes: every byte of the trailer lines but their CRLFs.
    let trailers = |len: usize| {
        let mut wire = b"0\r\n".to_vec();
        let mut left = len;
        while left > 0 {
            let n = left.min(1000);
            wire.extend_from_slice(format!("X:{}\r\n", "v".repeat(n - 2)).as_bytes());
            left -= n;
        }
        wire.extend_from_slice(b"\r\n");
        wire
    };
    let ok = trailers(MAX_TRAILER_BYTES);
    assert_eq!(
        body_all_ways(Framing::Chunked, None, &ok),
        done(b"", ok.len())
    );
    let over = trailers(MAX_TRAILER_BYTES + 3);
    assert_eq!(
        body_all_ways(Framing::Chunked, None, &over),
        BodyOutcome::Error(BadTrailer)
    );
}

#[test]
fn chunked_max_body() {
    let wire = b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n";
    assert_eq!(
        body_all_ways(Framing::Chunked, Some(10), wire),
        done(b"helloworld", wire.len())
    );
    assert_eq!(
        body_all_ways(Framing::Chunked, Some(9), wire),
        BodyOutcome::Error(BodyTooLarge)
    );
    assert_eq!(
        body_all_ways(Framing::Chunked, Some(0), b"1\r\na\r\n0\r\n\r\n"),
        BodyOutcome::Error(BodyTooLarge)
    );
    assert_eq!(
        body_all_ways(Framing::Chunked, Some(0), b"0\r\n\r\n"),
        done(b"", 5)
    );
}

#[test]
fn pipelined_requests() {
    let l = Limits::default();
    let input = b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloPOST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\nGET /c HTTP/1.1\r\nHost: h\r\n\r\n";
    let (reqs, end) = serve_all_ways(input, &l);
    let got: Vec<(&str, &[u8])> = reqs
        .iter()
        .map(|r| (r.head.path.as_str(), r.body.as_slice()))
        .collect();
    assert_eq!(got, [("/a", &b"hello"[..]), ("/b", b"abc"), ("/c", b"")]);
    assert_eq!(end, ConnEnd::Eof);
    // HTTP/1.0 without keep-alive: the body that looks like a request is data, then close.
    let (reqs, end) = serve_all_ways(b"GET /first HTTP/1.0\r\nContent-Length: 24\r\n\r\nGET /second HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\n\r\n", &l);
    assert_eq!(
        (reqs.len(), reqs[0].body.as_slice(), end),
        (1, &b"GET /second HTTP/1.1\r\n\r\n"[..], ConnEnd::Closed)
    );
    // A framing error in the second request ends the connection after the first.
    let (reqs, end) = serve_all_ways(b"GET / HTTP/1.1\r\nHost: h\r\n\r\nPOST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX", &l);
    assert_eq!((reqs.len(), end), (1, ConnEnd::Error(BadChunkData)));
}
