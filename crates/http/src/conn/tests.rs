//! The connection machine on raw bytes fed whole, byte by byte and in
//! random splits: the steps it takes (what the loop would do) must be the
//! same however the bytes arrive.

use super::*;
use crate::proxy_protocol::ProxiedPeer;

const FEEDS: [&str; 3] = ["whole", "bytes", "splits"];

fn rules(limits: &Limits) -> Rules<'_> {
    Rules {
        limits,
        uwsgi: false,
        h2c: false,
        proxy_allowed: false,
        health_path: None,
    }
}

/// What the loop saw, the way it would act on it (a dispatch names the
/// request's path; the app reads the whole body, then `after_request`).
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Proxy(Option<ProxiedPeer>),
    Head { body: bool },
    Ready(Vec<u8>),
    Probe,
    H2c,
    Refuse(ParseError),
    Close,
}

fn pieces(input: &[u8], feed: &str) -> Vec<Vec<u8>> {
    match feed {
        "whole" => vec![input.to_vec()],
        "bytes" => input.iter().map(|b| vec![*b]).collect(),
        _ => {
            // Deterministic uneven cuts.
            let (mut out, mut at, mut step) = (Vec::new(), 0, 1);
            while at < input.len() {
                let end = (at + step).min(input.len());
                out.push(input[at..end].to_vec());
                at = end;
                step = step * 7 % 13 + 1;
            }
            out
        }
    }
}

/// Drives the machine over `input` as `feed` delivers it, from `phase`.
fn drive(input: &[u8], feed: &str, rules: &Rules<'_>, mut phase: Phase) -> (Vec<Seen>, Phase) {
    let mut seen = Vec::new();
    let (mut buf, mut head, mut head_len, mut served) = (Vec::new(), RequestHead::default(), 0, 0);
    'reads: for piece in pieces(input, feed) {
        buf.extend_from_slice(&piece);
        loop {
            match advance(&mut phase, &buf, served == 0, rules, &mut head) {
                Step::NeedMore => continue 'reads,
                Step::HeadStarted => {}
                Step::Proxy { len, client } => {
                    buf.drain(..len);
                    seen.push(Seen::Proxy(client));
                }
                Step::Head { len, body } => {
                    head_len = len;
                    seen.push(Seen::Head { body });
                }
                Step::Ready => {
                    seen.push(Seen::Ready(buf[head.path.clone()].to_vec()));
                    buf.drain(..head_len);
                    let mut dec = BodyDecoder::new(head.framing, rules.limits.max_body);
                    // The app reads what is there of the body, no more.
                    while let Ok((n, d)) = dec.decode(&buf) {
                        buf.drain(..n);
                        if n == 0 || d == Decoded::End {
                            break;
                        }
                    }
                    served += 1;
                    phase = after_request(dec);
                }
                Step::Probe { len } => {
                    buf.drain(..len);
                    seen.push(Seen::Probe);
                    phase = Phase::Head { started: false };
                }
                Step::Discard(n) => {
                    buf.drain(..n);
                }
                Step::H2c => {
                    seen.push(Seen::H2c);
                    break 'reads;
                }
                Step::Refuse(e) => {
                    seen.push(Seen::Refuse(e));
                    break 'reads;
                }
                Step::Close => {
                    seen.push(Seen::Close);
                    break 'reads;
                }
            }
        }
    }
    (seen, phase)
}

/// The same steps, whatever the feed.
fn steps(input: &[u8], rules: &Rules<'_>, phase: fn() -> Phase) -> Vec<Seen> {
    let (first, _) = drive(input, "whole", rules, phase());
    for feed in &FEEDS[1..] {
        assert_eq!(drive(input, feed, rules, phase()).0, first, "fed {feed}");
    }
    first
}

fn head() -> Phase {
    Phase::Head { started: false }
}

#[test]
fn pipelined_requests_and_a_prebuffered_body() {
    let l = Limits::default();
    let input = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\n\
Content-Length: 5\r\n\r\nhelloGET /c HTTP/1.1\r\nHost: x\r\n\r\n";
    let seen = steps(input, &rules(&l), head);
    use Seen::*;
    assert_eq!(
        seen,
        [
            Head { body: false },
            Ready(b"/a".to_vec()),
            Head { body: true },
            Ready(b"/b".to_vec()),
            Head { body: false },
            Ready(b"/c".to_vec()),
        ]
    );
    // A prebuffered body is ready only once all of it is in.
    // Cut inside `hello`: all but the next request (29 bytes) and 2 more.
    let cut = &input[..input.len() - 31];
    let (seen, phase) = drive(cut, "whole", &rules(&l), head());
    assert_eq!(seen.last(), Some(&Head { body: true }));
    assert!(matches!(phase, Phase::Body { .. }));
}

