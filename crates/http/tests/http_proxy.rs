//! `http::proxy_protocol`: PROXY v1/v2 headers as table tests on raw
//! bytes. The parser sees the buffer as it grows, so each case is also fed
//! byte by byte and at random cut points: every shorter prefix must be
//! `Partial` (or already the same error), never a different answer.

#[path = "common/cuts.rs"]
mod cuts;

use std::net::IpAddr;

use qiao_http::proxy_protocol::{parse_proxy_header, ProxiedPeer, V2_SIGNATURE};
use qiao_http::{ParseError, Status};

/// `Ok((length, client))`; every complete case here is exactly its input,
/// so the length is written 0 and checked against the input's.
type Expected = Result<(usize, Option<(&'static str, u16)>), ParseError>;

fn v2(cmd: u8, family: u8, payload: &[u8]) -> Vec<u8> {
    let mut b = V2_SIGNATURE.to_vec();
    b.push(0x20 | cmd);
    b.push(family);
    b.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    b.extend_from_slice(payload);
    b
}

fn v2_tcp4() -> Vec<u8> {
    // src 203.0.113.7:51000, dst 10.0.0.1:8000, then a TLV that is skipped.
    let mut p = vec![203, 0, 113, 7, 10, 0, 0, 1];
    p.extend_from_slice(&51000u16.to_be_bytes());
    p.extend_from_slice(&8000u16.to_be_bytes());
    p.extend_from_slice(&[0x04, 0x00, 0x02, b'o', b'k']);
    v2(1, 0x11, &p)
}

fn v2_tcp6() -> Vec<u8> {
    let src: IpAddr = "2001:db8::7".parse().unwrap();
    let IpAddr::V6(src) = src else { unreachable!() };
    let mut p = src.octets().to_vec();
    p.extend_from_slice(&[0u8; 16]);
    p.extend_from_slice(&443u16.to_be_bytes());
    p.extend_from_slice(&80u16.to_be_bytes());
    v2(1, 0x21, &p)
}

fn cases() -> Vec<(&'static str, Vec<u8>, Expected)> {
    let line = |s: &str| s.as_bytes().to_vec();
    vec![
        (
            "v1-tcp4",
            line("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"),
            Ok((0, Some(("192.0.2.1", 56324)))),
        ),
        (
            "v1-tcp6",
            line("PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n"),
            Ok((0, Some(("2001:db8::1", 1)))),
        ),
        ("v1-unknown", line("PROXY UNKNOWN\r\n"), Ok((0, None))),
        (
            "v1-unknown-with-junk",
            line("PROXY UNKNOWN whatever here\r\n"),
            Ok((0, None)),
        ),
        (
            "v1-no-cr",
            line("PROXY TCP4 192.0.2.1 198.51.100.2 1 2\n"),
            Err(ParseError::BadProxyHeader),
        ),
        (
            "v1-bad-ip",
            line("PROXY TCP4 192.0.2 198.51.100.2 1 2\r\n"),
            Err(ParseError::BadProxyHeader),
        ),
        (
            "v1-v6-in-tcp4",
            line("PROXY TCP4 ::1 ::1 1 2\r\n"),
            Err(ParseError::BadProxyHeader),
        ),
        (
            "v1-port-leading-zero",
            line("PROXY TCP4 192.0.2.1 198.51.100.2 01 2\r\n"),
            Err(ParseError::BadProxyHeader),
        ),
        (
            "v1-port-too-big",
            line("PROXY TCP4 192.0.2.1 198.51.100.2 65536 2\r\n"),
            Err(ParseError::BadProxyHeader),
        ),
        (
            "v1-missing-field",
            line("PROXY TCP4 192.0.2.1 198.51.100.2 1\r\n"),
            Err(ParseError::BadProxyHeader),
        ),
        (
            "v1-family",
            line("PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n"),
            Err(ParseError::BadProxyHeader),
        ),
        (
            "v1-too-long",
            [line("PROXY UNKNOWN "), vec![b'x'; 120], line("\r\n")].concat(),
            Err(ParseError::BadProxyHeader),
        ),
        (
            "no-header",
            line("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
            Err(ParseError::BadProxyHeader),
        ),
        (
            "v2-tcp4-with-tlv",
            v2_tcp4(),
            Ok((0, Some(("203.0.113.7", 51000)))),
        ),
        ("v2-tcp6", v2_tcp6(), Ok((0, Some(("2001:db8::7", 443))))),
        ("v2-local", v2(0, 0x00, &[]), Ok((0, None))),
        ("v2-unspec", v2(1, 0x00, &[1, 2, 3]), Ok((0, None))),
        ("v2-unix", v2(1, 0x31, &[0; 216]), Ok((0, None))),
        (
            "v2-short-tcp4",
            v2(1, 0x11, &[1, 2, 3]),
            Err(ParseError::BadProxyHeader),
        ),
        (
            "v2-bad-command",
            v2(7, 0x11, &[0; 12]),
            Err(ParseError::BadProxyHeader),
        ),
        (
            "v2-bad-version",
            {
                let mut b = v2_tcp4();
                b[12] = 0x11;
                b
            },
            Err(ParseError::BadProxyHeader),
        ),
        (
            "v2-too-large",
            {
                let mut b = V2_SIGNATURE.to_vec();
                b.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
                b
            },
            Err(ParseError::BadProxyHeader),
        ),
        (
            "v2-bad-signature",
            {
                let mut b = v2_tcp4();
                b[5] = b'X';
                b
            },
            Err(ParseError::BadProxyHeader),
        ),
    ]
}

fn answer(buf: &[u8]) -> Result<Status<(usize, Option<ProxiedPeer>)>, ParseError> {
    parse_proxy_header(buf)
}

fn check(name: &str, input: &[u8], whole: usize, expected: &Expected) {
    let got = answer(input);
    match (&got, expected) {
        (Ok(Status::Complete((n, peer))), Ok((_, epeer))) => {
            assert_eq!(*n, whole, "{name}: length");
            let peer = peer.as_ref().map(|p| (p.ip.to_string(), p.port));
            let epeer = epeer.map(|(ip, port)| (ip.to_string(), port));
            assert_eq!(peer, epeer, "{name}: client");
        }
        (Err(e), Err(ee)) => assert_eq!(e, ee, "{name}"),
        _ => panic!("{name}: got {got:?}, expected {expected:?}"),
    }
}

/// The answer for each prefix: Partial, or (once decided) the final one.
fn check_prefixes(name: &str, input: &[u8], expected: &Expected, cuts: &[usize]) {
    for &cut in cuts {
        match (answer(&input[..cut]), expected) {
            (Ok(Status::Partial), _) => {}
            (Err(e), Err(ee)) => assert_eq!(&e, ee, "{name}: prefix {cut}"),
            (got, _) => panic!("{name}: prefix of {cut} bytes answered {got:?}"),
        }
    }
}

#[test]
fn proxy_headers_whole_and_followed_by_a_request() {
    for (name, input, expected) in cases() {
        check(name, &input, input.len(), &expected);
        // Bytes after the header (the request) never change the answer.
        let mut more = input.clone();
        more.extend_from_slice(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        if expected.is_ok() {
            check(name, &more, input.len(), &expected);
        }
    }
}

#[test]
fn proxy_headers_byte_by_byte_and_split() {
    for (name, input, expected) in cases() {
        let n = input.len();
        // Decided errors may come early; complete headers only at the end.
        let all: Vec<usize> = (0..n).collect();
        if expected.is_ok() {
            check_prefixes(name, &input, &expected, &all);
        } else {
            for cut in 0..n {
                if let Ok(Status::Complete(_)) = answer(&input[..cut]) {
                    panic!("{name}: prefix {cut} complete");
                }
            }
        }
        for seed in [1, 42, 0xDEAD_BEEF] {
            check_prefixes(name, &input, &expected, &cuts::random_cuts(n, seed));
        }
    }
}
