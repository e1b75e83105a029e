//! Chunked framing in `qiao_http::response`: `push_chunk`, `chunk_header`
//! and the constants, and chunks that `BodyDecoder` reads back as the
//! body that was framed.

use qiao_http::response::{chunk_header, push_chunk, CHUNK_END, CONTINUE, LAST_CHUNK, SERVER_NAME};
use qiao_http::{BodyDecoder, Decoded, Framing};

#[test]
fn push_chunk_frames_data_and_skips_empty() {
    let mut out = Vec::new();
    push_chunk(b"", &mut out);
    assert!(out.is_empty(), "an empty chunk would end the body");
    push_chunk(b"hello world, 17 b", &mut out);
    assert_eq!(out, b"11\r\nhello world, 17 b\r\n");
}

#[test]
fn chunk_headers() {
    let cases: &[(usize, &str)] = &[
        (1, "1\r\n"),
        (9, "9\r\n"),
        (10, "a\r\n"),
        (15, "f\r\n"),
        (16, "10\r\n"),
        (255, "ff\r\n"),
        (4096, "1000\r\n"),
        (65535, "ffff\r\n"),
        (0xdead_beef, "deadbeef\r\n"),
        (usize::MAX, "ffffffffffffffff\r\n"),
    ];
    for (len, want) in cases {
        let mut out = b"x".to_vec();
        chunk_header(*len, &mut out);
        assert_eq!(std::str::from_utf8(&out[1..]).unwrap(), *want, "{len}");
    }
    assert_eq!(CHUNK_END, b"\r\n");
    assert_eq!(LAST_CHUNK, b"0\r\n\r\n");
    assert_eq!(CONTINUE, b"HTTP/1.1 100 Continue\r\n\r\n");
    assert_eq!(SERVER_NAME, b"qiao");
}

#[test]
fn chunked_frames_decode() {
    let parts: &[&[u8]] = &[b"hello", b" ", b"world of chunks", &[0xff; 300]];
    let mut wire = Vec::new();
    for p in parts {
        chunk_header(p.len(), &mut wire);
        wire.extend_from_slice(p);
        wire.extend_from_slice(CHUNK_END);
    }
    wire.extend_from_slice(LAST_CHUNK);
    let mut dec = BodyDecoder::new(Framing::Chunked, None);
    let (mut pos, mut body) = (0, Vec::new());
    loop {
        match dec.decode(&wire[pos..]).unwrap() {
            (n, Decoded::Data(r)) => {
                body.extend_from_slice(&wire[pos..][r]);
                pos += n;
            }
            (n, Decoded::End) => break assert_eq!(pos + n, wire.len()),
            (_, Decoded::NeedMore) => panic!("truncated"),
        }
    }
    assert_eq!(body, parts.concat());
}