#[test]
fn large_or_expecting_bodies_are_dispatched_at_once() {
    let l = Limits::default();
    let big =
        format!("PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: {PREBUFFER_BODY_BYTES}\r\n\r\n");
    let cont = b"PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
    for input in [big.as_bytes(), cont] {
        let seen = steps(input, &rules(&l), head);
        assert_eq!(
            seen,
            [Seen::Head { body: false }, Seen::Ready(b"/".to_vec())]
        );
    }
}

#[test]
fn proxy_header_only_from_allowed_peers() {
    let l = Limits::default();
    let input = b"PROXY TCP4 203.0.113.7 10.0.0.1 51000 80\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let allowed = Rules {
        proxy_allowed: true,
        ..rules(&l)
    };
    let seen = steps(input, &allowed, || Phase::Proxy);
    let Seen::Proxy(Some(client)) = &seen[0] else {
        panic!("{seen:?}");
    };
    assert_eq!(client.ip.to_string(), "203.0.113.7");
    assert_eq!(seen[2], Seen::Ready(b"/".to_vec()));
    let seen = steps(input, &rules(&l), || Phase::Proxy);
    assert_eq!(seen, [Seen::Refuse(ParseError::BadProxyHeader)]);
}

#[test]
fn the_h2_preface_is_handed_over_only_first() {
    let l = Limits::default();
    let h2c = Rules {
        h2c: true,
        ..rules(&l)
    };
    let preface = crate::request::H2_PREFACE;
    assert_eq!(steps(preface, &h2c, head), [Seen::H2c]);
    // After a request the same bytes are an HTTP/1.1 error, not a hand-over.
    let mut later = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    later.extend_from_slice(preface);
    let seen = steps(&later, &h2c, head);
    assert!(matches!(seen.last(), Some(Seen::Refuse(_))), "{seen:?}");
    // Without a front to take it, it is refused too.
    assert!(matches!(
        steps(preface, &rules(&l), head)[..],
        [Seen::Refuse(_)]
    ));
}

#[test]
fn health_probes_exactly_and_nothing_else() {
    let l = Limits::default();
    let probes = Rules {
        health_path: Some(b"/healthz"),
        ..rules(&l)
    };
    let input = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nHEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n\
GET /healthz?x HTTP/1.1\r\nHost: x\r\n\r\nPOST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
    let seen = steps(input, &probes, head);
    assert_eq!(&seen[..2], [Seen::Probe, Seen::Probe]);
    assert_eq!(
        seen.iter().filter(|s| matches!(s, Seen::Ready(_))).count(),
        2
    );
}

#[test]
fn an_unread_body_is_dropped_then_the_next_head_parsed() {
    let l = Limits::default();
    // The app of `drive` reads only what has arrived: fed whole, all of
    // it; fed in pieces, part, and the rest is dropped by the machine.
    let input = b"POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
5\r\nhello\r\n0\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n";
    let seen = steps(input, &rules(&l), head);
    assert_eq!(
        seen.iter().filter(|s| matches!(s, Seen::Ready(_))).count(),
        2
    );
    // A drain whose framing breaks closes the connection.
    let dec = BodyDecoder::new(Framing::Chunked, None);
    let broken = Phase::Drain {
        decoder: dec,
        budget: MAX_DRAIN_BYTES,
    };
    assert_eq!(
        drive(b"zz\r\n", "whole", &rules(&l), broken).0,
        [Seen::Close]
    );
}

#[test]
fn too_much_left_unread_lingers_and_lingering_drops_everything() {
    let mut dec = BodyDecoder::new(Framing::Length(MAX_DRAIN_BYTES + 1), None);
    assert_eq!(dec.decode(b""), Ok((0, Decoded::NeedMore)));
    assert!(matches!(after_request(dec), Phase::Linger));
    let l = Limits::default();
    let (seen, phase) = drive(
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "bytes",
        &rules(&l),
        Phase::Linger,
    );
    assert!(seen.is_empty() && matches!(phase, Phase::Linger));
}
