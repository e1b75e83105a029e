//! Property tests (proptest) of the sans-IO HTTP ring:
//! - generated valid pipelined requests (Content-Length or chunked bodies)
//!   parse to exactly what was generated, whole, split at any one point,
//!   and cut at arbitrary points, and the first head is `Partial` on every
//!   prefix shorter than itself;
//! - arbitrary bytes never panic `parse_head` or `BodyDecoder`, and every
//!   decode call consumes input, or answers `NeedMore`/`End`;
//! - chunk-encoding any body with `chunk_header`/`CHUNK_END`/`LAST_CHUNK`
//!   (with optional extensions and trailers) decodes back to it.

mod common;

use common::{decode_reads, head_all_ways, pieces, serve, BodyOutcome, ConnEnd};
use proptest::prelude::*;
use qiao_http::limits::MAX_CHUNK_EXT_BYTES;
use qiao_http::response::{chunk_header, CHUNK_END, LAST_CHUNK};
use qiao_http::{parse_head, Framing, Limits, ParseError, RequestHead, Status};

/// One generated request and what parsing it must give.
#[derive(Clone, Debug)]
struct Gen {
    wire: Vec<u8>,
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn value() -> impl Strategy<Value = String> {
    // No leading or trailing OWS: the parser trims it.
    prop_oneof![Just(String::new()), "[!-~]([ -~]{0,20}[!-~])?"]
}

prop_compose! {
    fn request()(
        method in prop_oneof![Just("GET"), Just("POST"), Just("PUT"), Just("DELETE"), Just("PATCH"), Just("X-CUSTOM")],
        path in "/[A-Za-z0-9._~%!$&'()*+,;=:@/-]{0,24}",
        query in proptest::option::of("[A-Za-z0-9._~%=&/?-]{0,16}"),
        http10 in any::<bool>(),
        extra in proptest::collection::vec(("X-[A-Za-z0-9-]{1,12}", value()), 0..6),
        body in proptest::collection::vec(any::<u8>(), 0..300),
        chunked in any::<bool>(),
        sizes in proptest::collection::vec(1usize..64, 1..8),
        lf_only in any::<bool>(),
    ) -> Gen {
        let eol = if lf_only { "\n" } else { "\r\n" };
        let target = match &query { Some(q) => format!("{path}?{q}"), None => path.clone() };
        let version = if http10 { "HTTP/1.0" } else { "HTTP/1.1" };
        let mut headers = vec![("Host".to_owned(), "example.com:8080".to_owned())];
        if http10 {
            headers.push(("Connection".into(), "keep-alive".into()));
        }
        headers.extend(extra);
        let chunked = chunked && !http10;
        if chunked {
            headers.push(("Transfer-Encoding".into(), "chunked".into()));
        } else if !body.is_empty() {
            headers.push(("Content-Length".into(), body.len().to_string()));
        }
        let mut wire = format!("{method} {target} {version}{eol}").into_bytes();
        for (n, v) in &headers {
            wire.extend_from_slice(format!("{n}: {v}{eol}").as_bytes());
        }
        wire.extend_from_slice(eol.as_bytes());
        if chunked {
            let mut rest = &body[..];
            for size in sizes.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let n = (*size).min(rest.len());
                chunk_header(n, &mut wire);
                wire.extend_from_slice(&rest[..n]);
                wire.extend_from_slice(CHUNK_END);
                rest = &rest[n..];
            }
            wire.extend_from_slice(LAST_CHUNK);
        } else {
            wire.extend_from_slice(&body);
        }
        Gen { wire, method: method.into(), path, query: query.unwrap_or_default(), headers, body }
    }
}

