//! `request_stream`: the event loop's connection machine
//! (`qiao_http::conn`) over arbitrary bytes.
//!
//! Input layout: byte 0 picks a `Limits` variant (see `common::limits`),
//! byte 1 its parameter, byte 2 the connection's rules (bit 0: a PROXY
//! header is due and allowed; bit 1: h2c may be handed over; bit 2: the
//! listener speaks uwsgi; bit 3: `/healthz` is the health path); the rest
//! is what a client sent on one connection, in one read. The driver does
//! what the loop does with each step; at a dispatch the "application"
//! reads the body to its end (or as far as the bytes go), then the
//! machine's `after_request` says where the connection goes. Checks:
//! - nothing panics, and the machine never stalls: every step but
//!   `NeedMore` consumes bytes or changes the phase, within a bound;
//! - complete heads have their ranges inside the head (`common`);
//! - nothing consumes more than the input;
//! - a `Content-Length` body that ends yields exactly that many bytes;
//!   no body yields more than `max_body`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use qiao_http::conn::{advance, after_request, Phase, Rules, Step};
use qiao_http::{BodyDecoder, Decoded, Framing, RequestHead};

#[path = "common/mod.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let limits = common::limits(data[0], data[1]);
    let flags = data[2];
    let rules = Rules {
        limits: &limits,
        uwsgi: flags & 4 != 0,
        h2c: flags & 2 != 0,
        proxy_allowed: flags & 1 != 0,
        health_path: (flags & 8 != 0).then_some(&b"/healthz"[..]),
    };
    let buf = &data[3..];
    let mut phase = if flags & 1 != 0 { Phase::Proxy } else { Phase::Head { started: false } };
    let mut head = RequestHead::default();
    let (mut pos, mut head_len, mut served) = (0usize, 0usize, 0u32);
    // Each step consumes a byte or moves the phase on; a few per request.
    for _ in 0..(buf.len() * 4 + 64) {
        let rest = &buf[pos..];
        match advance(&mut phase, rest, served == 0, &rules, &mut head) {
            Step::NeedMore | Step::H2c | Step::Refuse(_) | Step::Close => return,
            Step::HeadStarted => {}
            Step::Proxy { len, .. } => {
                assert!(len > 0 && len <= rest.len());
                pos += len;
            }
            Step::Head { len, .. } => {
                common::check_head_ranges(&head, len, rest.len());
                head_len = len;
            }
            Step::Probe { len } => {
                assert!(len <= rest.len());
                pos += len;
                phase = Phase::Head { started: false };
            }
            Step::Discard(n) => {
                assert!(n <= rest.len());
                pos += n;
            }
            Step::Ready => {
                pos += head_len;
                served += 1;
                let mut dec = BodyDecoder::new(head.framing, limits.max_body);
                let mut body_len = 0u64;
                let mut ended = false;
                for _ in 0..(buf.len() - pos + 2) {
                    match dec.decode(&buf[pos..]) {
                        Ok((n, Decoded::Data(r))) => {
                            assert!(n > 0 && r.end <= n && !r.is_empty());
                            body_len += r.len() as u64;
                            pos += n;
                        }
                        Ok((n, Decoded::End)) => {
                            pos += n;
                            ended = true;
                            break;
                        }
                        Ok((n, Decoded::NeedMore)) => {
                            pos += n;
                            break;
                        }
                        Err(_) => return,
                    }
                }
                assert_eq!(body_len, dec.total());
                if let (Framing::Length(len), true) = (head.framing, ended) {
                    assert_eq!(body_len, len, "Content-Length body yielded another length");
                }
                if let Some(max) = limits.max_body {
                    assert!(body_len <= max, "body of {body_len} bytes over max_body {max}");
                }
                phase = after_request(dec);
            }
        }
        assert!(pos <= buf.len(), "consumed {pos} of {} bytes", buf.len());
    }
    panic!("the machine made no progress (phase {phase:?})");
});
