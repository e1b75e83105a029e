//! The native proxy's response-head parser (`http::upstream_head`): table
//! cases of raw upstream answers (framing by RFC 9112 §6.3, whether the
//! connection may be reused, errors), each fed whole, byte by byte and in
//! random reads the way the proxy feeds it (parse the bytes so far; `None`
//! means read more), with the interim 1xx heads skipped as the proxy does.

mod common;

use common::all_ways;
use qiao_http::upstream_head::{
    parse, BodyFraming, BodyFraming::*, HeadError, MAX_UPSTREAM_FIELDS, MAX_UPSTREAM_HEAD_BYTES,
};

/// What a case must give: status, reason, framing, reusable, field count;
/// or an error.
#[derive(Debug, PartialEq)]
enum Want {
    Ok(u16, &'static str, BodyFraming, bool, usize),
    Err(HeadError),
}

/// A final head, owned: status, reason, framing, reusable, field count,
/// and the bytes after it.
type Fed = (u16, String, BodyFraming, bool, usize, Vec<u8>);

/// The first final head in the reads: parsed after each read, interim
/// heads dropped; then the final head, owned, and the bytes after it.
fn feed(reads: &[&[u8]], to_head: bool) -> Result<Fed, HeadError> {
    let mut buf = Vec::new();
    for (i, read) in reads.iter().enumerate() {
        buf.extend_from_slice(read);
        while let Some(head) = parse(&buf, to_head)? {
            if head.is_interim() {
                buf.drain(..head.len);
                continue;
            }
            let reason = String::from_utf8_lossy(&buf[head.reason.clone()]).into_owned();
            let mut rest = buf[head.len..].to_vec();
            reads[i + 1..]
                .iter()
                .for_each(|r| rest.extend_from_slice(r));
            return Ok((
                head.status,
                reason,
                head.framing,
                head.reusable,
                head.fields.len(),
                rest,
            ));
        }
    }
    Err(HeadError::Invalid("incomplete"))
}

#[rustfmt::skip]
const CASES: &[(&str, &[u8], bool, Want)] = &[
    ("length", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false, Want::Ok(200, "OK", Length(5), true, 1)),
    ("length zero", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, Want::Ok(200, "OK", None, true, 1)),
    ("length list same", b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello", false, Want::Ok(200, "OK", Length(5), true, 1)),
    ("length repeated same", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\nhello", false, Want::Ok(200, "OK", Length(5), true, 2)),
    ("length differs", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", false, Want::Err(HeadError::BadContentLength)),
    ("length list differs", b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n", false, Want::Err(HeadError::BadContentLength)),
    ("length negative", b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false, Want::Err(HeadError::BadContentLength)),
    ("length hex", b"HTTP/1.1 200 OK\r\nContent-Length: 0x5\r\n\r\n", false, Want::Err(HeadError::BadContentLength)),
    ("chunked", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", false, Want::Ok(200, "OK", Chunked, true, 1)),
    ("chunked after gzip", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n", false, Want::Ok(200, "OK", Chunked, true, 1)),
    ("te not chunked last", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", false, Want::Ok(200, "OK", UntilClose, false, 1)),
    ("te and length: te wins, not reused", b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", false, Want::Ok(200, "OK", Chunked, false, 2)),
    ("no length: until close", b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\nabc", false, Want::Ok(200, "OK", UntilClose, false, 1)),
    ("head: no body whatever the length", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, Want::Ok(200, "OK", None, true, 1)),
    ("head with chunked", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true, Want::Ok(200, "OK", None, true, 1)),
    ("204", b"HTTP/1.1 204 No Content\r\n\r\n", false, Want::Ok(204, "No Content", None, true, 0)),
    ("304 with length", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", false, Want::Ok(304, "Not Modified", None, true, 1)),
    ("connection close", b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", false, Want::Ok(200, "OK", Length(1), false, 2)),
    ("connection token list", b"HTTP/1.1 200 OK\r\nConnection: x-foo, Close\r\nContent-Length: 1\r\n\r\nx", false, Want::Ok(200, "OK", Length(1), false, 2)),
    ("1.0 default close", b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", false, Want::Ok(200, "OK", Length(1), false, 1)),
    ("1.0 keep-alive", b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx", false, Want::Ok(200, "OK", Length(1), true, 2)),
    ("reason as sent", b"HTTP/1.1 299 Quite  Fine\r\nContent-Length: 0\r\n\r\n", false, Want::Ok(299, "Quite  Fine", None, true, 1)),
    ("reason not utf-8", b"HTTP/1.1 200 Fine\x8b\x96\r\nContent-Length: 0\r\n\r\n", false, Want::Ok(200, "Fine\u{fffd}\u{fffd}", None, true, 1)),
    ("no reason, no space", b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", false, Want::Ok(200, "", None, true, 1)),
    ("empty reason", b"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", false, Want::Ok(200, "", None, true, 1)),
    ("interim skipped", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", false, Want::Ok(201, "Created", None, true, 1)),
    ("101 unasked", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", false, Want::Err(HeadError::Invalid("101 to a request that asked for no upgrade"))),
    ("status below 100", b"HTTP/1.1 099 Weird\r\nContent-Length: 0\r\n\r\n", false, Want::Err(HeadError::Invalid("status code below 100"))),
    ("status 000", b"HTTP/1.1 000 Zero\r\n\r\n", false, Want::Err(HeadError::Invalid("status code below 100"))),
    ("value whitespace trimmed", b"HTTP/1.1 200 OK\r\nContent-Length:  \t 2 \r\n\r\nok", false, Want::Ok(200, "OK", Length(2), true, 1)),
    ("obs-fold refused", b"HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n", false, Want::Err(HeadError::Invalid("invalid field name"))),
    ("bad status", b"HTTP/1.1 2000 OK\r\n\r\n", false, Want::Err(HeadError::Invalid("invalid status code"))),
    ("bad version", b"HTTP/2.0 200 OK\r\n\r\n", false, Want::Err(HeadError::Invalid("invalid HTTP version"))),
    ("not http", b"SSH-2.0-OpenSSH\r\n\r\n", false, Want::Err(HeadError::Invalid("invalid HTTP version"))),
    ("space before colon", b"HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", false, Want::Err(HeadError::Invalid("invalid field name"))),
];

#[test]
fn table() {
    for (name, raw, to_head, want) in CASES {
        let got = all_ways(raw, |reads| feed(reads, *to_head));
        let got = match got {
            Ok((status, reason, framing, reusable, fields, _)) => Want::Ok(
                status,
                Box::leak(reason.into_boxed_str()),
                framing,
                reusable,
                fields,
            ),
            Err(e) => Want::Err(e),
        };
        assert_eq!(&got, want, "case {name}");
    }
}

#[test]
fn bytes_after_the_head_are_left_alone() {
    let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\n";
    let rest = all_ways(raw, |reads| feed(reads, false).map(|r| r.5));
    assert_eq!(rest.unwrap(), b"helloHTTP/1.1 200 OK\r\n");
}

#[test]
fn fields_keep_their_order_and_case() {
    let raw = b"HTTP/1.1 200 OK\r\nX-B: 1\r\nset-cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n";
    let head = parse(raw, false).unwrap().unwrap();
    let fields: Vec<(&[u8], &[u8])> = head
        .fields
        .iter()
        .map(|(n, v)| (&raw[n.clone()], &raw[v.clone()]))
        .collect();
    assert_eq!(
        fields,
        [
            (&b"X-B"[..], &b"1"[..]),
            (b"set-cookie", b"a=1"),
            (b"Set-Cookie", b"b=2"),
            (b"Content-Length", b"0"),
        ]
    );
    assert_eq!(head.len, raw.len());
    assert_eq!(head.content_length, Some(0));
}

#[test]
fn limits() {
    let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..=MAX_UPSTREAM_FIELDS {
        many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    assert_eq!(parse(&many, false), Err(HeadError::TooLarge));

    // A head still incomplete at the limit is refused without more reads.
    let mut long = b"HTTP/1.1 200 OK\r\nX-Long: ".to_vec();
    long.resize(MAX_UPSTREAM_HEAD_BYTES, b'a');
    assert_eq!(parse(&long, false), Err(HeadError::TooLarge));
    long.truncate(MAX_UPSTREAM_HEAD_BYTES - 1);
    assert_eq!(parse(&long, false), Ok(Option::None));
}