fn check_requests(gens: &[Gen], got: &(Vec<common::Req>, ConnEnd)) -> Result<(), TestCaseError> {
    let (reqs, end) = got;
    prop_assert_eq!(end, &ConnEnd::Eof);
    prop_assert_eq!(reqs.len(), gens.len());
    for (r, g) in reqs.iter().zip(gens) {
        prop_assert_eq!(&r.head.method, &g.method);
        prop_assert_eq!(&r.head.path, &g.path);
        prop_assert_eq!(&r.head.query, &g.query);
        prop_assert_eq!(&r.head.headers, &g.headers);
        prop_assert!(r.head.keep_alive);
        prop_assert_eq!(&r.body, &g.body);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn valid_requests_parse_at_any_split(
        gens in proptest::collection::vec(request(), 1..4),
        split in any::<prop::sample::Index>(),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..20),
    ) {
        let wire: Vec<u8> = gens.iter().flat_map(|g| g.wire.clone()).collect();
        let limits = Limits::default();
        let head = head_all_ways(&gens[0].wire, &limits);
        prop_assert!(matches!(head, Ok(Some(_))), "first head: {:?}", head);
        check_requests(&gens, &serve(&[&wire[..]], &limits))?;
        let at = split.index(wire.len() + 1);
        check_requests(&gens, &serve(&[&wire[..at], &wire[at..]], &limits))?;
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(wire.len() + 1)).collect();
        cuts.sort_unstable();
        check_requests(&gens, &serve(&pieces(&wire, &cuts), &limits))?;
    }

    #[test]
    fn parse_head_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        for limits in [Limits::default(), Limits { request_line: 16, header_fields: 2, field_size: 16, max_body: Some(4) }] {
            let mut head = RequestHead::default();
            if let Ok(Status::Complete(n)) = parse_head(&bytes, &limits, &mut head) {
                prop_assert!(n > 0 && n <= bytes.len() && n == head.head_len);
            }
        }
    }

    #[test]
    fn parse_head_never_panics_after_a_request_line(
        line in prop_oneof![Just("GET / HTTP/1.1\r\n"), Just("POST /x HTTP/1.0\n"), Just("\r\nOPTIONS * HTTP/1.1\r\n")],
        bytes in proptest::collection::vec(prop_oneof![
            Just(b'\r'), Just(b'\n'), Just(b':'), Just(b' '), Just(b'\t'), Just(b','), Just(0u8),
            Just(b'a'), Just(b'H'), Just(b'0'), Just(0x80u8),
        ], 0..200),
        named in proptest::collection::vec(prop_oneof![
            Just("Host: a\r\n"), Just("Content-Length: 5\r\n"), Just("Transfer-Encoding: chunked\r\n"),
            Just("Connection: close\r\n"), Just("Expect: 100-continue\r\n"), Just("Content-Length: 5, 6\r\n"),
        ], 0..4),
    ) {
        let mut buf = line.as_bytes().to_vec();
        named.iter().for_each(|n| buf.extend_from_slice(n.as_bytes()));
        buf.extend_from_slice(&bytes);
        let mut head = RequestHead::default();
        if let Ok(Status::Complete(n)) = parse_head(&buf, &Limits::default(), &mut head) {
            prop_assert!(n <= buf.len());
        }
    }

    #[test]
    fn body_decoder_never_panics(
        bytes in proptest::collection::vec(prop_oneof![
            3 => any::<u8>(),
            5 => prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'0'), Just(b'1'), Just(b'a'), Just(b';'), Just(b':'), Just(b' ')],
        ], 0..400),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
        length in 0u64..500,
        max_body in proptest::option::of(0u64..64),
    ) {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
        cuts.sort_unstable();
        for framing in [Framing::Chunked, Framing::Length(length), Framing::Empty] {
            // decode_reads asserts the decoder's contract on every call.
            let whole = decode_reads(framing, max_body, &[&bytes[..]]);
            let split = decode_reads(framing, max_body, &pieces(&bytes, &cuts));
            prop_assert_eq!(whole, split);
        }
    }

    #[test]
    fn chunked_round_trip(
        body in proptest::collection::vec(any::<u8>(), 0..2000),
        sizes in proptest::collection::vec(1usize..700, 1..10),
        ext in proptest::option::of("[a-z]{1,8}(=[a-z0-9]{1,8})?"),
        trailers in proptest::collection::vec(("[A-Za-z-]{1,10}", value()), 0..3),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let mut wire = Vec::new();
        let mut rest = &body[..];
        // Extension bytes count against one limit per body.
        let mut ext_bytes = 0;
        for size in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let n = (*size).min(rest.len());
            chunk_header(n, &mut wire);
            if let Some(e) = &ext {
                wire.truncate(wire.len() - 2);
                wire.extend_from_slice(format!(";{e}\r\n").as_bytes());
                ext_bytes += 1 + e.len();
            }
            wire.extend_from_slice(&rest[..n]);
            wire.extend_from_slice(CHUNK_END);
            rest = &rest[n..];
        }
        if trailers.is_empty() {
            wire.extend_from_slice(LAST_CHUNK);
        } else {
            wire.extend_from_slice(b"0\r\n");
            for (n, v) in &trailers {
                wire.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
            }
            wire.extend_from_slice(b"\r\n");
        }
        let used = wire.len();
        wire.extend_from_slice(b"GET /next HTTP/1.1\r\n\r\n");
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(wire.len() + 1)).collect();
        cuts.sort_unstable();
        let want = if ext_bytes > MAX_CHUNK_EXT_BYTES {
            BodyOutcome::Error(ParseError::BadChunkExtension)
        } else {
            BodyOutcome::Done(body.clone(), used)
        };
        prop_assert_eq!(decode_reads(Framing::Chunked, None, &[&wire[..]]), want.clone());
        prop_assert_eq!(decode_reads(Framing::Chunked, None, &pieces(&wire, &cuts)), want.clone());
        prop_assert_eq!(decode_reads(Framing::Chunked, Some(body.len() as u64), &[&wire[..]]), want);
    }
}
